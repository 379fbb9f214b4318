"""Scan groups (cumsum, cumprod): rows in RBLOCK blocks, the scanned dim in KBLOCK chunks with a
carry between chunks; reduction schedule knobs."""

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
    out_dtype = node.meta["val"].dtype
    acc_t = ops.tl_type(ops.compute_dtype(out_dtype))
    prod = ops.packet(node) == "cumprod"
    k.emit("rows = tl.program_id(0) * RBLOCK + tl.arange(0, RBLOCK)[:, None]")
    k.emit(f"rmask = rows < {R}")
    k.emit(f"carry = tl.full([RBLOCK], {1 if prod else 0}, {acc_t})")
    with k.block(f"for k0 in range(0, {K}, KBLOCK):"):
        ctx = Ctx(k, "mask", "flat", natural=group.shape)
        ctx.emit("ks = k0 + tl.arange(0, KBLOCK)[None, :]")
        ctx.emit(f"mask = rmask & (ks < {K})")
        ctx.dim_idx = row_space(ctx, group, "rows", [dim], "ks")
        writer.nodes(ctx, group.pro)
        x = writer.tensor(ctx, node.args[0], shape_of(operand(node, 0)))
        ctx.emit(f"sx = tl.where(mask, {x}.to({acc_t}), {1 if prod else 0})")
        if prod:
            ctx.emit("sc = tl.cumprod(sx, 1) * carry[:, None]")
            ctx.emit("carry = carry * tl.reduce(sx, 1, _kgen_mul)")
        else:
            ctx.emit("sc = tl.cumsum(sx, 1) + carry[:, None]")
            ctx.emit("carry = carry + tl.sum(sx, 1)")
        ctx.values[node] = ("sc", out_dtype)
        writer.nodes(ctx, group.epi)
        store_all(ctx, k, group.pro + group.core + group.epi, stored)
    finish_params(k, stored)
    return Launch(k, f"(triton.cdiv({R}, {rb}),)", stored, {"num_warps": sched["num_warps"]})
