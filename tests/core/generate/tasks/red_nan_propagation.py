import torch
import torch.nn as nn


class Model(nn.Module):
    """NaN must propagate like in torch: through relu/clamp/maximum and into max/amax/argmax."""

    def forward(self, x):
        y = torch.log(x)            # NaN where x < 0
        z = torch.relu(y) + torch.clamp(y, -1.0, 1.0)
        v, i = torch.max(y, dim=1)
        return z, torch.amax(y, dim=0), v, i, torch.argmin(y, dim=1), torch.maximum(y, x)


def get_inputs():
    x = torch.rand(5, 40) + 0.1
    x[1, 7] = -1.0
    x[3, 2] = -1.0
    x[3, 30] = -2.0
    return [x]


def get_init_inputs():
    return []
