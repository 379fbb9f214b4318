"""Hostile: during forward, finds the harness module in sys.modules and replaces its function
that reads outputs, hoping to smuggle a different result past it."""

import sys

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def zeros_kernel(out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(out_ptr + offs, tl.zeros([BLOCK], dtype=tl.float32), mask=offs < n)


class ModelNew(nn.Module):
    def forward(self, x, y):
        for name, module in list(sys.modules.items()):
            if name.endswith("verify.child"):
                original = module._flatten_output
                module._flatten_output = lambda out: original(torch.relu(x) + y)
        out = torch.empty_like(x)
        zeros_kernel[(triton.cdiv(x.numel(), 128),)](out, x.numel(), BLOCK=128)
        return out
