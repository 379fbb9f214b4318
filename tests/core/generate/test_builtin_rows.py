"""Row-reduction schedules: how many times a kernel reads each row element, and that the faster
schedules keep torch's numerics (in-process, Triton interpreter, edge values included).

- a row that fits one block is read once, whatever the number of stages (softmax: max, exp-sum,
  normalise);
- a longer row takes the online softmax normaliser (running max and rescaled sum, one sweep) and
  single-sweep (Welford) variance, so softmax reads it twice and a variance once;
- a per-row value broadcast back by an explicit expand (F.normalize's expand_as) joins the row
  kernel like a keepdim one;
- an operand that varies only along the reduced dims (layer norm's weight) is loaded once per
  program, not once per row."""

from __future__ import annotations

import re

import pytest

from kgen.core.generate.builtin import BuiltinGenerator
from kgen.core.task import task_from_source

TEMPLATE = '''
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln = nn.LayerNorm({k})

    def forward(self, x):
        return {expr}


def get_inputs():
    return [torch.randn(6, {k})]


def get_init_inputs():
    return []
'''

# (expression, row length, element loads of x per row element, loops over the row)
CASES = {
    "softmax_short": ("torch.softmax(x, dim=1)", 100, 1, 0),
    "softmax_long": ("torch.softmax(x, dim=1)", 1300, 2, 2),
    "log_softmax_long": ("torch.log_softmax(x, dim=1)", 1300, 2, 2),
    "var_long": ("torch.var(x * 3.0 + 50.0, dim=1)", 1300, 1, 1),
    "layernorm_short": ("self.ln(x)", 200, 1, 0),
    "layernorm_long": ("self.ln(x * 3.0 + 50.0)", 1300, 2, 2),
    # F.normalize divides by an explicit expand_as of the row norm: still one kernel
    "l2_normalize_short": ("torch.nn.functional.normalize(x, p=2.0, dim=1)", 100, 1, 0),
    "l2_normalize_long": ("torch.nn.functional.normalize(x * 3.0, p=2.0, dim=1)", 1300, 2, 2),
    "softmax_family_long": ("(torch.softmax(x, 1), torch.log_softmax(x, 1), torch.logsumexp(x, 1))", 1300, None, None),
}


def _x_loads(source: str) -> int:
    kernel = source[source.index("def k0_reduction"):source.index("class ModelNew")]
    return len(re.findall(r"tl\.load\(in0 [^\n]*\bks\b", kernel))


@pytest.mark.parametrize("name", sorted(CASES))
def test_row_schedules_read_less_and_match_torch(name):
    import torch

    expr, k, loads, loops = CASES[name]
    source = TEMPLATE.format(expr=expr, k=k)
    cand = BuiltinGenerator().initial(task_from_source(source, name), 1)[0]
    assert cand.params["kernels"] == 1 and cand.params["fallback_ops"] == []
    if loads is not None:
        assert _x_loads(cand.source) == loads
        assert cand.source.count("for k0 in range") == loops
    ns: dict = {"__name__": "kgen_rows_candidate"}
    exec(compile(cand.source, "<candidate>", "exec"), ns)
    ref_ns: dict = {"__name__": "kgen_rows_reference"}
    exec(compile(source, "<reference>", "exec"), ref_ns)
    torch.manual_seed(0)
    ref, new = ref_ns["Model"](), ns["ModelNew"]()
    with torch.no_grad():
        ref.ln.weight.uniform_(0.5, 1.5)
        ref.ln.bias.uniform_(-1, 1)
    new.load_state_dict(ref.state_dict())
    x = torch.randn(6, k) * 5
    if "softmax" in name:
        # a row of -inf, a row whose first chunk is all -inf, NaN, +inf, a large value at the end
        x[0] = float("-inf")
        x[1, :700] = float("-inf")
        x[2, k // 2] = float("nan")
        x[3, 10] = float("inf")
        x[4, k - 1] = 80.0
    with torch.no_grad():
        want, got = ref(x), new(x)
    want = want if isinstance(want, tuple) else (want,)
    got = got if isinstance(got, tuple) else (got,)
    for w, g in zip(want, got):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-4, equal_nan=True)


SCAN_TEMPLATE = '''
import torch
import torch.nn as nn


class Model(nn.Module):
    def forward(self, x):
        return {expr}


def get_inputs():
    return [torch.randn({shape})]


def get_init_inputs():
    return []
'''

# the reversed-scan idiom and other flips of a scan's result: stored at mirrored positions by the
# scan kernel itself (one launch), over rows longer than one chunk and flips of other dims too
SCAN_FLIPS = {
    "reverse_long": ("torch.cumsum(x.flip(1), dim=1).flip(1)", "3, 1300"),
    "reverse_3d_two_dims": ("torch.cumsum(x.flip(2), dim=2).flip(1, 2)", "2, 3, 40"),
    "cumprod_flip_outer": ("torch.cumprod(x * 0.1 + 1.0, dim=1).flip(0)", "4, 30"),
    "flip_and_plain": ("(lambda c: (c * 2.0, c.flip(1)))(torch.cumsum(x, dim=1))", "3, 70"),
}


