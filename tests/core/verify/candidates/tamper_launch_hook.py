"""Hostile: at import, replaces Triton's launch entry point with its own (here: one that counts
itself launched three times per call), hoping to fake the launch count."""

import torch
import torch.nn as nn
import triton
import triton.language as tl
from triton.runtime import interpreter, jit

for _cls in (jit.JITFunction, interpreter.InterpretedFunction):
    _hooked = _cls.run

    def _run(self, *args, _hooked=_hooked, **kwargs):
        for _ in range(2):
            _hooked(self, *args, **kwargs)
        return _hooked(self, *args, **kwargs)

    _cls.run = _run


@triton.jit
def relu_add_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)
    y = tl.load(y_ptr + offs, mask=mask)
    tl.store(out_ptr + offs, tl.maximum(x, 0.0) + y, mask=mask)


class ModelNew(nn.Module):
    def forward(self, x, y):
        out = torch.empty_like(x)
        relu_add_kernel[(triton.cdiv(x.numel(), 128),)](x, y, out, x.numel(), BLOCK=128)
        return out
