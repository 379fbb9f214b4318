import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    """matmul broadcasting a batch of matrices against a transposed weight."""

    def forward(self, x, w):
        return torch.matmul(x, w.t())


def get_inputs():
    return [torch.randn(2, 3, 9, 16), torch.randn(12, 16)]


def get_init_inputs():
    return []
