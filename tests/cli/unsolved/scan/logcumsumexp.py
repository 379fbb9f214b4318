"""A task the builtin generator cannot lower yet (logcumsumexp stays a torch fallback, and a
forward made only of fallbacks is rejected): the bench tests' unsolved task."""

import torch
import torch.nn as nn


batch_size = 128
length = 4096
SMALL = {"batch_size": 3, "length": 50}


class Model(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return torch.logcumsumexp(x, dim=self.dim)


def get_inputs():
    return [torch.randn(batch_size, length)]


def get_init_inputs():
    return [1]
