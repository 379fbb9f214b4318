"""Rowmatmul groups (rowfuse.py): a tl.dot kernel whose tile owns whole output rows, and the
reduction stages of the rows it holds run on the accumulator (emit/reduction.stages).

The matmul's columns are laid out padded: G runs of C columns (the reduced lanes of one row of
the reduction) at virtual columns g * CB + c, with CB and GB the next powers of two of C and G.
So the [BLOCK_M, GB * CB] accumulator reshapes, row-major, into [BLOCK_M * GB, CB]: one tile row
per reduction row (output row m, run g), the layout the reduction stages index with `rows`
(m * G + g over the batch too) and `ks` (the lane c)."""

from __future__ import annotations

from typing import Any

import torch
from torch.fx import Node

from kgen.core.generate.builtin import ops, schedule
from kgen.core.generate.builtin.codegen import (
    BodyWriter,
    Ctx,
    HostBlock,
    Kernel,
    Launch,
    clip_block,
    finish_params,
    output_params,
    store_all,
)
from kgen.core.generate.builtin.emit.reduction import stages, whole_rows
from kgen.core.generate.builtin.fusion import Group
from kgen.core.generate.builtin.graph import operand, shape_of, trace
from kgen.core.generate.builtin.rowfuse import pow2

KIND = "rowmatmul"
SECTION = "matmul"

# most accumulator elements per program: BLOCK_M shrinks (to 16, tl.dot's least) as rows widen
ROW_TILE = 8192


