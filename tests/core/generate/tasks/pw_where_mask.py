import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    """Masking with comparisons, logical ops and a float->int cast."""

    def __init__(self, threshold):
        super().__init__()
        self.threshold = threshold

    def forward(self, x, y):
        keep = (x > self.threshold) & (y < 0.5)
        z = torch.where(keep, x * y, torch.zeros_like(x))
        return z, keep, (x * 4).to(torch.int32)


def get_inputs():
    return [torch.randn(10, 11), torch.rand(10, 11)]


def get_init_inputs():
    return [0.1]
