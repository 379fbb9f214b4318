"""Max and average pooling (1-3 spatial dims) as a window reduction per output element.

One program handles XBLOCK output elements; the window taps are unrolled at compile time (adaptive
windows over a symbolic input size: runtime loops up to the widest window), each
a masked strided load, so padding costs nothing and any stride/dilation/ceil_mode works.
Semantics follow torch: max propagates NaN (the index of a NaN tap wins), ties keep the first
tap; average divides by the padded window (count_include_pad), the valid taps, or the override.
"""

from __future__ import annotations

import itertools
import math
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
    store_all,
)
from kgen.core.generate.builtin.fusion import Group
from kgen.core.generate.builtin.graph import arg, flat_to_coords, operand, shape_of
from kgen.core.generate.builtin.legality import pool_params
from kgen.core.generate.builtin.sizes import sized

KIND = "pool"
SECTION = "pointwise"


def emit(group: Group, name: str, sched: dict, consts: set[Node], pyname: Any, stored: list[Node]) -> Launch:
    k = Kernel(name)
    node = group.core[0]
    p = pool_params(node)
    assert p is not None, "the plan makes pool groups of pool_params nodes only"
    x_node = operand(node, 0)
    xs = shape_of(x_node)
    vals = node.meta["val"]
    out = tuple(sized(s) for s in (vals[0] if isinstance(vals, (list, tuple)) else vals).shape)
    sp = len(p["kernel"])
    lead = len(xs) - sp
    n_out = math.prod(out)
    block = clip_block(sched["XBLOCK"], n_out, host=True)
    k.constexprs["XBLOCK"] = block
    output_params(k, stored)
    px = pyname(x_node)
    k.params += ["x"] + [f"sx{d}" for d in range(len(xs))]
    k.launch += [px] + [f"{px}.stride({d})" for d in range(len(xs))]
    k.emit("xi = tl.program_id(0) * XBLOCK + tl.arange(0, XBLOCK)")
    k.emit(f"xmask = xi < {n_out}")
    names = [f"j{d}" for d in range(len(out))]
    flat_to_coords(k.emit, k.var, "xi", list(out), names=names)
    base = " + ".join(f"{names[d]} * sx{d}" for d in range(lead)) or "0"
    starts, ends = [], []
    spatial = xs[lead:]
    for d in range(sp):
        st = f"w{d}"
        if p.get("adaptive"):
            # adaptive window of output j: [floor(j*I/O), ceil((j+1)*I/O))
            size, o = spatial[d], p["adaptive"][d]
            k.emit(f"{st} = ({names[lead + d]} * {size}) // {o}")
            k.emit(f"e{d} = (({names[lead + d]} + 1) * {size} + {o - 1}) // {o}")
            ends.append(f"e{d}")
        else:
            k.emit(f"{st} = {names[lead + d]} * {p['stride'][d]} - {p['padding'][d]}")
        starts.append(st)
    dtype = x_node.meta["val"].dtype
    cdt = ops.tl_type(ops.compute_dtype(dtype))
    if p["max"]:
        k.emit(f"acc = tl.full([XBLOCK], float(\"-inf\"), {cdt})")
        k.emit("arg = tl.full([XBLOCK], 0, tl.int64)")
        k.emit("seen = tl.full([XBLOCK], 0, tl.int1)")
    else:
        k.emit(f"acc = tl.zeros([XBLOCK], {cdt})")
        k.emit("cnt = tl.zeros([XBLOCK], tl.int32)")
    def tap(pos: list[str], conds: list[str]) -> None:
        off = " + ".join([base] + [f"{q} * sx{lead + d}" for d, q in enumerate(pos)])
        k.emit(f"ok = {' & '.join(['xmask'] + conds)}")
        k.emit(f"v = tl.load(x + {off}, mask=ok, other=0).to({cdt})")
        if p["max"]:
            flat = " + ".join(f"{q} * {math.prod(spatial[d + 1:])}" for d, q in enumerate(pos))
            # first valid tap always lands; later ones when larger, or NaN (torch takes every NaN)
            k.emit("upd = ok & ((v > acc) | (v != v) | (seen == 0))")
            k.emit("acc = tl.where(upd, v, acc)")
            k.emit(f"arg = tl.where(upd, ({flat}).to(tl.int64), arg)")
            k.emit("seen = seen | ok")
        else:
            k.emit("acc += tl.where(ok, v, 0.0)")
            k.emit("cnt += ok.to(tl.int32)")

    if ends and not all(isinstance(kk, int) for kk in p["kernel"]):
        _runtime_taps(k, p["kernel"], starts, ends, tap)
    else:
        for taps in itertools.product(*[range(kk) for kk in p["kernel"]]):
            pos = [f"({starts[d]} + {taps[d] * p['dilation'][d]})" for d in range(sp)]
            if ends:   # an adaptive window's first tap is always inside it
                conds = [f"({q} < {ends[d]})" for d, q in enumerate(pos) if taps[d]]
            else:
                conds = [f"({q} >= 0) & ({q} < {spatial[d]})" for d, q in enumerate(pos)]
            tap(pos, conds)
    writer = BodyWriter(group, consts, pyname)
    ctx = Ctx(k, "xmask", "xi", natural=out, dim_idx=[n if s > 1 else None for n, s in zip(names, out)])
    out_dtype = dtype
    if p["max"]:
        results = {0: "acc", 1: "arg"}
    else:
        if ends:
            k.emit(f"avg = acc / ({' * '.join(f'({e} - {s})' for e, s in zip(ends, starts))}).to({cdt})")
        elif p.get("divisor"):
            k.emit(f"avg = acc / {float(p['divisor'])!r}")
        elif p["include_pad"]:
            spans = []
            for d in range(sp):
                kk, pad, size = p["kernel"][d], p["padding"][d], spatial[d]
                spans.append(f"(tl.minimum({starts[d]} + {kk}, {size + pad}) - {starts[d]})")
            k.emit(f"avg = acc / ({' * '.join(spans)}).to({cdt})")
        else:
            k.emit(f"avg = acc / cnt.to({cdt})")
        results = {0: "avg"}
    if isinstance(vals, (list, tuple)):
        for g in group.extra:
            if g.args[0] is node and g.args[1] in results:
                ctx.values[g] = (results[arg(g, 1)], g.meta["val"].dtype)
    else:
        ctx.values[node] = (results[0], out_dtype)
    writer.nodes(ctx, group.epi)
    store_all(ctx, k, group.core + group.extra + group.epi, stored)
    finish_params(k, stored)
    return Launch(k, f"(triton.cdiv({n_out}, {block}),)", stored, {"num_warps": sched["num_warps"]})


def _runtime_taps(k: Kernel, bounds: list[Any], starts: list[str], ends: list[str], tap: Any) -> None:
    """Adaptive windows over a symbolic input size: one loop per spatial dim up to the widest
    window (a runtime bound, legality.adaptive_bound), each tap masked by its own window's end.
    The window of every output is computed in the kernel from the runtime input size."""
    names = [f"t{d}" for d in range(len(bounds))]
    blocks = [k.block(f"for {t} in range(0, {b}):") for t, b in zip(names, bounds)]
    for b in blocks:
        b.__enter__()
    pos = [f"({s} + {t})" for s, t in zip(starts, names)]
    tap(pos, [f"({q} < {e})" for q, e in zip(pos, ends)])
    for b in reversed(blocks):
        b.__exit__(None, None, None)
