"""Hostile: pure-Python math over x.tolist(), brought back with torch.tensor, plus a copy kernel."""

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def copy_kernel(src_ptr, dst_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(dst_ptr + offs, tl.load(src_ptr + offs, mask=mask), mask=mask)


class ModelNew(nn.Module):
    def forward(self, x, y):
        z = torch.tensor([max(a, 0.0) + b for a, b in zip(x.tolist(), y.tolist())], dtype=x.dtype)
        out = torch.empty_like(x)
        copy_kernel[(triton.cdiv(x.numel(), 128),)](z, out, x.numel(), BLOCK=128)
        return out
