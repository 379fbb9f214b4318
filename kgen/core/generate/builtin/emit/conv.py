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

from kgen.core.generate.builtin.codegen import (
    BodyWriter,
    Ctx,
    Kernel,
    Launch,
    clip_block,
    finish_params,
    output_params,
    store_all,
)
from kgen.core.generate.builtin.fusion import Group
from kgen.core.generate.builtin.graph import arg, flat_to_coords, operand, shape_of

KIND = "conv"
SECTION = "matmul"


def emit(group: Group, name: str, sched: dict, consts: set[Node], pyname: Any, stored: list[Node]) -> Launch:
    import torch

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
    bm = clip_block(sched["BLOCK_M"], M, floor=16, host=True)
    bn = clip_block(sched["BLOCK_N"], OCg, floor=16)
    bk = clip_block(sched["BLOCK_K"], Kg, floor=16)
    k.constexprs.update(BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk)
    output_params(k, stored)
    px, pw = pyname(x_node), pyname(w_node)
    k.params += ["x", "w"] + [f"sx{d}" for d in range(len(xs))] + [f"sw{d}" for d in range(len(ws))]
    k.launch += [px, pw] + [f"{px}.stride({d})" for d in range(len(xs))] + [f"{pw}.stride({d})" for d in range(len(ws))]
    k.emit("pid = tl.program_id(0)")
    k.emit("g = tl.program_id(1)")
    k.emit(f"pm = pid // tl.cdiv({OCg}, BLOCK_N)")
    k.emit(f"pn = pid % tl.cdiv({OCg}, BLOCK_N)")
    k.emit("rm = pm * BLOCK_M + tl.arange(0, BLOCK_M)   # output pixel (batch, spatial...)")
    k.emit("rn = pn * BLOCK_N + tl.arange(0, BLOCK_N)   # output channel inside the group")
    onames = ["bn_"] + [f"o{d}" for d in range(sp)]
    flat_to_coords(k.emit, k.var, "rm", [N] + osp, names=onames)
    k.emit("acc = tl.zeros([BLOCK_M, BLOCK_N], tl.float32)")
    with k.block(f"for k0 in range(0, {Kg}, BLOCK_K):"):
        k.emit("rk = k0 + tl.arange(0, BLOCK_K)   # (input channel, kernel taps...)")
        tnames = ["ci"] + [f"t{d}" for d in range(sp)]
        flat_to_coords(k.emit, k.var, "rk", [Cg] + taps, names=tnames)
        amask = [f"(rm[:, None] < {M})", f"(rk[None, :] < {Kg})"]
        aoff = ["bn_[:, None] * sx0", "(g * " + str(Cg) + " + ci)[None, :] * sx1"]
        for d in range(sp):
            pos = f"i{d}"
            if transposed:
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
        k.emit(f"tb = tl.load(w + {' + '.join(woff)}, mask=(rk[:, None] < {Kg}) & (rn[None, :] < {OCg}), other=0.0)")
        precision = ', input_precision="ieee"' if node.meta["val"].dtype == torch.float32 else ""
        k.emit(f"acc = tl.dot(ta, tb, acc{precision})")
    k.emit(f"oc = g * {OCg} + rn")
    k.emit(f"mask = (rm[:, None] < {M}) & (rn[None, :] < {OCg})")
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
    writer.nodes(ctx, group.epi)
    store_all(ctx, k, group.core + group.epi, stored)
    finish_params(k, stored)
    grid = f"(triton.cdiv({M}, {bm}) * triton.cdiv({OCg}, {bn}), {groups})"
    return Launch(k, grid, stored, {"num_warps": sched["num_warps"], "num_stages": sched["num_stages"]})
