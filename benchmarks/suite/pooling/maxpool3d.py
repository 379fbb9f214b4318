"""MaxPool3d, kernel 3, stride 2, padding 1."""

import torch
import torch.nn as nn


batch_size = 8
channels = 16
d = 32
h = 64
w = 64
kernel_size = 3
stride = 2
padding = 1
# Shapes `kgen bench --small` uses (the CPU interpreter): it runs this file with
# globals().update(SMALL) appended, so get_inputs/get_init_inputs pick them up.
SMALL = {"batch_size": 2, "channels": 2, "d": 5, "h": 6, "w": 5}
# Another shape for `kgen bench` to run the same generated kernel at (applied after SMALL under
# --small): other batch/sequence/spatial sizes, same get_init_inputs().
SECOND = {"batch_size": 3, "d": 7, "h": 8, "w": 7}


class Model(nn.Module):
    def __init__(self, kernel_size, stride, padding):
        super().__init__()
        self.pool = nn.MaxPool3d(kernel_size, stride=stride, padding=padding)

    def forward(self, x):
        return self.pool(x)


def get_inputs():
    return [torch.randn(batch_size, channels, d, h, w)]


def get_init_inputs():
    return [kernel_size, stride, padding]
