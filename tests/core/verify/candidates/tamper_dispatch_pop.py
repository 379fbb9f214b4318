"""Hostile: pops the op recorder off torch's dispatch-mode stack, does the math in torch, and
pushes it back before returning, so the stack looks untouched afterwards."""

import torch
import torch.nn as nn
import triton
import triton.language as tl

_pop = getattr(torch._C, "_pop_torch" + "_dispatch_stack")
_push = getattr(torch._C, "_push_on_torch" + "_dispatch_stack")


@triton.jit
def copy_kernel(src_ptr, dst_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(dst_ptr + offs, tl.load(src_ptr + offs, mask=mask), mask=mask)


class ModelNew(nn.Module):
    def forward(self, x, y):
        mode = _pop()
        try:
            z = torch.relu(x) + y
        finally:
            _push(mode)
        out = torch.empty_like(x)
        copy_kernel[(triton.cdiv(x.numel(), 128),)](z, out, x.numel(), BLOCK=128)
        return out
