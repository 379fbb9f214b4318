"""Multi-head self-attention block written out: fused QKV projection, per-head attention, output projection."""

import torch
import torch.nn as nn


batch_size = 8
seq = 512
embed = 1024
heads = 16
# Shapes `kgen bench --small` uses (the CPU interpreter): it runs this file with
# globals().update(SMALL) appended, so get_inputs/get_init_inputs pick them up.
SMALL = {"batch_size": 2, "seq": 6, "embed": 8, "heads": 2}
# Another shape for `kgen bench` to run the same generated kernel at (applied after SMALL under
# --small): other batch/sequence/spatial sizes, same get_init_inputs().
SECOND = {"batch_size": 3, "seq": 8}


class Model(nn.Module):
    def __init__(self, embed, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(embed, 3 * embed)
        self.proj = nn.Linear(embed, embed)

    def forward(self, x):
        b, s, e = x.shape
        q, k, v = self.qkv(x).reshape(b, s, 3, self.heads, e // self.heads).permute(2, 0, 3, 1, 4)
        att = torch.softmax(q @ k.transpose(-2, -1) / (e // self.heads) ** 0.5, dim=-1)
        return self.proj((att @ v).transpose(1, 2).reshape(b, s, e))


def get_inputs():
    return [torch.randn(batch_size, seq, embed)]


def get_init_inputs():
    return [embed, heads]
