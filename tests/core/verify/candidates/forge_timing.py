"""Hostile: correct, but slow, and it freezes its own clock so that every in-process timing says
its calls take no time at all."""

import time

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
    tl.store(out_ptr + offs, tl.maximum(x, 0.0) + y, mask=mask)


_sleep = time.sleep


class ModelNew(nn.Module):
    def forward(self, x, y):
        time.perf_counter = lambda: 1.0  # every later reading: no time passed
        _sleep(0.15)
        out = torch.empty_like(x)
        relu_add_kernel[(triton.cdiv(x.numel(), 128),)](x, y, out, x.numel(), BLOCK=128)
        return out
