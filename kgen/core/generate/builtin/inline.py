"""Small parameter-only pointwise chains computed where they are read, not in a kernel of their own.

Batch norm in eval mode computes `rsqrt(running_var + eps)` over the channel vector, a value only
ever read broadcast by the per-element ops after it. Given its own kernel it costs a launch and a
round trip through memory, and (placed between a conv and its epilogue) it breaks the epilogue off
the conv. Here such a node joins no group: every consumer evaluates it at the positions it reads,
from the parameters themselves (a few extra loads of a vector that stays in cache).

A node qualifies (`plan_inline`) when it is a lowerable, non-indexing pointwise op whose operands are
all graph inputs (parameters, buffers, inputs), constants or other inlined nodes; it is no graph
output; each reader (through views) is a lowerable, non-indexing pointwise node that reads it
broadcast (more elements than the inlined value, so no consumer recomputes work element for element
it did not have) or another inlined node; and its chain of inlined ancestors is short. Everything
a consumer reads it through resolves in BodyWriter.value (`inline_value`), which every group kind's
per-element code uses, so this never adds a launch nor moves heavy work.
"""

from __future__ import annotations

from typing import Any

from torch.fx import Node

from kgen.core.generate.builtin import ops
from kgen.core.generate.builtin.graph import lowerable_tensor, numel, shape_of, tensor_args, trace
from kgen.core.generate.builtin.legality import INDEXED_OPS
from kgen.core.generate.builtin.sizes import is_symbolic

MARK = "kgen_inline"
MAX_CHAIN = 8   # inlined nodes one consumer evaluates per value it reads: the chain stays cheap


def is_inline(node: Any) -> bool:
    return isinstance(node, Node) and bool(node.meta.get(MARK))


def _static(shape: tuple) -> bool:
    return not any(is_symbolic(s) for s in shape)


def _readers(node: Node) -> list[Node] | None:
    """The non-view nodes reading `node` through any chain of views; None when one of them is the
    graph output (the value must exist in memory)."""
    out: list[Node] = []
    todo = [node]
    while todo:
        n = todo.pop()
        for u in n.users:
            if u.op == "output":
                return None
            if u.op == "call_function" and ops.packet(u) in ops.VIEW_OPS:
                if not _static(shape_of(u)):
                    return None   # the view's strides are computed at generation (inline_value)
                todo.append(u)
            else:
                out.append(u)
    return out


def _const_like(node: Node) -> bool:
    """A node the plan makes a constant (fusion.Fuser.run): a fill with no tensor operand."""
    name = ops.packet(node)
    return (node.op == "call_function" and name in ops.CONST_OPS and lowerable_tensor(node)
            and (name == "full_like" or not tensor_args(node)) and ops.iota(node) is None)


def plan_inline(graph: Any, excluded: set[Node]) -> set[Node]:
    """The nodes computed by their readers (see module doc): the largest set where every member
    reads only graph inputs, constants and members, and is read only by members or by bigger
    lowerable pointwise nodes. `excluded`: nodes lowered by hand-written patterns, which read
    their operands their own way."""
    cand: set[Node] = set()
    for n in graph.nodes:
        if (n.op == "call_function" and n not in excluded and ops.can_lower_pointwise(n)
                and ops.packet(n) not in INDEXED_OPS and not _const_like(n) and ops.iota(n) is None
                and lowerable_tensor(n) and _static(shape_of(n)) and tensor_args(n)):
            cand.add(n)
    readers = {n: _readers(n) for n in cand}
    while True:
        changed = True
        while changed:
            changed = False
            for n in list(cand):
                if not _keeps(n, cand, readers[n], excluded):
                    cand.discard(n)
                    changed = True
        # a chain is recomputed per element read: keep only short ones (inlined ancestors counted)
        cost: dict[Node, int] = {}
        for n in graph.nodes:
            if n in cand:
                cost[n] = 1 + sum(cost.get(trace(a)[0], 0) for a in tensor_args(n))
        long = {n for n in cand if cost[n] > MAX_CHAIN}
        if not long:
            return cand
        cand -= long


def _keeps(n: Node, cand: set[Node], readers: list[Node] | None, excluded: set[Node]) -> bool:
    for a in tensor_args(n):
        root, _ = trace(a)
        if not (root.op in ("placeholder", "get_attr") or _const_like(root) or root in cand):
            return False
    if not readers:
        return False
    size = numel(shape_of(n))
    for u in readers:
        if u in cand:
            continue
        if u in excluded or u.op != "call_function" or not ops.can_lower_pointwise(u) \
                or ops.packet(u) in INDEXED_OPS or ops.packet(u) in ops.DROPPED_OPS:
            return False
        got = numel(shape_of(u))
        # read broadcast: a symbolic extent of such a reader is only bigger than a static vector
        if not is_symbolic(got) and int(got) <= int(size):
            return False
    return True


def view_strides(arg: Node, chain: list[Node], consumer_shape: tuple) -> tuple[list[int], int]:
    """Element strides (per consumer dim; 0 where it broadcasts) and offset of `arg`, the inlined
    node `chain[-1].args[0]...` seen through `chain`, as if the inlined node were a contiguous
    tensor: its row-major position for each consumer position."""
    import torch

    root = trace(arg)[0]
    cur = torch.empty(tuple(int(s) for s in shape_of(root)), device="meta")
    for v in reversed(chain):
        target: Any = v.target
        cur = target(cur, *v.args[1:], **v.kwargs)
    vs = tuple(cur.shape)
    lead = len(consumer_shape) - len(vs)
    strides = []
    for d, size in enumerate(consumer_shape):
        i = d - lead
        strides.append(0 if i < 0 or vs[i] != size else int(cur.stride(i)))
    return strides, int(cur.storage_offset())


def inline_value(writer: Any, ctx: Any, arg: Node, consumer_shape: tuple) -> tuple[str, Any]:
    """Evaluate the inlined node behind `arg` at the consumer's positions: a context whose flat
    index is the inlined node's row-major position for each consumer element, in which its
    operands (parameters, constants, inlined nodes) load and its op is written as usual."""
    key = ("inline", arg, tuple(consumer_shape))
    if key in ctx.values:
        return ctx.values[key]
    root, chain = trace(arg)
    if not chain and tuple(shape_of(root)) == tuple(consumer_shape):
        flat = ctx.flat   # read at its own positions (one inlined node reading another)
    else:
        strides, offset = view_strides(arg, chain, tuple(consumer_shape))
        dims = ctx.dims_for(tuple(consumer_shape))
        terms = [f"{i} * {s}" for i, s in zip(dims, strides) if i is not None and s]
        flat = ctx.k.var("pos")
        ctx.emit(f"{flat} = {' + '.join(terms + [str(offset)]) if terms else f'0 * {ctx.flat} + {offset}'}")
    sub = type(ctx)(ctx.k, ctx.mask, flat)   # a codegen.Ctx (this layer sits below codegen)
    writer.pointwise(sub, root)
    got = sub.values[root]
    ctx.values[key] = got
    return got
