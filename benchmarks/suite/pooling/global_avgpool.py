"""Global average pooling: AdaptiveAvgPool2d to 1x1."""

import torch
import torch.nn as nn


batch_size = 32
channels = 256
h = 56
w = 56
out_size = 1
# Shapes `kgen bench --small` uses (the CPU interpreter): it runs this file with
# globals().update(SMALL) appended, so get_inputs/get_init_inputs pick them up.
SMALL = {"batch_size": 2, "channels": 4, "h": 7, "w": 6}
# Another shape for `kgen bench` to run the same generated kernel at (applied after SMALL under
# --small): other batch/sequence/spatial sizes, same get_init_inputs().
SECOND = {"batch_size": 3, "h": 9, "w": 8}


class Model(nn.Module):
    def __init__(self, out_size):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(out_size)

    def forward(self, x):
        return self.pool(x)


def get_inputs():
    return [torch.randn(batch_size, channels, h, w)]


def get_init_inputs():
    return [out_size]
