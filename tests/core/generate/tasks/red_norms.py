import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    """Vector norms: L2, L1 and L-inf along the last dim."""

    def forward(self, x):
        return torch.linalg.vector_norm(x, dim=-1), torch.linalg.vector_norm(x, ord=1, dim=-1), torch.linalg.vector_norm(x, ord=float("inf"), dim=-1)


def get_inputs():
    return [torch.randn(5, 77)]


def get_init_inputs():
    return []
