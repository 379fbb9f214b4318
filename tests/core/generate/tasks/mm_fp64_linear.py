import torch
import torch.nn as nn


class Model(nn.Module):
    """fp64 matmuls: a linear layer with bias and a ReLU epilogue, and a batched matmul, at sizes
    that are not multiples of the tile (fp64 tl.dot accumulates in fp64)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(19, 13).double()

    def forward(self, x, a, b):
        return torch.relu(self.fc(x)), torch.bmm(a, b)


def get_inputs():
    return [torch.randn(21, 19, dtype=torch.float64), torch.randn(2, 17, 9, dtype=torch.float64),
            torch.randn(2, 9, 18, dtype=torch.float64)]


def get_init_inputs():
    return []
