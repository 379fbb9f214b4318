"""Reduction groups: [RBLOCK rows x KBLOCK] tiles, one sweep per stage (softmax: max, sum, then
the normalised values), fused prologue per element and epilogue per row."""

from __future__ import annotations

import contextlib
from typing import Any

from torch.fx import Node

from kgen.core.generate.builtin import ops
from kgen.core.generate.builtin.codegen import (
    BodyWriter,
    Ctx,
    Kernel,
    Launch,
    as_float,
    clip_block,
    finish_params,
    output_params,
    row_space,
    store_all,
)
from kgen.core.generate.builtin.fusion import Group
from kgen.core.generate.builtin.graph import shape_of, trace

KIND = "reduction"
SECTION = "reduction"


def _identity(kind: str, dtype: Any) -> str:
    import torch

    if kind in ("sum", "mean", "var", "any"):
        return "0"
    if kind in ("prod", "all"):
        return "1"
    big = kind in ("min", "amin", "argmin")
    if dtype.is_floating_point:
        return 'float("inf")' if big else 'float("-inf")'
    info = torch.iinfo(dtype)
    return str(info.max if big else info.min)


class _Reducer:
    """Accumulator code for one reduction node over [RBLOCK, KBLOCK] tiles."""

    def __init__(self, node: Any, k: Kernel, chunked: bool = False):
        import torch

        self.node = node
        self.kind = ops.packet(node)
        x = node.args[0]
        self.in_dtype = x.meta["val"].dtype
        val = node.meta["val"]
        self.vals = list(val) if isinstance(val, (list, tuple)) else [val]
        out_dtype = self.vals[0].dtype
        if self.kind in ("argmax", "argmin"):
            self.acc_dtype = ops.compute_dtype(self.in_dtype)
        elif self.kind in ("any", "all"):
            self.acc_dtype = torch.int32
        elif self.kind in ("sum", "prod") and not out_dtype.is_floating_point:
            self.acc_dtype = out_dtype
        else:
            self.acc_dtype = ops.compute_dtype(out_dtype if out_dtype.is_floating_point else self.in_dtype)
        self.acc = k.var("acc")
        self.idx = k.var("aidx")
        self.mean = k.var("mean")
        self.with_index = self.kind in ("argmax", "argmin") or (self.kind in ("max", "min") and len(self.vals) == 2)
        # a variance over a row that does not fit one block: one sweep, each chunk's count, mean
        # and squared deviations merged into running per-row values (Chan et al.'s parallel
        # Welford update), instead of a mean sweep and a deviation sweep over memory
        self.welford = self.kind == "var" and chunked
        self.two_pass = self.kind == "var" and not chunked
        self.cnt, self.m2 = k.var("wcnt"), k.var("wm2")

    def init(self, ctx: Ctx) -> None:
        t = ops.tl_type(self.acc_dtype)
        if self.welford:
            for v in (self.cnt, self.mean, self.m2):
                ctx.emit(f"{v} = tl.zeros([RBLOCK], {t})")
            return
        ctx.emit(f"{self.acc} = tl.full([RBLOCK, KBLOCK], {_identity(self.kind, self.acc_dtype)}, {t})")
        if self.with_index:
            ctx.emit(f"{self.idx} = tl.full([RBLOCK, KBLOCK], 0, tl.int64)")

    def update(self, ctx: Ctx, x: str, pass_no: int) -> None:
        t = ops.tl_type(self.acc_dtype)
        ident = _identity(self.kind, self.acc_dtype)
        xv = ctx.k.var("r")
        if self.kind in ("any", "all"):
            ctx.emit(f"{xv} = tl.where({ctx.mask}, ({x} != 0).to(tl.int32), {ident})")
        else:
            ctx.emit(f"{xv} = tl.where({ctx.mask}, {x}.to({t}), {ident})")
        k = self.kind
        if self.welford:
            var = ctx.k.var
            n, m, d, tot, delta = var("wn"), var("wmean"), var("wdev"), var("wtot"), var("wdelta")
            ctx.emit(f"{n} = tl.sum({ctx.mask}.to({t}), 1)")
            ctx.emit(f"{m} = tl.sum({xv}, 1) / tl.maximum({n}, 1)")
            ctx.emit(f"{d} = tl.where({ctx.mask}, {xv} - {m}[:, None], 0)")
            ctx.emit(f"{tot} = {self.cnt} + {n}")
            ctx.emit(f"{delta} = {m} - {self.mean}")
            ctx.emit(f"{self.mean} = {self.mean} + {delta} * ({n} / tl.maximum({tot}, 1))")
            ctx.emit(f"{self.m2} = {self.m2} + tl.sum({d} * {d}, 1) + {delta} * {delta} * ({self.cnt} * {n} / tl.maximum({tot}, 1))")
            ctx.emit(f"{self.cnt} = {tot}")
        elif k == "var" and pass_no == 1:
            ctx.emit(f"{xv} = tl.where({ctx.mask}, {xv} - {self.mean}[:, None], 0)")
            ctx.emit(f"{self.acc} += {xv} * {xv}")
        elif k in ("sum", "mean", "var"):
            ctx.emit(f"{self.acc} += {xv}")
        elif k == "prod":
            ctx.emit(f"{self.acc} *= {xv}")
        elif k == "any":
            ctx.emit(f"{self.acc} = {self.acc} | {xv}")
        elif k == "all":
            ctx.emit(f"{self.acc} = {self.acc} & {xv}")
        elif self.with_index:
            better = ">" if k in ("max", "argmax") else "<"
            upd = ctx.k.var("upd")
            # NaN wins like in torch (the first NaN's index); a lane keeps its first NaN
            nan = f" | (({xv} != {xv}) & ({self.acc} == {self.acc}))" if self.acc_dtype.is_floating_point else ""
            ctx.emit(f"{upd} = ({xv} {better} {self.acc}){nan}")
            ctx.emit(f"{self.acc} = tl.where({upd}, {xv}, {self.acc})")
            ctx.emit(f"{self.idx} = tl.where({upd}, ks, {self.idx})")
        else:
            fn = "tl.maximum" if k in ("max", "amax") else "tl.minimum"
            nan = ", propagate_nan=tl.PropagateNan.ALL" if self.acc_dtype.is_floating_point else ""
            ctx.emit(f"{self.acc} = {fn}({self.acc}, {xv}{nan})")

    def finish_pass0(self, ctx: Ctx, K: int) -> None:
        if self.two_pass:
            ctx.emit(f"{self.mean} = tl.sum({self.acc}, 1) / {as_float(K)}")
            ctx.emit(f"{self.acc} = tl.zeros([RBLOCK, KBLOCK], {ops.tl_type(self.acc_dtype)})")

    def results(self, ctx: Ctx, K: int) -> list[str]:
        k = self.kind
        r = ctx.k.var("red")
        if k in ("sum", "mean"):
            ctx.emit(f"{r} = tl.sum({self.acc}, 1)")
            if k == "mean":
                ctx.emit(f"{r} = {r} / {as_float(K)}")
            return [r]
        if k == "var":
            corr = self.node.kwargs.get("correction")
            if getattr(self.node.target, "namespace", "") == "prims":
                corr = self.node.args[2]
            elif getattr(self.node.target, "_overloadname", "") == "dim":
                # var.dim(x, dim, unbiased=True, keepdim=False): Bessel's correction or none
                unbiased = self.node.args[2] if len(self.node.args) > 2 else self.node.kwargs.get("unbiased", True)
                corr = 1 if unbiased else 0
            corr = 1 if corr is None else corr
            ctx.emit(f"{r} = {self.m2 if self.welford else f'tl.sum({self.acc}, 1)'} / {as_float(K - corr)}")
            return [r]
        if k == "prod":
            ctx.emit(f"{r} = tl.reduce({self.acc}, 1, _kgen_mul)")
            return [r]
        if k in ("any", "all"):
            fn = "tl.max" if k == "any" else "tl.min"
            ctx.emit(f"{r} = {fn}({self.acc}, 1) != 0")
            return [r]
        top = k in ("max", "amax", "argmax")
        if self.acc_dtype.is_floating_point:
            ctx.emit(f"{r} = tl.reduce({self.acc}, 1, {'_kgen_max' if top else '_kgen_min'})")
        else:
            ctx.emit(f"{r} = {'tl.max' if top else 'tl.min'}({self.acc}, 1)")
        if not self.with_index:
            return [r]
        i = ctx.k.var("ridx")
        hit = f"({self.acc} == {r}[:, None])"
        if self.acc_dtype.is_floating_point:
            hit = f"({hit} | (({self.acc} != {self.acc}) & ({r}[:, None] != {r}[:, None])))"
        ctx.emit(f"{i} = tl.min(tl.where({hit}, {self.idx}, {K}), 1)")
        return [i] if k in ("argmax", "argmin") else [r, i]


