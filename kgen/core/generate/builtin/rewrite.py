"""Graph rewrites run after decomposition, before fusion.

`split_with_sizes` (what `split` and `chunk` decompose to) returns several tensors, each a view
of one stretch of its input along a dim. Each `getitem` of it is rewritten into the `slice`
view it is, so the pieces stay free views in forward and fuse like any other view.
"""

from __future__ import annotations

from typing import Any

from kgen.core.generate.builtin import ops

SPLIT_OPS = {"split_with_sizes", "split", "unsafe_split", "unsafe_split_with_sizes"}


def _split_dim(node: Any) -> int:
    dim = node.args[2] if len(node.args) > 2 else node.kwargs.get("dim", 0)
    rank = node.args[0].meta["val"].dim()
    return int(dim) % max(rank, 1)


def splits_to_slices(graph: Any) -> int:
    """Replace getitem(split*(x, ..., dim), i) by slice(x, dim, start_i, end_i); returns the count."""
    import torch

    done = 0
    for node in list(graph.nodes):
        if node.op != "call_function" or ops.packet(node) not in SPLIT_OPS:
            continue
        pieces = node.meta.get("val")
        src = node.args[0]
        if not isinstance(pieces, (list, tuple)) or not hasattr(src, "meta"):
            continue
        dim = _split_dim(node)
        starts, at = [], 0
        for p in pieces:
            starts.append(at)
            at = at + p.shape[dim]   # a SymInt stays symbolic (export.symbolic_values_to_sizes)
        users = list(node.users)
        if not all(u.op == "call_function" and u.target.__name__ == "getitem" for u in users):
            continue
        for u in users:
            i = int(u.args[1])
            with graph.inserting_before(u):
                piece = graph.call_function(torch.ops.aten.slice.Tensor,
                                            (src, dim, starts[i], starts[i] + int(pieces[i].shape[dim])))
            piece.meta = dict(u.meta)
            u.replace_all_uses_with(piece)
            graph.erase_node(u)
            done += 1
        graph.erase_node(node)
    return done
