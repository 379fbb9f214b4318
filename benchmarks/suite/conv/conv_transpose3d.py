"""ConvTranspose3d, kernel 3, stride 2."""

import torch
import torch.nn as nn


batch_size = 8
in_channels = 32
out_channels = 16
d = 16
h = 32
w = 32
kernel_size = 3
# Shapes `kgen bench --small` uses (the CPU interpreter): it runs this file with
# globals().update(SMALL) appended, so get_inputs/get_init_inputs pick them up.
SMALL = {"batch_size": 2, "in_channels": 2, "out_channels": 2, "d": 3, "h": 4, "w": 3}
# Another shape for `kgen bench` to run the same generated kernel at (applied after SMALL under
# --small): other batch/sequence/spatial sizes, same get_init_inputs().
SECOND = {"batch_size": 3, "d": 5, "h": 6, "w": 5}


class Model(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size):
        super().__init__()
        self.conv = nn.ConvTranspose3d(in_channels, out_channels, kernel_size, stride=2)

    def forward(self, x):
        return self.conv(x)


def get_inputs():
    return [torch.randn(batch_size, in_channels, d, h, w)]


def get_init_inputs():
    return [in_channels, out_channels, kernel_size]
