"""InstanceNorm2d (no affine): per-sample, per-channel normalisation."""

import torch
import torch.nn as nn


batch_size = 16
features = 64
h = 128
w = 128
# Shapes `kgen bench --small` uses (the CPU interpreter): it runs this file with
# globals().update(SMALL) appended, so get_inputs/get_init_inputs pick them up.
SMALL = {"batch_size": 2, "features": 3, "h": 5, "w": 7}
# Another shape for `kgen bench` to run the same generated kernel at (applied after SMALL under
# --small): other batch/sequence/spatial sizes, same get_init_inputs().
SECOND = {"batch_size": 3, "h": 7, "w": 9}


class Model(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.inorm = nn.InstanceNorm2d(features)

    def forward(self, x):
        return self.inorm(x)


def get_inputs():
    return [torch.randn(batch_size, features, h, w)]


def get_init_inputs():
    return [features]
