"""Test task: relu(x) + y on a small vector (cheap under the Triton interpreter)."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x, y):
        return torch.relu(x) + y


def get_inputs():
    return [torch.randn(300), torch.randn(300)]


def get_init_inputs():
    return []
