import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    """Max pooling with padding/stride/dilation (values and indices), average pooling with and
    without padded counts, ceil_mode, and a fused epilogue."""

    def forward(self, x):
        v, i = F.max_pool2d(x, 3, stride=2, padding=1, dilation=1, return_indices=True)
        a = F.avg_pool2d(x, 3, stride=2, padding=1) * 2.0
        b = F.avg_pool2d(x, 2, stride=2, padding=1, count_include_pad=False, ceil_mode=True)
        m = F.max_pool2d(x, 2, stride=1, dilation=2, ceil_mode=True)
        return torch.relu(v), i, a, b, m


def get_inputs():
    return [torch.randn(2, 3, 9, 7)]


def get_init_inputs():
    return []
