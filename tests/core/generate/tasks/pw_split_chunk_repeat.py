import torch
import torch.nn as nn


class Model(nn.Module):
    """chunk / split / unbind pieces as views, and repeat (with extra leading dims) fused."""

    def __init__(self):
        super().__init__()

    def forward(self, x, y):
        q, k, v = torch.chunk(x, 3, dim=-1)
        a, b, c = torch.split(y, [1, 3, 2], dim=1)
        gate = torch.sigmoid(q) * k + v
        r = x.repeat(2, 1, 1, 2) - 1.0
        s = torch.tanh(y.repeat(3, 1)) + 1.0
        return gate, a * 2.0, b.sum(dim=1), c, r, s, torch.chunk(y, 2, dim=0)[1] + 1


def get_inputs():
    return [torch.randn(2, 3, 9), torch.randn(4, 6)]


def get_init_inputs():
    return []
