"""Honest, two launches: the first kernel calls a @triton.jit helper and a reduction. Under the interpreter a
nested jit call leaves triton.language patched after the launch; compiling the second kernel for
a GPU target afterwards must still see the real language."""

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def _relu(x):
    return tl.maximum(x, 0.0)


@triton.jit
def relu_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask, other=0.0)
    # tl.sum's combine function is itself a jit function: an interpreted nested call.
    tl.store(out_ptr + offs, _relu(x) + 0.0 * tl.sum(x, 0), mask=mask)


@triton.jit
def add_kernel(a_ptr, b_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(out_ptr + offs, tl.load(a_ptr + offs, mask=mask) + tl.load(b_ptr + offs, mask=mask), mask=mask)


class ModelNew(nn.Module):
    def forward(self, x, y):
        n = x.numel()
        tmp = torch.empty_like(x)
        out = torch.empty_like(x)
        relu_kernel[(triton.cdiv(n, 128),)](x, tmp, n, BLOCK=128)
        add_kernel[(triton.cdiv(n, 256),)](tmp, y, out, n, BLOCK=256)
        return out
