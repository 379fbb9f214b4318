"""Depthwise Conv2d 3x3 (groups = channels), as in MobileNet."""

import torch
import torch.nn as nn


batch_size = 16
channels = 64
h = 112
w = 112
kernel_size = 3
# Shapes `kgen bench --small` uses (the CPU interpreter): it runs this file with
# globals().update(SMALL) appended, so get_inputs/get_init_inputs pick them up.
SMALL = {"batch_size": 2, "channels": 4, "h": 7, "w": 8}
# Another shape for `kgen bench` to run the same generated kernel at (applied after SMALL under
# --small): other batch/sequence/spatial sizes, same get_init_inputs().
SECOND = {"batch_size": 3, "h": 9, "w": 10}


class Model(nn.Module):
    def __init__(self, channels, kernel_size):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size, padding=1, groups=channels)

    def forward(self, x):
        return self.conv(x)


def get_inputs():
    return [torch.randn(batch_size, channels, h, w)]


def get_init_inputs():
    return [channels, kernel_size]
