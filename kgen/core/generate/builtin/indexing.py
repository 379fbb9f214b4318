"""Data-movement ops lowered as loads at computed positions: cat, flip, embedding, index_select,
gather, constant_pad_nd, repeat and advanced indexing (`index`, so also reflect/replicate padding
and nearest upsampling, which decompose to it).

They run in the output's index space like pointwise ops (and fuse with the pointwise work
around them), but read their sources at positions derived from the output position: shifted
along the cat dim, or looked up in an index tensor. Sources must be in memory (the fusion pass
keeps them out of the consumer's group). Out-of-range indices read 0 instead of faulting.

Which nodes qualify is legality.index_ok; this module writes their loads for BodyWriter.
"""

from __future__ import annotations

from typing import Any

from kgen.core.generate.builtin import ops
from kgen.core.generate.builtin.graph import shape_of, trace
from kgen.core.generate.builtin.sizes import sized


def _idx(dims: list[str | None], d: int) -> str:
    v = dims[d]
    return v if v is not None else "0"


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
    root, _ = trace(index)
    if root in writer.consts and ops.iota(root) is None:  # a uniform constant index (torch.full) is inlined
        return f"(tl.zeros_like({ctx.flat}) + {ops.literal(int(ops.const_fill(root)))})"
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
    if name == "constant_pad_nd":
        return _pad(writer, ctx, node, out, dims, dtype)
    if name == "repeat":
        src = node.args[0]
        shape = shape_of(src)
        lead = len(out) - len(shape)
        pos = [(f"({_idx(dims, d + lead)} % {size})" if size != out[d + lead] else _idx(dims, d + lead))
               for d, size in enumerate(shape)]
        return _gather_load(ctx, writer.pyname(src), shape, pos, None, dtype)
    if name in ("index", "_unsafe_index"):
        return _advanced_index(writer, ctx, node, out, dims, dtype)
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


def _pad(writer: Any, ctx: Any, node: Any, out: tuple, dims: list, dtype: Any) -> str:
    """F.pad constant mode: pads come in (low, high) pairs from the last dim backwards; a negative
    pad crops. A position outside the source reads the fill value."""
    src = node.args[0]
    shape = shape_of(src)
    pads = list(node.args[1])
    fill = node.args[2] if len(node.args) > 2 else node.kwargs.get("value", 0)
    pos, inside = [], []
    for d in range(len(shape)):
        k = len(shape) - 1 - d
        low = int(pads[2 * k]) if 2 * k < len(pads) else 0
        here = _idx(dims, d)
        if low == 0 and out[d] == shape[d]:
            pos.append(here)
            continue
        q = f"({here} - {low})" if low > 0 else (f"({here} + {-low})" if low < 0 else here)
        pos.append(q)
        if low > 0:
            inside.append(f"({q} >= 0)")
        if out[d] - 1 - low >= shape[d]:
            inside.append(f"({q} < {shape[d]})")
    ok = " & ".join(inside) if inside else None
    v = _gather_load(ctx, writer.pyname(src), shape, pos, f"({ok})" if ok else None, dtype)
    if ok is None:
        return v
    cdt = ops.compute_dtype(dtype)
    lit = ops.literal(float(fill) if cdt.is_floating_point else (bool(fill) if str(cdt) == "torch.bool" else int(fill)))
    r = ctx.k.var("pad")
    ctx.emit(f"{r} = tl.where({ok}, {v}, {lit})")
    return r


def _advanced_index(writer: Any, ctx: Any, node: Any, out: tuple, dims: list, dtype: Any) -> str:
    """x[i0, :, i2, ...] with integer tensors. The index tensors broadcast to one shape B; B's dims
    replace the indexed dims in place when those are adjacent, else they lead the output."""
    import torch

    src = node.args[0]
    shape = shape_of(src)
    indices = list(node.args[1]) + [None] * (len(shape) - len(node.args[1]))
    given = [d for d, i in enumerate(indices) if i is not None]
    bshape = tuple(sized(s) for s in torch.broadcast_shapes(*[tuple(i.meta["val"].shape) for i in indices if i is not None]))
    adjacent = given == list(range(given[0], given[-1] + 1))
    b_at = given[0] if adjacent else 0
    bdims = list(range(b_at, b_at + len(bshape)))
    rest = iter(d for d in range(len(out)) if d not in bdims)
    pos: list[str] = []
    oks: list[str] = []
    for d, index in enumerate(indices):
        if index is None:
            pos.append(_idx(dims, next(rest)))
            continue
        ishape = shape_of(index)
        lead = len(bshape) - len(ishape)
        i = _index_value(writer, ctx, index, [_idx(dims, bdims[lead + k]) for k in range(len(ishape))])
        w = ctx.k.var("ix")
        ctx.emit(f"{w} = tl.where({i} < 0, {i} + {shape[d]}, {i})")  # negative indices count from the end
        pos.append(w)
        oks.append(f"({w} >= 0) & ({w} < {shape[d]})")
    return _gather_load(ctx, writer.pyname(src), shape, pos, "(" + " & ".join(oks) + ")", dtype)
