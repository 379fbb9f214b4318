"""Conv groups that take what follows them into their own kernel (emit/conv.py, emit/conv_chain.py).

Each rule needs the conv group to own every value it computes: nothing outside the group reads a
value of it at the conv's positions (those positions are then never in memory, and some of them,
outside every pool window, are never computed). Each places the node in the group and returns
True, or leaves the plan alone and returns False:

- pool_epilogue: a pool whose windows do not overlap (legality.window_pool) over all spatial dims
  of the conv's output; the conv iterates over pooled positions and reduces each window in
  registers.
- spatial_reduce: a sum/mean/amax/amin over every spatial dim (a global pool, conv + activation +
  mean); one program owns all output pixels of an image for a tile of channels.
- pointwise_conv: a 1x1 conv (stride 1, no padding, one group) after a conv whose per-output work
  is a few multiply-adds (a depthwise conv); the 1x1 conv's GEMM computes the first conv's output
  tiles where it reads them.

After any of them the group's epilogue splits at Group.pooled: epi[:pooled] runs per conv output,
epi[pooled:] per output of the node taken.
"""

from __future__ import annotations

from typing import Any

from torch.fx import Node

from kgen.core.generate.builtin import ops
from kgen.core.generate.builtin.graph import arg, numel, operand, shape_of
from kgen.core.generate.builtin.legality import pool_window_dims, window_pool
from kgen.core.generate.builtin.sizes import sized

# most output pixels per image a conv reduces over in its epilogue (spatial_reduce): an image's
# pixels are one program's row loop, so only while they fit a few row tiles does the grid keep
# the unfused conv's parallelism
SPATIAL_REDUCE_MAX = 256
# most multiply-adds per output of a conv whose output a following 1x1 conv computes where it
# reads it (pointwise_conv): recomputed once per column tile of the 1x1 conv
CHAIN_FIRST_MAX = 32


def pool_epilogue(f: Any, g: Any, node: Node) -> bool:
    spec = window_pool(node)
    if spec is None or not _plain(g):
        return False   # (a transposed conv's stride phases are not pooled)
    x = node.args[0]
    if not isinstance(x, Node) or pool_window_dims(shape_of(g.core[0]), shape_of(x), spec["kernel"]) is None:
        return False
    # a max pool's indices name conv positions: only its values may be read
    val = node.meta["val"]
    if isinstance(val, (list, tuple)) and any(
            ops.packet(u) != "getitem" or (u.args[1] != 0 and u.users) for u in node.users):
        return False
    if not _owned(f, g, node, x):
        return False
    _take(f, g, node, tuple(sized(s) for s in (val[0] if isinstance(val, (list, tuple)) else val).shape))
    return True


def spatial_reduce(f: Any, g: Any, node: Node, spec: tuple) -> bool:
    x, dims, _ = spec
    if ops.packet(node) not in ("sum", "mean", "amax", "amin") or node.kwargs.get("dtype") is not None:
        return False
    if not _plain(g) or not isinstance(x, Node):
        return False   # (a transposed conv's stride phases split an image's pixels)
    conv = shape_of(g.core[0])
    if shape_of(x) != conv or dims != tuple(range(2, len(conv))):
        return False
    # either plan is right for every size, so the traced size decides, without a guard
    spatial = int(getattr(numel(conv[2:]), "hint", numel(conv[2:])))
    if spatial == 1 or spatial > SPATIAL_REDUCE_MAX:
        return False
    if not _owned(f, g, node, x):
        return False
    _take(f, g, node, shape_of(node))
    return True


def pointwise_conv(f: Any, g: Any, node: Node) -> bool:
    if not _plain(g) or bool(node.args[6]):
        return False
    first = g.core[0]
    x, ws = node.args[0], shape_of(operand(node, 1))
    if int(arg(node, 8)) != 1 or any(int(s) != 1 for s in ws[2:]) or any(int(s) != 1 for s in arg(node, 3)) \
            or any(int(p) != 0 for p in arg(node, 4)) or any(int(o) != 0 for o in (arg(node, 7) or [])):
        return False
    if not isinstance(x, Node) or shape_of(x) != shape_of(first) or x.meta["val"].dtype != first.meta["val"].dtype:
        return False
    if numel(shape_of(operand(first, 1))[1:]) > CHAIN_FIRST_MAX:
        return False
    if not _owned(f, g, node, x):
        return False
    _take(f, g, node, shape_of(node))
    return True


def _plain(g: Any) -> bool:
    """A conv group that took nothing yet and whose conv is not transposed."""
    return g.pooled < 0 and len(g.core) == 1 and not bool(g.core[0].args[6])


def _owned(f: Any, g: Any, node: Node, x: Node) -> bool:
    """Whether `node` reads the conv group's output (`x`, in order) and nothing but `node` outside
    the group reads any value of the group."""
    phase, keeps = f._internal(g, x)
    if phase not in ("core", "epi") or not keeps:
        return False
    members = g.members
    return not any(u is not node and u not in members for m in members for u in value_readers(m))


def _take(f: Any, g: Any, node: Node, out: tuple) -> None:
    f._add(g, node, "core")
    g.pooled = len(g.epi)
    g.shape, g.numel, g.out_numel = out, numel(out), numel(out)


def value_readers(node: Node) -> list[Any]:
    """The nodes reading `node` through any chain of views (the graph's output node included)."""
    out: list[Any] = []
    todo = [node]
    while todo:
        n = todo.pop()
        for u in n.users:
            if u.op == "call_function" and ops.packet(u) in ops.VIEW_OPS:
                todo.append(u)
            else:
                out.append(u)
    return out
