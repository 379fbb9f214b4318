import torch
import torch.nn as nn


class Model(nn.Module):
    """Scatters lowered with computed destinations: index_add (a segment sum, through
    index_put with accumulate, atomics) into zeros then ReLU, fused: the program holding the
    last ticket applies it (two programs here); index_put with unique indices on two
    leading dims (negative ones count from the end) into a tensor; scatter_add and
    scatter_reduce(sum) along dim 1, scatter of a tensor and of a scalar (unique positions)."""

    def forward(self, x, seg, base, i0, i1, vals, src, idx, perm, b2):
        out = torch.zeros(5, x.shape[1], dtype=x.dtype, device=x.device)
        seg_sum = torch.relu(out.index_add(0, seg, x))
        put = base.index_put((i0, i1), vals)
        sa = torch.zeros(3, 7).scatter_add(1, idx, src)
        sr = b2.scatter_reduce(1, idx[:, :4], src[:, :4], reduce="sum")
        sc = torch.zeros(3, 7).scatter(1, perm, src[:, :5])
        sv = b2.scatter(1, perm[:, :2], -1.5)
        return seg_sum, put, sa, sr, sc, sv


def get_inputs():
    perm = torch.stack([torch.randperm(7)[:5] for _ in range(3)])
    flat = torch.randperm(4 * 7)[:6]
    return [torch.randn(300, 6), torch.randint(0, 5, (300,)), torch.randn(4, 7, 3),
            (flat // 7) - 4, flat % 7, torch.randn(6, 3), torch.randn(3, 6),
            torch.randint(0, 7, (3, 6)), perm, torch.randn(3, 7)]


def get_init_inputs():
    return []
