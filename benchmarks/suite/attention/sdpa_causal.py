"""torch's scaled_dot_product_attention with is_causal=True."""

import torch
import torch.nn as nn
import torch.nn.functional as F


batch_size = 16
heads = 16
seq = 1024
head_dim = 64
# Shapes `kgen bench --small` uses (the CPU interpreter): it runs this file with
# globals().update(SMALL) appended, so get_inputs/get_init_inputs pick them up.
SMALL = {"batch_size": 2, "heads": 2, "seq": 8, "head_dim": 4}
# Another shape for `kgen bench` to run the same generated kernel at (applied after SMALL under
# --small): other batch/sequence/spatial sizes, same get_init_inputs().
SECOND = {"batch_size": 3, "seq": 10}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)


def get_inputs():
    return [torch.randn(batch_size, heads, seq, head_dim), torch.randn(batch_size, heads, seq, head_dim), torch.randn(batch_size, heads, seq, head_dim)]


def get_init_inputs():
    return []
