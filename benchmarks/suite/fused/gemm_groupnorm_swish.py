"""Linear, GroupNorm (8 groups), swish."""

import torch
import torch.nn as nn


batch_size = 1024
in_features = 2048
out_features = 2048
# Shapes `kgen bench --small` uses (the CPU interpreter): it runs this file with
# globals().update(SMALL) appended, so get_inputs/get_init_inputs pick them up.
SMALL = {"batch_size": 5, "in_features": 12, "out_features": 16}
# Another shape for `kgen bench` to run the same generated kernel at (applied after SMALL under
# --small): other batch/sequence/spatial sizes, same get_init_inputs().
SECOND = {"batch_size": 6}


class Model(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.fc = nn.Linear(in_features, out_features)
        self.gn = nn.GroupNorm(8, out_features)

    def forward(self, x):
        y = self.gn(self.fc(x))
        return y * torch.sigmoid(y)


def get_inputs():
    return [torch.randn(batch_size, in_features)]


def get_init_inputs():
    return [in_features, out_features]
