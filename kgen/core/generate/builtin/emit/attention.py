"""Attention groups: one fused kernel in the flash-attention style, for
`scaled_dot_product_attention` (with or without a mask) and for the hand-written
matmul -> elementwise -> softmax -> matmul pattern (attention_match.py).

A program owns BLOCK_M query rows of one (batch, head): it sweeps the keys in BLOCK_N blocks,
computing scores with tl.dot, running the pattern's elementwise chain (scale, masks) on the tile,
keeping a running row max and a running sum of exp(score - max) (the online softmax), and
accumulating exp(score - max) @ V rescaled whenever the max grows. The score matrix never reaches
memory; q, k and v are read once per query block. Causal sdpa (top-left aligned, as torch's
is_causal) stops at the diagonal. A pattern without the second matmul returns the probabilities:
a second sweep recomputes each score tile and writes it normalised, once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
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
)
from kgen.core.generate.builtin.fusion import Group
from kgen.core.generate.builtin.graph import arg, flat_to_coords, operand, shape_of
from kgen.core.generate.builtin.legality import attention_params

KIND = "attention"
SECTION = "matmul"


@dataclass
class _Spec:
    q: Node                   # lead + [L, D]
    k: Node                   # lead + [S, D], or lead + [D, S] with k_t
    v: Node | None            # lead + [S, DV]; None: the probabilities are the result
    k_t: bool
    lead: list[int]
    scale: float | None
    causal: bool
    out: Node                 # the stored node
    mask: Node | None = None  # sdpa's attn_mask
    zero_empty: bool = True   # sdpa answers 0 for a row with every score -inf; the math answers NaN
    mm1: Node | None = None
    score: list[Node] = field(default_factory=list)
    broadcast: list[Node] = field(default_factory=list)
    eval_shape: dict = field(default_factory=dict)
    x: Node | None = None
    store_strides: list[int] | None = None   # of lead + [L, DV] in the output buffer


def _spec(group: Group) -> _Spec:
    m = group.pattern
    if m is None:
        node = group.core[0]
        p = attention_params(node)
        assert p is not None, "the plan makes sdpa attention groups of attention_params nodes only"
        mask = arg(node, 3, "attn_mask")
        return _Spec(q=operand(node, 0), k=operand(node, 1), v=operand(node, 2), k_t=False,
                     lead=list(shape_of(node)[:-2]), scale=p["scale"], causal=p["causal"], out=node,
                     mask=mask if isinstance(mask, Node) else None)
    order = {n: i for i, n in enumerate(m.mm1.graph.nodes)}
    spec = _Spec(q=m.q, k=m.k, v=m.v, k_t=True, lead=list(m.lead), scale=m.prescale if m.prescaled else None, causal=False, out=m.out,
                 zero_empty=False, mm1=m.mm1, score=m.score, eval_shape=m.eval_shape, x=m.x,
                 broadcast=sorted(m.broadcast, key=order.__getitem__))
    if m.store is not None:
        # the kernel writes the contiguous copy of permute(out): dim d of out lands at the copy's
        # dim perm.index(d)
        dims = spec.lead + [shape_of(m.q)[-2], shape_of(m.out)[-1]]
        cs = contiguous_strides(tuple(dims[p] for p in m.store_perm))
        spec.store_strides = [cs[m.store_perm.index(d)] for d in range(len(dims))]
    return spec


def emit(group: Group, name: str, sched: dict, consts: set[Node], pyname: Any, stored: list[Node]) -> Launch:
    import torch

    s = _spec(group)
    assert stored == [s.out], "only the attention result leaves the group"
    k = Kernel(name)
    qs, ks = shape_of(s.q), shape_of(s.k)
    L, D = qs[-2], qs[-1]
    S = ks[-1] if s.k_t else ks[-2]
    DV = shape_of(s.v)[-1] if s.v is not None else 0
    BH = math.prod(s.lead)
    bm = clip_block(sched["BLOCK_M"], L, floor=16, host=True)
    bn = clip_block(sched["BLOCK_N"], S, floor=16, host=True)
    k.constexprs.update(BLOCK_M=bm, BLOCK_N=bn, BLOCK_D=max(16, next_pow2(D)))
    if s.v is not None:
        k.constexprs["BLOCK_DV"] = max(16, next_pow2(DV))
    output_params(k, stored)
    operands = [("q", s.q), ("k", s.k)] + ([("v", s.v)] if s.v is not None else [])
    for tag, t in operands:
        py, rank = pyname(t), len(shape_of(t))
        k.params += [tag] + [f"s{tag}{d}" for d in range(rank)]
        k.launch += [py] + [f"{py}.stride({d})" for d in range(rank)]
    in_dtype = s.q.meta["val"].dtype
    cdt = ops.tl_type(ops.compute_dtype(in_dtype))
    precision = ', input_precision="ieee"' if cdt == "tl.float32" or in_dtype == torch.float32 else ""
    k.emit("pm = tl.program_id(0)")
    k.emit("bh = tl.program_id(1)")
    coords = flat_to_coords(k.emit, k.var, "bh", s.lead)
    for tag, t in operands:
        lead_dims = len(shape_of(t)) - 2
        terms = [f"{c} * s{tag}{d}" for d, c in enumerate(coords[len(coords) - lead_dims:]) if c is not None]
        k.emit(f"{tag}0 = {tag} + {' + '.join(terms) if terms else '0'}")
    k.emit("rm = pm * BLOCK_M + tl.arange(0, BLOCK_M)")
    k.emit("rd = tl.arange(0, BLOCK_D)")
    rq, rk = len(qs), len(ks)
    k.emit(f"qt = tl.load(q0 + rm[:, None] * sq{rq - 2} + rd[None, :] * sq{rq - 1}, "
           f"mask=(rm[:, None] < {L}) & (rd[None, :] < {D}), other=0).to({cdt})")
    # k^T tile [BLOCK_D, BLOCK_N]: dims (d, key) are (-1, -2) of k, or (-2, -1) of k^T
    sd, sn = (f"sk{rk - 2}", f"sk{rk - 1}") if s.k_t else (f"sk{rk - 1}", f"sk{rk - 2}")
    writer = BodyWriter(group, consts, pyname)
    score_shape = tuple(s.lead) + (L, S)
    dim_idx: list[str | None] = list(coords) + ["rm[:, None]", "rn[None, :]"]

    def scores() -> None:
        """Emit the score tile `s` of key block n0 (elementwise chain and masks applied)."""
        k.emit("rn = n0 + tl.arange(0, BLOCK_N)")
        k.emit(f"kt = tl.load(k0 + rn[None, :] * {sn} + rd[:, None] * {sd}, "
               f"mask=(rn[None, :] < {S}) & (rd[:, None] < {D}), other=0).to({cdt})")
        k.emit(f"s = tl.dot(qt, kt{precision})")
        if s.scale is not None:
            k.emit(f"s = s * {float(s.scale)!r}")
        if s.score or s.mask is not None:
            k.emit(f"sflat = bh * {L * S} + rm[:, None] * {S} + rn[None, :]")
            k.emit(f"smask = (rm[:, None] < {L}) & (rn[None, :] < {S})")
            ctx = Ctx(k, "smask", "sflat", natural=score_shape, dim_idx=dim_idx)
            ctx.cache[(BH, L, S)] = ["bh", "rm[:, None]", "rn[None, :]"]
            if s.mask is not None:
                mv = ctx.load(pyname(s.mask), score_shape, s.mask.meta["val"].dtype)
                if s.mask.meta["val"].dtype == torch.bool:
                    k.emit(f"s = tl.where({mv}, s, float(\"-inf\"))")
                else:
                    k.emit(f"s = s + {mv}")
            if s.score:
                assert s.mm1 is not None and s.x is not None
                ctx.values[s.mm1] = ("s", s.mm1.meta["val"].dtype)
                for n in s.broadcast:
                    writer.pointwise(ctx, n, at=s.eval_shape[n])
                writer.nodes(ctx, s.score)
                k.emit(f"s = ({ctx.values[s.x][0]}).to({cdt})")
        valid = f"(rn[None, :] < {S})" + (" & (rn[None, :] <= rm[:, None])" if s.causal else "")
        k.emit(f"s = tl.where({valid}, s, float(\"-inf\"))")

    k.emit(f"m_i = tl.full([BLOCK_M], float(\"-inf\"), {cdt})")
    k.emit(f"l_i = tl.zeros([BLOCK_M], {cdt})")
    if s.v is not None:
        k.emit("rdv = tl.arange(0, BLOCK_DV)")
        k.emit(f"acc = tl.zeros([BLOCK_M, BLOCK_DV], {cdt})")
    # causal: key j is visible to query i when j <= i, so later key blocks are skipped entirely
    hi = f"tl.minimum((pm + 1) * BLOCK_M, {S})" if s.causal else str(S)
    with k.block(f"for n0 in range(0, {hi}, BLOCK_N):"):
        scores()
        k.emit("m_new = tl.maximum(m_i, tl.max(s, 1))")
        # a row with every score so far at -inf adds nothing (and rescales nothing)
        k.emit("alpha = tl.where(m_new == float(\"-inf\"), 1.0, tl.exp(m_i - m_new))")
        k.emit("pr = tl.where(s == float(\"-inf\"), 0.0, tl.exp(s - m_new[:, None]))")
        k.emit("l_i = l_i * alpha + tl.sum(pr, 1)")
        if s.v is not None:
            rv = len(shape_of(s.v))
            k.emit(f"vt = tl.load(v0 + rn[:, None] * sv{rv - 2} + rdv[None, :] * sv{rv - 1}, "
                   f"mask=(rn[:, None] < {S}) & (rdv[None, :] < {DV}), other=0).to({cdt})")
            k.emit(f"acc = acc * alpha[:, None] + tl.dot(pr, vt{precision})")
        k.emit("m_i = m_new")
    out = k.outputs[s.out]
    out_tl = ops.tl_type(s.out.meta["val"].dtype)
    if s.v is None:
        # the probabilities: recompute each score tile and write it normalised (a row with every
        # score -inf is NaN, as torch's softmax makes it)
        with k.block(f"for n0 in range(0, {S}, BLOCK_N):"):
            scores()
            k.emit("p = tl.exp(s - m_i[:, None]) / l_i[:, None]")
            k.emit(f"tl.store({out} + sflat, p.to({out_tl}), mask=smask)" if s.score or s.mask is not None else
                   f"tl.store({out} + bh * {L * S} + rm[:, None] * {S} + rn[None, :], p.to({out_tl}), "
                   f"mask=(rm[:, None] < {L}) & (rn[None, :] < {S}))")
    else:
        if s.zero_empty:
            # torch's sdpa answers 0 for a row whose scores are all -inf
            k.emit("o = tl.where(l_i[:, None] == 0, 0.0, acc / l_i[:, None])")
        else:
            k.emit("o = acc / l_i[:, None]")
        if s.store_strides is None:
            off = f"bh * {L * DV} + rm[:, None] * {DV} + rdv[None, :]"
        else:
            st = s.store_strides
            terms = [f"{c} * {st[d]}" for d, c in enumerate(coords) if c is not None]
            off = " + ".join(terms + [f"rm[:, None] * {st[-2]}", f"rdv[None, :] * {st[-1]}"])
        k.emit(f"tl.store({out} + {off}, o.to({out_tl}), mask=(rm[:, None] < {L}) & (rdv[None, :] < {DV}))")
    finish_params(k, stored)
    grid = f"(triton.cdiv({L}, {bm}), {BH})"
    return Launch(k, grid, stored, {"num_warps": sched["num_warps"], "num_stages": sched["num_stages"]})
