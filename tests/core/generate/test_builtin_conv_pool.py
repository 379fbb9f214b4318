"""A pool whose windows do not overlap, after a conv and its epilogue, is the conv kernel's own
epilogue (convfuse.pool_epilogue, emit/conv.py): one launch, the conv output never in
memory; every other pool keeps its own kernel."""

from __future__ import annotations

import types

import pytest
import torch

from kgen.core.bench.second import check_second
from kgen.core.generate.builtin import BuiltinGenerator
from kgen.core.task import task_from_source
from kgen.core.verify import verify

TEMPLATE = '''
import torch
import torch.nn as nn
import torch.nn.functional as F

batch_size = 2
size = {size}
SECOND = {{"batch_size": 3, "size": {second}}}


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv{rank}d(3, 5, 3, padding={padding})

    def forward(self, x):
        y = self.conv(x)
        return {expr}


def get_inputs():
    return [torch.randn(batch_size, 3, *([size] * {rank}))]


def get_init_inputs():
    return []
'''

# (rank, expression, size, second size, conv padding, kernels)
CASES = {
    # odd sizes: floor mode drops the last conv row/column, which is never computed
    "conv2d_relu_maxpool_odd": (2, "F.max_pool2d(torch.relu(y), 2)", 7, 9, 1, 1),
    "conv3d_maxpool_then_epilogue": (3, "torch.sigmoid(F.max_pool3d(y * 2.0, 2)) + 1.0", 4, 6, 1, 1),
    "conv1d_avgpool3": (1, "F.avg_pool1d(torch.tanh(y), 3)", 11, 14, 0, 1),
    "conv2d_avgpool_rect_divisor": (2, "F.avg_pool2d(y, (2, 3), divisor_override=4)", 8, 10, 1, 1),
    "conv2d_maxpool_values_of_indices_call": (2, "F.max_pool2d(y, 2, return_indices=True)[0]", 6, 8, 1, 1),
    # not fused: overlapping windows, padding, the indices read, the conv output read elsewhere
    "overlapping_windows": (2, "F.max_pool2d(y, 3, stride=2)", 7, 9, 1, 2),
    "padded_pool": (2, "F.avg_pool2d(y, 2, padding=1)", 6, 8, 1, 2),
    "indices_returned": (2, "F.max_pool2d(y, 2, return_indices=True)", 6, 8, 1, 2),
    "conv_output_also_read": (2, "(F.max_pool2d(y, 2), torch.relu(y))", 6, 8, 1, 3),
}


def _source(name: str) -> str:
    rank, expr, size, second, padding, _ = CASES[name]
    return TEMPLATE.format(rank=rank, expr=expr, size=size, second=second, padding=padding)


@pytest.mark.parametrize("name", sorted(CASES))
def test_non_overlapping_pool_is_the_conv_epilogue(name):
    source = _source(name)
    cand = BuiltinGenerator().initial(task_from_source(source, name), 1)[0]
    assert cand.params["fallback_ops"] == []
    assert cand.params["kernels"] == CASES[name][-1], cand.params["groups"]
    if CASES[name][-1] == 1:
        assert [g["kind"] for g in cand.params["groups"]] == ["conv"]
    verdict = verify(task_from_source(source, name), cand.source, profile=False, trials=2)
    assert verdict.status == "correct", verdict.message
    assert check_second(source, cand.source, name=name) == "pass"


@pytest.mark.parametrize("source", [
    TEMPLATE.format(rank=2, expr="F.max_pool2d(torch.relu(y), 2)", size=7, second=9, padding=1),
    TEMPLATE.format(rank=2, expr="torch.amax(y, dim=(2, 3)) * 2.0", size=7, second=9,
                    padding=1),
], ids=["maxpool", "amax"])
def test_pooled_max_propagates_nan_and_infinities(source):
    cand = BuiltinGenerator().initial(task_from_source(source, "nan"), 1)[0]
    assert cand.params["kernels"] == 1
    ref_ns: dict = {"__name__": "kgen_pool_reference"}
    exec(compile(source, "<reference>", "exec"), ref_ns)
    mod = types.ModuleType("kgen_pool_candidate")
    exec(compile(cand.source, "<candidate>", "exec"), mod.__dict__)  # our own generated module
    torch.manual_seed(0)
    ref = ref_ns["Model"]()
    new = mod.ModelNew()
    new.load_state_dict(ref.state_dict())
    x = torch.randn(2, 3, 7, 7)
    x[0, 1, 2, 3] = float("nan")
    x[1, 0, 5, 5] = float("inf")
    with torch.no_grad():
        torch.testing.assert_close(new(x), ref(x), rtol=1e-4, atol=1e-4, equal_nan=True)


# a reduction over every spatial dim of the conv output (a global pool): (rank, expression, size,
# second size, conv padding, kernels)
REDUCTIONS = {
    "conv2d_hardswish_mean": (2, "F.hardswish(y).mean(dim=(2, 3))", 6, 9, 0, 1),
    "conv2d_sum_keepdim_then_epilogue": (2, "torch.sigmoid(torch.relu(y).sum(dim=(-2, -1), keepdim=True)) * 2.0",
                                         5, 7, 1, 1),
    "conv1d_amax": (1, "torch.amax(y * 3.0, dim=2)", 9, 12, 1, 1),
    "conv3d_amin": (3, "torch.amin(torch.tanh(y), dim=(2, 3, 4))", 4, 5, 1, 1),
    "conv2d_global_avgpool": (2, "F.adaptive_avg_pool2d(torch.relu(y), 1).flatten(1)", 6, 8, 1, 1),
    # not fused: over some spatial dims only, or the activation is returned too
    "partial_dims": (2, "y.mean(dim=3)", 6, 8, 1, 2),
    "activation_returned": (2, "(lambda a: (a, a.mean(dim=(2, 3))))(torch.relu(y))", 6, 8, 1, 2),
    # more pixels per image than a few row tiles: the conv keeps its parallelism (a second kernel)
    "long_image": (1, "y.mean(dim=2)", 300, 320, 1, 2),
}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_spatial_reduction_is_the_conv_epilogue(name):
    rank, expr, size, second, padding, kernels = REDUCTIONS[name]
    source = TEMPLATE.format(rank=rank, expr=expr, size=size, second=second, padding=padding)
    cand = BuiltinGenerator().initial(task_from_source(source, name), 1)[0]
    assert cand.params["fallback_ops"] == []
    assert cand.params["kernels"] == kernels, cand.params["groups"]
    verdict = verify(task_from_source(source, name), cand.source, profile=False, trials=2)
    assert verdict.status == "correct", verdict.message
    assert check_second(source, cand.source, name=name) == "pass"
