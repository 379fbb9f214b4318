"""Hostile: element by element in Python (float(x[i]) reads, out[i] = v writes), plus a kernel."""

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
        z = torch.empty_like(x)
        for i in range(x.numel()):
            z[i] = max(float(x[i]), 0.0) + y[i].item()
        out = torch.empty_like(x)
        copy_kernel[(triton.cdiv(x.numel(), 128),)](z, out, x.numel(), BLOCK=128)
        return out
