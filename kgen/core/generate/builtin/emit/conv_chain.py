"""A 1x1 convolution fed by a cheap conv (a depthwise conv: depthwise-separable blocks) in one
kernel (convfuse.pointwise_conv).

The 1x1 conv is a GEMM over the first conv's channels: rows are output pixels, columns its output
channels. Its A operand, a [BLOCK_M, BLOCK_K] tile of the first conv's output (pixels x channels),
is computed where it is needed, from the input: per channel, the few (input channel, tap) products
of its group, then the first conv's bias and epilogue. The first conv's output never goes through
memory; the plan only takes a first conv whose per-output work is a few multiply-adds, so its
recomputation per column tile of the 1x1 conv stays small next to the GEMM.
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
    dot_blocks,
    finish_params,
    output_params,
    store_all,
)
from kgen.core.generate.builtin.fusion import Group
from kgen.core.generate.builtin.graph import arg, flat_to_coords, operand, shape_of, trace


def emit(group: Group, name: str, sched: dict, consts: set[Node], pyname: Any, stored: list[Node]) -> Launch:
    k = Kernel(name)
    first, second = group.core[0], group.core[1]
    before, after = group.epi[:group.pooled], group.epi[group.pooled:]
    assert not any(n in stored for n in [first] + before), "the plan chains only unread first-conv outputs"
    x_node, w1_node, b1 = operand(first, 0), operand(first, 1), first.args[2]
    w2_node, b2 = operand(second, 1), second.args[2]
    stride, padding, dilation, groups = arg(first, 3), arg(first, 4), arg(first, 5), int(arg(first, 8))
    xs, w1s, mid, out = shape_of(x_node), shape_of(w1_node), shape_of(first), shape_of(second)
    sp = len(xs) - 2
    N, C = xs[0], xs[1]
    CM, OC = mid[1], out[1]                      # channels between the convs, output channels
    Cg, CMg = C // groups, CM // groups
    taps = list(w1s[2:])
    osp = list(mid[2:])
    S = math.prod(osp)
    M = N * S
    bm, bn, bk, fit = dot_blocks(sched, M, OC, CM, x_node.meta["val"].element_size())
    k.constexprs.update(BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk)
    output_params(k, stored)
    px, p1, p2 = pyname(x_node), pyname(w1_node), pyname(w2_node)
    k.params += ["x", "w1", "w2"] + [f"sx{d}" for d in range(len(xs))] + [f"sa{d}" for d in range(len(w1s))] \
        + ["sb0", "sb1"]
    k.launch += [px, p1, p2] + [f"{px}.stride({d})" for d in range(len(xs))] \
        + [f"{p1}.stride({d})" for d in range(len(w1s))] + [f"{p2}.stride(0)", f"{p2}.stride(1)"]
    k.emit("pid = tl.program_id(0)")
    k.emit(f"pm = pid // tl.cdiv({OC}, BLOCK_N)")
    k.emit(f"pn = pid % tl.cdiv({OC}, BLOCK_N)")
    k.emit("rm = pm * BLOCK_M + tl.arange(0, BLOCK_M)   # output pixel (batch, spatial...)")
    k.emit("rn = pn * BLOCK_N + tl.arange(0, BLOCK_N)   # output channel of the 1x1 conv")
    flat_to_coords(k.emit, k.var, "rm", [N] + osp, names=["bn_"] + [f"o{d}" for d in range(sp)])
    rows_ok = f"(rm[:, None] < {M})"
    writer = BodyWriter(group, consts, pyname)
    precision = schedule.dot_precision(sched, second.meta["val"].dtype)
    k.emit("acc = tl.zeros([BLOCK_M, BLOCK_N], tl.float32)")
    with k.block(f"for k0 in range(0, {CM}, BLOCK_K):"):
        k.emit("rk = k0 + tl.arange(0, BLOCK_K)   # channel between the convs")
        k.emit(f"kmask = {rows_ok} & (rk[None, :] < {CM})")
        k.emit(f"grp = rk // {CMg}")
        k.emit("mid = tl.zeros([BLOCK_M, BLOCK_K], tl.float32)")
        # the first conv at these pixels and channels: its (input channel, tap) products, unrolled
        with k.block(f"for j in range(0, {Cg * math.prod(taps)}):"):
            flat_to_coords(k.emit, k.var, "j", [Cg] + taps, names=["ci"] + [f"t{d}" for d in range(sp)])
            amask, aoff = ["kmask"], ["bn_[:, None] * sx0", f"(grp * {Cg} + ci)[None, :] * sx1"]
            for d in range(sp):
                k.emit(f"i{d} = o{d}[:, None] * {int(stride[d])} - {int(padding[d])} + t{d} * {int(dilation[d])}")
                amask.append(f"(i{d} >= 0) & (i{d} < {xs[2 + d]})")
                aoff.append(f"i{d} * sx{2 + d}")
            k.emit(f"xv = tl.load(x + {' + '.join(aoff)}, mask={' & '.join(amask)}, other=0.0).to(tl.float32)")
            woff = ["rk[None, :] * sa0", "ci * sa1"] + [f"t{d} * sa{2 + d}" for d in range(sp)]
            k.emit(f"wv = tl.load(w1 + {' + '.join(woff)}, mask=rk[None, :] < {CM}, other=0.0).to(tl.float32)")
            k.emit("mid += xv * wv")
        ctx = Ctx(k, "kmask", "mflat", natural=mid,
                  dim_idx=[i if s != 1 else None for i, s in
                           zip(["bn_[:, None]", "rk[None, :]"] + [f"o{d}[:, None]" for d in range(sp)], mid)])
        spatial = " + ".join(f"o{d}[:, None] * {math.prod(osp[d + 1:])}" for d in range(sp))
        k.emit(f"mflat = bn_[:, None] * {CM * S} + rk[None, :] * {S} + {spatial}")
        dtype = first.meta["val"].dtype
        if b1 is not None:
            pb = pyname(b1)
            k.params += ["b1", "sb1_"]
            k.launch += [pb, f"{pb}.stride(0)"]
            ctx.emit(f"first = mid + tl.load(b1 + rk[None, :] * sb1_, mask=rk[None, :] < {CM}, other=0.0).to(tl.float32)")
            ctx.values[first] = ("first", dtype)
        else:
            ctx.values[first] = ("mid", dtype)
        writer.nodes(ctx, before)
        v, _ = ctx.values[trace(operand(second, 0))[0]]
        # as the second conv would have read it from memory: rounded to its dtype; 0 off the tile
        k.emit(f"ta = tl.where(kmask, {v}, 0.0).to({ops.tl_type(second.meta['val'].dtype)})")
        k.emit(f"tb = tl.load(w2 + rn[None, :] * sb0 + rk[:, None] * sb1, "
               f"mask=(rk[:, None] < {CM}) & (rn[None, :] < {OC}), other=0.0)")
        k.emit(f"acc = tl.dot(ta, tb, acc{precision})")
    k.emit(f"mask = {rows_ok} & (rn[None, :] < {OC})")
    spatial = " + ".join(f"o{d}[:, None] * {math.prod(osp[d + 1:])}" for d in range(sp))
    k.emit(f"flat = bn_[:, None] * {OC * S} + rn[None, :] * {S} + {spatial}")
    names = ["bn_[:, None]", "rn[None, :]"] + [f"o{d}[:, None]" for d in range(sp)]
    post = Ctx(k, "mask", "flat", natural=out, dim_idx=[i if s != 1 else None for i, s in zip(names, out)])
    if b2 is not None:
        pb = pyname(b2)
        k.params += ["b2", "sb2_"]
        k.launch += [pb, f"{pb}.stride(0)"]
        post.emit(f"second = acc + tl.load(b2 + rn[None, :] * sb2_, mask=rn[None, :] < {OC}, other=0.0).to(tl.float32)")
        post.values[second] = ("second", second.meta["val"].dtype)
    else:
        post.values[second] = ("acc", second.meta["val"].dtype)
    writer.nodes(post, after)
    store_all(post, k, group.core + group.epi, stored)
    finish_params(k, stored)
    grid = f"(triton.cdiv({M}, {bm}) * triton.cdiv({OC}, {bn}),)"
    return Launch(k, grid, stored, {"num_warps": fit["num_warps"], "num_stages": fit["num_stages"]})