def blocks(sched: dict, M: Any, width: int, Kd: Any, elem_bytes: int) -> tuple[Any, Any, dict]:
    """BLOCK_M and BLOCK_K for a tile `width` columns wide (fixed: the whole padded row), and the
    schedule fitted to the target (schedule.fit_matmul), like codegen.dot_blocks."""
    bm = clip_block(sched["BLOCK_M"], M, floor=16, cap=max(16, ROW_TILE // width), host=True)
    bk = clip_block(sched["BLOCK_K"], Kd, floor=16, host=True)

    def upper(block: Any, knob: Any) -> int:
        return int(knob) if isinstance(block, HostBlock) else int(block)

    top_m = min(upper(bm, sched["BLOCK_M"]), max(16, ROW_TILE // width))
    fit = schedule.fit_matmul(sched, top_m, width, upper(bk, sched["BLOCK_K"]), elem_bytes)
    if fit["BLOCK_K"] != upper(bk, sched["BLOCK_K"]):
        bk = clip_block(fit["BLOCK_K"], Kd, floor=16, host=True)
    return bm, bk, fit


def emit(group: Group, name: str, sched: dict, consts: set[Node], pyname: Any, stored: list[Node]) -> Launch:
    k = Kernel(name)
    node = group.head
    assert node is not None, "a rowmatmul group has its matmul"
    kind = ops.packet(node)
    a_node, b_node = (operand(node, 1), operand(node, 2)) if kind == "addmm" else (operand(node, 0), operand(node, 1))
    a_shape = shape_of(a_node)
    batched = len(a_shape) == 3
    B = a_shape[0] if batched else 1
    M, Kd = a_shape[-2], a_shape[-1]
    N = int(shape_of(node)[-1])
    C = int(group.numel // group.out_numel)
    G = N // C
    GB = pow2(G)
    CB = max(pow2(C), 16 // GB)   # tl.dot needs 16 columns at least
    width = GB * CB
    bm, bk, fit = blocks(sched, M, width, Kd, a_node.meta["val"].element_size())
    rb: Any = HostBlock(f"{bm} * {GB}") if isinstance(bm, HostBlock) else bm * GB
    k.constexprs.update(BLOCK_M=bm, BLOCK_N=width, BLOCK_K=bk, RBLOCK=rb, KBLOCK=CB)
    output_params(k, stored)
    pa, pb = pyname(a_node), pyname(b_node)
    k.params += ["a", "b", "sab", "sam", "sak", "sbb", "sbk", "sbn"]
    k.launch += [pa, pb, f"{pa}.stride(0)" if batched else "0", f"{pa}.stride({-2})", f"{pa}.stride({-1})",
                 f"{pb}.stride(0)" if batched else "0", f"{pb}.stride({-2})", f"{pb}.stride({-1})"]
    k.emit("pid = tl.program_id(0)")
    k.emit("bid = tl.program_id(1)")
    k.emit("rm = pid * BLOCK_M + tl.arange(0, BLOCK_M)")
    k.emit("# every column of the row, padded: run g of C columns at virtual columns g * KBLOCK + c")
    k.emit("vn = tl.arange(0, BLOCK_N)")
    k.emit(f"rn = (vn // KBLOCK) * {C} + vn % KBLOCK")
    k.emit(f"nmask = (vn % KBLOCK < {C}) & (vn // KBLOCK < {G})")
    k.emit("rk = tl.arange(0, BLOCK_K)")
    k.emit("a_ptrs = a + bid * sab + rm[:, None] * sam + rk[None, :] * sak")
    k.emit("b_ptrs = b + bid * sbb + rk[:, None] * sbk + rn[None, :] * sbn")
    fp64 = node.meta["val"].dtype == torch.float64
    k.emit(f"acc = tl.zeros([BLOCK_M, BLOCK_N], {'tl.float64' if fp64 else 'tl.float32'})")
    with k.block(f"for k0 in range(0, {Kd}, BLOCK_K):"):
        k.emit(f"ta = tl.load(a_ptrs, mask=(rm[:, None] < {M}) & (rk[None, :] + k0 < {Kd}), other=0.0)")
        k.emit(f"tb = tl.load(b_ptrs, mask=(rk[:, None] + k0 < {Kd}) & nmask[None, :], other=0.0)")
        precision = schedule.dot_precision(sched, node.meta["val"].dtype)
        k.emit(f"acc = tl.dot(ta, tb, acc{precision})")
        k.emit("a_ptrs += BLOCK_K * sak")
        k.emit("b_ptrs += BLOCK_K * sbk")
    if GB > 1:
        k.emit("acc = tl.reshape(acc, [RBLOCK, KBLOCK])")
    k.emit("# one tile row per reduction row: output row m, run g")
    k.emit("rr = tl.arange(0, RBLOCK)")
    if GB == 1:
        k.emit("rm1 = pid * BLOCK_M + rr")
        k.emit(f"rows1 = bid * {M} + rm1")
        k.emit(f"rmask1 = rm1 < {M}")
    else:
        k.emit(f"rm1 = pid * BLOCK_M + rr // {GB}")
        k.emit(f"rows1 = (bid * {M} + rm1) * {G} + rr % {GB}")
        k.emit(f"rmask1 = (rm1 < {M}) & (rr % {GB} < {G})")
    k.emit("rows = rows1[:, None]")
    k.emit("rmask = rmask1[:, None]")
    base = Ctx(k, "rmask", "rows")
    epi = Ctx(k, "rmask1", "rows1")
    whole = whole_rows(k, group, C)
    writer = BodyWriter(group, consts, pyname)
    out_dtype = node.meta["val"].dtype
    if kind == "addmm":
        beta: Any = node.kwargs.get("beta", 1)
        alpha: Any = node.kwargs.get("alpha", 1)
        bias = writer.tensor(whole, node.args[0], shape_of(node))
        text = "acc" if alpha == 1 else f"acc * {float(alpha)!r}"
        btxt = bias if beta == 1 else f"{bias} * {float(beta)!r}"
        whole.emit(f"mm = {text} + {btxt}")
        whole.values[node] = ("mm", out_dtype)
    else:
        whole.values[node] = ("acc", out_dtype)
    store_all(whole, k, [node], stored)
    stages(k, group, writer, stored, base, epi, whole, C)
    finish_params(k, stored)
    grid = f"(triton.cdiv({M}, {bm}), {B})"
    return Launch(k, grid, stored, {"num_warps": fit["num_warps"], "num_stages": fit["num_stages"]})


def prologue_blocks(sched: dict, bm: Any, bn: Any, Kd: Any, elem_bytes: int) -> tuple[int, dict]:
    """BLOCK_K of a matmul whose A rows its prologue computes: the whole row (one K step), and
    the schedule fitted to the target with it (only warps and stages can give)."""
    bk = max(16, pow2(int(Kd)))

    def upper(block: Any, knob: Any) -> int:
        return int(knob) if isinstance(block, HostBlock) else int(block)

    fit = schedule.fit_matmul(sched, upper(bm, sched["BLOCK_M"]), upper(bn, sched["BLOCK_N"]), bk, elem_bytes)
    return bk, dict(fit, BLOCK_K=bk)


def prologue_tile(k: Kernel, pro: Group, group: Group, consts: set[Node], pyname: Any, M: Any, Kd: Any,
                  dtype: Any) -> None:
    """`ta`, the [BLOCK_M, BLOCK_K] A tile of a matmul computed by its prologue reduction group
    `pro` (rowfuse.prologue_of) for the program's rows `rm`: its stages run on one register tile
    per row block (statistics, then the normalised values), nothing stored."""
    k.emit("# the A tile: the prologue's rows, whole (BLOCK_K covers K)")
    k.emit("rows1 = rm")
    k.emit(f"rmask1 = rm < {M}")
    k.emit("rows = rm[:, None]")
    k.emit("rmask = rmask1[:, None]")
    k.constexprs.update(RBLOCK=k.constexprs["BLOCK_M"], KBLOCK=k.constexprs["BLOCK_K"])
    base = Ctx(k, "rmask", "rows")
    epi = Ctx(k, "rmask1", "rows1")
    whole = whole_rows(k, pro, Kd, mask="pmask")
    writer = BodyWriter(pro, consts, pyname)
    rows_done = stages(k, pro, writer, [], base, epi, whole, Kd)
    # the per-element values of the last stage (a normalised row) are the tile: computed here,
    # where no stage has to sweep them
    for n, (text, dtype) in rows_done.items():
        whole.values.setdefault(n, (f"{text}[:, None]", dtype))
    writer.nodes(whole, [n for n in pro.pro if n not in whole.values])
    a_node = (operand(group.core[0], 1) if ops.packet(group.core[0]) == "addmm" else operand(group.core[0], 0))
    root = trace(a_node)[0]
    text, _ = whole.values[root]
    k.emit(f"ta = tl.where(pmask, {text}, 0.0).to({ops.tl_type(dtype)})")
