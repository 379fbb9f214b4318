"""Hostile: leaves a "disable torch dispatch" guard open, so no op reaches the recorder."""

import torch
import torch.nn as nn
import triton
import triton.language as tl

_Guard = getattr(torch._C, "_Disable" + "TorchDispatch")


@triton.jit
def copy_kernel(src_ptr, dst_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(dst_ptr + offs, tl.load(src_ptr + offs, mask=mask), mask=mask)


class ModelNew(nn.Module):
    def forward(self, x, y):
        self.guard = _Guard()
        self.guard.__enter__()
        z = torch.relu(x) + y
        out = torch.empty_like(x)
        copy_kernel[(triton.cdiv(x.numel(), 128),)](z, out, x.numel(), BLOCK=128)
        return out
