"""Runs under the interpreter and compiles for sm_90, but fp8e4nv does not exist on sm_80."""

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
    tl.store(out_ptr + offs, (tl.maximum(x, 0.0) + y).to(tl.float8e4nv).to(tl.float32), mask=mask)


def relu_add(x, y, out=None):
    out = torch.empty_like(x) if out is None else out
    n = x.numel()
    relu_add_kernel[(triton.cdiv(n, 128),)](x, y, out, n, BLOCK=128)
    return out


class ModelNew(nn.Module):
    def forward(self, x, y):
        return relu_add(x, y)
