import torch
import torch.nn as nn


class Model(nn.Module):
    """cummax (values and indices) along a middle dim longer than one chunk, with a prologue and an
    epilogue, cummin on integers with ties (the later index wins, as in torch), and NaN
    propagation (a NaN holds until the next NaN)."""

    def forward(self, x, n, z):
        v, i = torch.cummax(x * 2.0, dim=1)
        v = v + 1.0
        nv, ni = torch.cummin(n, dim=-1)
        zv, zi = torch.cummax(z, dim=0)
        return v, i, nv, ni, zv, zi


def get_inputs():
    z = torch.randn(9, 4)
    z[3, 1] = float("nan")
    z[6, 1] = float("nan")
    z[0, 2] = float("nan")
    return [torch.randn(3, 600, 4), torch.randint(-3, 3, (5, 11), dtype=torch.int32), z]


def get_init_inputs():
    return []
