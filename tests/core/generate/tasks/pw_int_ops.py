import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    """Integer arithmetic, comparisons and where on int32 tensors."""

    def forward(self, a, b):
        c = a * 3 + b - 7
        m = torch.where(c > b, c, -b)
        return m, (a == b), torch.clamp(c, min=-5, max=20)


def get_inputs():
    return [torch.randint(-10, 10, (6, 10), dtype=torch.int32), torch.randint(-10, 10, (6, 10), dtype=torch.int32)]


def get_init_inputs():
    return []
