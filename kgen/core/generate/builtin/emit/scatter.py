"""Scatter groups (index_put, index_add through its decomposition, scatter, scatter_add,
scatter_reduce sum): the output starts as a copy of `self` (a fill when `self` is a constant),
made on the host before the launch; then one program per XBLOCK written elements computes each
element's destination from its index tensors and stores it there, or adds it with an atomic when
the op accumulates.

Determinism caveat: atomic adds land in whatever order the programs run, so a float sum over
duplicate indices may differ in the last bits between runs on a GPU (torch's CUDA index_add and
scatter_add behave the same way; the interpreter runs programs in order). A non-accumulating
scatter with duplicate indices keeps one of the written values, as torch leaves it unspecified
which. Out-of-range indices are skipped (torch raises).

Pointwise work on the scattered result (a ReLU after a segment sum) fuses without a second
launch: every program takes a ticket from a counter after its writes (a CTA barrier, then an
acq_rel atomic at GPU scope: the threadfence-reduction pattern), and the program that draws the
last ticket, when every write has landed, applies the epilogue over the whole output, reading it
through L2 (`.cg`). An elementwise epilogue with one output of the scattered shape and dtype is
applied in place: the scatter accumulates into that output directly (no scratch buffer). One program does that pass, so it suits outputs far smaller than the
scattered input (segment sums)."""

from __future__ import annotations

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
    output_params,
    store_all,
)
from kgen.core.generate.builtin.fusion import Group
from kgen.core.generate.builtin.graph import numel, shape_of, trace
from kgen.core.generate.builtin.legality import scatter_spec
from kgen.core.generate.builtin.sizes import is_symbolic

KIND = "scatter"
SECTION = "pointwise"


def emit(group: Group, name: str, sched: dict, consts: set[Node], pyname: Any, stored: list[Node]) -> Launch:
    k = Kernel(name)
    node = group.core[0]
    spec = scatter_spec(node)
    assert spec is not None
    space = tuple(spec["space"])
    out_shape = shape_of(node)
    out_dtype = node.meta["val"].dtype
    n = numel(space)
    block = clip_block(sched["XBLOCK"], max(1, n))
    k.constexprs["XBLOCK"] = block
    output_params(k, stored)
    host = f"t_{node.name}"
    inplace = _inplace_epilogue(group, node, stored)
    if node in stored:
        out = k.outputs[node]
    elif inplace is not None:
        # the epilogue's own output holds the scattered values, and the last program rewrites it
        # in place: no scratch buffer written and read back
        out, host = k.outputs[inplace], f"t_{inplace.name}"
    else:
        # only the fused epilogue reads the scattered values: a scratch buffer holds them
        out, host = "scratch", f"t_{node.name}_scratch"
        k.prelude.append(f"{host} = torch.empty({out_shape!r}, dtype={out_dtype}, device=dev)")
        k.params.append(out)
        k.launch.append(host)
    # the starting value: a fill for a constant self, else a copy (neither is torch compute)
    me = spec["self"]
    root, _ = trace(me)
    if root in consts and ops.iota(root) is None:
        k.prelude.append(f"{host}.fill_({ops.const_fill(root)!r})")
    else:
        k.prelude.append(f"{host}.copy_({pyname(me)})")
    k.emit("xi = tl.program_id(0) * XBLOCK + tl.arange(0, XBLOCK)")
    k.emit(f"xmask = xi < {n}")
    ctx = Ctx(k, "xmask", "xi")
    coords = ctx.dims_for(space)
    cs = contiguous_strides(out_shape)
    terms: list[str] = []
    ok = ["xmask"]

    def index_value(t: Node, shape: tuple, dims: list[str | None]) -> str:
        p, strides = k.tensor_param(pyname(t), shape)
        off = ctx.offset(dims, strides)
        v = k.var("idx")
        ctx.emit(f"{v} = tl.load({p} + {off if off != '0' else '0 * xi'}, mask=xmask, other=0).to(tl.int64)")
        return v

    def place(v: str, size: int, stride: int) -> None:
        w = k.var("pos")
        ctx.emit(f"{w} = tl.where({v} < 0, {v} + {size}, {v})   # negative indices count from the end")
        ok.append(f"({w} >= 0) & ({w} < {size})")
        terms.append(f"{w} * {stride}")

    if spec["op"] == "index_put":
        lead = len(space) - (len(out_shape) - len(spec["lead"]))
        lead_shape = space[:lead]
        for d, t in enumerate(spec["lead"]):
            place(index_value(t, lead_shape, coords[:lead]), out_shape[d], cs[d])
        for j, c in enumerate(coords[lead:]):
            if c is not None:
                terms.append(f"{c} * {cs[len(spec['lead']) + j]}")
    else:
        dim = spec["dim"]
        for d, c in enumerate(coords):
            if d == dim:
                place(index_value(spec["index"], space, coords), out_shape[d], cs[d])
            elif c is not None:
                terms.append(f"{c} * {cs[d]}")
    src = spec["src"]
    if isinstance(src, Node):
        writer = BodyWriter(group, consts, pyname)
        val = writer.tensor(ctx, src, space)
    else:
        val = f"tl.full([XBLOCK], {ops.literal(src)}, {ops.tl_type(ops.compute_dtype(out_dtype))})"
    ctx.emit(f"dst = {' + '.join(terms) if terms else '0 * xi'}")
    ctx.emit(f"ok = {' & '.join(ok)}")
    cast = f"({val}).to({ops.tl_type(out_dtype)})"
    if spec["accumulate"]:
        ctx.emit(f"tl.atomic_add({out} + dst, {cast}, mask=ok, sem=\"relaxed\")")
    else:
        ctx.emit(f"tl.store({out} + dst, {cast}, mask=ok)")
    programs = (n + block - 1) // block
    if group.epi:
        _epilogue(k, group, node, consts, pyname, stored, out, programs, numel(out_shape))
    finish_params(k, stored)
    return Launch(k, f"({programs},)", stored, {"num_warps": sched["num_warps"]})


