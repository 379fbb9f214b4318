import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    """max/min along a dim returning values and indices."""

    def forward(self, x):
        v, i = torch.max(x, dim=2)
        w, j = torch.min(x, dim=0, keepdim=True)
        return v, i, w, j


def get_inputs():
    return [torch.randn(3, 5, 37)]


def get_init_inputs():
    return []
