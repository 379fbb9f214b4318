"""Segment sum by index_add (a scatter) of rows into buckets, then ReLU."""

import torch
import torch.nn as nn


rows = 65536
dim = 256
segments = 4096
# Shapes `kgen bench --small` uses (the CPU interpreter): it runs this file with
# globals().update(SMALL) appended, so get_inputs/get_init_inputs pick them up.
SMALL = {"rows": 20, "dim": 6, "segments": 4}
# Another shape for `kgen bench` to run the same generated kernel at (applied after SMALL under
# --small): other batch/sequence/spatial sizes, same get_init_inputs().
SECOND = {"rows": 21}


class Model(nn.Module):
    def __init__(self, segments):
        super().__init__()
        self.segments = segments

    def forward(self, x, index):
        out = torch.zeros(self.segments, x.shape[1], dtype=x.dtype, device=x.device)
        return torch.relu(out.index_add(0, index, x))


def get_inputs():
    return [torch.randn(rows, dim), torch.randint(0, segments, (rows,))]


def get_init_inputs():
    return [segments]
