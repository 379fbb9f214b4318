"""Correct, but one warp holding 4096 elements and three scans: it spills registers on sm_80."""

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def relu_add_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)
    y = tl.load(y_ptr + offs, mask=mask)
    s = tl.cumsum(x, 0) * tl.cumsum(y * x, 0) + tl.cumsum(y, 0)
    tl.store(out_ptr + offs, tl.maximum(x, 0.0) + y + s * 0.0, mask=mask)


def relu_add(x, y, out=None):
    out = torch.empty_like(x) if out is None else out
    n = x.numel()
    relu_add_kernel[(1,)](x, y, out, n, BLOCK=4096, num_warps=1)
    return out


class ModelNew(nn.Module):
    def forward(self, x, y):
        return relu_add(x, y)
