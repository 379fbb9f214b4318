"""The kernel writer: parameters, index contexts, loads, stores, node bodies and launches.

Every emitter (emit/) builds its kernel with these; nothing here knows a group kind.

Static sizes are compile-time constants; symbolic ones (sizes.py) print as argument names the
module writer adds to the kernel's signature, computed on the host. Strides are runtime
arguments, so any input layout, broadcast (stride 0) or view works without a copy.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from torch.fx import Node

from kgen.core.generate.builtin import indexing, ops
from kgen.core.generate.builtin.fusion import Group
from kgen.core.generate.builtin.graph import arg, flat_to_coords, lowerable_tensor, numel, shape_of, trace
from kgen.core.generate.builtin.inline import inline_value, is_inline
from kgen.core.generate.builtin.legality import INDEXED_OPS
from kgen.core.generate.builtin.sizes import guard_range, is_symbolic


def contiguous_strides(shape: tuple) -> list[int]:
    out, acc = [], 1
    for s in reversed(shape):
        out.append(acc)
        acc *= s
    return list(reversed(out))


@dataclass
class Lit:
    value: Any
    dtype: Any


@dataclass
class Kernel:
    name: str
    params: list[str] = field(default_factory=list)          # kernel signature, in order
    launch: list[str] = field(default_factory=list)          # python launch expressions, same order
    constexprs: dict[str, int] = field(default_factory=dict)  # schedule constants
    body: list[str] = field(default_factory=list)
    loads: dict = field(default_factory=dict)                 # (python tensor, shape) -> param
    outputs: dict = field(default_factory=dict)               # node -> param
    prelude: list[str] = field(default_factory=list)          # python lines run before the launch
    counter: int = 0
    indent: int = 1                                           # of the next line; see block()

    def var(self, prefix: str = "t") -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def emit(self, line: str) -> None:
        self.body.append("    " * self.indent + line)

    @contextlib.contextmanager
    def block(self, header: str) -> Iterator[None]:
        """`header` (a `for ...:` line), then everything emitted inside the `with` in its body."""
        self.emit(header)
        self.indent += 1
        try:
            yield
        finally:
            self.indent -= 1

    def tensor_param(self, py: str, shape: tuple) -> tuple[str, list[str | None]]:
        """A pointer parameter for python tensor `py` broadcast to `shape`; stride params per dim."""
        key = (py, shape)
        if key in self.loads:
            return self.loads[key]
        p = f"in{len(self.loads)}"
        self.params.append(p)
        self.launch.append(py)
        strides: list[str | None] = []
        big = [d for d, s in enumerate(shape) if s > 1]
        if big:
            sv = f"{p}_st"
            self.prelude.append(f"{sv} = _kgen_strides({py}, {tuple(shape)!r})")
        for d, s in enumerate(shape):
            if s > 1:
                name = f"{p}_s{d}"
                self.params.append(name)
                self.launch.append(f"{p}_st[{d}]")
                strides.append(name)
            else:
                strides.append(None)
        self.loads[key] = (p, strides)
        return p, strides

    def source(self, doc: str) -> str:
        sig = ", ".join(self.params + [f"{k}: tl.constexpr" for k in self.constexprs])
        return "\n".join(["@triton.jit", f"def {self.name}({sig}):", f"    # {doc}"] + self.body) + "\n"


class Ctx:
    """Where a block of code runs: its mask, flat row-major index and per-dim indices."""

    def __init__(self, k: Kernel, mask: str, flat: str, natural: tuple | None = None,
                 dim_idx: list[str | None] | None = None):
        self.k, self.mask, self.flat = k, mask, flat
        self.natural, self.dim_idx = natural, dim_idx
        self.cache: dict[tuple, list[str | None]] = {}   # shape -> unravelled indices
        self.loaded: dict[tuple, str] = {}                # (tensor, shape, dtype) -> register
        self.values: dict[Any, tuple[str, Any]] = {}
        self.exprs: dict[str, str] = {}                   # right-hand side -> register (CSE)
        # row tiles of a reduction: (the reduced dims, a mask over the chunk's lanes only). An
        # operand that varies only along the reduced dims (a layer norm weight) is loaded once
        # per program as one [1, KBLOCK] row and broadcast, not once per row of the tile
        self.lanes: tuple[set[int], str] | None = None
        # and the mask over the tile's rows only: an operand that varies only along the kept dims
        # (batch norm's weight in a per-channel reduction) is loaded once per row as [RBLOCK, 1]
        self.row_mask: str | None = None

    def emit(self, line: str) -> None:
        self.k.emit(line)   # at the kernel's current block depth

    def dims_for(self, shape: tuple) -> list[str | None]:
        if self.natural is not None and tuple(shape) == tuple(self.natural) and self.dim_idx is not None:
            return self.dim_idx
        if shape in self.cache:
            return self.cache[shape]
        idx = flat_to_coords(self.emit, self.k.var, self.flat, shape)
        self.cache[shape] = idx
        return idx

    def offset(self, dim_idx: list[str | None], strides: list[str | None]) -> str:
        terms = [f"{i} * {s}" for i, s in zip(dim_idx, strides) if i is not None and s is not None]
        return " + ".join(terms) if terms else "0"

    def _lane_only(self, shape: tuple, src_shape: tuple | None) -> bool:
        """Whether an operand of static shape `src_shape`, read at `shape` in this row tile, is the
        same for every row (it broadcasts over every non-reduced dim of size > 1)."""
        if self.lanes is None or src_shape is None or self.natural is None or tuple(shape) != tuple(self.natural):
            return False
        reduced, _ = self.lanes
        lead = len(shape) - len(src_shape)
        if lead < 0:
            return False
        rows = [d for d, s in enumerate(shape) if d not in reduced and s > 1]
        lanes = [d for d, s in enumerate(shape) if d in reduced and s > 1]
        return bool(rows) and bool(lanes) and all(d < lead or src_shape[d - lead] == 1 for d in rows)

    def _row_only(self, shape: tuple, src_shape: tuple | None) -> bool:
        """Whether an operand of static shape `src_shape`, read at `shape` in this row tile, is the
        same for every lane of a row (it broadcasts over every reduced dim of size > 1)."""
        if (self.lanes is None or self.row_mask is None or src_shape is None or self.natural is None
                or tuple(shape) != tuple(self.natural)):
            return False
        reduced, _ = self.lanes
        lead = len(shape) - len(src_shape)
        if lead < 0:
            return False
        lanes = [d for d, s in enumerate(shape) if d in reduced and s > 1]
        rows = [d for d, s in enumerate(shape) if d not in reduced and d >= lead and src_shape[d - lead] > 1]
        return bool(rows) and bool(lanes) and all(d < lead or src_shape[d - lead] == 1 for d in lanes)

    def load(self, py: str, shape: tuple, dtype: Any, src_shape: tuple | None = None) -> str:
        key = (py, tuple(shape), str(dtype))
        if key in self.loaded:
            return self.loaded[key]
        p, strides = self.k.tensor_param(py, tuple(shape))
        mask = self.mask
        dims = self.dims_for(tuple(shape))
        if self.lanes is not None and self._lane_only(shape, src_shape):
            # the row dims' strides are 0 (static broadcast): leave them out of the address so
            # the load is one [1, KBLOCK] row of lanes
            reduced, mask = self.lanes
            dims = [i if d in reduced else None for d, i in enumerate(dims)]
        elif self.lanes is not None and self.row_mask is not None and self._row_only(shape, src_shape):
            # the reduced dims' strides are 0: one [RBLOCK, 1] column, one load per row
            reduced, _ = self.lanes
            mask = self.row_mask
            dims = [None if d in reduced else i for d, i in enumerate(dims)]
        off = self.offset(dims, strides)
        if off == "0":
            off = f"0 * {self.flat}"  # a single element, broadcast to the block so the mask applies
        v = self.k.var("x")
        self.emit(f"{v} = tl.load({p} + {off}, mask={mask}, other=0).to({ops.tl_type(ops.compute_dtype(dtype))})")
        self.loaded[key] = v
        return v

    def store(self, param: str, value: str, dtype: Any) -> None:
        self.emit(f"tl.store({param} + {self.flat}, ({value}).to({ops.tl_type(dtype)}), mask={self.mask})")


class BodyWriter:
    """Emits the ATen nodes of one group into a context, resolving operands to registers or loads."""

    def __init__(self, group: Group, consts: set[Node], pyname: Callable[[Node], str]):
        self.group = group
        self.consts = consts
        self.pyname = pyname

    def value(self, ctx: Ctx, arg: Any, consumer_shape: tuple) -> tuple[str, Any] | Lit:
        if arg in ctx.values:
            return ctx.values[arg]   # a view an emitter computed itself (a picked sorted position)
        root, chain = trace(arg)
        if root in self.consts and ops.iota(root) is not None:
            got = _iota(ctx, root, chain, consumer_shape)
            if got is not None:
                return got
            # a view of it the index arithmetic does not follow: read it from memory
        elif root in self.consts:
            return Lit(ops.const_fill(root), arg.meta["val"].dtype)
        elif is_inline(root):
            return inline_value(self, ctx, arg, tuple(consumer_shape))
        if root in ctx.values:
            return ctx.values[root]
        dtype = arg.meta["val"].dtype
        # a scalar-shaped operand broadcasts; everything else is viewed at the consumer's shape
        shape = tuple(consumer_shape)
        return ctx.load(self.pyname(arg), shape, dtype, shape_of(arg)), dtype

    def tensor(self, ctx: Ctx, arg: Any, consumer_shape: tuple) -> str:
        """Like value(), but a constant comes back as a full block, as reductions and scans need."""
        got = self.value(ctx, arg, consumer_shape)
        if isinstance(got, Lit):
            return _block(ctx, ops.literal(got.value))
        return got[0]

    def pointwise(self, ctx: Ctx, node: Any, at: tuple | None = None) -> None:
        """Emit `node`; `at` evaluates it at a bigger shape its own broadcasts to (its operands are
        read there too), for a value the consumer only ever sees broadcast."""
        if ops.packet(node) in INDEXED_OPS:
            ctx.values[node] = (indexing.lower(self, ctx, node), node.meta["val"].dtype)
            return
        shape = shape_of(node) if at is None else tuple(at)
        registers = []

        def resolve(a: Any) -> Any:
            got = self.value(ctx, a, shape)
            registers.append(not isinstance(got, Lit))
            return got

        o = _LitOperands(node, resolve)
        text = ops.POINTWISE[ops.packet(node)](o)
        if not any(registers):
            text = _block(ctx, text)  # constants only: give the value the block's shape
        dtype = node.meta["val"].dtype
        rhs = f"({text}).to({ops.tl_type(ops.compute_dtype(dtype))})"
        v = ctx.exprs.get(rhs)
        if v is None:   # common-subexpression reuse: the same value twice in one scope is one register
            v = ctx.k.var("v")
            ctx.emit(f"{v} = {rhs}")
            ctx.exprs[rhs] = v
        ctx.values[node] = (v, dtype)

    def nodes(self, ctx: Ctx, nodes: list[Any]) -> None:
        for n in nodes:
            self.pointwise(ctx, n, self.group.at.get(n))   # (Group.at: evaluated broadcast)


def _iota(ctx: Ctx, root: Node, chain: list[Node], consumer_shape: tuple) -> tuple[str, Any] | Lit | None:
    """An arange seen through `chain` (unsqueeze, expand, permute, reshape) at the consumer's
    shape: start + step * (the consumer's index along the dim the arange's values run along)."""
    found = ops.iota(root)
    assert found is not None
    start, step = found
    dtype = root.meta["val"].dtype
    n = shape_of(root)[0]
    if n == 1:
        return Lit(start, dtype)
    dim, shape = 0, [n]
    for v in reversed(chain):
        new = list(shape_of(v))
        name = ops.packet(v)
        if name == "unsqueeze":
            d = int(arg(v, 1)) % len(new)
            dim = dim + 1 if d <= dim else dim
        elif name == "expand":
            dim += len(new) - len(shape)
        elif name == "permute":
            perm = [int(p) % len(new) for p in arg(v, 1)]
            dim = perm.index(dim)
        else:
            big = [d for d, s in enumerate(new) if s != 1]
            if len(big) != 1 or new[big[0]] != n:
                return None
            dim = big[0]
        if new[dim] != n:
            return None
        shape = new
    lead = len(consumer_shape) - len(shape)
    if lead < 0 or consumer_shape[lead + dim] != n:
        return None
    idx = ctx.dims_for(tuple(consumer_shape))[lead + dim]
    if idx is None:
        return None
    text = f"({idx} * {ops.literal(step)} + {ops.literal(start)}).to({ops.tl_type(ops.compute_dtype(dtype))})"
    reg = ctx.exprs.get(text)
    if reg is None:
        reg = ctx.k.var("iota")
        ctx.emit(f"{reg} = {text}")
        ctx.exprs[text] = reg
    return reg, dtype


def _block(ctx: Ctx, scalar: str) -> str:
    return f"tl.where(tl.zeros_like({ctx.flat}) == 0, {scalar}, {scalar})"


class _LitOperands(ops.Operands):
    """Operands that may resolve to inlined constants (aten.full) instead of registers."""

    def expr(self, a: Any, to: Any = None) -> str:
        if self.is_tensor(a):
            got = self._value(a)
            if isinstance(got, Lit):
                target = ops.compute_dtype(to if to is not None else self.out)
                val = got.value
                if target.is_floating_point:
                    return ops.literal(float(val))
                if str(target) == "torch.bool":
                    return ops.literal(bool(val))
                return ops.literal(int(val))
        return super().expr(a, to)


def stored_nodes(group: Group, outputs: set[Node]) -> list[Node]:
    """Members whose value is needed outside the group (through any view chain)."""
    members = group.members

    def needed(node: Any) -> bool:
        if node in outputs:
            return True
        for u in node.users:
            if ops.packet(u) in ops.VIEW_OPS and u.op == "call_function":
                if needed(u):
                    return True
            elif u not in members and not (ops.packet(u) == "full_like" and lowerable_tensor(u)):
                return True   # (a full_like constant reads only the shape)
        return False

    out = []
    for n in ([group.head] if group.head else []) + group.pro + group.core + group.epi + group.extra:
        val = n.meta.get("val")
        if isinstance(val, (list, tuple)):
            continue
        if needed(n):
            out.append(n)
    return out


def next_pow2(n: Any) -> int:
    if is_symbolic(n):
        # the traced size's power of two, guarded by the one range that keeps it
        p = next_pow2(int(n.hint))
        guard_range(n, p // 2, p)
        return p
    p = 1
    while p < n:
        p *= 2
    return p


@dataclass
class Launch:
    kernel: Kernel
    grid: str
    stored: list[Node]         # nodes whose output buffers the kernel writes, in param order
    meta: dict                 # num_warps / num_stages and constexpr values


def store_all(ctx: Ctx, k: Kernel, nodes: list[Node], stored: list[Node]) -> None:
    """Store every node of `nodes` that leaves the kernel (in `stored`) and has a value in ctx."""
    for n in nodes:
        if n in stored and n in ctx.values:
            param = k.outputs[n]
            text, _ = ctx.values[n]
            ctx.store(param, text, n.meta["val"].dtype)


def output_params(k: Kernel, stored: list[Node]) -> None:
    """Name an output pointer per stored node (added to the signature by finish_params)."""
    for n in stored:
        p = f"out{len(k.outputs)}"
        k.outputs[n] = p


def finish_params(k: Kernel, stored: list[Node]) -> None:
    """Append the output pointers after the inputs, in `stored` order."""
    for n in stored:
        k.params.append(k.outputs[n])
        k.launch.append(f"@{n.name}")   # resolved to the output buffer by the module writer


def row_space(ctx: Ctx, group: Group, rows: str, dims_red: list[int], kvar: str) -> list[str | None]:
    shape = group.shape
    idx: list[str | None] = [None] * len(shape)
    outer = [d for d in range(len(shape)) if d not in dims_red]
    for base, dims in ((rows, outer), (kvar, dims_red)):
        for d, v in enumerate(flat_to_coords(ctx.emit, ctx.k.var, base, list(shape), dims)):
            if v is not None:
                idx[d] = v
    cs = contiguous_strides(shape)
    terms = [f"{i} * {cs[d]}" for d, i in enumerate(idx) if i is not None]
    ctx.emit(f"flat = {' + '.join(terms) if terms else '0 * ' + rows + ' + 0 * ' + kvar}")
    return idx


def clip_block(knob: int, extent: Any, floor: int = 1, cap: int | None = None, host: bool = False,
               grow: bool = False) -> Any:
    """A schedule's block size clipped to the problem: no bigger than the next power of two of
    `extent` (or `cap`), no smaller than `floor` (tl.dot needs 16).

    For a symbolic extent (sizes.py): with `host`, the block is chosen on the host at call time
    (a HostBlock: the emitter only passes it as a constexpr and uses it in the grid); else a
    block fixed at generation (see below)."""
    knob = int(knob)
    if not is_symbolic(extent):
        block = min(knob, next_pow2(extent))
        if cap is not None:
            block = min(block, cap)
        return max(floor, block)
    top = min(knob, cap) if cap is not None else knob
    if host:
        return HostBlock(f"max({floor}, min({top}, triton.next_power_of_2({extent})))")
    # no guard: a block only has to be a power of two >= floor; whatever the emitter then decides
    # by comparing it with the extent (one block per row or a loop) guards itself. With `grow`,
    # the knob itself (as large a block as the schedule allows), so that decision holds for
    # every extent up to the knob, not only up to the traced one's next power of two
    return max(floor, top if grow else min(top, next_pow2(int(extent.hint))))


def as_float(v: Any) -> str:
    """A count as a float operand in kernel code: a literal, or a symbolic size's argument name."""
    return str(v) if is_symbolic(v) else repr(float(v))


