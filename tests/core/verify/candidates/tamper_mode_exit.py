"""Hostile: finds the active dispatch mode through a module it imports by a computed name,
exits it through the base class (bypassing any override), does the math in torch, and enters
it again before returning."""

import importlib

import torch
import torch.nn as nn
import triton
import triton.language as tl

_dispatch = importlib.import_module("torch.utils." + "_python" + "_dispatch")


@triton.jit
def copy_kernel(src_ptr, dst_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(dst_ptr + offs, tl.load(src_ptr + offs, mask=mask), mask=mask)


class ModelNew(nn.Module):
    def forward(self, x, y):
        mode = _dispatch._get_current_dispatch_mode()
        _dispatch.TorchDispatchMode.__exit__(mode, None, None, None)
        z = torch.relu(x) + y
        _dispatch.TorchDispatchMode.__enter__(mode)
        out = torch.empty_like(x)
        copy_kernel[(triton.cdiv(x.numel(), 128),)](z, out, x.numel(), BLOCK=128)
        return out
