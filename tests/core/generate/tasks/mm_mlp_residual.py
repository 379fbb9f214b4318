import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    """A two-layer MLP block with ReLU and a residual connection."""

    def __init__(self, d, h):
        super().__init__()
        self.up = nn.Linear(d, h)
        self.down = nn.Linear(h, d, bias=False)

    def forward(self, x):
        return x + self.down(torch.relu(self.up(x)))


def get_inputs():
    return [torch.randn(10, 32)]


def get_init_inputs():
    return [32, 48]
