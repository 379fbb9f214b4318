import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    """A one-row linear cast to bf16, a matrix-vector product, constants plus a reduction."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(16, 8)

    def forward(self, x, v):
        return self.lin(x).to(torch.bfloat16) * 2, self.lin.weight @ v, torch.ones(3) + x.mean()


def get_inputs():
    return [torch.randn(1, 16), torch.randn(16)]


def get_init_inputs():
    return []
