"""Row-owning matmuls (rowfuse.py, emit/rowmatmul.py): a matmul whose output rows are reduced right
after it (row sums, layer norm, group norm over a view splitting the last dim, softmax) is one
kernel whose tile spans the whole row, the reductions running on the accumulator; and where the
row is too wide, reduced along another dim, or row fusion is off, the plan stays a tiled matmul
and a reduction kernel. Every case runs against torch at the traced batch and at another one."""

from __future__ import annotations

import pytest

from kgen.core.generate.builtin import BuiltinGenerator, schedule
from kgen.core.task import task_from_source

TEMPLATE = '''
import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear({k}, {n})
        self.ln = nn.LayerNorm({n})
        self.gn = nn.GroupNorm({groups}, {n})

    def forward(self, x):
        return {expr}


def get_inputs():
    return [torch.randn({shape})]


def get_init_inputs():
    return []
'''

# name: (expression, K, N, groups, input shape, other input shape, kernel kinds; None: the plan
# without row-owning matmuls)
CASES = {
    "sigmoid_row_sum": ("torch.sigmoid(self.fc(x)).sum(dim=1, keepdim=True)", 16, 12, 1, "6, 16", "7, 16",
                        ["rowmatmul"]),
    "layernorm_gelu": ("F.gelu(self.ln(self.fc(x)))", 20, 16, 1, "6, 20", "9, 20", ["rowmatmul"]),
    # groups of C = 2 columns, 8 per row
    "groupnorm_swish": ("(lambda y: y * torch.sigmoid(y))(self.gn(self.fc(x)))", 12, 16, 8, "5, 12", "6, 12",
                        ["rowmatmul"]),
    # neither the group count (5) nor the group width (6) a power of two: padded runs
    "groupnorm_uneven": ("self.gn(self.fc(x) * 2.0)", 7, 30, 5, "4, 7", "3, 7", ["rowmatmul"]),
    # the matmul's output is needed outside too: stored by the same kernel
    "mm_and_row_max": ("(lambda y: (y, y.amax(dim=1), y.argmax(dim=1)))(x @ self.fc.weight.t())", 9, 20, 1,
                       "5, 9", "8, 9", ["rowmatmul"]),
    "addmm_scaled_softmax": ("torch.softmax(torch.addmm(self.fc.bias, x, self.fc.weight.t(), beta=0.5, alpha=2.0), -1)",
                             24, 40, 1, "3, 24", "4, 24", ["rowmatmul"]),
    # batched: rows over the batch too
    "bmm_softmax_mean": ("(lambda s: (torch.softmax(s, -1), s.mean(-1)))(torch.bmm(x, self.fc.weight.t()"
                         ".unsqueeze(0).expand(x.shape[0], -1, -1)))", 8, 12, 1, "2, 5, 8", "3, 4, 8", ["rowmatmul"]),
    # the row's length is an input's size (not a weight's): decided at run time, so today's plan
    "bmm_dynamic_n": ("torch.bmm(x, x.transpose(1, 2)).mean(-1)", 8, 5, 1, "2, 5, 8", "2, 6, 8", None),
    # a row wider than a tile may hold: today's tiled matmul and reduction kernel
    "too_wide": ("self.fc(x).sum(dim=1)", 8, 600, 1, "3, 8", "5, 8", None),
    # reduced along the rows, not the row: not row-owning
    "column_sum": ("torch.sigmoid(self.fc(x)).sum(dim=0)", 8, 12, 1, "6, 8", "4, 8", None),
}


def _run(source: str, name: str, sched: dict | None = None):
    import torch

    gen = BuiltinGenerator()
    task = task_from_source(source, name)
    cand = gen.generate(task, sched) if sched is not None else gen.initial(task, 1)[0]
    ns: dict = {"__name__": "kgen_rowmm_candidate"}
    exec(compile(cand.source, "<candidate>", "exec"), ns)
    ref_ns: dict = {"__name__": "kgen_rowmm_reference"}
    exec(compile(source, "<reference>", "exec"), ref_ns)
    torch.manual_seed(0)
    ref = ref_ns["Model"]()
    with torch.no_grad():
        for p in ("ln", "gn"):
            if not hasattr(ref, p):
                continue
            getattr(ref, p).weight.uniform_(0.5, 1.5)
            getattr(ref, p).bias.uniform_(-1, 1)
    new = ns["ModelNew"]()
    new.load_state_dict(ref.state_dict())
    return cand, ref, new


