"""Row-owning and sibling matmuls.

Row-owning matmuls: a matmul whose output rows are reduced right after it (a row sum, a layer
norm's statistics, a group norm's per-group statistics over a view that splits the last dim)
becomes one `rowmatmul` group. Its tile spans every output column, so the reductions, their
stages and their per-row epilogue run on the accumulator in registers instead of the matmul
writing [M, N] and a reduction kernel reading it back (emit/rowmatmul.py).

Decided only where the output's last dim N is static (a weight's size) and fits one tile: the
padded row (groups and columns rounded up to powers of two) may be at most ROW_MAX_N columns.
A 16 x 512 fp32 accumulator next to a 16 x 512 operand tile keeps within sm_90's register budget
at 8 warps (schedule.fit_matmul's rule); wider rows keep the tiled matmul and a reduction kernel.

Sibling matmuls (sibling_matmul): products of the same A operand with different B operands
into outputs of one shape (SwiGLU's x W1 and x W3) share one matmul kernel, one accumulator
each, so A is read once and an epilogue combining them (silu(a) * b) is fused too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kgen.core.generate.builtin import ops
from kgen.core.generate.builtin.graph import numel, operand, order_keeping, shape_of, tensor_args, trace
from kgen.core.generate.builtin.sizes import is_symbolic

if TYPE_CHECKING:
    from torch.fx import Node

ROW_MAX_N = 512   # the widest padded row one rowmatmul tile holds (see above)


def pow2(n: int) -> int:
    p = 1
    while p < n:
        p *= 2
    return p


def row_split(mm: Node, shape: tuple, dims: tuple) -> tuple[int, int] | None:
    """(G, C): a reduction over `dims` of a row-major view `shape` of matmul `mm`'s output reduces
    runs of C consecutive columns, G runs per output row (C = N: a whole row), when it does so;
    else None. The padded row must fit ROW_MAX_N."""
    out = shape_of(mm)
    n = out[-1]
    if is_symbolic(n) or len(shape) == 0 or not dims:
        return None
    big_red = [d for d in dims if shape[d] != 1]
    big_kept = [d for d in range(len(shape)) if d not in dims and shape[d] != 1]
    # every reduced dim of size > 1 after every kept one: flat position = row * C + lane
    if big_kept and big_red and min(big_red) < max(big_kept):
        return None
    if any(is_symbolic(shape[d]) for d in dims):
        return None
    c = 1
    for d in dims:
        c *= int(shape[d])
    if c < 1 or int(n) % c:
        return None
    g = int(n) // c
    if pow2(g) * pow2(c) > ROW_MAX_N:
        return None
    return g, c


def row_owning(fuser: Any, g: Any, x: Any, dims: tuple) -> bool:
    """Whether a reduction over `dims` of `x` can turn matmul group `g` into a rowmatmul: x is
    the matmul's output or one of its per-element epilogue values (through order-keeping views),
    and row_split() accepts the layout."""
    if g.kind != "matmul" or len(g.core) != 1 or g.pro or g.extra:
        return False
    mm = g.core[0]
    if ops.packet(mm) not in ops.MATMUL_OPS:
        return False
    root, chain = trace(x)
    if fuser.group_of.get(root) is not g or root in fuser.consts or not all(order_keeping(v) for v in chain):
        return False
    if g.phase(root) not in ("core", "epi") or numel(shape_of(x)) != g.out_numel:
        return False
    return row_split(mm, shape_of(x), dims) is not None


def to_row_matmul(fuser: Any, g: Any, x: Any, dims: tuple, node: Node) -> None:
    """Turn matmul group `g` into a rowmatmul whose element space is `x`'s shape and add the
    reduction `node` to it: the matmul becomes the group's head and its epilogue per-element
    values of stage 0."""
    mm = g.core[0]
    shape = shape_of(x)
    g.kind, g.head = "rowmatmul", mm
    g.pro, g.core, g.epi = list(g.epi), [], []
    g.stage_of = {n: 0 for n in [mm] + g.pro}
    g.shape, g.dims, g.numel = shape, dims, numel(shape)
    g.out_numel = numel([s for i, s in enumerate(shape) if i not in dims])
    fuser._add(g, node, "core")


MAX_SIBLINGS = 2   # accumulators per matmul kernel (fitted like one tile that many times as wide)


def _a_b(node: Node) -> tuple[Node, Node]:
    return (operand(node, 1), operand(node, 2)) if ops.packet(node) == "addmm" else (operand(node, 0), operand(node, 1))


def sibling_matmul(fuser: Any, g: Any, node: Node) -> bool:
    """Whether matmul `node` can join matmul group `g` as another accumulator: the same op and A
    operand as g's first matmul, an output of the same shape and dtype, and operands (B, a bias)
    that g does not compute."""
    if g.kind != "matmul" or not g.core or len(g.core) >= MAX_SIBLINGS or g.pro or g.extra:
        return False
    first = g.core[0]
    if ops.packet(node) != ops.packet(first) or ops.packet(node) not in ops.MATMUL_OPS:
        return False
    (a0, b0), (a1, b1) = _a_b(first), _a_b(node)
    if a1 is not a0 or shape_of(node) != shape_of(first) or node.meta["val"].dtype != first.meta["val"].dtype:
        return False
    if shape_of(b1) != shape_of(b0) or b1.meta["val"].dtype != b0.meta["val"].dtype:
        return False
    return all(fuser._internal(g, t)[0] is None for t in tensor_args(node))


PRO_MAX_K = 512   # the longest A row a matmul computes in its prologue (one [BLOCK_M, K] tile)


def prologue_of(fuser: Any, g: Any, mm: Node) -> bool:
    """Whether reduction group `g` can become the prologue of 2-D matmul `mm`: mm's A operand is
    a per-element value of g whose rows are g's rows (reduced over A's last dim, K static and at
    most PRO_MAX_K), mm's other operands come from elsewhere, and nothing but mm reads a value
    of g (each program of the matmul recomputes its rows' statistics, so it stores nothing)."""
    if g.kind != "reduction" or g.head is not None or ops.packet(mm) not in ("mm", "addmm"):
        return False
    a, _ = _a_b(mm)
    root, chain = trace(a)
    if fuser.group_of.get(root) is not g or g.phase(root) != "pro" or not all(order_keeping(v) for v in chain):
        return False
    if any(t is not a and fuser._internal(g, t)[0] is not None for t in tensor_args(mm)):
        return False
    sa = shape_of(a)
    if len(sa) != 2 or is_symbolic(sa[1]) or pow2(int(sa[1])) > PRO_MAX_K or numel(sa) != g.numel:
        return False
    shape, dims = tuple(g.shape), tuple(g.dims)
    big_red = [d for d in dims if shape[d] != 1]
    big_kept = [d for d in range(len(shape)) if d not in dims and shape[d] != 1]
    if big_kept and big_red and min(big_red) < max(big_kept):
        return False
    if any(is_symbolic(shape[d]) for d in dims) or numel([shape[d] for d in dims]) != int(sa[1]):
        return False
    members = g.members

    def only_here(n: Any) -> bool:
        for u in n.users:
            if u is mm or u in members:
                continue
            if u.op == "call_function" and ops.packet(u) in ops.VIEW_OPS and only_here(u):
                continue
            return False
        return True

    return all(only_here(n) for n in members)
