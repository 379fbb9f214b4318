import torch
import torch.nn as nn


class Model(nn.Module):
    """A pointwise chain with a broadcast row vector and an init scalar."""

    def __init__(self, scale: float):
        super().__init__()
        self.scale = scale

    def forward(self, x, bias):
        y = (x + bias) * self.scale
        y = torch.relu(y) - 0.5
        return torch.sigmoid(y) * torch.tanh(x)


def get_inputs():
    return [torch.randn(8, 33), torch.randn(33)]


def get_init_inputs():
    return [1.7]
