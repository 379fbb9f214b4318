"""Hostile: the math is torch; a Triton copy kernel launches only to look busy."""

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
        z = torch.relu(x) + y
        out = torch.empty_like(z)
        copy_kernel[(triton.cdiv(z.numel(), 128),)](z, out, z.numel(), BLOCK=128)
        return out
