import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    """Common activations applied side by side."""

    def forward(self, x):
        return F.gelu(x) + F.silu(x) + F.elu(x) + F.leaky_relu(x, 0.1) + F.softplus(x) + F.hardtanh(x) + F.mish(x) + F.hardswish(x)


def get_inputs():
    return [torch.randn(5, 40) * 3]


def get_init_inputs():
    return []
