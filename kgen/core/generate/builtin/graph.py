"""Typed helpers over the exported ATen graph: shapes, element counts, view chains, operands.

The lowest layer of the builtin generator after the op tables (ops.py): everything above
(legality, fusion plan, codegen, emitters, module) reads fx nodes through these.
"""

from __future__ import annotations

import math
from typing import Any

from torch.fx import Node

from kgen.core.generate.builtin import ops
from kgen.core.generate.builtin.sizes import sized


def numel(shape: Any) -> Any:
    """The element count: an int, or a symbolic Size (sizes.py) when a dim is symbolic."""
    return math.prod(sized(s) for s in shape)


def shape_of(node: Node) -> tuple:
    """The node's shape: ints where export proved a dim static, symbolic Sizes elsewhere."""
    return tuple(sized(s) for s in node.meta["val"].shape)


def broadcasts_to(small: Any, big: Any) -> bool:
    """Whether a tensor of shape `small` broadcasts to shape `big` (numpy rules)."""
    small, big = tuple(int(s) for s in small), tuple(int(s) for s in big)
    return len(small) <= len(big) and all(s in (1, b) for s, b in zip(reversed(small), reversed(big)))


def trace(value: Any) -> tuple[Any, list[Node]]:
    """Follow a chain of view nodes back to the node that owns the storage."""
    chain = []
    while isinstance(value, Node) and value.op == "call_function" and ops.packet(value) in ops.VIEW_OPS:
        chain.append(value)
        value = value.args[0]
    return value, chain


def order_keeping(view: Node) -> bool:
    """A view whose elements, read row-major, are the source's in row-major order."""
    name = ops.packet(view)
    if name in ops.ORDER_KEEPING_VIEWS:
        return True
    if name in ("expand", "broadcast_in_dim"):
        return numel(shape_of(view)) == numel(shape_of(operand(view, 0)))
    if name == "as_strided":
        return _dense_restride(view)
    return False


def _dense_restride(view: Node) -> bool:
    """An as_strided that reads all of a contiguous source at offset 0 with contiguous strides
    (group norm's decomposition reshapes its result back so): a plain reshape."""
    src = operand(view, 0)
    val, sval = view.meta.get("val"), src.meta.get("val")
    if val is None or sval is None or not sval.is_contiguous() or sval.storage_offset() != 0:
        return False
    offset = view.args[3] if len(view.args) > 3 else view.kwargs.get("storage_offset", 0)
    if offset not in (0, None) or numel(shape_of(view)) != numel(shape_of(src)):
        return False
    return bool(val.is_contiguous()) and val.storage_offset() == 0


def tensor_args(node: Node) -> list[Node]:
    """The fx nodes among `node`'s operands (args and kwargs, nested lists included), in order."""
    out: list[Node] = []

    def visit(a: Any) -> None:
        if isinstance(a, Node):
            out.append(a)
        elif isinstance(a, (list, tuple)):
            for x in a:
                visit(x)

    for a in list(node.args) + list(node.kwargs.values()):
        visit(a)
    return out


def operand(node: Node, i: int) -> Node:
    """Positional argument `i` of `node` where the op's schema makes it a tensor (an fx Node)."""
    a = node.args[i]
    if not isinstance(a, Node):
        raise TypeError(f"{node.name}: argument {i} is {type(a).__name__}, not a tensor node")
    return a


def arg(node: Node, i: int, name: str | None = None, default: Any = None) -> Any:
    """Positional argument `i` (or keyword `name`) of `node`, else `default`. fx types arguments
    as a wide union; the lowerings dispatch on the value's schema type, hence Any."""
    if i < len(node.args):
        return node.args[i]
    if name is not None and name in node.kwargs:
        return node.kwargs[name]
    return default


def lowerable_tensor(node: Node, *, allow_int: bool = True) -> bool:
    """Whether `node` is a tensor of a dtype Triton can hold; with allow_int=False, a floating one."""
    import torch

    val = node.meta.get("val")
    if not isinstance(val, torch.Tensor) or str(val.dtype) not in ops.TL_TYPES:
        return False
    return allow_int or val.dtype.is_floating_point


def flat_to_coords(emit: Any, fresh: Any, flat: str, sizes: list[int] | tuple, dims: list[int] | None = None,
                   names: list[str] | None = None) -> list[str | None]:
    """Emit the row-major unravelling of a flat index `flat` over `sizes`: the one place that
    turns a flat position into per-dim coordinates (pointwise spaces, reduction rows, conv/pool
    output positions). `dims` (default: all) are the dims unravelled, outermost first.

    With `names` None, size-1 dims are skipped (their coordinate is None, i.e. 0) and fresh names
    come from `fresh("i")`; with `names` (one per dim in `dims`) every dim gets its named
    coordinate. `emit(line)` writes a line, `fresh(prefix)` makes a new variable name."""
    dims = list(range(len(sizes))) if dims is None else list(dims)
    idx: list[str | None] = [None] * len(sizes)
    todo = dims if names is not None else [d for d in dims if sizes[d] > 1]
    rest = flat
    for pos, d in enumerate(reversed(todo)):
        v = names[dims.index(d)] if names is not None else fresh("i")
        last = pos == len(todo) - 1
        emit(f"{v} = {rest}" if last else f"{v} = {rest} % {sizes[d]}")
        idx[d] = v
        if not last:
            q = fresh("q")
            emit(f"{q} = {rest} // {sizes[d]}")
            rest = q
    return idx
