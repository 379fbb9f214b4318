"""Group norm in one kernel: each program owns one (sample, group) row, all its channels and
positions; the per-channel scale and shift (rstd times the weight, seen through the view that
split the channels into groups) are evaluated in the row tile and applied there, so the input is
read by one kernel and the output written once. Any spatial rank, one channel per group or one
group, ops before and after, rows longer than a block (sweeps, still one kernel), other batch and
spatial sizes than traced; and a scale also needed outside is kept in memory, correctly."""

from __future__ import annotations

import types

import pytest
import torch

from kgen.core.generate.builtin import BuiltinGenerator
from kgen.core.task import task_from_source

GN = '''
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.gn = nn.GroupNorm({groups}, {channels})

    def forward(self, x):
        return {body}


def get_inputs():
    return [torch.randn({shape})]


def get_init_inputs():
    return []
'''

CASES = {
    # (groups, channels, traced shape, body, other shapes)
    "plain_2d": (4, 8, (2, 8, 3, 5), "self.gn(x)", [(3, 8, 4, 2)]),
    "spatial_1d": (3, 12, (2, 12, 5), "self.gn(x)", [(4, 12, 7)]),
    "spatial_3d_ops_around": (2, 6, (2, 6, 2, 3, 4), "torch.relu(self.gn(x * 2.0 + 1.0)) * 3.0",
                              [(3, 6, 3, 2, 5)]),
    "one_channel_per_group": (6, 6, (2, 6, 3, 3), "self.gn(x)", [(3, 6, 2, 5)]),
    "one_group": (1, 4, (2, 4, 6), "torch.sigmoid(self.gn(x))", [(3, 4, 5)]),
    # a row of 2 x 300 elements does not fit one block: statistics and apply are sweeps
    "long_rows": (2, 4, (2, 4, 15, 20), "self.gn(x)", [(3, 4, 16, 21)]),
}


def _module(source: str):
    mod = types.ModuleType("kgen_generated")
    exec(compile(source, "<generated>", "exec"), mod.__dict__)  # our own generated module
    return mod


def _check(source: str, shapes: list, model_args=()):
    cand = BuiltinGenerator().initial(task_from_source(source, "gn"), 1)[0]
    ref, gen = _module(source), _module(cand.source)
    torch.manual_seed(0)
    want_model = ref.Model(*model_args)
    with torch.no_grad():
        for p in want_model.parameters():
            p.copy_(torch.randn_like(p))
    got_model = gen.ModelNew(*model_args)
    got_model.load_state_dict(want_model.state_dict())
    for shape in shapes:
        x = torch.randn(shape)
        want, got = want_model(x), got_model(x)
        for w, g in zip(want if isinstance(want, tuple) else [want], got if isinstance(got, tuple) else [got]):
            torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-4)
    return cand


@pytest.mark.parametrize("name", sorted(CASES))
def test_group_norm_is_one_kernel(name):
    groups, channels, shape, body, others = CASES[name]
    source = GN.format(groups=groups, channels=channels, shape=shape, body=body)
    cand = _check(source, [shape] + others)
    assert [g["kind"] for g in cand.params["groups"]] == ["reduction"], cand.params["groups"]
    assert cand.params["kernels"] == 1 and cand.params["fallback_ops"] == []


SCALE_OUT = '''
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(6))

    def forward(self, x):
        n, c, l = x.shape
        g = x.reshape(n, 3, 2, l)
        mean = g.mean(dim=(2, 3), keepdim=True)
        rstd = torch.rsqrt(g.var(dim=(2, 3), keepdim=True, unbiased=False) + 1e-5)
        scale = rstd * self.weight.reshape(1, 3, 2, 1)
        y = ((g - mean) * scale).reshape(n, c, l)
        return y, scale * 2.0


def get_inputs():
    return [torch.randn(2, 6, 5)]


def get_init_inputs():
    return []
'''


def test_a_per_channel_value_needed_outside_is_stored_not_broadcast():
    cand = _check(SCALE_OUT, [(2, 6, 5), (3, 6, 4)])
    assert cand.params["kernels"] <= 4 and cand.params["fallback_ops"] == []


LINEAR_GN = '''
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 520)
        self.gn = nn.GroupNorm(4, 520)

    def forward(self, x):
        y = self.gn(self.fc(x))
        return y * torch.sigmoid(y)


def get_inputs():
    return [torch.randn(5, 6)]


def get_init_inputs():
    return []
'''


def test_group_norm_after_a_matmul_is_one_more_kernel():
    """Group norm of a linear layer's [B, F] output (no spatial dims: each group's channels are
    its whole row), rows wider than a row-owning matmul takes (rowfuse.ROW_MAX_N; narrower ones
    are one rowmatmul kernel, test_builtin_rowmatmul.py): the matmul, then one kernel for
    statistics, scale, shift and swish."""
    cand = _check(LINEAR_GN, [(5, 6), (7, 6)])
    assert [g["kind"] for g in cand.params["groups"]] == ["matmul", "reduction"], cand.params["groups"]
