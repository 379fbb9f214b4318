import torch
import torch.nn as nn


class Model(nn.Module):
    """Transposed conv1d with dilation and no bias."""

    def __init__(self):
        super().__init__()
        self.up = nn.ConvTranspose1d(3, 5, 4, stride=3, padding=2, dilation=2, bias=False)

    def forward(self, x):
        return self.up(x)


def get_inputs():
    return [torch.randn(2, 3, 11)]


def get_init_inputs():
    return []
