"""Conv2d 3x3, stride 1, padding 1 (a ResNet body layer)."""

import torch
import torch.nn as nn


batch_size = 32
in_channels = 64
out_channels = 64
h = 56
w = 56
kernel_size = 3
# Shapes `kgen bench --small` uses (the CPU interpreter): it runs this file with
# globals().update(SMALL) appended, so get_inputs/get_init_inputs pick them up.
SMALL = {"batch_size": 2, "in_channels": 3, "out_channels": 4, "h": 7, "w": 6}
# Another shape for `kgen bench` to run the same generated kernel at (applied after SMALL under
# --small): other batch/sequence/spatial sizes, same get_init_inputs().
SECOND = {"batch_size": 3, "h": 9, "w": 8}


class Model(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=1)

    def forward(self, x):
        return self.conv(x)


def get_inputs():
    return [torch.randn(batch_size, in_channels, h, w)]


def get_init_inputs():
    return [in_channels, out_channels, kernel_size]
