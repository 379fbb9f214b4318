"""Conv3d 3x3x3 with padding 1."""

import torch
import torch.nn as nn


batch_size = 4
in_channels = 32
out_channels = 64
d = 16
h = 64
w = 64
kernel_size = 3
# Shapes `kgen bench --small` uses (the CPU interpreter): it runs this file with
# globals().update(SMALL) appended, so get_inputs/get_init_inputs pick them up.
SMALL = {"batch_size": 2, "in_channels": 2, "out_channels": 3, "d": 4, "h": 5, "w": 5}
# Another shape for `kgen bench` to run the same generated kernel at (applied after SMALL under
# --small): other batch/sequence/spatial sizes, same get_init_inputs().
SECOND = {"batch_size": 3, "d": 6, "h": 7, "w": 7}


class Model(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size):
        super().__init__()
        self.conv = nn.Conv3d(in_channels, out_channels, kernel_size, padding=1)

    def forward(self, x):
        return self.conv(x)


def get_inputs():
    return [torch.randn(batch_size, in_channels, d, h, w)]


def get_init_inputs():
    return [in_channels, out_channels, kernel_size]
