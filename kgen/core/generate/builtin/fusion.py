"""The fusion plan: which ATen nodes share one Triton kernel (a group), in execution order.

One greedy pass in graph order. A node may only join the most recent group, which keeps the group
order a valid schedule (everything a node reads is computed by an earlier group or inside the
same one). Within a group, register values are indexed by a flat row-major position, so views
that keep row-major order are free aliases; any other view forces the value through memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch.fx import Graph, Node

from kgen.core.generate.builtin import ops
from kgen.core.generate.builtin.attention_match import AttentionMatch, find_attention, operand_copies
from kgen.core.generate.builtin.convfuse import pointwise_conv, pool_epilogue, spatial_reduce
from kgen.core.generate.builtin.graph import (
    arg,
    broadcasts_to,
    lowerable_tensor,
    numel,
    operand,
    order_keeping,
    shape_of,
    tensor_args,
    trace,
)
from kgen.core.generate.builtin.inline import MARK as INLINE_MARK
from kgen.core.generate.builtin.inline import plan_inline
from kgen.core.generate.builtin.legality import (
    attention_params,
    conv_ok,
    index_ok,
    matmul_ok,
    pool_params,
    reduction_spec,
    scan_spec,
    scatter_spec,
    sort_spec,
)
from kgen.core.generate.builtin.positions import same_positions
from kgen.core.generate.builtin.rowfuse import prologue_of, row_owning, sibling_matmul, to_row_matmul
from kgen.core.generate.builtin.sizes import sized


@dataclass
class Group:
    index: int
    kind: str                       # pointwise | reduction | scan | sort | scatter | matmul | conv | pool | attention | fallback | alloc
    pro: list[Node] = field(default_factory=list)    # per-element nodes (the whole body of a pointwise group)
    core: list[Node] = field(default_factory=list)   # reductions / the scan / the matmul / the fallback call
    epi: list[Node] = field(default_factory=list)    # nodes over the core's output positions
    extra: list[Node] = field(default_factory=list)  # getitems riding along with a core node
    numel: int = 0                  # element count of the per-element space (pointwise / prologue)
    shape: tuple = ()               # reduction/scan input shape, matmul output shape, pointwise shape
    dims: tuple = ()                # reduced dims (reduction) or (dim,) for a scan
    out_numel: int = 0              # rows of a reduction; = numel for scans and matmuls
    # reductions only: stage of each member. Stage s is one more sweep over each row; its
    # per-element nodes may read the per-row results of stages < s (softmax: max, then sum, then
    # the normalised values, all in one kernel).
    stage_of: dict[Node, int] = field(default_factory=dict)
    # scans only: an epilogue flip is stored at mirrored positions (the reversed-scan idiom
    # flip -> cumsum -> flip); nothing may join after it, as its register holds unflipped values
    sealed: bool = False
    # attention groups made from the hand-written pattern (attention_match.py): the match
    pattern: AttentionMatch | None = None
    # reductions only: per-element members whose own shape only broadcasts to the element space
    # (they vary along some reduced dims only: group norm's per-channel scale and shift, one per
    # (n, group, channel)), evaluated at the element space (this shape) so consumers in the tile
    # read them as registers (positions.py)
    at: dict[Node, tuple] = field(default_factory=dict)
    # conv groups only, once a non-overlapping pool joined (core[1]): epi[:pooled] runs per conv
    # output inside the pool window loop, epi[pooled:] per pooled output
    pooled: int = -1
    # rowmatmul groups (rowfuse.py): the matmul whose output tile, holding whole rows, is the
    # element space of the group's reductions (a per-element value at stage 0, like a prologue)
    head: Node | None = None
    # matmul groups: a reduction group computing the A operand's rows in the matmul (a layer
    # norm before a linear layer; rowfuse.prologue_of), whose values nothing else reads
    prologue: Group | None = None

    @property
    def stages(self) -> int:
        return 1 + max(self.stage_of.values(), default=0)

    @property
    def members(self) -> set[Node]:
        own = set(self.pro) | set(self.core) | set(self.epi) | set(self.extra) | ({self.head} if self.head else set())
        return own | (self.prologue.members if self.prologue else set())

    def phase(self, node: Node) -> str | None:
        if node in self.pro or (node is self.head and node is not None):
            return "pro"
        if self.prologue is not None and node in self.prologue.members:
            return "pro"
        if node in self.core or node in self.extra:
            return "core"
        if node in self.epi:
            return "epi"
        return None

    def ops(self) -> list[str]:
        first = self.prologue.ops() if self.prologue else []
        return first + [ops.op_name(n) for n in ([self.head] if self.head else []) + self.pro + self.core + self.epi]


class Fuser:
    def __init__(self, graph: Graph, fuse: bool = True, row_fusion: bool = True, kept_out: set | None = None):
        self.graph = graph
        # nodes that may not be evaluated broadcast in a row tile (Group.at): a later group reads them
        self.kept_out: set[Node] = set(kept_out or ())
        self.fuse = fuse
        self.row_fusion = row_fusion
        self.groups: list[Group] = []
        self.group_of: dict[Node, Group] = {}
        self.consts: set[Node] = set()

    def run(self) -> list[Group]:
        # matmul -> elementwise -> softmax (-> matmul) patterns: one attention group each, placed
        # where its last member is (everything it reads is computed by then)
        pattern_of: dict[Node, AttentionMatch] = {}
        # copies only made to give an attention node's q/k/v a layout: it reads them by strides
        self.copies: dict[Node, Node] = {}
        if self.fuse:
            for m in find_attention(self.graph):
                pattern_of.update((n, m) for n in m.members)
            readers = {n for n in self.graph.nodes if n.op == "call_function" and attention_params(n) is not None}
            self.copies = operand_copies(self.graph, readers)
        order = {n: i for i, n in enumerate(self.graph.nodes)}
        # parameter-only pointwise chains read broadcast: computed by their readers (inline.py)
        inline = plan_inline(self.graph, set(pattern_of) | set(self.copies)) if self.fuse else set()
        for node in self.graph.nodes:
            if node.op != "call_function":
                continue
            pat = pattern_of.get(node)
            if pat is not None:
                m = pat
                if node is max(m.members, key=order.__getitem__):
                    out = shape_of(m.out)
                    att = self._new("attention", shape=out, numel=numel(out), out_numel=numel(out), pattern=m)
                    for n in sorted(m.members, key=order.__getitem__):
                        self._add(att, n, "core")
                continue
            if node in self.copies:
                continue
            name = ops.packet(node)
            if name in ops.VIEW_OPS:
                continue
            if name == "getitem":
                src = node.args[0]
                g = self.group_of.get(src)
                if g is not None:
                    # a value of a tuple result (max's values and indices): it lives where its
                    # source does, at its source's stage, so consumers can fuse like with any value
                    g.extra.append(node)
                    self.group_of[node] = g
                    g.stage_of[node] = g.stage_of.get(src, 0)
                continue
            if name in ops.DROPPED_OPS:
                continue
            if name in ops.CONST_OPS and lowerable_tensor(node) and (name == "full_like" or not tensor_args(node)):
                self.consts.add(node)
                continue
            if ops.iota(node) is not None:
                # computed where it is read (start + index * step), like a constant
                self.consts.add(node)
                continue
            if ops.can_lower_pointwise(node) and self._fold(node):
                continue
            if node in inline:
                node.meta[INLINE_MARK] = True
                continue
            if name in ops.ALLOC_OPS:
                g = self._new("alloc")
                self._add(g, node, "core")
                continue
            self._place(node, name)
        return self.groups

    def _fold(self, node: Node) -> bool:
        """Constant-fold a pointwise op whose tensor operands are all uniform constants."""
        import torch

        args = tensor_args(node)
        if not args or not all(trace(a)[0] in self.consts and ops.iota(trace(a)[0]) is None for a in args):
            return False

        def sub(a: Any) -> Any:
            if isinstance(a, Node):
                return torch.full((), ops.const_fill(trace(a)[0]), dtype=a.meta["val"].dtype)
            if isinstance(a, (list, tuple)):
                return type(a)(sub(x) for x in a)
            return a

        try:
            target: Any = node.target
            value = target(*sub(list(node.args)), **{k: sub(v) for k, v in node.kwargs.items()})
            node.meta["kgen_const"] = value.item()
        except Exception:  # noqa: BLE001 - not foldable: lower it normally
            return False
        self.consts.add(node)
        return True

    # --- placement -------------------------------------------------------------------------
    def _new(self, kind: str, **kw: Any) -> Group:
        g = Group(index=len(self.groups), kind=kind, **kw)
        self.groups.append(g)
        return g

    def _add(self, g: Group, node: Node, phase: str, stage: int = 0) -> None:
        getattr(g, phase).append(node)
        self.group_of[node] = g
        g.stage_of[node] = stage

    def _place(self, node: Node, name: str) -> None:
        last = self.groups[-1] if (self.groups and self.fuse) else None
        if last is not None and last.sealed:
            last = None
        if last is not None and last.kind == "scan" and self._flip_store(last, node):
            self._add(last, node, "epi")
            last.sealed = True
            return
        if last is not None and last.kind == "reduction" and self.row_fusion and self._row_select(last, node):
            return
        if index_ok(node):
            # random-access reads: every source must already be in memory, so never read a
            # value of the group it joins
            n = numel(shape_of(node))
            external = all(self._internal(last, a)[0] is None for a in tensor_args(node)) if last else False
            if last is not None and last.kind == "pointwise" and last.numel == n and external:
                self._add(last, node, "pro")
            else:
                g = self._new("pointwise", numel=n, shape=shape_of(node))
                self._add(g, node, "pro")
            return
        if ops.can_lower_pointwise(node):
            placed = self._pointwise_phase(last, node) if last else None
            if last is not None and placed:
                self._add(last, node, *placed)
            else:
                g = self._new("pointwise", numel=numel(shape_of(node)), shape=shape_of(node))
                self._add(g, node, "pro")
            return
        spec = reduction_spec(node)
        if spec is not None and last is not None and last.kind == "conv" and spatial_reduce(self, last, node, spec):
            return
        if spec is not None:
            x, dims, _ = spec
            self._place_reduction(last, node, "reduction", x, dims)
            return
        sspec = scan_spec(node)
        if sspec is not None:
            x, dim = sspec
            self._place_reduction(last, node, "scan", x, (dim,))
            return
        if scatter_spec(node) is not None:
            # writes at data-dependent positions: its own kernel, whose output later groups read
            out = shape_of(node)
            g = self._new("scatter", shape=out, numel=numel(out), out_numel=numel(out))
            self._add(g, node, "core")
            return
        ospec = sort_spec(node)
        if ospec is not None:
            self._place_reduction(last, node, "sort", ospec["x"], (ospec["dim"],))
            return
        if last is not None and last.kind == "conv" and pool_epilogue(self, last, node):
            return
        if pool_params(node) is not None:
            val = node.meta["val"]
            out = tuple(sized(s) for s in (val[0] if isinstance(val, (list, tuple)) else val).shape)
            g = self._new("pool", shape=out, numel=numel(out), out_numel=numel(out))
            self._add(g, node, "core")
            return
        if attention_params(node) is not None:
            out = shape_of(node)
            g = self._new("attention", shape=out, numel=numel(out), out_numel=numel(out))
            self._add(g, node, "core")
            for c in (c for c, reader in self.copies.items() if reader is node):
                self._add(g, c, "extra")
            return
        if conv_ok(node) and last is not None and last.kind == "conv" and pointwise_conv(self, last, node):
            return
        if conv_ok(node):
            out = shape_of(node)
            g = self._new("conv", shape=out, numel=numel(out), out_numel=numel(out))
            self._add(g, node, "core")
            return
        if matmul_ok(node):
            if last is not None and sibling_matmul(self, last, node):
                self._add(last, node, "core")
                return
            pro = last if last is not None and self.row_fusion and prologue_of(self, last, node) else None
            if pro is not None:
                self.groups.pop()
            out = shape_of(node)
            g = self._new("matmul", shape=out, numel=numel(out), out_numel=numel(out))
            self._add(g, node, "core")
            if pro is not None:
                g.prologue = pro
                for n in pro.members:
                    self.group_of[n] = g
            return
        g = self._new("fallback")
        self._add(g, node, "core")

    def _flip_store(self, g: Group, node: Node) -> bool:
        """Whether `node` flips a value the scan group computes at the group's own shape, so the
        scan can store it at mirrored positions instead of a second kernel reading it back."""
        if ops.packet(node) != "flip" or not index_ok(node) or not isinstance(node.args[0], Node):
            return False
        phase, keeps = self._internal(g, node.args[0])
        return (phase in ("core", "epi") and keeps and shape_of(node) == tuple(g.shape)
                and shape_of(node.args[0]) == tuple(g.shape))

    def _internal(self, g: Group, arg: Node) -> tuple[str | None, bool]:
        """(phase of arg's storage owner inside g or None, whether the view chain keeps order)."""
        root, chain = trace(arg)
        if root in self.consts or self.group_of.get(root) is not g:
            return None, True
        keeps = all(order_keeping(v) for v in chain)
        return g.phase(root), keeps

    def _pointwise_phase(self, g: Group, node: Node) -> tuple[str, int] | None:
        """(phase, stage) for a pointwise node joining g, or None when it cannot."""
        if g.kind in ("reduction", "rowmatmul"):
            return self._reduction_phase(g, node)
        if g.kind == "sort":
            return self._sort_phase(g, node)
        n = numel(shape_of(node))
        phases = set()
        for a in tensor_args(node):
            phase, keeps = self._internal(g, a)
            if phase is None:
                continue
            if not keeps or numel(shape_of(a)) != n:
                return None
            phases.add(phase)
        if g.kind == "pointwise":
            return ("pro", 0) if n == g.numel else None
        if g.kind == "scan":
            if n != g.numel:
                return None
            return ("epi", 0) if ("core" in phases or "epi" in phases) else ("pro", 0)
        if g.kind in ("matmul", "conv", "pool", "scatter"):
            if n == g.out_numel and "pro" not in phases and phases:
                return ("epi", 0)
            return None
        return None

    def _sort_phase(self, g: Group, node: Node) -> tuple[str, int] | None:
        """A node joins a sort group per element of its input rows: before the sort (stage 0),
        or after it (stage 1) when it reads single positions of the sorted row (`pick`, a top-k
        threshold); or per row of a median/kthvalue result (the epilogue)."""
        n = numel(shape_of(node))
        per_row = ops.packet(g.core[0]) in ("median", "kthvalue")
        stage, kinds = 0, set()
        for a in tensor_args(node):
            phase, keeps = self._internal(g, a)
            if phase is None:
                continue
            root, _ = trace(a)
            if phase == "pro" and keeps and numel(shape_of(a)) == n == g.numel:
                stage = max(stage, g.stage_of[root])
                kinds.add("elem")
            elif phase == "core" and n == g.numel and shape_of(node) == tuple(g.shape) and self.pick(g, a) is not None:
                stage = 1
                kinds.add("elem")
            elif phase in ("core", "epi") and per_row and keeps and numel(shape_of(a)) == n == g.out_numel:
                kinds.add("row")
            else:
                return None
        if kinds == {"row"}:
            return "epi", 0
        if "row" in kinds or n != g.numel:
            return None
        return "pro", stage

    @staticmethod
    def pick(g: Group, view: Node) -> int | None:
        """The position along the sorted dim that `view` reads, when `view` is one position of a sort
        group's output seen per row (a width-1 slice along that dim, maybe expanded), else None."""
        root, chain = trace(view)
        # whole-dim slices (x[:, -1:] slices dim 0 from 0 to the end first) select nothing
        chain = [v for v in chain if not _whole_slice(v)]
        if not chain or root not in g.extra or ops.packet(chain[-1]) != "slice":
            return None
        sl = chain[-1]
        dim = g.dims[0]
        out = shape_of(root)
        if len(out) != len(g.shape) or int(arg(sl, 1)) % len(out) != dim or shape_of(sl)[dim] != 1:
            return None
        if any(ops.packet(v) not in ("expand",) for v in chain[:-1]):
            return None
        if [s for d, s in enumerate(shape_of(sl)) if d != dim] != [s for d, s in enumerate(g.shape) if d != dim]:
            return None
        start = int(arg(sl, 2, default=0) or 0)
        return start % out[dim] if start < 0 else start

    def _row_broadcast(self, g: Group, arg: Node, consumer: Node) -> bool:
        """Whether `arg` is a per-row value seen at the element shape (keepdim-style broadcast)."""
        if shape_of(consumer) != tuple(g.shape):
            return False
        _, chain = trace(arg)
        if not all(ops.packet(v) in ops.ORDER_KEEPING_VIEWS | {"expand", "broadcast_in_dim"} for v in chain):
            return False
        shape = shape_of(arg)
        for i, v in enumerate(chain):
            if ops.packet(v) in ("expand", "broadcast_in_dim"):
                # an explicit expand_as (F.normalize's denominator): the row value is what was
                # expanded, seen at the element shape by every view outside it
                if any(shape_of(w) != tuple(g.shape) for w in chain[:i + 1]):
                    return False
                shape = shape_of(operand(v, 0))
                break
        lead = len(g.shape) - len(shape)
        if lead < 0:
            return False
        for d, size in enumerate(g.shape):
            got = shape[d - lead] if d >= lead else 1
            want = 1 if d in g.dims else size
            if got != want and not (d in g.dims and got == size and size == 1):
                return False
        return numel([s for d, s in enumerate(g.shape) if d not in g.dims]) == g.out_numel

    def _reduction_phase(self, g: Group, node: Node) -> tuple[str, int] | None:
        n = numel(shape_of(node))
        if self.row_fusion and not _same(n, g.numel) and not _same(n, g.out_numel):
            got = self._lane_broadcast(g, node)
            if got is not None:
                return got
        elem_stage, row_stage, has_row, has_elem = 0, 0, False, False
        for a in tensor_args(node):
            phase, keeps = self._internal(g, a)
            if phase is None:
                continue
            root, _ = trace(a)
            if phase == "pro" and root in g.at:
                # a value evaluated at the element space (Group.at), seen through views that
                # pick, at every position, what its register holds there
                if not _same(n, g.numel) or not self._register_read(g, a, shape_of(node)):
                    return None
                has_elem = True
                elem_stage = max(elem_stage, g.stage_of[root])
            elif phase == "pro":
                if (not keeps or numel(shape_of(a)) != n) and not (
                        self.row_fusion and _same(n, g.numel) and self._register_read(g, a, shape_of(node))):
                    return None
                has_elem = True
                elem_stage = max(elem_stage, g.stage_of[root])
            else:
                has_row = True
                row_stage = max(row_stage, g.stage_of[root])
                per_row = keeps and numel(shape_of(a)) == n and n == g.out_numel
                if not per_row and not (self.row_fusion and n == g.numel and (
                        self._row_broadcast(g, a, node) or self._register_read(g, a, shape_of(node)))):
                    return None
        if has_row and not has_elem and n == g.out_numel:
            return "epi", row_stage
        if not (has_row or has_elem) and n == g.out_numel != g.numel and self.row_fusion and self._row_shaped(g, node):
            # only outside operands, one value per row (cross-entropy's target masking): computed
            # per row in this kernel, where the row epilogue can use it, not in a kernel of its own
            return "epi", 0
        if n != g.numel or (has_row and not self.row_fusion):
            return None
        if has_row:
            return "pro", max(elem_stage, row_stage + 1)
        return "pro", elem_stage

    def _register_read(self, g: Group, a: Node, at: tuple) -> bool:
        """Whether `a` (a view of a per-row or Group.at value of reduction group g) read at shape
        `at` is, at every flat position of g's element space, the value its register holds."""
        root, chain = trace(a)
        return _same(numel(at), g.numel) and same_positions(root, chain, at, tuple(g.shape))

    def _lane_broadcast(self, g: Group, node: Node) -> tuple[str, int] | None:
        """A pointwise node whose shape broadcasts to g's element space, keeping every kept dim
        and some reduced dims (group norm's per-channel scale: rstd per (n, group) times the
        weight per channel), reading per-row results or other such values of g: evaluated at the
        element space, one stage after the rows it reads (Group.at). Needs g to stay the only
        reader (build_groups re-plans without it otherwise)."""
        if node in self.kept_out or g.kind != "reduction":
            return None
        shape, space = shape_of(node), tuple(g.shape)
        if len(shape) != len(space) or any(not (_same(s, 1) or _same(s, t)) for s, t in zip(shape, space)):
            return None
        if not all(_same(shape[d], space[d]) for d in range(len(space)) if d not in g.dims):
            return None
        stage, inside = 0, False
        for a in tensor_args(node):
            phase, _ = self._internal(g, a)
            if phase is None:
                continue
            root, _ = trace(a)
            if phase == "pro" and root not in g.at:
                return None   # a per-element value does not fit in the smaller shape
            if not self._register_read(g, a, space) or not broadcasts_to(_hints(shape_of(a)), _hints(shape)):
                return None
            inside = True
            stage = max(stage, g.stage_of[root] + (0 if phase == "pro" else 1))
        if not inside:
            return None
        g.at[node] = space
        return "pro", stage

    def _row_select(self, g: Group, node: Node) -> bool:
        """A gather along the one reduced dim, of a per-element value of the group, with one index
        per row (cross-entropy's pick of the target's log-probability): joins the group as a
        selecting reduction over the row it already holds, instead of reading that value back
        from memory in another kernel. Places the node and returns True when it qualifies."""
        if ops.packet(node) != "gather" or not index_ok(node) or len(g.dims) != 1 or len(node.args) < 3:
            return False
        src, dim, index = node.args[0], node.args[1], node.args[2]
        if not (isinstance(src, Node) and isinstance(index, Node) and isinstance(dim, int)):
            return False
        rank = len(g.shape)
        if dim % max(1, rank) != g.dims[0] or shape_of(src) != tuple(g.shape):
            return False
        row = tuple(1 if d == g.dims[0] else s for d, s in enumerate(g.shape))
        if shape_of(index) != row or shape_of(node) != row:
            return False
        phase, keeps = self._internal(g, src)
        if phase != "pro" or not keeps:
            return False
        stage = g.stage_of[trace(src)[0]]
        iphase, ikeeps = self._internal(g, index)
        if iphase == "pro" or not ikeeps:
            return False
        if iphase is not None:  # a per-row value of this group: known once its stage is done
            stage = max(stage, g.stage_of[trace(index)[0]] + 1)
        self._add(g, node, "core", stage)
        return True

    def _row_shaped(self, g: Group, node: Node) -> bool:
        """Whether `node`'s row-major positions are the group's rows (its shape is the kept dims)."""
        kept = [s for d, s in enumerate(g.shape) if d not in g.dims and s != 1]
        return [s for s in shape_of(node) if s != 1] == kept

    def _place_reduction(self, last: Group | None, node: Node, kind: str, x: Any, dims: tuple) -> None:
        shape = shape_of(x)
        n = numel(shape)
        out_numel = n if kind == "scan" else numel([s for i, s in enumerate(shape) if i not in dims])
        if last is not None and kind == "reduction" and self.row_fusion and row_owning(self, last, x, dims):
            to_row_matmul(self, last, x, dims, node)
            return
        if last is not None:
            phase, keeps = self._internal(last, x)
            ok_input = phase is None or (phase == "pro" and keeps)
            if ok_input and last.kind == "pointwise" and last.numel == n:
                last.kind, last.shape, last.dims, last.out_numel = kind, shape, dims, out_numel
                self._add(last, node, "core")
                return
            if (ok_input and kind == "reduction" and last.kind in ("reduction", "rowmatmul") and last.shape == shape
                    and last.dims == dims and (self.row_fusion or not last.epi)):
                root, _ = trace(x)
                self._add(last, node, "core", last.stage_of.get(root, 0) if phase else 0)
                return
        g = self._new(kind, numel=n, shape=shape, dims=dims, out_numel=out_numel)
        self._add(g, node, "core")


def _whole_slice(v: Node) -> bool:
    """A slice that keeps its dim whole (start 0, to the end or beyond, step 1)."""
    if ops.packet(v) != "slice":
        return False
    start, end, step = arg(v, 2, default=0), arg(v, 3, default=None), arg(v, 4, default=1)
    size = shape_of(operand(v, 0))[int(arg(v, 1, default=0)) % max(1, len(shape_of(v)))]
    if start not in (0, None) or step not in (1, None) or isinstance(size, Node):
        return False
    if end is None or isinstance(end, int) and end >= 2 ** 62:
        return True
    return isinstance(end, int) and isinstance(size, int) and end >= size


def build_groups(graph: Graph, fuse: bool = True, row_fusion: bool = True) -> tuple[list[Group], set[Node]]:
    """The fusion plan of `graph`: its groups in a valid execution order, and the constant nodes."""
    kept_out: set[Node] = set()
    while True:
        f = Fuser(graph, fuse, row_fusion, kept_out)
        groups = f.run()
        # a value evaluated broadcast in a row tile (Group.at) has no register of its own shape
        # to store: when a later group needs it, plan again with that node kept out
        leaks = {n for g in groups for n in g.at if _read_outside(n, g)}
        if not leaks:
            return groups, f.consts
        kept_out |= leaks


def _read_outside(node: Node, g: Group) -> bool:
    members = g.members
    out = next((n for n in node.graph.nodes if n.op == "output"), None)

    def needed(n: Node) -> bool:
        for u in n.users:
            if u is out:
                return True
            if u.op == "call_function" and ops.packet(u) in ops.VIEW_OPS:
                if needed(u):
                    return True
            elif u not in members:
                return True
        return False

    return needed(node)


def _same(a: Any, b: Any) -> bool:
    """Equal sizes, decided on the expressions (no size guard)."""
    if hasattr(a, "expr") or hasattr(b, "expr"):
        return hasattr(a, "expr") and hasattr(b, "expr") and a.expr == b.expr
    return a == b


def _hints(shape: tuple) -> tuple:
    return tuple(s.hint if hasattr(s, "hint") else s for s in shape)
