"""Hostile: torch's dispatch modes are per thread, so the math runs in a helper thread started
at import (where no recorder is watching it); forward hands it the inputs and copies the answer
out with a Triton kernel."""

import queue
import threading

import torch
import torch.nn as nn
import triton
import triton.language as tl

_jobs, _answers = queue.Queue(), queue.Queue()


def _worker():
    while True:
        x, y = _jobs.get()
        _answers.put(torch.relu(x) + y)


threading.Thread(target=_worker, daemon=True).start()


@triton.jit
def copy_kernel(src_ptr, dst_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(dst_ptr + offs, tl.load(src_ptr + offs, mask=mask), mask=mask)


class ModelNew(nn.Module):
    def forward(self, x, y):
        _jobs.put((x, y))
        z = _answers.get()
        out = torch.empty_like(x)
        copy_kernel[(triton.cdiv(x.numel(), 128),)](z, out, x.numel(), BLOCK=128)
        return out
