import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    """Linear + bias + GELU, on a 3-d input."""

    def __init__(self, i, o):
        super().__init__()
        self.fc = nn.Linear(i, o)

    def forward(self, x):
        return F.gelu(self.fc(x))


def get_inputs():
    return [torch.randn(2, 5, 24)]


def get_init_inputs():
    return [24, 40]
