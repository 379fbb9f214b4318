"""Composite views: whether a chain of view ops applied to a contiguous tensor is, end to end, one
strided view of it (sizes, strides, offset), with symbolic sizes kept symbolic.

torch decides each view of a chain on its own: a reshape that merges dims whose strides do not
line up copies. A chain that splits such a merged dim again later (nn.MultiheadAttention's head
split: [L, B, 3, E] -> select q -> [L, B*H, D] -> permute -> [B, H, L, D]) still reads every
element at an address that is affine in the final indices, so a kernel can read the source through
strides instead of a copy. Every dim is tracked as a list of atoms (size, stride), outer first: a
reshape regroups atoms (splitting one where a new dim ends inside it), and only the final dims
must each be one affine run.

No comparison here records a size guard (sizes.py): equalities are decided on the expressions
(sympy), and a chain that cannot be decided that way is simply not a composite view.
"""

from __future__ import annotations

from typing import Any

from torch.fx import Node

from kgen.core.generate.builtin import ops
from kgen.core.generate.builtin.graph import arg, shape_of
from kgen.core.generate.builtin.sizes import Size

Atom = tuple[Any, Any]          # (size, stride): ints or Sizes


def _expr(v: Any) -> Any:
    import sympy

    return v.expr if isinstance(v, Size) else sympy.Integer(int(v))


def _same(a: Any, b: Any) -> bool:
    import sympy

    return sympy.simplify(_expr(a) - _expr(b)) == 0


def _one(v: Any) -> bool:
    return _same(v, 1)


def _whole(q: Any) -> bool:
    """Whether the sympy expression `q` is a positive integer for every size (no denominator)."""
    import sympy

    q = sympy.cancel(q)
    num, den = sympy.fraction(q)
    return den == 1 and (not q.is_number or (q.is_integer and q > 0))


def _value(expr: Any, like: list[Any]) -> Any:
    """A size expression as an int or a Size, its trace-time value taken from the input-dim
    symbols' values among `like`."""
    import sympy

    expr = sympy.cancel(expr)
    if expr.is_number:
        return int(expr)
    known = {s.expr: s.hint for s in like if isinstance(s, Size) and isinstance(s.expr, sympy.Symbol)}
    hint = sympy.sympify(expr.xreplace(known))
    if not hint.is_number:
        raise ValueError("a size whose trace-time value is unknown")
    return Size(expr, int(hint))


class _View:
    def __init__(self, shape: tuple):
        self.dims: list[list[Atom]] = []
        stride: Any = 1
        for s in reversed(shape):
            self.dims.insert(0, [(s, stride)])
            stride = s * stride
        self.offset: Any = 0
        self.sizes: list[Any] = list(shape)   # every size seen, for hints

    # --- ops --------------------------------------------------------------------------------
    def permute(self, perm: list[int]) -> None:
        self.dims = [self.dims[p] for p in perm]

    def unsqueeze(self, d: int) -> None:
        self.dims.insert(d, [(1, 0)])

    def squeeze(self, dims: list[int]) -> None:
        keep = []
        for i, atoms in enumerate(self.dims):
            if i in dims and all(_one(s) for s, _ in atoms):
                continue
            keep.append(atoms)
        self.dims = keep

    def select(self, d: int, index: int) -> None:
        atoms = [a for a in self.dims[d] if not _one(a[0])]
        if len(atoms) > 1:
            raise ValueError("select in a merged dim")
        if atoms:
            self.offset = self.offset + index * atoms[0][1]
        del self.dims[d]

    def expand(self, shape: tuple) -> None:
        lead = len(shape) - len(self.dims)
        dims = [[(s, 0)] for s in shape[:lead]]
        for atoms, s in zip(self.dims, shape[lead:]):
            if isinstance(s, int) and s == -1 or _same(_size(atoms), s):
                dims.append(atoms)
            elif all(_one(a) for a, _ in atoms):
                dims.append([(s, 0)])
            else:
                raise ValueError("expand of a non-unit dim")
        self.dims = dims

    def reshape(self, shape: tuple) -> None:
        import sympy

        queue = [a for atoms in self.dims for a in atoms if not _one(a[0])]
        out: list[list[Atom]] = []
        for s in shape:
            if _one(s):
                out.append([(1, 0)])
                continue
            want = _expr(s)
            got: list[Atom] = []
            while True:
                left = sympy.cancel(want / (_expr(_size(got)) if got else 1))
                if _same_expr(left, 1):
                    break
                if not queue:
                    raise ValueError("reshape beyond the elements")
                size, stride = queue.pop(0)
                if _whole(left / _expr(size)):
                    got.append((size, stride))   # the whole atom fits in this dim
                elif _whole(_expr(size) / left):
                    # the dim ends inside this atom: split it (outer part here, inner part next)
                    inner = _value(_expr(size) / left, self.sizes + [s])
                    outer = _value(left, self.sizes + [s])
                    got.append((outer, inner * stride))
                    queue.insert(0, (inner, stride))
                else:
                    raise ValueError("sizes that do not divide")
            out.append(got)
        if queue:
            raise ValueError("reshape drops elements")
        self.dims = out

    # --- result -----------------------------------------------------------------------------
    def strides(self) -> list[Any] | None:
        """One stride per dim when each dim is one affine run, else None."""
        out = []
        for atoms in self.dims:
            run = [a for a in atoms if not _one(a[0])]
            if not run:
                out.append(0)
                continue
            for (_, so), (si, st) in zip(run, run[1:]):
                if not _same(so, si * st):
                    return None
            out.append(run[-1][1])
        return out


