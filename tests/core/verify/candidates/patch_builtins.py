"""Hostile: patches builtins and math in its own process so every closeness test says "equal",
then returns zeros."""

import builtins
import math

import torch
import torch.nn as nn
import triton
import triton.language as tl

builtins.abs = lambda v: 0.0 * v
builtins.all = lambda it: True
math.isclose = lambda *a, **k: True
math.isnan = lambda v: False
torch.allclose = lambda *a, **k: True
torch.testing.assert_close = lambda *a, **k: None


@triton.jit
def zeros_kernel(out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(out_ptr + offs, tl.zeros([BLOCK], dtype=tl.float32), mask=offs < n)


class ModelNew(nn.Module):
    def forward(self, x, y):
        out = torch.empty_like(x)
        zeros_kernel[(triton.cdiv(x.numel(), 128),)](out, x.numel(), BLOCK=128)
        return out
