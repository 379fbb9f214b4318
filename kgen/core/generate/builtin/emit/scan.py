"""Scan groups (cumsum, cumprod, logcumsumexp, cummax/cummin with indices): rows in RBLOCK blocks, the scanned
dim in KBLOCK chunks with a carry between chunks; reduction schedule knobs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from torch.fx import Node

from kgen.core.generate.builtin import ops
from kgen.core.generate.builtin.codegen import (
    BodyWriter,
    Ctx,
    Kernel,
    Launch,
    clip_block,
    contiguous_strides,
    finish_params,
    output_params,
    row_space,
    store_all,
)
from kgen.core.generate.builtin.fusion import Group
from kgen.core.generate.builtin.graph import operand, shape_of

KIND = "scan"
SECTION = "reduction"


def emit(group: Group, name: str, sched: dict, consts: set[Node], pyname: Any, stored: list[Node]) -> Launch:
    k = Kernel(name)
    node = group.core[0]
    dim = group.dims[0]
    K = group.shape[dim] if group.shape else 1
    R = group.numel // max(1, K)
    kb = clip_block(sched["KBLOCK"], K)
    rb = clip_block(sched["RBLOCK"], R, cap=max(1, int(sched["max_tile"]) // kb), host=True)
    k.constexprs.update(RBLOCK=rb, KBLOCK=kb)
    output_params(k, stored)
    writer = BodyWriter(group, consts, pyname)
    if ops.packet(node) in ("cummax", "cummin"):
        return _emit_select(k, group, node, writer, stored, dim, K, R, rb, sched)
    out_dtype = node.meta["val"].dtype
    acc_t = ops.tl_type(ops.compute_dtype(out_dtype))
    kind = ops.packet(node)
    prod = kind == "cumprod"
    neutral: Any = {"cumprod": 1, "logcumsumexp": 'float("-inf")'}.get(kind, 0)
    with _chunks(k, group, writer, node, dim, K, R, acc_t, neutral,
                 [f"carry = tl.full([RBLOCK], {neutral}, {acc_t})"]) as ctx:
        if kind == "logcumsumexp":
            ctx.emit("sc = _kgen_logaddexp(carry[:, None], tl.associative_scan(sx, 1, _kgen_logaddexp))")
            # the new carry: the scan at the chunk's last valid lane (exactly one per row)
            ctx.emit(f"last = ks == tl.minimum(k0 + KBLOCK, {K}) - 1")
            ctx.emit("carry = tl.sum(tl.where(last, sc, 0.0), 1)")
        elif prod:
            ctx.emit("sc = tl.cumprod(sx, 1) * carry[:, None]")
            ctx.emit("carry = carry * tl.reduce(sx, 1, _kgen_mul)")
        else:
            ctx.emit("sc = tl.cumsum(sx, 1) + carry[:, None]")
            ctx.emit("carry = carry + tl.sum(sx, 1)")
        ctx.values[node] = ("sc", out_dtype)
        # an epilogue flip (fusion.Fuser._flip_store) is the value of its source stored at the
        # mirrored positions: the reversed scan writes its output once, in place of a flip kernel
        flips = [n for n in group.epi if ops.packet(n) == "flip"]
        writer.nodes(ctx, [n for n in group.epi if n not in flips])
        store_all(ctx, k, group.pro + group.core + [n for n in group.epi if n not in flips], stored)
        for n in flips:
            if n not in stored:
                continue
            value = writer.tensor(ctx, n.args[0], shape_of(n))
            dims_arg: Any = n.args[1]
            flipped = {int(d) % len(group.shape) for d in dims_arg}
            cs = contiguous_strides(group.shape)
            terms = [f"({group.shape[d] - 1} - {i}) * {cs[d]}" if d in flipped else f"{i} * {cs[d]}"
                     for d, i in enumerate(ctx.dim_idx or []) if i is not None]
            ctx.emit(f"tl.store({k.outputs[n]} + {' + '.join(terms) or '0'}, ({value}).to({ops.tl_type(n.meta['val'].dtype)}), "
                     f"mask={ctx.mask})")
    finish_params(k, stored)
    return Launch(k, f"(triton.cdiv({R}, {rb}),)", stored, {"num_warps": sched["num_warps"]})


@contextmanager
def _chunks(k: Kernel, group: Group, writer: BodyWriter, node: Node, dim: int, K: int, R: int, acc_t: str,
            neutral: int | str, carry_init: list[str]) -> Iterator[Ctx]:
    """A block of RBLOCK rows, its carry set up, and the loop over the scanned dim in KBLOCK
    chunks: yields each chunk's context, the group's prologue done and the scanned input in `sx`
    (`neutral` on masked lanes)."""
    k.emit("rows = tl.program_id(0) * RBLOCK + tl.arange(0, RBLOCK)[:, None]")
    k.emit(f"rmask = rows < {R}")
    for line in carry_init:
        k.emit(line)
    with k.block(f"for k0 in range(0, {K}, KBLOCK):"):
        ctx = Ctx(k, "mask", "flat", natural=group.shape)
        ctx.emit("ks = k0 + tl.arange(0, KBLOCK)[None, :]")
        ctx.emit(f"mask = rmask & (ks < {K})")
        ctx.dim_idx = row_space(ctx, group, "rows", [dim], "ks")
        writer.nodes(ctx, group.pro)
        x = writer.tensor(ctx, node.args[0], shape_of(operand(node, 0)))
        ctx.emit(f"sx = tl.where(mask, {x}.to({acc_t}), {neutral})")
        yield ctx


def _emit_select(k: Kernel, group: Group, node: Node, writer: BodyWriter, stored: list[Node], dim: int, K: int,
                 R: int, rb: int, sched: dict) -> Launch:
    """cummax/cummin: an associative scan over (value, index) pairs per chunk, merged with the
    carry (the running extreme and its index after the previous chunks)."""
    kind = ops.packet(node)
    vals = node.meta["val"]
    out_dtype = vals[0].dtype
    acc_t = ops.tl_type(ops.compute_dtype(out_dtype))
    combine = {"cummax": "_kgen_cummax", "cummin": "_kgen_cummin"}[kind]
    with _chunks(k, group, writer, node, dim, K, R, acc_t, 0,
                 [f"cv = tl.zeros([RBLOCK], {acc_t})", "ci = tl.full([RBLOCK], -1, tl.int64)"]) as ctx:
        ctx.emit("si = (ks + 0 * rows).to(tl.int64)")
        ctx.emit(f"sv, sj = tl.associative_scan((sx, si), 1, {combine})")
        # before the first chunk there is no carry (ci < 0): the chunk's own scan stands
        ctx.emit(f"mv, mj = {combine}(cv[:, None], ci[:, None], sv, sj)")
        ctx.emit("first = ci[:, None] < 0")
        ctx.emit("sv = tl.where(first, sv, mv)")
        ctx.emit("sj = tl.where(first, sj, mj)")
        # the new carry: the scan at the chunk's last valid lane
        ctx.emit(f"last = ks == tl.minimum(k0 + KBLOCK, {K}) - 1")
        ctx.emit("cv = tl.sum(tl.where(last, sv, 0), 1)")
        ctx.emit("ci = tl.sum(tl.where(last, sj, 0), 1)")
        for item in group.extra:
            if item.args[0] is node:
                ctx.values[item] = ("sv" if item.args[1] == 0 else "sj", item.meta["val"].dtype)
        writer.nodes(ctx, group.epi)
        store_all(ctx, k, group.pro + group.extra + group.epi, stored)
    finish_params(k, stored)
    return Launch(k, f"(triton.cdiv({R}, {rb}),)", stored, {"num_warps": sched["num_warps"]})
