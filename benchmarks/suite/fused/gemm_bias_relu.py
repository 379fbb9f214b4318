"""Matmul with a bias add and ReLU epilogue (explicit weights)."""

import torch
import torch.nn as nn


batch_size = 2048
in_features = 4096
out_features = 4096
# Shapes `kgen bench --small` uses (the CPU interpreter): it runs this file with
# globals().update(SMALL) appended, so get_inputs/get_init_inputs pick them up.
SMALL = {"batch_size": 7, "in_features": 18, "out_features": 10}
# Another shape for `kgen bench` to run the same generated kernel at (applied after SMALL under
# --small): other batch/sequence/spatial sizes, same get_init_inputs().
SECOND = {"batch_size": 8}


class Model(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(in_features, out_features) / in_features ** 0.5)
        self.bias = nn.Parameter(torch.randn(out_features))

    def forward(self, x):
        return torch.relu(x @ self.weight + self.bias)


def get_inputs():
    return [torch.randn(batch_size, in_features)]


def get_init_inputs():
    return [in_features, out_features]