class HostBlock(str):
    """A constexpr block size the host computes at launch from a symbolic size (clip_block)."""


def dot_blocks(sched: dict, M: Any, N: Any, K: Any, elem_bytes: int, accumulators: int = 1) -> tuple[Any, Any, Any, dict]:
    """BLOCK_M/N/K of a tl.dot tile over M x N x K, clipped to the problem (host-chosen where a
    size is symbolic), and the schedule fitted to the compile target (schedule.fit_matmul, which
    may lower num_warps' partner BLOCK_K). A host-chosen block is fitted at its largest value,
    the schedule's knob, so the fit holds for every size it may take. `accumulators` products
    of one A tile (each with its own B tile) are fitted as one tile that many times as wide."""
    from kgen.core.generate.builtin import schedule

    bm = clip_block(sched["BLOCK_M"], M, floor=16, host=True)
    bn = clip_block(sched["BLOCK_N"], N, floor=16, host=True)
    bk = clip_block(sched["BLOCK_K"], K, floor=16, host=True)

    def upper(block: Any, knob: Any) -> int:
        return int(knob) if isinstance(block, HostBlock) else int(block)

    fit = schedule.fit_matmul(sched, upper(bm, sched["BLOCK_M"]), upper(bn, sched["BLOCK_N"]) * accumulators,
                              upper(bk, sched["BLOCK_K"]), elem_bytes)
    if fit["BLOCK_K"] != upper(bk, sched["BLOCK_K"]):
        bk = clip_block(fit["BLOCK_K"], K, floor=16, host=True)
    return bm, bn, bk, fit


__all__ = ["Kernel", "Ctx", "BodyWriter", "Launch", "Lit", "stored_nodes", "next_pow2", "contiguous_strides", "numel",
           "store_all", "output_params", "finish_params", "row_space", "clip_block", "as_float", "dot_blocks"]
