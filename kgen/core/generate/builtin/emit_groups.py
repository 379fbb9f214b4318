"""Kernel templates, one per group kind: pointwise, reduction, scan and tiled matmul.

Each template is parametrised by the schedule (block sizes, warps, stages) and takes the group's
fused pointwise prologue/epilogue from BodyWriter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kgen.core.generate.builtin import ops
from kgen.core.generate.builtin.fusion import Group, shape_of
from kgen.core.generate.builtin.kernel import BodyWriter, Ctx, Kernel, contiguous_strides, next_pow2


@dataclass
class Launch:
    kernel: Kernel
    grid: str
    stored: list[Any]          # nodes whose output buffers the kernel writes, in param order
    meta: dict                 # num_warps / num_stages and constexpr values


def _store_all(ctx: Ctx, k: Kernel, nodes: list[Any], stored: list[Any]) -> None:
    for n in nodes:
        if n in stored and n in ctx.values:
            param = k.outputs[n]
            text, _ = ctx.values[n]
            ctx.store(param, text, n.meta["val"].dtype)


def _output_params(k: Kernel, stored: list[Any]) -> None:
    for n in stored:
        p = f"out{len(k.outputs)}"
        k.outputs[n] = p


def _finish_params(k: Kernel, stored: list[Any]) -> None:
    for n in stored:
        k.params.append(k.outputs[n])
        k.launch.append(f"@{n.name}")   # resolved to the output buffer by the module writer


def pointwise(group: Group, name: str, sched: dict, consts: set, pyname: Any, stored: list[Any]) -> Launch:
    k = Kernel(name)
    n = group.numel
    block = max(1, min(int(sched["XBLOCK"]), next_pow2(n)))
    k.constexprs["XBLOCK"] = block
    _output_params(k, stored)
    k.emit("xi = tl.program_id(0) * XBLOCK + tl.arange(0, XBLOCK)")
    if n >= 2**31:
        k.emit("xi = xi.to(tl.int64)")
    k.emit(f"xmask = xi < {n}")
    ctx = Ctx(k, 1, "xmask", "xi")
    BodyWriter(group, consts, pyname).nodes(ctx, group.pro)
    _store_all(ctx, k, group.pro, stored)
    _finish_params(k, stored)
    return Launch(k, f"(triton.cdiv({n}, {block}),)", stored, {"num_warps": sched["num_warps"]})


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


def _unravel_into(ctx: Ctx, base: str, sizes: list[int], dims: list[int], idx: list[str | None]) -> None:
    rest = base
    big = [d for d in dims if sizes[d] > 1]
    for pos, d in enumerate(reversed(big)):
        v = ctx.k.var("i")
        last = pos == len(big) - 1
        ctx.emit(f"{v} = {rest}" if last else f"{v} = {rest} % {sizes[d]}")
        idx[d] = v
        if not last:
            q = ctx.k.var("q")
            ctx.emit(f"{q} = {rest} // {sizes[d]}")
            rest = q


class _Reducer:
    """Accumulator code for one reduction node over [RBLOCK, KBLOCK] tiles."""

    def __init__(self, node: Any, k: Kernel):
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
        self.two_pass = self.kind == "var"

    def init(self, ctx: Ctx) -> None:
        t = ops.tl_type(self.acc_dtype)
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
        if k == "var" and pass_no == 1:
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
            ctx.emit(f"{self.mean} = tl.sum({self.acc}, 1) / {float(K)!r}")
            ctx.emit(f"{self.acc} = tl.zeros([RBLOCK, KBLOCK], {ops.tl_type(self.acc_dtype)})")

    def results(self, ctx: Ctx, K: int) -> list[str]:
        k = self.kind
        r = ctx.k.var("red")
        if k in ("sum", "mean"):
            ctx.emit(f"{r} = tl.sum({self.acc}, 1)")
            if k == "mean":
                ctx.emit(f"{r} = {r} / {float(K)!r}")
            return [r]
        if k == "var":
            corr = self.node.kwargs.get("correction")
            if getattr(self.node.target, "namespace", "") == "prims":
                corr = self.node.args[2]
            corr = 1 if corr is None else corr
            ctx.emit(f"{r} = tl.sum({self.acc}, 1) / {float(K - corr)!r}")
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


def _result_nodes(group: Group, node: Any) -> list[Any]:
    """The value-carrying nodes of a core node: itself, or its getitems for tuple results."""
    if isinstance(node.meta["val"], (list, tuple)):
        items = {g.args[1]: g for g in group.extra if g.args[0] is node}
        return [items.get(i) for i in range(len(node.meta["val"]))]
    return [node]


def _space(ctx: Ctx, group: Group, rows: str, dims_red: list[int], kvar: str) -> list[str | None]:
    shape = group.shape
    idx: list[str | None] = [None] * len(shape)
    outer = [d for d in range(len(shape)) if d not in dims_red]
    _unravel_into(ctx, rows, list(shape), outer, idx)
    _unravel_into(ctx, kvar, list(shape), dims_red, idx)
    cs = contiguous_strides(shape)
    terms = [f"{i} * {cs[d]}" for d, i in enumerate(idx) if i is not None]
    ctx.emit(f"flat = {' + '.join(terms) if terms else '0 * ' + rows + ' + 0 * ' + kvar}")
    return idx


def reduction(group: Group, name: str, sched: dict, consts: set, pyname: Any, stored: list[Any]) -> Launch:
    k = Kernel(name)
    R, K = group.out_numel, group.numel // max(1, group.out_numel)
    kb = max(1, min(int(sched["KBLOCK"]), next_pow2(K)))
    rb = max(1, min(int(sched["RBLOCK"]), next_pow2(R), max(1, int(sched["max_tile"]) // kb)))
    k.constexprs.update(RBLOCK=rb, KBLOCK=kb)
    _output_params(k, stored)
    writer = BodyWriter(group, consts, pyname)
    k.emit("rows = tl.program_id(0) * RBLOCK + tl.arange(0, RBLOCK)[:, None]")
    k.emit(f"rmask = rows < {R}")
    k.emit("rows1 = tl.program_id(0) * RBLOCK + tl.arange(0, RBLOCK)")
    k.emit(f"rmask1 = rows1 < {R}")
    base = Ctx(k, 1, "rmask", "rows")
    epi = Ctx(k, 1, "rmask1", "rows1")
    row_values: dict[Any, tuple[str, Any]] = {}
    for stage in range(group.stages):
        elem = [n for n in group.pro if group.stage_of.get(n, 0) <= stage]
        mine = [n for n in group.pro if group.stage_of.get(n, 0) == stage]
        reducers = [_Reducer(n, k) for n in group.core if group.stage_of.get(n, 0) == stage]
        if stage:
            k.emit(f"# sweep {stage + 1}: per-element work that reads the per-row results above")
        for r in reducers:
            r.init(base)
        passes = 2 if any(r.two_pass for r in reducers) else 1
        if not reducers and not any(n in stored for n in mine):
            passes = 0
        for p in range(passes):
            k.emit(f"for k0 in range(0, {K}, KBLOCK):")
            ctx = Ctx(k, 2, "mask", "flat", natural=group.shape)
            ctx.emit("ks = k0 + tl.arange(0, KBLOCK)[None, :]")
            ctx.emit(f"mask = rmask & (ks < {K})")
            ctx.dim_idx = _space(ctx, group, "rows", list(group.dims), "ks")
            for node, (text, dtype) in row_values.items():
                ctx.values[node] = (f"{text}[:, None]", dtype)
            writer.nodes(ctx, elem)
            if p == 0:
                _store_all(ctx, k, mine, stored)
            for r in reducers:
                if p == 0 or r.two_pass:
                    x = writer.tensor(ctx, r.node.args[0], shape_of(r.node.args[0]))
                    r.update(ctx, x, p)
            if p == 0 and passes == 2:
                for r in reducers:
                    r.finish_pass0(base, K)
        done = []
        for r in reducers:
            for node, text in zip(_result_nodes(group, r.node), r.results(epi, K)):
                if node is not None:
                    epi.values[node] = (text, node.meta["val"].dtype)
                    done.append(node)
        rows_here = [n for n in group.epi if group.stage_of.get(n, 0) == stage]
        writer.nodes(epi, rows_here)
        for node in done + rows_here:
            row_values[node] = epi.values[node]
        _store_all(epi, k, [n for n in group.core + group.extra + group.epi if n in done or n in rows_here], stored)
    _finish_params(k, stored)
    return Launch(k, f"(triton.cdiv({R}, {rb}),)", stored, {"num_warps": sched["num_warps"]})


def scan(group: Group, name: str, sched: dict, consts: set, pyname: Any, stored: list[Any]) -> Launch:
    k = Kernel(name)
    node = group.core[0]
    dim = group.dims[0]
    K = group.shape[dim] if group.shape else 1
    R = group.numel // max(1, K)
    kb = max(1, min(int(sched["KBLOCK"]), next_pow2(K)))
    rb = max(1, min(int(sched["RBLOCK"]), next_pow2(R), max(1, int(sched["max_tile"]) // kb)))
    k.constexprs.update(RBLOCK=rb, KBLOCK=kb)
    _output_params(k, stored)
    writer = BodyWriter(group, consts, pyname)
    out_dtype = node.meta["val"].dtype
    acc_t = ops.tl_type(ops.compute_dtype(out_dtype))
    prod = ops.packet(node) == "cumprod"
    k.emit("rows = tl.program_id(0) * RBLOCK + tl.arange(0, RBLOCK)[:, None]")
    k.emit(f"rmask = rows < {R}")
    k.emit(f"carry = tl.full([RBLOCK], {1 if prod else 0}, {acc_t})")
    k.emit(f"for k0 in range(0, {K}, KBLOCK):")
    ctx = Ctx(k, 2, "mask", "flat", natural=group.shape)
    ctx.emit("ks = k0 + tl.arange(0, KBLOCK)[None, :]")
    ctx.emit(f"mask = rmask & (ks < {K})")
    ctx.dim_idx = _space(ctx, group, "rows", [dim], "ks")
    writer.nodes(ctx, group.pro)
    x = writer.tensor(ctx, node.args[0], shape_of(node.args[0]))
    ctx.emit(f"sx = tl.where(mask, {x}.to({acc_t}), {1 if prod else 0})")
    if prod:
        ctx.emit("sc = tl.cumprod(sx, 1) * carry[:, None]")
        ctx.emit("carry = carry * tl.reduce(sx, 1, _kgen_mul)")
    else:
        ctx.emit("sc = tl.cumsum(sx, 1) + carry[:, None]")
        ctx.emit("carry = carry + tl.sum(sx, 1)")
    ctx.values[node] = ("sc", out_dtype)
    writer.nodes(ctx, group.epi)
    _store_all(ctx, k, group.pro + group.core + group.epi, stored)
    _finish_params(k, stored)
    return Launch(k, f"(triton.cdiv({R}, {rb}),)", stored, {"num_warps": sched["num_warps"]})


def matmul(group: Group, name: str, sched: dict, consts: set, pyname: Any, stored: list[Any]) -> Launch:
    import torch

    k = Kernel(name)
    node = group.core[0]
    kind = ops.packet(node)
    a_node, b_node = (node.args[1], node.args[2]) if kind == "addmm" else (node.args[0], node.args[1])
    a_shape, b_shape = shape_of(a_node), shape_of(b_node)
    batched = len(a_shape) == 3
    B = a_shape[0] if batched else 1
    M, Kd = a_shape[-2], a_shape[-1]
    N = b_shape[-1]
    bm = max(16, min(int(sched["BLOCK_M"]), next_pow2(M)))
    bn = max(16, min(int(sched["BLOCK_N"]), next_pow2(N)))
    bk = max(16, min(int(sched["BLOCK_K"]), next_pow2(Kd)))
    k.constexprs.update(BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk, GROUP_M=int(sched["GROUP_M"]))
    _output_params(k, stored)
    pa, pb = pyname(a_node), pyname(b_node)
    k.params += ["a", "b", "sab", "sam", "sak", "sbb", "sbk", "sbn"]
    k.launch += [pa, pb, f"{pa}.stride(0)" if batched else "0", f"{pa}.stride({-2})", f"{pa}.stride({-1})",
                 f"{pb}.stride(0)" if batched else "0", f"{pb}.stride({-2})", f"{pb}.stride({-1})"]
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
    k.emit("a_ptrs = a + bid * sab + rm[:, None] * sam + rk[None, :] * sak")
    k.emit("b_ptrs = b + bid * sbb + rk[:, None] * sbk + rn[None, :] * sbn")
    k.emit("acc = tl.zeros([BLOCK_M, BLOCK_N], tl.float32)")
    k.emit(f"for k0 in range(0, {Kd}, BLOCK_K):")
    k.emit(f"ta = tl.load(a_ptrs, mask=(rm[:, None] < {M}) & (rk[None, :] + k0 < {Kd}), other=0.0)", 2)
    k.emit(f"tb = tl.load(b_ptrs, mask=(rk[:, None] + k0 < {Kd}) & (rn[None, :] < {N}), other=0.0)", 2)
    precision = ', input_precision="ieee"' if node.meta["val"].dtype == torch.float32 else ""
    k.emit(f"acc = tl.dot(ta, tb, acc{precision})", 2)
    k.emit("a_ptrs += BLOCK_K * sak", 2)
    k.emit("b_ptrs += BLOCK_K * sbk", 2)
    k.emit(f"mask = (rm[:, None] < {M}) & (rn[None, :] < {N})")
    k.emit(f"flat = bid * {M * N} + rm[:, None] * {N} + rn[None, :]")
    natural = shape_of(node)
    dim_idx = (["bid", "rm[:, None]", "rn[None, :]"] if batched else ["rm[:, None]", "rn[None, :]"])
    dim_idx = [i if s > 1 else None for i, s in zip(dim_idx, natural)]
    ctx = Ctx(k, 1, "mask", "flat", natural=natural, dim_idx=dim_idx)
    writer = BodyWriter(group, consts, pyname)
    out_dtype = node.meta["val"].dtype
    if kind == "addmm":
        beta = node.kwargs.get("beta", 1)
        alpha = node.kwargs.get("alpha", 1)
        bias = writer.tensor(ctx, node.args[0], natural)
        text = "acc" if alpha == 1 else f"acc * {float(alpha)!r}"
        btxt = bias if beta == 1 else f"{bias} * {float(beta)!r}"
        ctx.emit(f"mm = {text} + {btxt}")
        ctx.values[node] = ("mm", out_dtype)
    else:
        ctx.values[node] = ("acc", out_dtype)
    writer.nodes(ctx, group.epi)
    _store_all(ctx, k, group.core + group.epi, stored)
    _finish_params(k, stored)
    grid = f"(triton.cdiv({M}, {bm}) * triton.cdiv({N}, {bn}), {B})"
    return Launch(k, grid, stored, {"num_warps": sched["num_warps"], "num_stages": sched["num_stages"]})


EMITTERS = {"pointwise": pointwise, "reduction": reduction, "scan": scan, "matmul": matmul}

__all__ = ["Launch", "EMITTERS"]
