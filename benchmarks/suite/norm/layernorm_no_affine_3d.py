"""LayerNorm without affine parameters over the hidden dim of a (batch, seq, hidden) tensor."""

import torch
import torch.nn as nn
import torch.nn.functional as F


batch_size = 4
seq = 1024
hidden = 4096
# Shapes `kgen bench --small` uses (the CPU interpreter): it runs this file with
# globals().update(SMALL) appended, so get_inputs/get_init_inputs pick them up.
SMALL = {"batch_size": 2, "seq": 5, "hidden": 24}
# Another shape for `kgen bench` to run the same generated kernel at (applied after SMALL under
# --small): other batch/sequence/spatial sizes, same get_init_inputs().
SECOND = {"batch_size": 3, "seq": 7}


class Model(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.hidden = hidden

    def forward(self, x):
        return F.layer_norm(x, (self.hidden,), eps=1e-6)


def get_inputs():
    return [torch.randn(batch_size, seq, hidden)]


def get_init_inputs():
    return [hidden]
