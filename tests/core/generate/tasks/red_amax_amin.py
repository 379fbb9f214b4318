import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    """amax/amin over the middle dim and the range between them."""

    def forward(self, x):
        hi = torch.amax(x, dim=1)
        lo = torch.amin(x, dim=1)
        return hi - lo


def get_inputs():
    return [torch.randn(4, 50, 3)]


def get_init_inputs():
    return []