class _OnlineSoftmax:
    """A row max and the sum of exp(x - max) in one sweep over a row longer than one block:
    a running max, and a running sum rescaled by exp(old max - new max) whenever the max grows
    (the online softmax normaliser), instead of a max sweep and then an exp-sum sweep."""

    two_pass = False

    def __init__(self, amax: Any, total: Any, k: Kernel):
        self.node, self.total = amax, total
        self.t = ops.tl_type(ops.compute_dtype(amax.args[0].meta["val"].dtype))
        self.m, self.s = k.var("om"), k.var("os")

    def init(self, ctx: Ctx) -> None:
        ctx.emit(f"{self.m} = tl.full([RBLOCK], float(\"-inf\"), {self.t})")
        ctx.emit(f"{self.s} = tl.zeros([RBLOCK], {self.t})")

    def update(self, ctx: Ctx, x: str, pass_no: int) -> None:
        var = ctx.k.var
        av, mn, alpha, e = var("oa"), var("omn"), var("oscale"), var("oe")
        ctx.emit(f"{av} = tl.where({ctx.mask}, {x}.to({self.t}), float(\"-inf\"))")
        ctx.emit(f"{mn} = tl.maximum({self.m}, tl.reduce({av}, 1, _kgen_max), propagate_nan=tl.PropagateNan.ALL)")
        # lanes at -inf add nothing (also while the max itself is still -inf); NaN propagates
        ctx.emit(f"{alpha} = tl.where({mn} == float(\"-inf\"), 1.0, tl.exp({self.m} - {mn}))")
        ctx.emit(f"{e} = tl.where({av} == float(\"-inf\"), 0.0, tl.exp({av} - {mn}[:, None]))")
        ctx.emit(f"{self.s} = {self.s} * {alpha} + tl.sum({e}, 1)")
        ctx.emit(f"{self.m} = {mn}")

    def finish_pass0(self, ctx: Ctx, K: int) -> None:
        pass

    def results(self, ctx: Ctx, K: int) -> list[str]:
        # torch: a row whose max is -inf sums exp(-inf - -inf) = NaN
        ctx.emit(f"{self.s} = tl.where({self.m} == float(\"-inf\"), float(\"nan\"), {self.s})")
        return [self.m, self.s]


