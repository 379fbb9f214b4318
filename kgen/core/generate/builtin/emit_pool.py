"""Max and average pooling (1-3 spatial dims) as a window reduction per output element.

One program handles XBLOCK output elements; the window taps are unrolled at compile time, each
a masked strided load, so padding costs nothing and any stride/dilation/ceil_mode works.
Semantics follow torch: max propagates NaN (the index of a NaN tap wins), ties keep the first
tap; average divides by the padded window (count_include_pad), the valid taps, or the override.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

from kgen.core.generate.builtin import ops
from kgen.core.generate.builtin.emit_groups import Launch, _finish_params, _output_params, _store_all
from kgen.core.generate.builtin.fusion import Group, shape_of
from kgen.core.generate.builtin.kernel import BodyWriter, Ctx, Kernel, next_pow2

MAX_POOL = {"max_pool1d_with_indices", "max_pool2d_with_indices", "max_pool3d_with_indices"}
AVG_POOL = {"avg_pool1d", "avg_pool2d", "avg_pool3d"}
MAX_TAPS = 512   # unrolled loads; bigger windows stay a torch fallback


def _listify(v: Any, n: int, default: int) -> list[int]:
    if v is None or (isinstance(v, (list, tuple)) and len(v) == 0):
        return [default] * n
    if isinstance(v, int):
        return [v] * n
    v = [int(x) for x in v]
    return v * n if len(v) == 1 else v


def pool_params(node: Any) -> dict | None:
    import torch

    name = ops.packet(node)
    if name not in MAX_POOL | AVG_POOL:
        return None
    x = node.args[0]
    if not hasattr(x, "meta") or x.meta["val"].dtype not in (torch.float32, torch.float16, torch.bfloat16, torch.float64):
        return None
    a = list(node.args) + [None] * 8
    kernel = _listify(a[1], 1, 1)
    sp = len(kernel)
    p = {"max": name in MAX_POOL, "kernel": kernel, "stride": _listify(a[2], sp, 0),
         "padding": _listify(a[3], sp, 0)}
    p["stride"] = [s if s else k for s, k in zip(p["stride"], kernel)]
    if p["max"]:
        p["dilation"] = _listify(a[4], sp, 1)
    else:
        p["dilation"] = [1] * sp
        p["include_pad"] = True if a[5] is None else bool(a[5])
        p["divisor"] = a[6] if a[6] is not None else node.kwargs.get("divisor_override")
    if len(kernel) != sp or math.prod(kernel) > MAX_TAPS or x.meta["val"].dim() < sp + 1:
        return None
    return p


def pool(group: Group, name: str, sched: dict, consts: set, pyname: Any, stored: list[Any]) -> Launch:
    k = Kernel(name)
    node = group.core[0]
    p = pool_params(node)
    x_node = node.args[0]
    xs = shape_of(x_node)
    vals = node.meta["val"]
    out = tuple(int(s) for s in (vals[0] if isinstance(vals, (list, tuple)) else vals).shape)
    sp = len(p["kernel"])
    lead = len(xs) - sp
    n_out = math.prod(out)
    block = max(1, min(int(sched["XBLOCK"]), next_pow2(n_out)))
    k.constexprs["XBLOCK"] = block
    _output_params(k, stored)
    px = pyname(x_node)
    k.params += ["x"] + [f"sx{d}" for d in range(len(xs))]
    k.launch += [px] + [f"{px}.stride({d})" for d in range(len(xs))]
    k.emit("xi = tl.program_id(0) * XBLOCK + tl.arange(0, XBLOCK)")
    k.emit(f"xmask = xi < {n_out}")
    names = [f"j{d}" for d in range(len(out))]
    rest = "xi"
    for d in range(len(out) - 1, -1, -1):
        if d == 0:
            k.emit(f"{names[d]} = {rest}")
        else:
            k.emit(f"{names[d]} = {rest} % {out[d]}")
            q = k.var("q")
            k.emit(f"{q} = {rest} // {out[d]}")
            rest = q
    base = " + ".join(f"{names[d]} * sx{d}" for d in range(lead)) or "0"
    starts = []
    for d in range(sp):
        st = f"w{d}"
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
    spatial = xs[lead:]
    for taps in itertools.product(*[range(kk) for kk in p["kernel"]]):
        pos = [f"({starts[d]} + {taps[d] * p['dilation'][d]})" for d in range(sp)]
        valid = " & ".join([f"({q} >= 0) & ({q} < {spatial[d]})" for d, q in enumerate(pos)])
        off = " + ".join([base] + [f"{q} * sx{lead + d}" for d, q in enumerate(pos)])
        k.emit(f"ok = xmask & {valid}")
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
    writer = BodyWriter(group, consts, pyname)
    ctx = Ctx(k, 1, "xmask", "xi", natural=out, dim_idx=[n if s > 1 else None for n, s in zip(names, out)])
    out_dtype = dtype
    if p["max"]:
        results = {0: "acc", 1: "arg"}
    else:
        if p.get("divisor"):
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
                ctx.values[g] = (results[g.args[1]], g.meta["val"].dtype)
    else:
        ctx.values[node] = (results[0], out_dtype)
    writer.nodes(ctx, group.epi)
    _store_all(ctx, k, group.core + group.extra + group.epi, stored)
    _finish_params(k, stored)
    return Launch(k, f"(triton.cdiv({n_out}, {block}),)", stored, {"num_warps": sched["num_warps"]})
