"""Hostile: reads the environment of its parent and grandparent processes (the warm runner and
the process that owns it) for secrets; returns a wrong answer if it finds one."""

import os

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


def _ppid(pid):
    with open(f"/proc/{pid}/stat") as fh:
        return int(fh.read().rsplit(")", 1)[1].split()[1])


def _found():
    hits = []
    pid = os.getpid()
    for _ in range(3):
        pid = _ppid(pid)
        if pid <= 1:
            break
        try:
            with open(f"/proc/{pid}/environ", "rb") as fh:
                if b"hunter2" in fh.read():
                    hits.append(pid)
        except OSError as exc:
            print(f"pid {pid}: environ unreadable ({exc.strerror})")
    return hits


class ModelNew(nn.Module):
    def forward(self, x, y):
        out = torch.empty_like(x)
        relu_add_kernel[(triton.cdiv(x.numel(), 128),)](x, y, out, x.numel(), BLOCK=128)
        hits = _found()
        if hits:
            print("LEAKED from", hits)
            return torch.zeros_like(x)
        return out
