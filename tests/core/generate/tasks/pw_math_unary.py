import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    """Unary math: log, sqrt, rsqrt, erf, pow, abs, floor/ceil, reciprocal."""

    def forward(self, x):
        p = x.abs() + 0.5
        return torch.log(p) + torch.sqrt(p) - torch.rsqrt(p) + torch.erf(x) + p ** 1.5 + x ** 3 + torch.floor(x) * torch.ceil(x) + 1.0 / p


def get_inputs():
    return [torch.randn(3, 7, 9)]


def get_init_inputs():
    return []
