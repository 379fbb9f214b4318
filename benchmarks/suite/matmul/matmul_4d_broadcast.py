"""4-D tensor times a shared matrix: (B, H, M, K) @ (K, N) broadcasts over B and H."""

import torch
import torch.nn as nn


B = 8
H = 16
M = 256
K = 512
N = 256
# Shapes `kgen bench --small` uses (the CPU interpreter): it runs this file with
# globals().update(SMALL) appended, so get_inputs/get_init_inputs pick them up.
SMALL = {"B": 2, "H": 2, "M": 5, "K": 8, "N": 6}
# Another shape for `kgen bench` to run the same generated kernel at (applied after SMALL under
# --small): other batch/sequence/spatial sizes, same get_init_inputs().
SECOND = {"B": 3, "M": 7}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, a, b):
        return torch.matmul(a, b)


def get_inputs():
    return [torch.randn(B, H, M, K), torch.randn(K, N)]


def get_init_inputs():
    return []
