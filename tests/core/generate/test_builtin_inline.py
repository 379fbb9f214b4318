"""Parameter-only pointwise chains (inline.py): computed inside the kernels that read them
broadcast, never in a launch of their own, and never when something needs them in memory."""

from __future__ import annotations

import pytest

from kgen.core.bench.second import check_second
from kgen.core.generate.builtin import BuiltinGenerator
from kgen.core.task import task_from_source
from kgen.core.verify import verify

TEMPLATE = '''
import torch
import torch.nn as nn
import torch.nn.functional as F

batch_size = 2
h = 5
w = 4
SECOND = {{"batch_size": 3, "h": 7, "w": 6}}


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.bn.eval()
        self.scale = nn.Parameter(torch.rand(4) + 0.5)
        self.register_buffer("shift", torch.randn(4, 1, 1))
        with torch.no_grad():
            self.bn.running_var.uniform_(0.5, 2.0)
            self.bn.running_mean.uniform_(-1.0, 1.0)

    def forward(self, x):
        bn = self.bn
        return {expr}


def get_inputs():
    return [torch.randn(batch_size, 3, h, w)]


def get_init_inputs():
    return []
'''

# (expression, kernels): what stays a kernel of its own is what something needs in memory
CASES = {
    # eval batch norm's rsqrt(running_var + eps) over the channels: the conv's epilogue computes it
    "conv_batchnorm_relu": ("torch.relu(F.batch_norm(self.conv(x), bn.running_mean, bn.running_var, bn.weight, "
                            "bn.bias, training=False))", 1),
    # a chain through views (unsqueeze, reshape) and a constant, read by a pointwise kernel
    "view_chain": ("x * torch.sigmoid(self.scale * 2.0 + 1.0).view(1, 3 + 1, 1, 1)[:, :3] "
                   "+ torch.exp(self.shift[:3]).reshape(1, 3, 1, 1)", 1),
    # the chain's value is an output too: it is stored once by its own kernel
    "also_returned": ("(lambda s: (self.conv(x) * s.view(1, 4, 1, 1), s))(torch.rsqrt(bn.running_var + 1e-5))", 2),
    # read at its own size too, by a reduction's prologue: computed once there and stored
    "same_size_reader": ("(lambda s: self.conv(x) * s.view(1, 4, 1, 1) + (s * self.scale).sum())"
                         "(torch.exp(self.scale))", 4),
}


def _generate(source: str):
    return BuiltinGenerator().initial(task_from_source(source, "t"), 1)[0]


@pytest.mark.parametrize("name", sorted(CASES))
def test_parameter_chains_are_computed_by_their_readers(name):
    expr, kernels = CASES[name]
    source = TEMPLATE.format(expr=expr)
    cand = _generate(source)
    assert cand.params["fallback_ops"] == []
    assert cand.params["kernels"] == kernels, cand.params["groups"]
    verdict = verify(task_from_source(source, name), cand.source, profile=False, trials=2)
    assert verdict.status == "correct", verdict.message
    assert check_second(source, cand.source, name=name) == "pass"


def test_a_chain_feeding_a_matmul_or_a_reduction_stays_in_memory():
    # a matmul operand and a reduction input are read by the kernel's own loads, never inlined
    expr = ("(self.conv(x).permute(0, 2, 3, 1) @ (self.scale.view(4, 1) * 2.0).expand(4, 4)).sum(-1) "
            "+ torch.tanh(self.scale).sum()")
    source = TEMPLATE.format(expr=expr)
    cand = _generate(source)
    ops = [op for g in cand.params["groups"] for op in g["ops"]]
    assert "aten.mul.Tensor" in ops and "aten.tanh.default" in ops, cand.params["groups"]
    verdict = verify(task_from_source(source, "matmul_operand"), cand.source, profile=False, trials=1)
    assert verdict.status == "correct", verdict.message
