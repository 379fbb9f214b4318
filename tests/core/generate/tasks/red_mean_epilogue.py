import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    """Mean with a pointwise epilogue on the reduced values."""

    def forward(self, x):
        return torch.sigmoid(x.mean(dim=1) * 2.0 + 1.0)


def get_inputs():
    return [torch.randn(6, 300)]


def get_init_inputs():
    return []