def _same_shape(a: tuple, b: tuple) -> bool:
    """Identical shapes (equal ints, the same symbolic expressions), decided without a guard."""
    return len(a) == len(b) and all(
        (type(x) is type(y) and (x.expr == y.expr if is_symbolic(x) else x == y)) for x, y in zip(a, b))


def _inplace_epilogue(group: Group, node: Node, stored: list[Node]) -> Node | None:
    """The epilogue output the scatter may accumulate into directly, else None: the one stored
    node of an epilogue of elementwise ops (no views: element e of the result depends on element
    e of the scattered values only) with the scattered result's shape and dtype. The epilogue
    pass then reads each element before it overwrites that same element."""
    outs = [n for n in group.epi if n in stored]
    if node in stored or len(outs) != 1 or any(ops.packet(n) in ops.VIEW_OPS for n in group.epi):
        return None
    shape = shape_of(node)
    if any(not _same_shape(shape_of(n), shape) for n in group.epi):
        return None
    if outs[0].meta["val"].dtype != node.meta["val"].dtype:
        return None
    return outs[0]


def _epilogue(k: Kernel, group: Group, node: Node, consts: set[Node], pyname: Any, stored: list[Node], out: str,
              programs: int, total: int) -> None:
    """The last program to finish applies the pointwise epilogue to the whole output."""
    k.prelude.append(f"t_{node.name}_tickets = torch.zeros((1,), dtype=torch.int32, device=dev)")
    k.params.append("tickets")
    k.launch.append(f"t_{node.name}_tickets")
    k.emit("# every write of this program is done before its ticket (CTA barrier, then release)")
    k.emit("tl.debug_barrier()")
    k.emit('ticket = tl.atomic_add(tickets, 1, sem="acq_rel", scope="gpu")')
    with k.block(f"if ticket == {programs - 1}:"):
        with k.block(f"for e0 in range(0, {total}, XBLOCK):"):
            ctx = Ctx(k, "emask", "ei")
            ctx.emit("ei = e0 + tl.arange(0, XBLOCK)")
            ctx.emit(f"emask = ei < {total}")
            ctx.emit(f"ev = tl.load({out} + ei, mask=emask, other=0, cache_modifier=\".cg\")")
            ctx.values[node] = ("ev", node.meta["val"].dtype)
            BodyWriter(group, consts, pyname).nodes(ctx, group.epi)
            store_all(ctx, k, group.epi, stored)
