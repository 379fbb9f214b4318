import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    """cumprod along a row longer than one block."""

    def forward(self, x):
        return torch.cumprod(1.0 + 0.001 * x, dim=-1)


def get_inputs():
    return [torch.randn(3, 1500)]


def get_init_inputs():
    return []
