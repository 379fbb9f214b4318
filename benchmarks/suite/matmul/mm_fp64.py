"""Double-precision matmul (fp64 inputs and output)."""

import torch
import torch.nn as nn


N = 2048
# Shapes `kgen bench --small` uses (the CPU interpreter): it runs this file with
# globals().update(SMALL) appended, so get_inputs/get_init_inputs pick them up.
SMALL = {"N": 24}
# Another shape for `kgen bench` to run the same generated kernel at (applied after SMALL under
# --small): other batch/sequence/spatial sizes, same get_init_inputs().
SECOND = {"N": 28}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, a, b):
        return torch.matmul(a, b)


def get_inputs():
    return [torch.randn(N, N, dtype=torch.float64), torch.randn(N, N, dtype=torch.float64)]


def get_init_inputs():
    return []
