"""AdaptiveMaxPool2d to 5x5 from a 33x33 map (uneven windows)."""

import torch
import torch.nn as nn


batch_size = 64
channels = 256
h = 33
w = 33
out_size = 5
# Shapes `kgen bench --small` uses (the CPU interpreter): it runs this file with
# globals().update(SMALL) appended, so get_inputs/get_init_inputs pick them up.
SMALL = {"batch_size": 2, "channels": 3, "h": 11, "w": 11, "out_size": 3}
# Another shape for `kgen bench` to run the same generated kernel at (applied after SMALL under
# --small): other batch/sequence/spatial sizes, same get_init_inputs().
SECOND = {"batch_size": 3, "h": 13, "w": 13}


class Model(nn.Module):
    def __init__(self, out_size):
        super().__init__()
        self.pool = nn.AdaptiveMaxPool2d(out_size)

    def forward(self, x):
        return self.pool(x)


def get_inputs():
    return [torch.randn(batch_size, channels, h, w)]


def get_init_inputs():
    return [out_size]
