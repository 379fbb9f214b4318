"""A task the builtin generator cannot lower yet (lgamma stays a torch fallback, and a forward
made only of fallbacks is rejected): the bench tests' unsolved task."""

import torch
import torch.nn as nn


batch_size = 128
length = 4096
SMALL = {"batch_size": 3, "length": 50}


class Model(nn.Module):
    def forward(self, x):
        return torch.lgamma(x)


def get_inputs():
    return [torch.randn(batch_size, length)]


def get_init_inputs():
    return []