def _size(atoms: list[Atom]) -> Any:
    out: Any = 1
    for s, _ in atoms:
        out = out * s
    return out


def _same_expr(a: Any, b: Any) -> bool:
    import sympy

    return sympy.simplify(sympy.sympify(a) - sympy.sympify(b)) == 0


def composite(root_shape: tuple, chain: list[Node]) -> tuple[tuple, list[Any], Any] | None:
    """(shape, strides, offset) of `chain` (views, applied in order, maybe with identity copies
    among them) over a contiguous tensor of `root_shape`, when the whole chain is one strided
    view; else None."""
    v = _View(tuple(root_shape))
    try:
        for node in chain:
            name = ops.packet(node)
            out = shape_of(node)
            rank_in = len(v.dims)
            v.sizes += list(out)   # trace-time values of the symbols a split may need
            if name in ("clone", "alias", "detach"):
                continue
            if name in ("view", "_unsafe_view", "reshape"):
                v.reshape(out)
            elif name == "permute":
                v.permute([int(p) % rank_in for p in arg(node, 1)])
            elif name in ("transpose", "t"):
                a, b = (0, 1) if name == "t" else (int(arg(node, 1)) % rank_in, int(arg(node, 2)) % rank_in)
                perm = list(range(rank_in))
                perm[a], perm[b] = perm[b], perm[a]
                v.permute(perm)
            elif name == "unsqueeze":
                v.unsqueeze(int(arg(node, 1)) % (rank_in + 1))
            elif name == "squeeze":
                d = arg(node, 1)
                dims = list(range(rank_in)) if d is None else [int(x) % rank_in for x in (d if isinstance(d, (list, tuple)) else [d])]
                v.squeeze(dims)
            elif name == "select":
                d = int(arg(node, 1)) % rank_in
                index = arg(node, 2)
                if not isinstance(index, int):
                    return None
                size = _size(v.dims[d])
                if index < 0:
                    if isinstance(size, Size):
                        return None
                    index += int(size)
                v.select(d, index)
            elif name == "expand":
                v.expand(out)
            else:
                return None
            if len(v.dims) != len(out) or not all(_same(_size(a), s) for a, s in zip(v.dims, out)):
                return None
    except (ValueError, TypeError, ZeroDivisionError):
        return None
    strides = v.strides()
    if strides is None:
        return None
    return tuple(shape_of(chain[-1])) if chain else tuple(root_shape), strides, v.offset



def copy_reads(copy: Node) -> dict[Node, tuple[Node, tuple, list[Any], Any]] | None:
    """For a contiguous copy whose every use is, through views only, a tensor some kernel reads by
    strides: {the last view of each use: (storage root, shape, strides, offset)}, each read as one
    strided view of the copy's source's (contiguous) storage. None when some use is not."""
    from kgen.core.generate.builtin.graph import trace

    src = copy.args[0]
    if not isinstance(src, Node):
        return None
    root, chain = trace(src)
    lead = list(reversed(chain)) + [copy]
    out: dict[Node, tuple[Node, tuple, list[Any], Any]] = {}

    def walk(node: Node, path: list[Node]) -> bool:
        views = [u for u in node.users if u.op == "call_function" and ops.packet(u) in ops.VIEW_OPS]
        others = [u for u in node.users if u not in views]
        if others:
            got = composite(shape_of(root), lead + path)
            if got is None:
                return False
            out[node] = (root, *got)
        return all(walk(u, path + [u]) for u in views)

    return out if walk(copy, []) else None


__all__ = ["composite", "copy_reads"]
