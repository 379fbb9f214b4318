"""Module-level imports of every kind: the constructor needs math, forward needs F, get_inputs numpy."""

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

SCALE_DIM = 64


def _helper_for_forward(x):
    return F.gelu(x)


class Model(nn.Module):
    def __init__(self, dim: int = SCALE_DIM):
        super().__init__()
        self.scale = 1.0 / math.sqrt(dim)

    def forward(self, x):
        return _helper_for_forward(x) * self.scale + F.relu(x)


def get_inputs():
    return [torch.from_numpy(np.linspace(-3.0, 3.0, 8 * 64, dtype=np.float32).reshape(8, 64)).clone()]


def get_init_inputs():
    return [64]
