"""Causal attention written out: scores, triangular mask, softmax, weighted sum."""

import torch
import torch.nn as nn


batch_size = 16
heads = 16
seq = 1024
head_dim = 64
# Shapes `kgen bench --small` uses (the CPU interpreter): it runs this file with
# globals().update(SMALL) appended, so get_inputs/get_init_inputs pick them up.
SMALL = {"batch_size": 2, "heads": 2, "seq": 7, "head_dim": 4}
# Another shape for `kgen bench` to run the same generated kernel at (applied after SMALL under
# --small): other batch/sequence/spatial sizes, same get_init_inputs().
SECOND = {"batch_size": 3}


class Model(nn.Module):
    def __init__(self, seq):
        super().__init__()
        self.register_buffer("mask", torch.tril(torch.ones(seq, seq, dtype=torch.bool)))

    def forward(self, q, k, v):
        scores = torch.matmul(q, k.transpose(-2, -1)) / (q.shape[-1] ** 0.5)
        scores = scores.masked_fill(~self.mask, float("-inf"))
        return torch.matmul(torch.softmax(scores, dim=-1), v)


def get_inputs():
    return [torch.randn(batch_size, heads, seq, head_dim), torch.randn(batch_size, heads, seq, head_dim), torch.randn(batch_size, heads, seq, head_dim)]


def get_init_inputs():
    return [seq]
