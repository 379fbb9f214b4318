import torch
import torch.nn as nn


class Model(nn.Module):
    """Embedding lookup, in-place ops, cat, stack, slicing, gather and index_select."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 6)
        self.act = nn.ReLU(inplace=True)

    def forward(self, idx, x):
        h = self.emb(idx)
        y = x * 2
        y += 1
        rows = torch.index_select(x, 0, idx[0] % 4)
        return (self.act(h), torch.cat([y, x], dim=1), torch.stack([x, y]), x[:, 1:3],
                torch.gather(x, 1, idx[:, :2] % 3), rows.flip(1))


def get_inputs():
    return [torch.randint(0, 10, (4, 3)), torch.randn(4, 3)]


def get_init_inputs():
    return []
