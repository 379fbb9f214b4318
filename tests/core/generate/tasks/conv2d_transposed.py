import torch
import torch.nn as nn


class Model(nn.Module):
    """Transposed conv2d with stride, padding, output padding and groups, then tanh."""

    def __init__(self):
        super().__init__()
        self.up = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2)

    def forward(self, x):
        return torch.tanh(self.up(x))


def get_inputs():
    return [torch.randn(2, 4, 5, 4)]


def get_init_inputs():
    return []
