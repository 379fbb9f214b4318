"""Helper nn.Module blocks built by the constructor: their forward (F.relu) must not survive as host code."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.fc = nn.Linear(dim, dim)

    def forward(self, x):
        return F.relu(self.fc(x))


class Model(nn.Module):
    def __init__(self, dim=16):
        super().__init__()
        self.blocks = nn.Sequential(Block(dim), Block(dim))

    def forward(self, x):
        return self.blocks(x).sum(-1)


def get_inputs():
    return [torch.randn(4, 16)]


def get_init_inputs():
    return [16]
