import torch
import torch.nn as nn


class Model(nn.Module):
    """A running state kept in a plain tensor attribute and updated in place in forward (torch.export
    refuses it as a mutated constant); the output depends on the state before the update."""

    def __init__(self, n):
        super().__init__()
        self.state = torch.zeros(n)

    def forward(self, x):
        out = x * 2.0 + self.state
        self.state.mul_(0.5).add_(x.sum(0))
        return out


def get_inputs():
    return [torch.randn(4, 16)]


def get_init_inputs():
    return [16]
