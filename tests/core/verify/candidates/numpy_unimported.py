"""Hostile: NumPy math without an import statement (numpy is found through sys.modules)."""

import sys

import torch
import torch.nn as nn
import triton
import triton.language as tl

_np = sys.modules["num" + "py"]


@triton.jit
def copy_kernel(src_ptr, dst_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(dst_ptr + offs, tl.load(src_ptr + offs, mask=mask), mask=mask)


class ModelNew(nn.Module):
    def forward(self, x, y):
        out = torch.empty_like(x)
        host = out.numpy()  # a view of out's memory: writing it writes the result
        host[:] = _np.maximum(_np.array(x), 0.0) + _np.array(y)
        copy_kernel[(triton.cdiv(x.numel(), 128),)](out, out, x.numel(), BLOCK=128)
        return out
