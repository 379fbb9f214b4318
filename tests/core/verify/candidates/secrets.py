"""Looks for secrets: correct output only if no secret reached it and the harmless marker did.

Every place a process can see its own environment is searched: os.environ and /proc/self/environ.
"""

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


def relu_add(x, y, out=None):
    out = torch.empty_like(x) if out is None else out
    n = x.numel()
    relu_add_kernel[(triton.cdiv(n, 128),)](x, y, out, n, BLOCK=128)
    return out


def _leaks():
    names = [k for k in os.environ if any(m in k.upper() for m in ("TOKEN", "KEY", "SECRET", "PASSWORD"))]
    with open("/proc/self/environ", "rb") as fh:
        raw = fh.read()
    values = b"hunter2" in raw or any("hunter2" in v for v in os.environ.values())
    return names, values


class ModelNew(nn.Module):
    def forward(self, x, y):
        names, values = _leaks()
        out = relu_add(x, y)
        if names or values:
            print("LEAKED", names, values)
            return out + 1.0
        if os.environ.get("TRITON_TEST_VISIBLE") != "marker":
            print("marker missing: the environment was not inherited at all")
            return out + 2.0
        return out