class _Select:
    """gather(x, dim, index) along the reduced dim with one index per row (fusion.Fuser._row_select):
    the lane whose position along that dim equals the row's index, summed out of the row tile."""

    two_pass = False

    def __init__(self, node: Any, k: Kernel, writer: BodyWriter, dim: int, shape: tuple):
        self.node, self.writer, self.dim, self.shape = node, writer, dim, shape
        self.t = ops.tl_type(ops.compute_dtype(node.meta["val"].dtype))
        self.acc = k.var("sel")

    def init(self, ctx: Ctx) -> None:
        ctx.emit(f"{self.acc} = tl.zeros([RBLOCK, KBLOCK], {self.t})")

    def update(self, ctx: Ctx, x: str, pass_no: int) -> None:
        index = self.writer.tensor(ctx, self.node.args[2], self.shape)
        lane = (ctx.dim_idx or [])[self.dim] if ctx.dim_idx else None
        assert lane is not None, "a row tile indexes its reduced dim"
        ctx.emit(f"{self.acc} += tl.where({ctx.mask} & ({lane} == {index}), {x}.to({self.t}), 0)")

    def finish_pass0(self, ctx: Ctx, K: int) -> None:
        pass

    def results(self, ctx: Ctx, K: int) -> list[str]:
        r = ctx.k.var("red")
        ctx.emit(f"{r} = tl.sum({self.acc}, 1)")
        return [r]


