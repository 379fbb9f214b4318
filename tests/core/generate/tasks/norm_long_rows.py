import torch
import torch.nn as nn


class Model(nn.Module):
    """Rows longer than one block (1300 > KBLOCK): layer norm and an unbiased variance take the
    single-sweep (Welford) statistics, softmax loops over chunks. Offset inputs check the
    numerics of the merged statistics."""

    def __init__(self, n):
        super().__init__()
        self.ln = nn.LayerNorm(n)

    def forward(self, x):
        y = x * 3.0 + 50.0
        return self.ln(y), torch.var(y, dim=1, keepdim=True), torch.softmax(x, dim=1)


def get_inputs():
    return [torch.randn(3, 1300)]


def get_init_inputs():
    return [1300]
