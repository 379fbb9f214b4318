"""Hostile, CPU only: under the Triton interpreter a kernel body is plain Python, so this one
calls torch on tensors it stashed in a global. (On a GPU it would not even compile.)"""

import torch
import torch.nn as nn
import triton
import triton.language as tl

_STASH = {}


@triton.jit
def cheat_kernel(out_ptr, n, BLOCK: tl.constexpr):
    _STASH["out"].copy_(torch.relu(_STASH["x"]) + _STASH["y"])


class ModelNew(nn.Module):
    def forward(self, x, y):
        out = torch.empty_like(x)
        _STASH.update(x=x, y=y, out=out)
        cheat_kernel[(1,)](out, x.numel(), BLOCK=128)
        return out
