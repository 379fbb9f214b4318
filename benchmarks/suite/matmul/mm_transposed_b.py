"""C = A @ B.T with B stored (N, K), as nn.Linear stores weights."""

import torch
import torch.nn as nn


M = 2048
K = 4096
N = 3072
# Shapes `kgen bench --small` uses (the CPU interpreter): it runs this file with
# globals().update(SMALL) appended, so get_inputs/get_init_inputs pick them up.
SMALL = {"M": 12, "K": 20, "N": 16}
# Another shape for `kgen bench` to run the same generated kernel at (applied after SMALL under
# --small): other batch/sequence/spatial sizes, same get_init_inputs().
SECOND = {"M": 14}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, a, b):
        return torch.matmul(a, b.T)


def get_inputs():
    return [torch.randn(M, K), torch.randn(N, K)]


def get_init_inputs():
    return []
