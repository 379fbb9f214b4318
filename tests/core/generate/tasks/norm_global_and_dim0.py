import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    """Reductions over all dims and over dim 0, broadcast back against the input."""

    def forward(self, x):
        c = x - x.mean()
        s = x / x.sum(dim=0, keepdim=True)
        return c, s, torch.softmax(x, dim=0), x.max()


def get_inputs():
    return [torch.rand(6, 9) + 0.5]


def get_init_inputs():
    return []
