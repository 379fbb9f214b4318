"""Data-movement ops lowered as loads at computed positions: cat, flip, embedding, index_select,
gather.

They run in the output's index space like pointwise ops (and fuse with the pointwise work
around them), but read their sources at positions derived from the output position: shifted
along the cat dim, or looked up in an index tensor. Sources must be in memory (the fusion pass
keeps them out of the consumer's group). Out-of-range indices read 0 instead of faulting.
"""

from __future__ import annotations

from typing import Any

from kgen.core.generate.builtin import ops
from kgen.core.generate.builtin.fusion import shape_of

INDEXED_OPS = {"cat", "embedding", "index_select", "gather", "flip"}


def can_lower(node: Any) -> bool:
    import torch

    name = ops.packet(node)
    if name not in INDEXED_OPS:
        return False
    val = node.meta.get("val")
    if not isinstance(val, torch.Tensor) or str(val.dtype) not in ops.TL_TYPES or val.dim() == 0:
        return False
    if name == "cat":
        parts = node.args[0]
        return all(hasattr(p, "meta") and str(p.meta["val"].dtype) in ops.TL_TYPES for p in parts)
    if name == "embedding":
        return node.args[0].meta["val"].dim() == 2
    if name == "flip":
        return hasattr(node.args[0], "meta")
    return all(hasattr(a, "meta") for a in (node.args[0], node.args[2]))


def _idx(dims: list[str | None], d: int) -> str:
    return dims[d] if dims[d] is not None else "0"


def _gather_load(ctx: Any, py: str, shape: tuple, pos: list[str], extra_mask: str | None, dtype: Any) -> str:
    """Load `py` (shape `shape`, its own strides) at per-dim positions `pos`."""
    p, strides = ctx.k.tensor_param(py, tuple(shape))
    terms = [f"({q}) * {s}" for q, s in zip(pos, strides) if s is not None]
    off = " + ".join(terms) if terms else f"0 * {ctx.flat}"
    v = ctx.k.var("g")
    mask = ctx.mask if extra_mask is None else f"{ctx.mask} & {extra_mask}"
    ctx.emit(f"{v} = tl.load({p} + {off}, mask={mask}, other=0)"
             f".to({ops.tl_type(ops.compute_dtype(dtype))})")
    return v


def _index_value(writer: Any, ctx: Any, index: Any, pos: list[str]) -> str:
    """An integer index tensor read at `pos` (its own shape)."""
    shape = shape_of(index)
    v = _gather_load(ctx, writer.pyname(index), shape, pos, None, index.meta["val"].dtype)
    return v


def lower(writer: Any, ctx: Any, node: Any) -> str:
    name = ops.packet(node)
    out = shape_of(node)
    dims = ctx.dims_for(out)
    dtype = node.meta["val"].dtype
    cdt = ops.tl_type(ops.compute_dtype(dtype))
    if name == "cat":
        rank = len(out)
        dim = int(node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)) % rank
        here = _idx(dims, dim)
        result = ctx.k.var("cat")
        ctx.emit(f"{result} = tl.zeros_like({ctx.flat}).to({cdt})")
        start = 0
        for part in node.args[0]:
            shape = shape_of(part)
            if len(shape) != rank or shape[dim] == 0:
                continue  # legacy empty 1-d inputs contribute nothing
            size = shape[dim]
            pos = [(f"({here} - {start})" if d == dim else _idx(dims, d)) for d in range(rank)]
            inside = f"(({here} >= {start}) & ({here} < {start + size}))"
            v = _gather_load(ctx, writer.pyname(part), shape, pos, inside, dtype)
            ctx.emit(f"{result} = tl.where({inside}, {v}, {result})")
            start += size
        return result
    if name == "flip":
        flipped = {int(d) % len(out) for d in node.args[1]}
        pos = [(f"({out[d] - 1} - {_idx(dims, d)})" if d in flipped else _idx(dims, d)) for d in range(len(out))]
        return _gather_load(ctx, writer.pyname(node.args[0]), out, pos, None, dtype)
    if name == "embedding":
        weight, indices = node.args[0], node.args[1]
        rows = shape_of(weight)[0]
        i = _index_value(writer, ctx, indices, [_idx(dims, d) for d in range(len(out) - 1)])
        ok = f"(({i} >= 0) & ({i} < {rows}))"
        return _gather_load(ctx, writer.pyname(weight), shape_of(weight), [i, _idx(dims, len(out) - 1)], ok, dtype)
    src, index = node.args[0], node.args[2]
    src_shape = shape_of(src)
    rank = max(1, len(src_shape))
    dim = int(node.args[1]) % rank
    if name == "index_select":
        i = _index_value(writer, ctx, index, [_idx(dims, dim)])
    else:  # gather: the index has the output's shape
        i = _index_value(writer, ctx, index, [_idx(dims, d) for d in range(len(out))])
    ok = f"(({i} >= 0) & ({i} < {src_shape[dim] if src_shape else 1}))"
    pos = [(i if d == dim else _idx(dims, d)) for d in range(len(src_shape))]
    return _gather_load(ctx, writer.pyname(src), src_shape, pos, ok, dtype)
