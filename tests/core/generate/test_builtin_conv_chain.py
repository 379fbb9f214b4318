"""A 1x1 conv fed by a cheap conv (depthwise-separable blocks) in one kernel
(convfuse.pointwise_conv, emit/conv_chain.py); any other pair keeps two kernels."""

from __future__ import annotations

import pytest

from kgen.core.bench.second import check_second
from kgen.core.generate.builtin import BuiltinGenerator
from kgen.core.task import task_from_source
from kgen.core.verify import verify

TEMPLATE = '''
import torch
import torch.nn as nn

batch_size = 2
size = {size}
SECOND = {{"batch_size": 3, "size": {second}}}


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = {first}
        self.b = {then}

    def forward(self, x):
        y = self.a(x)
        return {expr}


def get_inputs():
    return [torch.randn(batch_size, {cin}, *([size] * {rank}))]


def get_init_inputs():
    return []
'''

# (rank, input channels, first conv, second conv, expression, size, second size, kernels)
CASES = {
    "depthwise_separable_relu": (2, 4, "nn.Conv2d(4, 4, 3, padding=1, groups=4)", "nn.Conv2d(4, 6, 1)",
                                 "torch.relu(self.b(torch.relu(y))) * 2.0", 6, 8, 1),
    "depthwise_strided_1d_no_bias": (1, 3, "nn.Conv1d(3, 6, 3, stride=2, groups=3, bias=False)",
                                     "nn.Conv1d(6, 5, 1, bias=False)", "self.b(y)", 11, 14, 1),
    "grouped_first": (2, 6, "nn.Conv2d(6, 4, 3, groups=2)", "nn.Conv2d(4, 3, 1)", "self.b(torch.tanh(y))", 5, 7, 1),
    "depthwise_3d": (3, 2, "nn.Conv3d(2, 4, 2, groups=2)", "nn.Conv3d(4, 3, 1)", "self.b(y)", 4, 5, 1),
    # two kernels: a costly first conv, a strided or wider second conv, the first output read again
    "costly_first": (2, 8, "nn.Conv2d(8, 4, 3)", "nn.Conv2d(4, 3, 1)", "self.b(y)", 5, 7, 2),
    "strided_second": (2, 4, "nn.Conv2d(4, 4, 3, groups=4)", "nn.Conv2d(4, 3, 1, stride=2)", "self.b(y)", 6, 8, 2),
    "wide_second": (2, 4, "nn.Conv2d(4, 4, 3, groups=4)", "nn.Conv2d(4, 3, 3)", "self.b(y)", 6, 8, 2),
    "first_returned": (2, 4, "nn.Conv2d(4, 4, 3, groups=4)", "nn.Conv2d(4, 3, 1)", "(self.b(y), y)", 6, 8, 2),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_one_by_one_conv_after_a_cheap_conv_is_one_kernel(name):
    rank, cin, first, then, expr, size, second, kernels = CASES[name]
    source = TEMPLATE.format(rank=rank, cin=cin, first=first, then=then, expr=expr, size=size, second=second)
    cand = BuiltinGenerator().initial(task_from_source(source, name), 1)[0]
    assert cand.params["fallback_ops"] == []
    assert cand.params["kernels"] == kernels, cand.params["groups"]
    verdict = verify(task_from_source(source, name), cand.source, profile=False, trials=2)
    assert verdict.status == "correct", verdict.message
    assert check_second(source, cand.source, name=name) == "pass"
