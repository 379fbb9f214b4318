"""Hostile: tuned to the known trial seeds. At import (no recorder running) it regenerates the
inputs the task makes for the fixed seeds and precomputes the answers; forward looks the answer
up by one scalar read and copies it out with a Triton kernel. Only a fresh seed exposes it."""

import torch
import torch.nn as nn
import triton
import triton.language as tl

_ANSWERS = {}
for _seed in (1000 + 7919 * i for i in range(8)):
    torch.manual_seed(_seed)
    _x, _y = torch.randn(300), torch.randn(300)
    _ANSWERS[round(float(_x[0]), 6)] = torch.relu(_x) + _y


@triton.jit
def copy_kernel(src_ptr, dst_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(dst_ptr + offs, tl.load(src_ptr + offs, mask=mask), mask=mask)


class ModelNew(nn.Module):
    def forward(self, x, y):
        answer = _ANSWERS.get(round(float(x[0]), 6))
        if answer is None:
            answer = torch.zeros_like(x)
        out = torch.empty_like(x)
        copy_kernel[(triton.cdiv(x.numel(), 128),)](answer, out, x.numel(), BLOCK=128)
        return out
