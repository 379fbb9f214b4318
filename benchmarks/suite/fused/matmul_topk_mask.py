"""Scores by matmul, keep each row's top-4 (sorting stays a torch fallback), zero the rest."""

import torch
import torch.nn as nn


batch_size = 4096
dim = 256
experts = 64
# Shapes `kgen bench --small` uses (the CPU interpreter): it runs this file with
# globals().update(SMALL) appended, so get_inputs/get_init_inputs pick them up.
SMALL = {"batch_size": 6, "dim": 8, "experts": 12}
# Another shape for `kgen bench` to run the same generated kernel at (applied after SMALL under
# --small): other batch/sequence/spatial sizes, same get_init_inputs().
SECOND = {"batch_size": 7}


class Model(nn.Module):
    def __init__(self, dim, experts):
        super().__init__()
        self.gate = nn.Linear(dim, experts, bias=False)

    def forward(self, x):
        scores = torch.softmax(self.gate(x), dim=-1)
        kth = torch.topk(scores, 4, dim=-1).values[:, -1:]
        return torch.where(scores >= kth, scores, torch.zeros_like(scores))


def get_inputs():
    return [torch.randn(batch_size, dim)]


def get_init_inputs():
    return [dim, experts]
