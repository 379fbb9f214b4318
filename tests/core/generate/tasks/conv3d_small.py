import torch
import torch.nn as nn


class Model(nn.Module):
    """A small conv3d with padding, then a channel-wise scale from a parameter."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(2, 4, 3, padding=1)
        self.scale = nn.Parameter(torch.randn(4, 1, 1, 1))

    def forward(self, x):
        return self.conv(x) * self.scale


def get_inputs():
    return [torch.randn(1, 2, 4, 5, 3)]


def get_init_inputs():
    return []
