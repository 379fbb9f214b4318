"""ConvTranspose2d, bias add, tanh."""

import torch
import torch.nn as nn


batch_size = 16
in_channels = 64
out_channels = 32
h = 64
w = 64
# Shapes `kgen bench --small` uses (the CPU interpreter): it runs this file with
# globals().update(SMALL) appended, so get_inputs/get_init_inputs pick them up.
SMALL = {"batch_size": 2, "in_channels": 3, "out_channels": 2, "h": 4, "w": 5}
# Another shape for `kgen bench` to run the same generated kernel at (applied after SMALL under
# --small): other batch/sequence/spatial sizes, same get_init_inputs().
SECOND = {"batch_size": 3, "h": 6, "w": 7}


class Model(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.deconv = nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1)
        self.bias = nn.Parameter(torch.randn(out_channels, 1, 1) * 0.1)

    def forward(self, x):
        return torch.tanh(self.deconv(x) + self.bias)


def get_inputs():
    return [torch.randn(batch_size, in_channels, h, w)]


def get_init_inputs():
    return [in_channels, out_channels]
