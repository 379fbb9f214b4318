"""Smooth L1 (Huber) loss with beta 1.0."""

import torch
import torch.nn as nn
import torch.nn.functional as F


batch_size = 4096
dim = 4096
# Shapes `kgen bench --small` uses (the CPU interpreter): it runs this file with
# globals().update(SMALL) appended, so get_inputs/get_init_inputs pick them up.
SMALL = {"batch_size": 6, "dim": 40}
# Another shape for `kgen bench` to run the same generated kernel at (applied after SMALL under
# --small): other batch/sequence/spatial sizes, same get_init_inputs().
SECOND = {"batch_size": 7}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, pred, target):
        return F.smooth_l1_loss(pred, target, beta=1.0)


def get_inputs():
    return [torch.randn(batch_size, dim), torch.randn(batch_size, dim)]


def get_init_inputs():
    return []
