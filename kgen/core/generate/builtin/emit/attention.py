"""Attention groups (`scaled_dot_product_attention` without mask or dropout): one fused kernel
in the flash-attention style. A program owns BLOCK_M query rows of one (batch, head): it sweeps
the keys in BLOCK_N blocks, computing scores with tl.dot, keeping a running row max and a running
sum of exp(score - max) (the online softmax), and accumulating exp(score - max) @ V rescaled
whenever the max grows. The score matrix never reaches memory; q, k and v are read once per
query block. Causal attention (top-left aligned, as torch's is_causal) stops at the diagonal."""

from __future__ import annotations

import math
from typing import Any

from torch.fx import Node

from kgen.core.generate.builtin import ops
from kgen.core.generate.builtin.codegen import Kernel, Launch, clip_block, finish_params, next_pow2, output_params
from kgen.core.generate.builtin.fusion import Group
from kgen.core.generate.builtin.graph import flat_to_coords, operand, shape_of
from kgen.core.generate.builtin.legality import attention_params

KIND = "attention"
SECTION = "matmul"


def emit(group: Group, name: str, sched: dict, consts: set[Node], pyname: Any, stored: list[Node]) -> Launch:
    import torch

    k = Kernel(name)
    node = group.core[0]
    p = attention_params(node)
    assert p is not None, "the plan makes attention groups of attention_params nodes only"
    q, kk, v = (operand(node, i) for i in range(3))
    qs, ks, vs = shape_of(q), shape_of(kk), shape_of(v)
    lead = list(qs[:-2])
    L, D, S, DV = qs[-2], qs[-1], ks[-2], vs[-1]
    BH = math.prod(lead)
    bm = clip_block(sched["BLOCK_M"], L, floor=16, host=True)
    bn = clip_block(sched["BLOCK_N"], S, floor=16, host=True)
    k.constexprs.update(BLOCK_M=bm, BLOCK_N=bn, BLOCK_D=max(16, next_pow2(D)), BLOCK_DV=max(16, next_pow2(DV)))
    output_params(k, stored)
    rank = len(qs)
    for tag, t in (("q", q), ("k", kk), ("v", v)):
        py = pyname(t)
        k.params += [tag] + [f"s{tag}{d}" for d in range(rank)]
        k.launch += [py] + [f"{py}.stride({d})" for d in range(rank)]
    out_dtype = node.meta["val"].dtype
    cdt = ops.tl_type(ops.compute_dtype(q.meta["val"].dtype))
    precision = ', input_precision="ieee"' if cdt == "tl.float32" or q.meta["val"].dtype == torch.float32 else ""
    k.emit("pm = tl.program_id(0)")
    k.emit("bh = tl.program_id(1)")
    coords = flat_to_coords(k.emit, k.var, "bh", lead)
    for tag in ("q", "k", "v"):
        terms = [f"{c} * s{tag}{d}" for d, c in enumerate(coords) if c is not None]
        k.emit(f"{tag}0 = {tag} + {' + '.join(terms) if terms else '0'}")
    k.emit("rm = pm * BLOCK_M + tl.arange(0, BLOCK_M)")
    k.emit("rd = tl.arange(0, BLOCK_D)")
    k.emit("rdv = tl.arange(0, BLOCK_DV)")
    r = rank
    k.emit(f"qt = tl.load(q0 + rm[:, None] * sq{r - 2} + rd[None, :] * sq{r - 1}, "
           f"mask=(rm[:, None] < {L}) & (rd[None, :] < {D}), other=0).to({cdt})")
    k.emit(f"m_i = tl.full([BLOCK_M], float(\"-inf\"), {cdt})")
    k.emit(f"l_i = tl.zeros([BLOCK_M], {cdt})")
    k.emit(f"acc = tl.zeros([BLOCK_M, BLOCK_DV], {cdt})")
    # causal: key j is visible to query i when j <= i, so later key blocks are skipped entirely
    hi = f"tl.minimum((pm + 1) * BLOCK_M, {S})" if p["causal"] else str(S)
    with k.block(f"for n0 in range(0, {hi}, BLOCK_N):"):
        k.emit("rn = n0 + tl.arange(0, BLOCK_N)")
        k.emit(f"kt = tl.load(k0 + rn[None, :] * sk{r - 2} + rd[:, None] * sk{r - 1}, "
               f"mask=(rn[None, :] < {S}) & (rd[:, None] < {D}), other=0).to({cdt})")
        k.emit(f"s = tl.dot(qt, kt{precision}) * {float(p['scale'])!r}")
        valid = f"(rn[None, :] < {S})" + (" & (rn[None, :] <= rm[:, None])" if p["causal"] else "")
        k.emit(f"s = tl.where({valid}, s, float(\"-inf\"))")
        k.emit("m_new = tl.maximum(m_i, tl.max(s, 1))")
        # a row with every score so far at -inf adds nothing (and rescales nothing)
        k.emit("alpha = tl.where(m_new == float(\"-inf\"), 1.0, tl.exp(m_i - m_new))")
        k.emit("pr = tl.where(s == float(\"-inf\"), 0.0, tl.exp(s - m_new[:, None]))")
        k.emit("l_i = l_i * alpha + tl.sum(pr, 1)")
        k.emit(f"vt = tl.load(v0 + rn[:, None] * sv{r - 2} + rdv[None, :] * sv{r - 1}, "
               f"mask=(rn[:, None] < {S}) & (rdv[None, :] < {DV}), other=0).to({cdt})")
        k.emit(f"acc = acc * alpha[:, None] + tl.dot(pr, vt{precision})")
        k.emit("m_i = m_new")
    # torch's math attention answers 0 for a row whose scores are all -inf
    k.emit("o = tl.where(l_i[:, None] == 0, 0.0, acc / l_i[:, None])")
    if node in stored:
        out = k.outputs[node]
        k.emit(f"tl.store({out} + bh * {L * DV} + rm[:, None] * {DV} + rdv[None, :], o.to({ops.tl_type(out_dtype)}), "
               f"mask=(rm[:, None] < {L}) & (rdv[None, :] < {DV}))")
    finish_params(k, stored)
    grid = f"(triton.cdiv({L}, {bm}), {BH})"
    return Launch(k, grid, stored, {"num_warps": sched["num_warps"], "num_stages": sched["num_stages"]})
