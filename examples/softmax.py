"""Row-wise softmax over the last dimension."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(x, dim=-1)


BATCH = 16
DIM = 256


def get_inputs():
    return [torch.randn(BATCH, DIM)]


def get_init_inputs():
    return []