@pytest.mark.parametrize("name", sorted(SCAN_FLIPS))
def test_flip_of_a_scan_is_stored_by_the_scan_kernel(name):
    import torch

    expr, shape = SCAN_FLIPS[name]
    source = SCAN_TEMPLATE.format(expr=expr, shape=shape)
    cand = BuiltinGenerator().initial(task_from_source(source, name), 1)[0]
    assert cand.params["kernels"] == 1 and cand.params["fallback_ops"] == []
    assert [g["kind"] for g in cand.params["groups"]] == ["scan"]
    ns: dict = {"__name__": "kgen_scan_candidate"}
    exec(compile(cand.source, "<candidate>", "exec"), ns)
    ref_ns: dict = {"__name__": "kgen_scan_reference"}
    exec(compile(source, "<reference>", "exec"), ref_ns)
    torch.manual_seed(0)
    x = torch.randn(*[int(s) for s in shape.split(",")])
    want, got = ref_ns["Model"]()(x), ns["ModelNew"]()(x)
    for w, g in zip(want if isinstance(want, tuple) else (want,), got if isinstance(got, tuple) else (got,)):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-3)


CE_TEMPLATE = '''
import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def forward(self, logits, target):
        return {expr}


def get_inputs():
    return [torch.randn(6, {k}), torch.randint(0, {k}, (6,))]


def get_init_inputs():
    return []
'''

# (expression, row length, kernels): the target's log-probability is picked out of the row the
# kernel already holds (a selecting reduction), the ignore_index masking is computed per row there
CROSS_ENTROPY = {
    "mean_short": ("F.cross_entropy(logits, target)", 11, 2),
    "mean_long": ("F.cross_entropy(logits, target)", 1300, 2),
    "per_row_short": ("F.cross_entropy(logits, target, reduction='none')", 40, 1),
    "nll_of_log_softmax_long": ("F.nll_loss(torch.log_softmax(logits * 2.0, 1), target, reduction='sum')", 1300, 2),
}


@pytest.mark.parametrize("name", sorted(CROSS_ENTROPY))
def test_cross_entropy_picks_the_target_inside_the_row_kernel(name):
    import torch

    expr, k, kernels = CROSS_ENTROPY[name]
    source = CE_TEMPLATE.format(expr=expr, k=k)
    cand = BuiltinGenerator().initial(task_from_source(source, name), 1)[0]
    assert cand.params["kernels"] == kernels and cand.params["fallback_ops"] == []
    assert "aten.gather.default" in cand.params["groups"][0]["ops"]
    assert not re.search(r"\bg\d+ = tl\.load", cand.source)  # no random-access read of a stored log-probability
    ns: dict = {"__name__": "kgen_ce_candidate"}
    exec(compile(cand.source, "<candidate>", "exec"), ns)
    ref_ns: dict = {"__name__": "kgen_ce_reference"}
    exec(compile(source, "<reference>", "exec"), ref_ns)
    torch.manual_seed(0)
    logits = torch.randn(6, k) * 4
    target = torch.randint(0, k, (6,))
    target[2] = -100          # ignored rows count neither in the sum nor in the mean's divisor
    target[4] = k - 1         # the last lane of the row (of its last chunk when the row is long)
    torch.testing.assert_close(ns["ModelNew"]()(logits, target), ref_ns["Model"]()(logits, target), rtol=1e-4, atol=1e-4)


BN_TEMPLATE = '''
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x):
        return self.bn(x)


def get_inputs():
    return [torch.randn({n}, 4, {h}, 6)]


def get_init_inputs():
    return []
'''


@pytest.mark.parametrize("n,h", [(3, 5), (4, 30)])  # a channel's row fits one block / takes chunks
def test_per_channel_operands_load_once_per_row(n, h):
    """Batch norm in training: the reduction's rows are channels, and its weight and bias vary
    only along them, so each is one [RBLOCK, 1] load per row, not one load per element."""
    import torch

    source = BN_TEMPLATE.format(n=n, h=h)
    cand = BuiltinGenerator().initial(task_from_source(source, f"bn_{n}_{h}"), 1)[0]
    kernel = cand.source[cand.source.index("def k1_reduction"):cand.source.index("class ModelNew")]
    assert cand.params["kernels"] == 2  # num_batches_tracked += 1, then statistics + normalise + running stats
    per_row = re.findall(r"tl\.load\((in\d+) \+ rows \* in\d+_s1, mask=rmask, other=0\)", kernel)
    assert len(per_row) == 2, kernel
    ns: dict = {"__name__": "kgen_bn_candidate"}
    exec(compile(cand.source, "<candidate>", "exec"), ns)
    ref_ns: dict = {"__name__": "kgen_bn_reference"}
    exec(compile(source, "<reference>", "exec"), ref_ns)
    torch.manual_seed(0)
    ref, new = ref_ns["Model"](), ns["ModelNew"]()
    with torch.no_grad():
        ref.bn.weight.uniform_(0.5, 1.5)
        ref.bn.bias.uniform_(-1, 1)
    new.load_state_dict(ref.state_dict())
    x = torch.randn(n, 4, h, 6) * 3 + 1
    torch.testing.assert_close(new(x), ref(x), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(new.bn.running_mean, ref.bn.running_mean, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(new.bn.running_var, ref.bn.running_var, rtol=1e-4, atol=1e-5)
