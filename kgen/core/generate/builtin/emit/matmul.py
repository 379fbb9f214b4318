"""Matmul groups (mm, bmm, addmm, ...): a tiled tl.dot kernel with grouped program order and a
fused pointwise epilogue."""

from __future__ import annotations

from typing import Any

import torch
from torch.fx import Node

from kgen.core.generate.builtin import ops, schedule
from kgen.core.generate.builtin.codegen import (
    BodyWriter,
    Ctx,
    Kernel,
    Launch,
    dot_blocks,
    finish_params,
    output_params,
    store_all,
)
from kgen.core.generate.builtin.emit.rowmatmul import prologue_blocks, prologue_tile
from kgen.core.generate.builtin.fusion import Group
from kgen.core.generate.builtin.graph import operand, shape_of

KIND = "matmul"
SECTION = "matmul"


def emit(group: Group, name: str, sched: dict, consts: set[Node], pyname: Any, stored: list[Node]) -> Launch:
    k = Kernel(name)
    node = group.core[0]
    a_node, b_node = _operands(node)
    a_shape, b_shape = shape_of(a_node), shape_of(b_node)
    batched = len(a_shape) == 3
    B = a_shape[0] if batched else 1
    M, Kd = a_shape[-2], a_shape[-1]
    N = b_shape[-1]
    # sibling matmuls (rowfuse.sibling_matmul): more products of the same A tile, one accumulator
    # each, so A is read once for all of them
    sibs = group.core[1:]
    bm, bn, bk, fit = dot_blocks(sched, M, N, Kd, a_node.meta["val"].element_size(), accumulators=1 + len(sibs))
    pro = group.prologue
    if pro is not None:
        bk, fit = prologue_blocks(sched, bm, bn, Kd, a_node.meta["val"].element_size())
    k.constexprs.update(BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk, GROUP_M=int(sched["GROUP_M"]))
    output_params(k, stored)
    pa, pb = pyname(a_node) if pro is None else "", pyname(b_node)
    if pro is None:
        k.params += ["a", "b", "sab", "sam", "sak", "sbb", "sbk", "sbn"]
        k.launch += [pa, pb, f"{pa}.stride(0)" if batched else "0", f"{pa}.stride({-2})", f"{pa}.stride({-1})",
                     f"{pb}.stride(0)" if batched else "0", f"{pb}.stride({-2})", f"{pb}.stride({-1})"]
    else:
        k.params += ["b", "sbb", "sbk", "sbn"]
        k.launch += [pb, f"{pb}.stride(0)" if batched else "0", f"{pb}.stride({-2})", f"{pb}.stride({-1})"]
    for i, sib in enumerate(sibs, 1):
        ps = pyname(_operands(sib)[1])
        k.params += [f"b{i}", f"sbb{i}", f"sbk{i}", f"sbn{i}"]
        k.launch += [ps, f"{ps}.stride(0)" if batched else "0", f"{ps}.stride({-2})", f"{ps}.stride({-1})"]
    k.emit("pid = tl.program_id(0)")
    k.emit("bid = tl.program_id(1)")
    k.emit(f"num_m = tl.cdiv({M}, BLOCK_M)")
    k.emit(f"num_n = tl.cdiv({N}, BLOCK_N)")
    k.emit("# grouped ordering so neighbouring programs share rows of A in cache")
    k.emit("width = GROUP_M * num_n")
    k.emit("first_m = (pid // width) * GROUP_M")
    k.emit("gsize = tl.minimum(num_m - first_m, GROUP_M)")
    k.emit("pm = first_m + (pid % width) % gsize")
    k.emit("pn = (pid % width) // gsize")
    k.emit("rm = pm * BLOCK_M + tl.arange(0, BLOCK_M)")
    k.emit("rn = pn * BLOCK_N + tl.arange(0, BLOCK_N)")
    k.emit("rk = tl.arange(0, BLOCK_K)")
    if pro is None:
        k.emit("a_ptrs = a + bid * sab + rm[:, None] * sam + rk[None, :] * sak")
    else:
        prologue_tile(k, pro, group, consts, pyname, M, Kd, a_node.meta["val"].dtype)
    k.emit("b_ptrs = b + bid * sbb + rk[:, None] * sbk + rn[None, :] * sbn")
    for i in range(1, 1 + len(sibs)):
        k.emit(f"b{i}_ptrs = b{i} + bid * sbb{i} + rk[:, None] * sbk{i} + rn[None, :] * sbn{i}")
    fp64 = node.meta["val"].dtype == torch.float64
    for i in range(1 + len(sibs)):
        k.emit(f"acc{i or ''} = tl.zeros([BLOCK_M, BLOCK_N], {'tl.float64' if fp64 else 'tl.float32'})")
    with k.block(f"for k0 in range(0, {Kd}, BLOCK_K):"):
        if pro is None:
            k.emit(f"ta = tl.load(a_ptrs, mask=(rm[:, None] < {M}) & (rk[None, :] + k0 < {Kd}), other=0.0)")
        precision = schedule.dot_precision(sched, node.meta["val"].dtype)
        for i in range(1 + len(sibs)):
            s = str(i) if i else ""
            k.emit(f"tb{s} = tl.load(b{s}_ptrs, mask=(rk[:, None] + k0 < {Kd}) & (rn[None, :] < {N}), other=0.0)")
            k.emit(f"acc{s} = tl.dot(ta, tb{s}, acc{s}{precision})")
        if pro is None:
            k.emit("a_ptrs += BLOCK_K * sak")
        for i in range(1 + len(sibs)):
            s = str(i) if i else ""
            k.emit(f"b{s}_ptrs += BLOCK_K * sbk{s}")
    k.emit(f"mask = (rm[:, None] < {M}) & (rn[None, :] < {N})")
    k.emit(f"flat = bid * {M * N} + rm[:, None] * {N} + rn[None, :]")
    natural = shape_of(node)
    names = ["bid", "rm[:, None]", "rn[None, :]"] if batched else ["rm[:, None]", "rn[None, :]"]
    dim_idx: list[str | None] = [i if s > 1 else None for i, s in zip(names, natural)]
    ctx = Ctx(k, "mask", "flat", natural=natural, dim_idx=dim_idx)
    writer = BodyWriter(group, consts, pyname)
    for i, mm_node in enumerate(group.core):
        s = str(i) if i else ""
        out_dtype = mm_node.meta["val"].dtype
        if ops.packet(mm_node) == "addmm":
            beta: Any = mm_node.kwargs.get("beta", 1)
            alpha: Any = mm_node.kwargs.get("alpha", 1)
            bias = writer.tensor(ctx, mm_node.args[0], natural)
            text = f"acc{s}" if alpha == 1 else f"acc{s} * {float(alpha)!r}"
            btxt = bias if beta == 1 else f"{bias} * {float(beta)!r}"
            ctx.emit(f"mm{s} = {text} + {btxt}")
            ctx.values[mm_node] = (f"mm{s}", out_dtype)
        else:
            ctx.values[mm_node] = (f"acc{s}", out_dtype)
    writer.nodes(ctx, group.epi)
    store_all(ctx, k, group.core + group.epi, stored)
    finish_params(k, stored)
    grid = f"(triton.cdiv({M}, {bm}) * triton.cdiv({N}, {bn}), {B})"
    return Launch(k, grid, stored, {"num_warps": fit["num_warps"], "num_stages": fit["num_stages"]})


def _operands(node: Node) -> tuple[Node, Node]:
    """(A, B) of a matmul node."""
    return (operand(node, 1), operand(node, 2)) if ops.packet(node) == "addmm" else (operand(node, 0), operand(node, 1))
