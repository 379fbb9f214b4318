"""nn.MultiheadAttention (batch_first) as self-attention, attention output only."""

import torch
import torch.nn as nn


batch_size = 8
seq = 512
embed = 1024
heads = 16
# Shapes `kgen bench --small` uses (the CPU interpreter): it runs this file with
# globals().update(SMALL) appended, so get_inputs/get_init_inputs pick them up.
SMALL = {"batch_size": 2, "seq": 5, "embed": 8, "heads": 2}
# Another shape for `kgen bench` to run the same generated kernel at (applied after SMALL under
# --small): other batch/sequence/spatial sizes, same get_init_inputs().
SECOND = {"batch_size": 3, "seq": 7}


class Model(nn.Module):
    def __init__(self, embed, heads):
        super().__init__()
        self.mha = nn.MultiheadAttention(embed, heads, batch_first=True)

    def forward(self, x):
        return self.mha(x, x, x, need_weights=False)[0]


def get_inputs():
    return [torch.randn(batch_size, seq, embed)]


def get_init_inputs():
    return [embed, heads]
