import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    """GroupNorm over channel groups."""

    def __init__(self, groups, c):
        super().__init__()
        self.gn = nn.GroupNorm(groups, c)

    def forward(self, x):
        return self.gn(x)


def get_inputs():
    return [torch.randn(2, 8, 4, 4)]


def get_init_inputs():
    return [2, 8]
