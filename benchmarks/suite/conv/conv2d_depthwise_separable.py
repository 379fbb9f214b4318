"""Depthwise-separable block: depthwise 3x3 then pointwise 1x1."""

import torch
import torch.nn as nn


batch_size = 16
in_channels = 64
out_channels = 128
h = 112
w = 112
# Shapes `kgen bench --small` uses (the CPU interpreter): it runs this file with
# globals().update(SMALL) appended, so get_inputs/get_init_inputs pick them up.
SMALL = {"batch_size": 2, "in_channels": 3, "out_channels": 4, "h": 6, "w": 7}
# Another shape for `kgen bench` to run the same generated kernel at (applied after SMALL under
# --small): other batch/sequence/spatial sizes, same get_init_inputs().
SECOND = {"batch_size": 3, "h": 8, "w": 9}


class Model(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


def get_inputs():
    return [torch.randn(batch_size, in_channels, h, w)]


def get_init_inputs():
    return [in_channels, out_channels]
