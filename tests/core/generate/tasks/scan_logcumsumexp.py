import torch
import torch.nn as nn


class Model(nn.Module):
    """logcumsumexp along a row longer than one block (the carry crosses chunks), and along dim 0
    of a tensor holding -inf (an empty prefix) and +inf."""

    def forward(self, x, y):
        return torch.logcumsumexp(x * 3.0, dim=-1), torch.logcumsumexp(y, dim=0)


def get_inputs():
    y = torch.randn(5, 4)
    y[0, 0] = float("-inf")
    y[1:3, 1] = float("-inf")
    y[2, 2] = float("inf")
    return [torch.randn(3, 1500), y]


def get_init_inputs():
    return []
