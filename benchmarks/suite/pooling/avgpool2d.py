"""AvgPool2d, kernel 3, stride 2, padding 1 (padding counted in the average)."""

import torch
import torch.nn as nn


batch_size = 16
channels = 64
h = 112
w = 112
kernel_size = 3
stride = 2
padding = 1
# Shapes `kgen bench --small` uses (the CPU interpreter): it runs this file with
# globals().update(SMALL) appended, so get_inputs/get_init_inputs pick them up.
SMALL = {"batch_size": 2, "channels": 3, "h": 9, "w": 8}
# Another shape for `kgen bench` to run the same generated kernel at (applied after SMALL under
# --small): other batch/sequence/spatial sizes, same get_init_inputs().
SECOND = {"batch_size": 3, "h": 11, "w": 10}


class Model(nn.Module):
    def __init__(self, kernel_size, stride, padding):
        super().__init__()
        self.pool = nn.AvgPool2d(kernel_size, stride=stride, padding=padding)

    def forward(self, x):
        return self.pool(x)


def get_inputs():
    return [torch.randn(batch_size, channels, h, w)]


def get_init_inputs():
    return [kernel_size, stride, padding]