def _online_softmax(group: Group, stage: int, stored: list[Node]) -> tuple[Any, Any] | None:
    """(amax, sum) when stage `stage` is a row max and stage + 1 only sums exp(x - that max) of
    the same x (softmax's and log_softmax's normaliser), so both fit one sweep."""
    at = group.stage_of.get
    first = [n for n in group.core if at(n, 0) == stage]
    second = [n for n in group.core if at(n, 0) == stage + 1]
    if len(first) != 1 or len(second) != 1:
        return None
    amax, total = first[0], second[0]
    if ops.packet(amax) != "amax" or ops.packet(total) != "sum" or total.kwargs.get("dtype") is not None:
        return None
    if not amax.meta["val"].dtype.is_floating_point:
        return None
    e = trace(total.args[0])[0]
    if ops.packet(e) != "exp" or e not in group.pro:
        return None
    d = trace(e.args[0])[0]
    if ops.packet(d) != "sub" or d not in group.pro or len(d.args) != 2 or d.kwargs.get("alpha") is not None:
        return None
    x, m = d.args
    if not (isinstance(x, Node) and isinstance(m, Node)) or trace(m)[0] is not amax:
        return None
    src = amax.args[0]
    if trace(x)[0] is not trace(src)[0] or shape_of(x) != shape_of(src) or shape_of(src) != tuple(group.shape):
        return None
    if d.meta["val"].dtype != src.meta["val"].dtype or e.meta["val"].dtype != src.meta["val"].dtype:
        return None
    # the per-element values of the second stage must not be needed at the half-known max
    if any(n in stored for n in group.pro if at(n, 0) == stage + 1):
        return None
    return amax, total


def _result_nodes(group: Group, node: Any) -> list[Any]:
    """The value-carrying nodes of a core node: itself, or its getitems for tuple results."""
    if isinstance(node.meta["val"], (list, tuple)):
        items = {g.args[1]: g for g in group.extra if g.args[0] is node}
        return [items.get(i) for i in range(len(node.meta["val"]))]
    return [node]