def _check(ref, new, shape: str) -> None:
    import torch

    x = torch.randn(*[int(s) for s in shape.split(",")]) * 2
    with torch.no_grad():
        want, got = ref(x), new(x)
    want = want if isinstance(want, tuple) else (want,)
    got = got if isinstance(got, tuple) else (got,)
    assert len(want) == len(got)
    for w, g in zip(want, got):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", sorted(CASES))
def test_row_reductions_of_a_matmul_run_on_its_tile(name):
    expr, k, n, groups, shape, other, kinds = CASES[name]
    source = TEMPLATE.format(expr=expr, k=k, n=n, groups=groups, shape=shape)
    cand, ref, new = _run(source, name)
    got = [g["kind"] for g in cand.params["groups"]]
    if kinds is None:
        assert "rowmatmul" not in got and "matmul" in got
    else:
        assert got == kinds and cand.params["kernels"] == len(kinds)
    assert cand.params["fallback_ops"] == []
    _check(ref, new, shape)
    _check(ref, new, other)


def test_without_row_fusion_the_plan_keeps_a_tiled_matmul():
    expr, k, n, groups, shape, other, _ = CASES["layernorm_gelu"]
    source = TEMPLATE.format(expr=expr, k=k, n=n, groups=groups, shape=shape)
    sched = schedule.normalise({"row_fusion": False})
    cand, ref, new = _run(source, "layernorm_gelu_off", sched)
    got = [g["kind"] for g in cand.params["groups"]]
    assert "rowmatmul" not in got and got[0] == "matmul"
    _check(ref, new, other)


def test_tile_knobs_stay_sane_for_wide_rows():
    """The whole padded row is the tile's width: BLOCK_M shrinks so the accumulator keeps to
    ROW_TILE elements, and the fitted schedule never spills by the target's rule."""
    from kgen.core.generate.builtin.emit.rowmatmul import ROW_TILE, blocks
    from kgen.core.generate.builtin.rowfuse import ROW_MAX_N

    for knob in schedule.CHOICES["matmul"]["BLOCK_M"]:
        sched = dict(schedule.DEFAULT["matmul"], BLOCK_M=knob, BLOCK_K=64)
        bm, bk, fit = blocks(sched, 4096, ROW_MAX_N, 4096, 4)
        assert 16 <= bm and bm * ROW_MAX_N <= max(ROW_TILE, 16 * ROW_MAX_N)
        assert schedule.fit_matmul(fit, bm, ROW_MAX_N, bk, 4)["BLOCK_K"] == bk


SIB_TEMPLATE = '''
import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.w1 = nn.Linear(12, 20, bias={bias})
        self.w3 = nn.Linear(12, 20, bias={bias})
        self.w2 = nn.Linear(20, 12, bias=False)

    def forward(self, x):
        return {expr}


def get_inputs():
    return [torch.randn(4, 12)]


def get_init_inputs():
    return []
'''

# name: (expression, bias, kernel kinds, matmuls in the first kernel)
SIBLINGS = {
    "swiglu": ("self.w2(F.silu(self.w1(x)) * self.w3(x))", False, ["matmul", "matmul"], 2),
    "geglu_biased": ("F.gelu(self.w1(x)) * self.w3(x)", True, ["matmul"], 2),
    # both products leave the kernel too
    "two_outputs": ("(self.w1(x), self.w3(x) * 2.0)", True, ["matmul"], 2),
    # another A operand: its own kernel
    "different_a": ("self.w1(x) * self.w3(x * 2.0)", False, ["matmul", "pointwise", "matmul"], 1),
}


@pytest.mark.parametrize("name", sorted(SIBLINGS))
def test_matmuls_of_one_a_operand_share_a_kernel(name):
    import torch

    expr, bias, kinds, first = SIBLINGS[name]
    source = SIB_TEMPLATE.format(expr=expr, bias=bias)
    cand, ref, new = _run_plain(source, name)
    assert [g["kind"] for g in cand.params["groups"]] == kinds
    assert [op for op in cand.params["groups"][0]["ops"] if op in ("aten.mm.default", "aten.addmm.default")] \
        == [cand.params["groups"][0]["ops"][0]] * first
    kernel = cand.source[cand.source.index("def k0_matmul"):]
    kernel = kernel[:kernel.index("@triton.jit") if "@triton.jit" in kernel else kernel.index("class ModelNew")]
    assert kernel.count("tl.dot(") == first and kernel.count("tl.load(a_ptrs") == 1
    for rows in (4, 7):
        x = torch.randn(rows, 12)
        with torch.no_grad():
            want, got = ref(x), new(x)
        for w, g in zip(want if isinstance(want, tuple) else (want,), got if isinstance(got, tuple) else (got,)):
            torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-4)


