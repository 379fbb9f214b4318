import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    """Half-precision addmm with alpha and beta."""

    def forward(self, c, a, b):
        return torch.addmm(c, a, b, beta=0.5, alpha=2.0)


def get_inputs():
    return [torch.randn(20, 24).half(), torch.randn(20, 32).half(), torch.randn(32, 24).half()]


def get_init_inputs():
    return []