def emit(group: Group, name: str, sched: dict, consts: set[Node], pyname: Any, stored: list[Node]) -> Launch:
    k = Kernel(name)
    R, K = group.out_numel, group.numel // max(1, group.out_numel)
    kb = clip_block(sched["KBLOCK"], K, grow=True)
    rb = clip_block(sched["RBLOCK"], R, cap=max(1, int(sched["max_tile"]) // kb), host=True)
    k.constexprs.update(RBLOCK=rb, KBLOCK=kb)
    output_params(k, stored)
    writer = BodyWriter(group, consts, pyname)
    k.emit("rows = tl.program_id(0) * RBLOCK + tl.arange(0, RBLOCK)[:, None]")
    k.emit(f"rmask = rows < {R}")
    k.emit("rows1 = tl.program_id(0) * RBLOCK + tl.arange(0, RBLOCK)")
    k.emit(f"rmask1 = rows1 < {R}")
    base = Ctx(k, "rmask", "rows")
    epi = Ctx(k, "rmask1", "rows1")
    # the row fits one block: every stage works on the same registers (one read per element,
    # statistics and the normalise pass included), instead of one sweep over memory per stage
    whole = whole_rows(k, group, K) if kb >= K else None
    stages(k, group, writer, stored, base, epi, whole, K)
    finish_params(k, stored)
    return Launch(k, f"(triton.cdiv({R}, {rb}),)", stored, {"num_warps": sched["num_warps"]})


def stages(k: Kernel, group: Group, writer: BodyWriter, stored: list[Node], base: Ctx, epi: Ctx,
           whole: Ctx | None, K: Any) -> dict[Any, tuple[str, Any]]:
    """The group's stages over rows of K elements: per-element work, reductions and per-row
    epilogue, either on one register tile per row block (`whole`) or in sweeps over memory.
    `base`/`epi` are the per-row contexts ([RBLOCK, 1] and [RBLOCK] row indices). Returns the
    per-row values computed (node -> [RBLOCK] register)."""
    row_values: dict[Any, tuple[str, Any]] = {}
    stage = -1
    while stage + 1 < group.stages:
        stage += 1
        elem = [n for n in group.pro if group.stage_of.get(n, 0) <= stage]
        mine = [n for n in group.pro if group.stage_of.get(n, 0) == stage]
        online = _online_softmax(group, stage, stored) if whole is None else None
        reducers: list[Any] = []
        span = {stage}
        if online is not None:
            reducers = [_OnlineSoftmax(online[0], online[1], k)]
            span = {stage, stage + 1}
        else:
            reducers = [_Select(n, k, writer, group.dims[0], tuple(group.shape)) if ops.packet(n) == "gather"
                        else _Reducer(n, k, chunked=whole is None)
                        for n in group.core if group.stage_of.get(n, 0) == stage]
        if stage:
            k.emit(f"# {'stage' if whole else 'sweep'} {stage + 1}: per-element work that reads the per-row results above")
        for r in reducers:
            r.init(base)
        passes = 2 if any(r.two_pass for r in reducers) else 1
        if not reducers and not any(n in stored for n in mine):
            passes = 0
        for p in range(passes):
            with contextlib.ExitStack() as loop:
                if whole is not None:
                    ctx = whole
                else:
                    loop.enter_context(k.block(f"for k0 in range(0, {K}, KBLOCK):"))
                    ctx = Ctx(k, "mask", "flat", natural=group.shape)
                    ctx.emit("ks = k0 + tl.arange(0, KBLOCK)[None, :]")
                    ctx.emit(f"kmask = ks < {K}")
                    ctx.emit("mask = rmask & kmask")
                    ctx.dim_idx = row_space(ctx, group, "rows", list(group.dims), "ks")
                    ctx.lanes = (set(group.dims), "kmask")
                    ctx.row_mask = "rmask"
                for node, (text, dtype) in row_values.items():
                    ctx.values.setdefault(node, (f"{text}[:, None]", dtype))
                writer.nodes(ctx, elem)
                if p == 0:
                    store_all(ctx, k, mine, stored)
                for r in reducers:
                    if p == 0 or r.two_pass:
                        x = writer.tensor(ctx, r.node.args[0], shape_of(r.node.args[0]))
                        r.update(ctx, x, p)
            if p == 0 and passes == 2:
                for r in reducers:
                    r.finish_pass0(base, K)
        done = []
        for r in reducers:
            nodes = [r.node, r.total] if isinstance(r, _OnlineSoftmax) else _result_nodes(group, r.node)
            for node, text in zip(nodes, r.results(epi, K)):
                if node is not None:
                    epi.values[node] = (text, node.meta["val"].dtype)
                    done.append(node)
        rows_here = [n for n in group.epi if group.stage_of.get(n, 0) in span]
        writer.nodes(epi, rows_here)
        for node in done + rows_here:
            row_values[node] = epi.values[node]
        store_all(epi, k, [n for n in group.core + group.extra + group.epi if n in done or n in rows_here], stored)
        stage = max(span)
    return row_values


def whole_rows(k: Kernel, group: Group, width: Any, mask: str = "mask") -> Ctx:
    """The context of rows held whole in one block (`rows`, `rmask` already emitted): lanes `ks`
    over the reduced dims, `kmask` off the row's `width`, `mask` both; every stage then works
    on the same registers."""
    whole = Ctx(k, mask, "flat", natural=group.shape)
    whole.emit("ks = tl.arange(0, KBLOCK)[None, :]")
    whole.emit(f"kmask = ks < {width}")
    whole.emit(f"{mask} = rmask & kmask")
    whole.dim_idx = row_space(whole, group, "rows", list(group.dims), "ks")
    whole.lanes = (set(group.dims), "kmask")
    whole.row_mask = "rmask"
    return whole
