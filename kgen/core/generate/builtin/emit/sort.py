"""Sort groups (sort, topk, median over a dim, kthvalue) for rows that fit one block: each row is
sorted in registers by a bitonic network (`tl.sort`) over packed 64-bit keys (the value's
order-preserving 32-bit pattern above its index, so ties keep index order and the index comes
back with the value). A pointwise prologue fuses before the sort; per-element work that reads
single positions of the sorted row (a top-k threshold) fuses after it; a median/kthvalue result
takes a per-row epilogue. Rows longer than legality.SORT_MAX stay a torch fallback."""

from __future__ import annotations

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
    next_pow2,
    output_params,
    row_space,
    store_all,
)
from kgen.core.generate.builtin.fusion import Fuser, Group
from kgen.core.generate.builtin.graph import arg, shape_of, tensor_args, trace
from kgen.core.generate.builtin.legality import sort_spec

KIND = "sort"
SECTION = "reduction"
SORT_TILE = 4096   # keys per program: int64 keys stay in registers on sm_80/sm_90 without spills


def emit(group: Group, name: str, sched: dict, consts: set[Node], pyname: Any, stored: list[Node]) -> Launch:
    k = Kernel(name)
    node = group.core[0]
    spec = sort_spec(node)
    assert spec is not None
    op, dim, descending = spec["op"], spec["dim"], spec["descending"]
    K, R = group.shape[dim], group.out_numel
    kb = next_pow2(K)
    rb = clip_block(sched["RBLOCK"], R, cap=max(1, SORT_TILE // kb))
    k.constexprs.update(RBLOCK=rb, KBLOCK=kb)
    output_params(k, stored)
    writer = BodyWriter(group, consts, pyname)
    items = {int(arg(g, 1)): g for g in group.extra if g.args[0] is node}
    k.emit("rows = tl.program_id(0) * RBLOCK + tl.arange(0, RBLOCK)[:, None]")
    k.emit(f"rmask = rows < {R}")
    ctx = Ctx(k, "mask", "flat", natural=group.shape)
    ctx.emit("ks = tl.arange(0, KBLOCK)[None, :]")
    ctx.emit(f"kmask = ks < {K}")
    ctx.emit("mask = rmask & kmask")
    ctx.dim_idx = row_space(ctx, group, "rows", [dim], "ks")
    ctx.lanes = ({dim}, "kmask")
    stage = group.stage_of.get
    writer.nodes(ctx, [n for n in group.pro if stage(n, 0) == 0])
    src = spec["x"]
    x = writer.tensor(ctx, src, shape_of(src))
    is_float = src.meta["val"].dtype.is_floating_point
    if is_float:
        # IEEE bits made order-preserving as signed ints (negatives flip their magnitude bits);
        # every NaN becomes the one NaN above +inf (torch sorts NaN last) and -0.0 equals 0.0
        ctx.emit(f"sf = {x}.to(tl.float32)")
        ctx.emit("sb = tl.where(sf != sf, 0x7FC00000, tl.where(sf == 0, 0, sf.to(tl.int32, bitcast=True)))")
        ctx.emit("sk = sb ^ ((sb >> 31) & 0x7FFFFFFF)")
    else:
        ctx.emit(f"sk = {x}.to(tl.int32)")
    if descending:
        ctx.emit("sk = ~sk   # descending: the reversed order, ties still by ascending index")
    ctx.emit("key = tl.where(mask, (sk.to(tl.int64) << 32) | ks.to(tl.int64), 0x7FFFFFFFFFFFFFFF)")
    ctx.emit("key = tl.sort(key, 1)")
    ctx.emit("hi = key >> 32")
    ctx.emit("sidx = key - (hi << 32)")
    ctx.emit("sv = hi.to(tl.int32)")
    if descending:
        ctx.emit("sv = ~sv")
    if is_float:
        ctx.emit("sval = (sv ^ ((sv >> 31) & 0x7FFFFFFF)).to(tl.float32, bitcast=True)")
    else:
        ctx.emit("sval = sv")
    sorted_regs = {0: "sval", 1: "sidx"}
    # per-element work after the sort reads single positions of the sorted row
    post = [n for n in group.pro if stage(n, 0) == 1]
    for n in post:
        for a in tensor_args(n):
            pos = Fuser.pick(group, a)
            if pos is None or a in ctx.values:
                continue
            reg = k.var("pick")
            ctx.emit(f"{reg} = tl.sum(tl.where(ks == {pos}, {sorted_regs[_item_of(a, items)]}, 0), 1)[:, None]")
            ctx.values[a] = (reg, a.meta["val"].dtype)
    writer.nodes(ctx, post)
    store_all(ctx, k, group.pro, stored)
    out_dtypes = {i: g.meta["val"].dtype for i, g in items.items()}
    if op in ("sort", "topk"):
        width = K if op == "sort" else spec["k"]
        out_shape = list(group.shape)
        out_shape[dim] = width
        cs = contiguous_strides(tuple(out_shape))
        terms = [f"{i} * {cs[d]}" for d, i in enumerate(ctx.dim_idx) if i is not None and d != dim]
        ctx.emit(f"oflat = {' + '.join(terms + [f'ks * {cs[dim]}'])}")
        for i, item in items.items():
            if item in stored:
                ctx.emit(f"tl.store({k.outputs[item]} + oflat, {sorted_regs[i]}.to({ops.tl_type(out_dtypes[i])}), "
                         f"mask=rmask & (ks < {width}))")
    else:
        k.emit("rows1 = tl.program_id(0) * RBLOCK + tl.arange(0, RBLOCK)")
        k.emit(f"rmask1 = rows1 < {R}")
        epi = Ctx(k, "rmask1", "rows1")
        if op == "median":
            # torch's lower median; a row with a NaN answers NaN at its first NaN (sorted last,
            # ties by index, so the first NaN sits at K - count)
            m = (K - 1) // 2
            if is_float:
                ctx.emit("nans = tl.sum((mask & (sf != sf)).to(tl.int32), 1)")
                ctx.emit(f"pos = tl.where(nans > 0, {K} - nans, {m})[:, None]")
            else:
                ctx.emit(f"pos = {m}")
        else:
            ctx.emit(f"pos = {spec['k'] - 1}")
        for i, item in items.items():
            reg = f"sel{i}"
            ctx.emit(f"{reg} = tl.sum(tl.where(ks == pos, {sorted_regs[i]}, 0), 1)")
            epi.values[item] = (reg, out_dtypes[i])
        writer.nodes(epi, group.epi)
        store_all(epi, k, list(items.values()) + group.epi, stored)
    finish_params(k, stored)
    return Launch(k, f"(triton.cdiv({R}, {rb}),)", stored, {"num_warps": sched["num_warps"]})


def _item_of(view: Node, items: dict[int, Node]) -> int:
    """Which output (0 values, 1 indices) a picked view reads."""
    root, _ = trace(view)
    return next(i for i, g in items.items() if g is root)
