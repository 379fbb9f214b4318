"""Convolution (1-d, 2-d and 3-d, any stride/padding/dilation/groups, also transposed) as an
implicit GEMM.

Rows of the GEMM are output pixels (batch x spatial), columns are output channels of one group,
and the reduction runs over (input channel, kernel taps); the input patch is gathered straight
from the strided input with masks for the padding, so nothing is unfolded in memory. A
transposed convolution is the same gather seen from the output: a tap contributes where
(out + padding - tap * dilation) is a multiple of the stride inside the input.
"""

from __future__ import annotations

import math
from typing import Any

from torch.fx import Node

from kgen.core.generate.builtin import ops, schedule
from kgen.core.generate.builtin.codegen import (
    BodyWriter,
    Ctx,
    Kernel,
    Launch,
    as_float,
    clip_block,
    dot_blocks,
    finish_params,
    output_params,
    store_all,
)
from kgen.core.generate.builtin.emit import conv_chain
from kgen.core.generate.builtin.fusion import Group
from kgen.core.generate.builtin.graph import arg, flat_to_coords, operand, shape_of, trace
from kgen.core.generate.builtin.legality import pool_window_dims, window_pool
from kgen.core.generate.builtin.sizes import sized

KIND = "conv"
SECTION = "matmul"


def emit(group: Group, name: str, sched: dict, consts: set[Node], pyname: Any, stored: list[Node]) -> Launch:
    if len(group.core) == 2 and ops.packet(group.core[1]) == "convolution":
        return conv_chain.emit(group, name, sched, consts, pyname, stored)
    k = Kernel(name)
    node = group.core[0]
    x_node, w_node, bias = operand(node, 0), operand(node, 1), node.args[2]
    stride, padding, dilation, groups = arg(node, 3), arg(node, 4), arg(node, 5), int(arg(node, 8))
    transposed = bool(node.args[6])
    xs, ws, out = shape_of(x_node), shape_of(w_node), shape_of(node)
    sp = len(xs) - 2                                  # spatial rank
    N, C = xs[0], xs[1]
    OC = out[1]
    Cg, OCg = C // groups, OC // groups
    taps = list(ws[2:])
    osp = list(out[2:])
    M = N * math.prod(osp)
    Kg = Cg * math.prod(taps)
    phases = transposed and any(int(st) > 1 for st in stride)
    if phases:
        ph = _phases(stride, padding, dilation, taps, osp)
        # rows of one phase: (batch, output positions of that phase); reduction: its taps only
        Mp, Kp = N * math.prod(c for c, _ in ph), Cg * math.prod(j for _, j in ph)
        # phases some tap reaches (a dilation sharing a factor with the stride leaves others out)
        nph = math.prod(int(st) // math.gcd(int(st), int(dl)) for st, dl in zip(stride, dilation))
        # phases whenever they issue less tile work (at any real size, by about the stride
        # product) in no more tile steps; a problem that fits a tile or two keeps the single pass
        wp, sp_ = _tile_work(sched, Mp, Kp)
        w1, s1 = _tile_work(sched, M, Kg)
        if nph * wp < w1 and nph * sp_ <= s1:
            M, Kg = Mp, Kp
        else:
            phases = False
    pool = _pooled(group)
    red = _reduced(group)
    if red is not None:
        # one program per (image, channel tile) owns every output pixel of it: rows loop in tiles
        M = math.prod(osp)
    if pool is not None:
        # rows are pooled output pixels; each program runs the conv for every tap of their windows
        psp = list(pool["psp"])
        M = N * math.prod(psp)
    bm, bn, bk, fit = dot_blocks(sched, M, OCg, Kg, x_node.meta["val"].element_size())
    k.constexprs.update(BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk)
    output_params(k, stored)
    px, pw = pyname(x_node), pyname(w_node)
    k.params += ["x", "w"] + [f"sx{d}" for d in range(len(xs))] + [f"sw{d}" for d in range(len(ws))]
    k.launch += [px, pw] + [f"{px}.stride({d})" for d in range(len(xs))] + [f"{pw}.stride({d})" for d in range(len(ws))]
    k.emit("pid = tl.program_id(0)")
    k.emit("g = tl.program_id(1)")
    k.emit(f"pm = pid // tl.cdiv({OCg}, BLOCK_N)")
    k.emit(f"pn = pid % tl.cdiv({OCg}, BLOCK_N)")
    if red is None:
        k.emit("rm = pm * BLOCK_M + tl.arange(0, BLOCK_M)   # output pixel (batch, spatial...)")
    k.emit("rn = pn * BLOCK_N + tl.arange(0, BLOCK_N)   # output channel inside the group")
    rows_ok = f"(rm[:, None] < {M})"                                   # [BLOCK_M, 1]
    lanes_ok, taps_ok = f"(rk[None, :] < {Kg})", f"(rk[:, None] < {Kg})"   # [1, BLOCK_K], [BLOCK_K, 1]
    if phases:
        # one program does every phase of its rows in turn (a grid axis of phases would multiply
        # the programs, each with the same fixed cost)
        k.emit(f"for phase in range(0, {math.prod(int(st) for st in stride)}):")
        k.indent += 1
        _phase_rows(k, N, Cg, stride, padding, dilation, taps, osp, ph)
        rows_ok = "rowok[:, None]"
    elif red is not None:
        k.emit(f"racc = tl.full([BLOCK_N], {red['start']}, tl.float32)")
        if red["op"] in ("amax", "amin"):
            k.emit("rnan = tl.zeros([BLOCK_N], tl.int32)")
        k.emit(f"for m0 in range(0, {M}, BLOCK_M):")
        k.indent += 1
        k.emit("rm = m0 + tl.arange(0, BLOCK_M)   # output pixel (spatial...) of image pm")
        k.emit("bn_ = tl.zeros_like(rm) + pm")
        flat_to_coords(k.emit, k.var, "rm", osp, names=[f"o{d}" for d in range(sp)])
    elif pool is not None:
        flat_to_coords(k.emit, k.var, "rm", [N] + psp, names=["bn_"] + [f"p{d}" for d in range(sp)])
        start = "float('-inf')" if pool["max"] else "0.0"
        k.emit(f"pacc = tl.full([BLOCK_M, BLOCK_N], {start}, tl.float32)")
        k.emit(f"for win in range(0, {math.prod(pool['kernel'])}):")
        k.indent += 1
        flat_to_coords(k.emit, k.var, "win", pool["kernel"], names=[f"w{d}" for d in range(sp)])
        for d in range(sp):
            k.emit(f"o{d} = p{d} * {pool['kernel'][d]} + w{d}")
    else:
        onames = ["bn_"] + [f"o{d}" for d in range(sp)]
        flat_to_coords(k.emit, k.var, "rm", [N] + osp, names=onames)
    k.emit("acc = tl.zeros([BLOCK_M, BLOCK_N], tl.float32)")
    # a phase no tap reaches skips the reduction (its rows get the epilogue of zero)
    with k.block(f"for k0 in range(0, {'kend' if phases else Kg}, BLOCK_K):"):
        k.emit("rk = k0 + tl.arange(0, BLOCK_K)   # (input channel, kernel taps...)")
        tnames = ["ci"] + [f"t{d}" for d in range(sp)]
        if phases:
            steps = [int(st) // math.gcd(int(st), int(dl)) for st, dl in zip(stride, dilation)]
            kmask = _phase_taps(k, Cg, taps, ph, steps)
            lanes_ok, taps_ok = f"{kmask}[None, :]", f"{kmask}[:, None]"
        else:
            flat_to_coords(k.emit, k.var, "rk", [Cg] + taps, names=tnames)
        amask = [rows_ok, lanes_ok]
        aoff = ["bn_[:, None] * sx0", "(g * " + str(Cg) + " + ci)[None, :] * sx1"]
        for d in range(sp):
            pos = f"i{d}"
            if phases:
                # exact: every tap of this phase lands on an input position
                k.emit(f"{pos} = (o{d}[:, None] + {int(padding[d])} - t{d}[None, :] * {int(dilation[d])}) "
                       f"// {int(stride[d])}")
                amask.append(f"({pos} >= 0) & ({pos} < {xs[2 + d]})")
            elif transposed:
                num = f"e{d}"
                k.emit(f"{num} = o{d}[:, None] + {int(padding[d])} - t{d}[None, :] * {int(dilation[d])}")
                k.emit(f"{pos} = {num} // {int(stride[d])}")
                amask.append(f"({num} >= 0) & ({num} % {int(stride[d])} == 0) & ({pos} < {xs[2 + d]})")
            else:
                k.emit(f"{pos} = o{d}[:, None] * {int(stride[d])} - {int(padding[d])} + t{d}[None, :] * {int(dilation[d])}")
                amask.append(f"({pos} >= 0) & ({pos} < {xs[2 + d]})")
            aoff.append(f"{pos} * sx{2 + d}")
        k.emit(f"ta = tl.load(x + {' + '.join(aoff)}, mask={' & '.join(amask)}, other=0.0)")
        if transposed:  # weight is [in_channels, out_channels / groups, taps...]
            woff = [f"(g * {Cg} + ci)[:, None] * sw0", "rn[None, :] * sw1"]
        else:           # weight is [out_channels, in_channels / groups, taps...]
            woff = [f"(g * {OCg} + rn)[None, :] * sw0", "ci[:, None] * sw1"]
        woff += [f"t{d}[:, None] * sw{2 + d}" for d in range(sp)]
        k.emit(f"tb = tl.load(w + {' + '.join(woff)}, mask={taps_ok} & (rn[None, :] < {OCg}), other=0.0)")
        precision = schedule.dot_precision(sched, node.meta["val"].dtype)
        k.emit(f"acc = tl.dot(ta, tb, acc{precision})")
    k.emit(f"oc = g * {OCg} + rn")
    k.emit(f"mask = {rows_ok} & (rn[None, :] < {OCg})")
    per_image = math.prod(osp)
    spatial_flat = " + ".join(f"o{d}[:, None] * {math.prod(osp[d + 1:])}" for d in range(sp))
    k.emit(f"flat = bn_[:, None] * {OC * per_image} + oc[None, :] * {per_image} + {spatial_flat}")
    natural = out
    names = ["bn_[:, None]", "oc[None, :]"] + [f"o{d}[:, None]" for d in range(sp)]
    dim_idx: list[str | None] = [i if s > 1 else None for i, s in zip(names, natural)]
    ctx = Ctx(k, "mask", "flat", natural=natural, dim_idx=dim_idx)
    writer = BodyWriter(group, consts, pyname)
    dtype = node.meta["val"].dtype
    if bias is not None:
        pb = pyname(bias)
        k.params += ["bias", "sbias"]
        k.launch += [pb, f"{pb}.stride(0)"]
        ctx.emit(f"conv = acc + tl.load(bias + oc[None, :] * sbias, mask=rn[None, :] < {OCg}, other=0.0).to(tl.float32)")
        ctx.values[node] = ("conv", dtype)
    else:
        ctx.values[node] = ("acc", dtype)
    if pool is not None:
        _pool_window(k, ctx, writer, group, pool, stored, OC, OCg, rows_ok)
    elif red is not None:
        _reduce_rows(k, ctx, writer, group, red, stored, OC, OCg, M)
    else:
        writer.nodes(ctx, group.epi)
        store_all(ctx, k, group.core + group.epi, stored)
    if phases:
        k.indent -= 1
    finish_params(k, stored)
    grid = f"(triton.cdiv({M}, {bm}) * triton.cdiv({OCg}, {bn}), {groups})"
    if red is not None:
        grid = f"({N} * triton.cdiv({OCg}, {bn}), {groups})"
    return Launch(k, grid, stored, {"num_warps": fit["num_warps"], "num_stages": fit["num_stages"]})


# --- a non-overlapping pool as the epilogue ---------------------------------------------------
# (convfuse.pool_epilogue) Rows of the GEMM are pooled output pixels; the program runs the
# conv once per window tap (its output position p * kernel + tap), applies the epilogue before the
# pool, and folds it into a register per pooled output (max, propagating NaN like torch, or a sum
# divided once at the end). Conv outputs outside every window (floor mode) are never computed.


def _pooled(group: Group) -> dict[str, Any] | None:
    if group.pooled < 0 or ops.packet(group.core[1]) in _START or ops.packet(group.core[1]) == "convolution":
        return None
    node = group.core[1]
    spec = window_pool(node)
    assert spec is not None, "the plan pools a conv group with window_pool nodes only"
    val = node.meta["val"]
    out = tuple(sized(s) for s in (val[0] if isinstance(val, (list, tuple)) else val).shape)
    conv = shape_of(group.core[0])
    along = pool_window_dims(conv, shape_of(operand(node, 0)), spec["kernel"])
    assert along is not None
    # window and pooled extent per conv spatial dim (a size-1 dim the pool does not name: 1, 1)
    kernel, pooled = [1] * (len(conv) - 2), [1] * (len(conv) - 2)
    for j, d in enumerate(along):
        if d is not None:
            kernel[d], pooled[d] = spec["kernel"][j], out[2 + j]
    names = [None if d is None else f"p{d}[:, None]" for d in along]
    return dict(spec, node=node, out=out, kernel=kernel, psp=pooled, out_names=names)


def _pool_window(k: Kernel, ctx: Ctx, writer: BodyWriter, group: Group, pool: dict, stored: list[Node],
                 OC: Any, OCg: Any, rows_ok: str) -> None:
    """Inside the window loop: the epilogue before the pool and the fold into `pacc`; then, after
    the loop, the pooled value and the epilogue after the pool, stored at pooled positions."""
    node = pool["node"]
    before, after = group.epi[:group.pooled], group.epi[group.pooled:]
    assert not any(n in stored for n in [group.core[0]] + before), "the plan pools only unread conv outputs"
    writer.nodes(ctx, before)
    x = operand(node, 0)
    v, _ = ctx.values[trace(x)[0]]
    dtype = x.meta["val"].dtype
    # the value rounded to its dtype first, as the pool kernel would have read it from memory
    k.emit(f"pv = {v}" if str(dtype) == "torch.float32" else f"pv = ({v}).to({ops.tl_type(dtype)}).to(tl.float32)")
    if pool["max"]:
        k.emit("pacc = tl.where((pv > pacc) | (pv != pv), pv, pacc)")
    else:
        k.emit("pacc = pacc + pv")
    k.indent -= 1
    if not pool["max"]:
        k.emit(f"pacc = pacc / {pool['divisor']!r}")
    out, psp = pool["out"], pool["psp"]
    sp = len(psp)
    per_image = math.prod(psp)
    spatial_flat = " + ".join(f"p{d}[:, None] * {math.prod(psp[d + 1:])}" for d in range(sp))
    k.emit(f"oc = g * {OCg} + rn")
    k.emit(f"pmask = {rows_ok} & (rn[None, :] < {OCg})")
    k.emit(f"pflat = bn_[:, None] * {OC * per_image} + oc[None, :] * {per_image} + {spatial_flat}")
    names = ["bn_[:, None]", "oc[None, :]"] + pool["out_names"]
    post = Ctx(k, "pmask", "pflat", natural=out, dim_idx=[i if s != 1 else None for i, s in zip(names, out)])
    if isinstance(node.meta["val"], (list, tuple)):
        for gi in group.extra:
            if gi.args[0] is node and gi.args[1] == 0:
                post.values[gi] = ("pacc", gi.meta["val"].dtype)
    else:
        post.values[node] = ("pacc", node.meta["val"].dtype)
    writer.nodes(post, after)
    store_all(post, k, group.core + group.extra + group.epi, stored)


# --- a reduction over every spatial dim as the epilogue -----------------------------------------
# (convfuse.spatial_reduce) One program owns one image and a tile of output channels: it
# loops over the image's output pixels in row tiles, runs the epilogue before the reduction on
# each and folds it into a [BLOCK_N] register; the conv output never goes through memory.

_START = {"sum": "0.0", "mean": "0.0", "amax": "float('-inf')", "amin": "float('inf')"}


def _reduced(group: Group) -> dict[str, Any] | None:
    if group.pooled < 0 or ops.packet(group.core[1]) not in _START:
        return None
    node = group.core[1]
    return {"node": node, "op": ops.packet(node), "start": _START[ops.packet(node)], "out": shape_of(node)}


def _reduce_rows(k: Kernel, ctx: Ctx, writer: BodyWriter, group: Group, red: dict, stored: list[Node],
                 OC: Any, OCg: Any, S: Any) -> None:
    """Inside the row loop: the epilogue before the reduction and the fold into `racc`; after the
    loop, the reduced value per (image, channel) and the epilogue after it, stored there."""
    node = red["node"]
    before, after = group.epi[:group.pooled], group.epi[group.pooled:]
    assert not any(n in stored for n in [group.core[0]] + before), "the plan reduces only unread conv outputs"
    writer.nodes(ctx, before)
    x = operand(node, 0)
    v, _ = ctx.values[trace(x)[0]]
    dtype = x.meta["val"].dtype
    k.emit(f"pv = {v}" if str(dtype) == "torch.float32" else f"pv = ({v}).to({ops.tl_type(dtype)}).to(tl.float32)")
    op = red["op"]
    if op in ("sum", "mean"):
        k.emit("racc = racc + tl.sum(tl.where(mask, pv, 0.0), axis=0)")
    else:
        pick = "tl.max" if op == "amax" else "tl.min"
        k.emit(f"racc = {'tl.maximum' if op == 'amax' else 'tl.minimum'}"
               f"(racc, {pick}(tl.where(mask, pv, {red['start']}), axis=0))")
        # torch's amax/amin propagate NaN: remembered apart from the fold
        k.emit("rnan = rnan | tl.max(((pv != pv) & mask).to(tl.int32), axis=0)")
    k.indent -= 1
    if op == "mean":
        k.emit(f"racc = racc / {as_float(S)}")
    elif op in ("amax", "amin"):
        k.emit("racc = tl.where(rnan > 0, float('nan'), racc)")
    out = red["out"]
    k.emit(f"oc = g * {OCg} + rn")
    k.emit(f"rmask = rn < {OCg}")
    k.emit(f"rflat = pm * {OC} + oc")
    names: list[str | None] = ["pm", "oc"] + [None] * (len(out) - 2)
    post = Ctx(k, "rmask", "rflat", natural=out, dim_idx=[i if s != 1 else None for i, s in zip(names, out)])
    post.values[node] = ("racc", node.meta["val"].dtype)
    writer.nodes(post, after)
    store_all(post, k, group.core + group.extra + group.epi, stored)


# --- stride phases of a transposed convolution ------------------------------------------------
# Output position o along a dim of stride s receives tap t exactly when (o + padding - t * dilation)
# is a multiple of s. Grouping outputs by phase r = (o + padding) mod s, the taps that reach a phase
# are t = t0(r) + j * (s / gcd(s, dilation)) (none where gcd(s, dilation) does not divide r): a
# program takes the phases of its rows in turn and loops over their taps only, never over masked ones.


def _tile_work(sched: dict, M: Any, K: Any) -> tuple[int, int]:
    """(multiply-adds, tile steps) of the row tiles of one output-channel tile over M x K, at the
    traced sizes: phases or not is a speed choice, and either kernel is right for every size, so
    a symbolic size's traced value decides it without a guard."""
    M, K = int(getattr(M, "hint", M)), int(getattr(K, "hint", K))
    bm = clip_block(sched["BLOCK_M"], M, floor=16)
    bk = clip_block(sched["BLOCK_K"], K, floor=16)
    steps = -(-M // bm) * -(-K // bk)
    return steps * bm * bk, steps


def _phases(stride: Any, padding: Any, dilation: Any, taps: list[int], osp: list[int]) -> list[tuple[int, int]]:
    """Per spatial dim: (most outputs in one phase, most taps reaching one phase)."""
    out = []
    for d in range(len(taps)):
        s_, dil = int(stride[d]), int(dilation[d])
        step = s_ // math.gcd(s_, dil)
        out.append((-(-osp[d] // s_), -(-taps[d] // step)))
    return out


def _phase_rows(k: Kernel, N: int, Cg: int, stride: Any, padding: Any, dilation: Any, taps: list[int], osp: list[int],
                ph: list[tuple[int, int]]) -> None:
    """Phase coordinates r{d}, the output coordinates o{d} of rows rm and their mask `rowok`, the
    first tap t0_{d} of the phase and the reduction's end `kend` (0 where no tap reaches it)."""
    sp = len(osp)
    flat_to_coords(k.emit, k.var, "phase", [int(st) for st in stride], names=[f"r{d}" for d in range(sp)])
    flat_to_coords(k.emit, k.var, "rm", [N] + [c for c, _ in ph], names=["bn_"] + [f"u{d}" for d in range(sp)])
    ok = [f"(rm < {N * math.prod(c for c, _ in ph)})"]
    Kp = Cg * math.prod(j for _, j in ph)
    reached: list[str] = []
    for d in range(sp):
        s_, pad = int(stride[d]), int(padding[d])
        # first output of the phase: (o + pad) % s == r
        k.emit(f"f{d} = (r{d} - {pad % s_} + {s_}) % {s_}")
        k.emit(f"o{d} = f{d} + u{d} * {s_}")
        ok.append(f"(o{d} < {osp[d]})")
        # first tap of the phase: t0 * dilation == r (mod s), solvable when gcd(s, dilation) | r
        g = math.gcd(s_, int(dilation[d]))
        step = s_ // g
        inv = pow(int(dilation[d]) // g, -1, step) if step > 1 else 0
        k.emit(f"t0_{d} = ((r{d} // {g}) * {inv}) % {step}")
        if g > 1:
            reached.append(f"(1 - (r{d} % {g} + {g - 1}) // {g})")
    k.emit(f"rowok = {' & '.join(ok)}")
    k.emit(f"kend = {' * '.join([str(Kp)] + reached)}")


def _phase_taps(k: Kernel, Cg: int, taps: list[int], ph: list[tuple[int, int]], steps: list[int]) -> str:
    """Emit the taps t{d} of this phase for reduction lanes rk; returns their mask expression."""
    sp = len(taps)
    flat_to_coords(k.emit, k.var, "rk", [Cg] + [j for _, j in ph], names=["ci"] + [f"j{d}" for d in range(sp)])
    ok = [f"(rk < {Cg * math.prod(j for _, j in ph)})"]
    for d, st in enumerate(steps):
        k.emit(f"t{d} = t0_{d} + j{d} * {st}")
        ok.append(f"(t{d} < {taps[d]})")
    return "(" + " & ".join(ok) + ")"
