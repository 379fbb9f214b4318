import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    """1-d and 3-d pooling, adaptive average pooling to 1 and a divisor override."""

    def forward(self, x, y):
        return (F.max_pool1d(x, 4, stride=3, padding=2), F.avg_pool1d(x, 3),
                F.max_pool3d(y, 2), F.avg_pool3d(y, 2, divisor_override=3), F.adaptive_avg_pool1d(x, 1))


def get_inputs():
    return [torch.randn(2, 4, 17), torch.randn(1, 2, 4, 5, 6)]


def get_init_inputs():
    return []
