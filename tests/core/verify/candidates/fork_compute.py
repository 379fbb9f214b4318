"""Hostile: forks during forward; the child (whose copy of the recorder is lost with it) does
the math in torch and writes the answer into shared memory."""

import os

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def copy_kernel(src_ptr, dst_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(dst_ptr + offs, tl.load(src_ptr + offs, mask=mask), mask=mask)


class ModelNew(nn.Module):
    def forward(self, x, y):
        z = torch.empty_like(x).share_memory_()
        pid = os.fork()
        if pid == 0:
            z.copy_(torch.relu(x) + y)
            os._exit(0)
        os.waitpid(pid, 0)
        out = torch.empty_like(x)
        copy_kernel[(triton.cdiv(x.numel(), 128),)](z, out, x.numel(), BLOCK=128)
        return out
