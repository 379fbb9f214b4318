import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    """F.pad in constant mode: positive pads, negative pads (crops), several dims, fused work."""

    def __init__(self, value=0.5):
        super().__init__()
        self.value = value

    def forward(self, x, n):
        a = F.pad(x * 2.0, (1, 2, -1, 1), value=self.value) + 1.0
        b = torch.relu(F.pad(x, (0, 0, 2, 0, -1, -1)))
        c = F.pad(n, (3, -2), value=-7)
        d = nn.ConstantPad2d((2, 0, 1, 3), -1.5)(x.transpose(1, 2))
        return a, b, c, d


def get_inputs():
    return [torch.randn(2, 4, 5, 3), torch.randint(-5, 5, (3, 6), dtype=torch.int32)]


def get_init_inputs():
    return [0.25]
