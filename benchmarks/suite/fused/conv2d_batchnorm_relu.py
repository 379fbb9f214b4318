"""Conv2d + BatchNorm2d (inference mode, folded statistics) + ReLU, the classic CNN block."""

import torch
import torch.nn as nn
import torch.nn.functional as F


batch_size = 32
in_channels = 64
out_channels = 64
h = 56
w = 56
# Shapes `kgen bench --small` uses (the CPU interpreter): it runs this file with
# globals().update(SMALL) appended, so get_inputs/get_init_inputs pick them up.
SMALL = {"batch_size": 2, "in_channels": 3, "out_channels": 4, "h": 6, "w": 5}
# Another shape for `kgen bench` to run the same generated kernel at (applied after SMALL under
# --small): other batch/sequence/spatial sizes, same get_init_inputs().
SECOND = {"batch_size": 3, "h": 8, "w": 7}


class Model(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.bn.eval()

    def forward(self, x):
        return torch.relu(F.batch_norm(self.conv(x), self.bn.running_mean, self.bn.running_var,
                                       self.bn.weight, self.bn.bias, training=False))


def get_inputs():
    return [torch.randn(batch_size, in_channels, h, w)]


def get_init_inputs():
    return [in_channels, out_channels]
