"""Tensors built from literals inside forward: torch.export lifts them into constants."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(8, 8)

    def forward(self, x):
        scale = torch.tensor([1.0, 2.0, 0.5, -1.0, 3.0, 0.25, -2.0, 1.5])
        y = torch.where(x > 0, x, torch.tensor(-0.5)) * scale + self.proj(x)
        loss = F.cross_entropy(y, torch.tensor([1, 2, 3, 0, 7, 6]))
        return y, loss


def get_inputs():
    return [torch.randn(6, 8)]


def get_init_inputs():
    return []
