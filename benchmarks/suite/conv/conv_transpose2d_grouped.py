"""Grouped, dilated ConvTranspose2d (2 groups, dilation 2), no bias."""

import torch
import torch.nn as nn


batch_size = 16
in_channels = 64
out_channels = 64
h = 64
w = 64
kernel_size = 3
# Shapes `kgen bench --small` uses (the CPU interpreter): it runs this file with
# globals().update(SMALL) appended, so get_inputs/get_init_inputs pick them up.
SMALL = {"batch_size": 2, "in_channels": 4, "out_channels": 2, "h": 4, "w": 5}
# Another shape for `kgen bench` to run the same generated kernel at (applied after SMALL under
# --small): other batch/sequence/spatial sizes, same get_init_inputs().
SECOND = {"batch_size": 3, "h": 6, "w": 7}


class Model(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size):
        super().__init__()
        self.conv = nn.ConvTranspose2d(in_channels, out_channels, kernel_size, groups=2, dilation=2, bias=False)

    def forward(self, x):
        return self.conv(x)


def get_inputs():
    return [torch.randn(batch_size, in_channels, h, w)]


def get_init_inputs():
    return [in_channels, out_channels, kernel_size]
