"""AdaptiveAvgPool2d to 7x7 from an input that does not divide evenly (uneven windows)."""

import torch
import torch.nn as nn


batch_size = 64
channels = 256
h = 30
w = 30
out_size = 7
# Shapes `kgen bench --small` uses (the CPU interpreter): it runs this file with
# globals().update(SMALL) appended, so get_inputs/get_init_inputs pick them up.
SMALL = {"batch_size": 2, "channels": 3, "h": 10, "w": 9, "out_size": 3}
# Another shape for `kgen bench` to run the same generated kernel at (applied after SMALL under
# --small): other batch/sequence/spatial sizes, same get_init_inputs().
SECOND = {"batch_size": 3, "h": 12, "w": 11}


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
