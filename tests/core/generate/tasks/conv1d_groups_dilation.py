import torch
import torch.nn as nn


class Model(nn.Module):
    """Grouped, dilated conv1d without bias, followed by a residual-style add."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(4, 6, 3, dilation=2, padding=2, groups=2, bias=False)

    def forward(self, x, r):
        return self.conv(x) + r


def get_inputs():
    return [torch.randn(3, 4, 20), torch.randn(3, 6, 20)]


def get_init_inputs():
    return []
