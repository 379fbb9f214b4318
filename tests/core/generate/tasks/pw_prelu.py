import torch
import torch.nn as nn


class Model(nn.Module):
    """PReLU with one slope per channel (4-D input) and with a single slope (2-D input)."""

    def __init__(self):
        super().__init__()
        self.per_channel = nn.PReLU(3, init=0.1)
        self.single = nn.PReLU()
        with torch.no_grad():
            self.per_channel.weight.copy_(torch.tensor([0.1, -0.5, 2.0]))

    def forward(self, x, y):
        return self.per_channel(x), self.single(y)


def get_inputs():
    return [torch.randn(2, 3, 4, 5), torch.randn(6, 7)]


def get_init_inputs():
    return []