def _run_plain(source: str, name: str):
    import torch

    cand = BuiltinGenerator().initial(task_from_source(source, name), 1)[0]
    ns: dict = {"__name__": "kgen_sib_candidate"}
    exec(compile(cand.source, "<candidate>", "exec"), ns)
    ref_ns: dict = {"__name__": "kgen_sib_reference"}
    exec(compile(source, "<reference>", "exec"), ref_ns)
    torch.manual_seed(0)
    ref = ref_ns["Model"]()
    new = ns["ModelNew"]()
    new.load_state_dict(ref.state_dict())
    return cand, ref, new


PRO_TEMPLATE = '''
import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln = nn.LayerNorm({k})
        self.fc1 = nn.Linear({k}, 24)
        self.fc2 = nn.Linear(24, {k})

    def forward(self, x):
        return {expr}


def get_inputs():
    return [torch.randn({shape})]


def get_init_inputs():
    return []
'''

# name: (expression, K, input shape, other input shape, kernel kinds, whether the first matmul
# computes its A operand in a prologue)
PROLOGUES = {
    "prenorm_mlp": ("x + self.fc2(F.gelu(self.fc1(self.ln(x))))", 8, "2, 3, 8", "3, 5, 8", ["matmul", "matmul"], True),
    "rmsnorm_linear": ("self.fc1(x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.ln.weight)", 20,
                       "6, 20", "9, 20", ["matmul"], True),
    # the normalised value is read again by the residual: stored by a reduction kernel as before
    "normalised_read_twice": ("(lambda h: h + self.fc2(self.fc1(h)))(self.ln(x))", 8, "5, 8", "7, 8", None, False),
    # a row longer than one prologue tile: a reduction kernel before the matmul
    "long_row": ("self.fc1(self.ln(x))", 600, "3, 600", "4, 600", ["reduction", "matmul"], False),
}


def _prologue_ran(cand) -> bool:
    first = cand.params["groups"][0]
    return first["kind"] == "matmul" and any(op in first["ops"] for op in ("prims.var.default", "aten.mean.dim",
                                                                            "prims.sum.default", "aten.sum.dim_IntList"))


@pytest.mark.parametrize("name", sorted(PROLOGUES))
def test_a_row_prologue_runs_in_the_matmul(name):
    expr, k, shape, other, kinds, fused = PROLOGUES[name]
    source = PRO_TEMPLATE.format(expr=expr, k=k, shape=shape)
    cand, ref, new = _run(source, name)
    if kinds is not None:
        assert [g["kind"] for g in cand.params["groups"]] == kinds
    assert _prologue_ran(cand) is fused and cand.params["fallback_ops"] == []
    if fused:
        assert "ta = tl.load" not in cand.source.split("def k1_")[0]
    _check(ref, new, shape)
    _check(ref, new, other)


def test_without_row_fusion_a_prologue_keeps_its_kernel():
    expr, k, shape, other, _, _ = PROLOGUES["prenorm_mlp"]
    source = PRO_TEMPLATE.format(expr=expr, k=k, shape=shape)
    cand, ref, new = _run(source, "prenorm_off", schedule.normalise({"row_fusion": False}))
    assert not _prologue_ran(cand) and cand.params["groups"][0]["kind"] == "reduction"
    _check(ref, new, other)


TOPK_TEMPLATE = '''
import torch
import torch.nn as nn


class Model(nn.Module):
    def forward(self, x):
        kth = torch.topk(x, 3, dim=-1).values{view}
        return torch.where(x >= kth, x, torch.zeros_like(x))


def get_inputs():
    return [torch.randn(5, 10)]


def get_init_inputs():
    return []
'''


@pytest.mark.parametrize("view", ["[:, -1:]", "[..., 2:3]", "[:, 2:]"])
def test_a_top_k_threshold_read_through_whole_dim_slices_joins_the_sort(view):
    import torch

    source = TOPK_TEMPLATE.format(view=view)
    cand = BuiltinGenerator().initial(task_from_source(source, "topk_mask"), 1)[0]
    ns: dict = {"__name__": "kgen_topk_candidate"}
    exec(compile(cand.source, "<candidate>", "exec"), ns)
    ref_ns: dict = {"__name__": "kgen_topk_reference"}
    exec(compile(source, "<reference>", "exec"), ref_ns)
    assert [g["kind"] for g in cand.params["groups"]] == ["sort"]
    for rows in (5, 8):
        x = torch.randn(rows, 10)
        torch.testing.assert_close(ns["ModelNew"]()(x), ref_ns["Model"]()(x))
