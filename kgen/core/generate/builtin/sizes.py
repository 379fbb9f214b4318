"""Symbolic sizes: what lets one generated kernel take other batch sizes and sequence lengths.

Capture exports the reference with every user-input dim dynamic (export.py); the fake tensors'
sizes are then SymInts. graph.shape_of() turns each into a plain int when export proved it
static, else into a `Size`: a sympy expression over the input dims plus its value at trace time.

A Size does arithmetic and comparisons like an int, but every comparison the generator makes on
it, which the value ranges export proved (dims >= 2) do not already decide, is recorded as a
guard of the current build (`Registry`). Whatever an emitter decided from a size is therefore
either true for every admissible input or becomes a runtime check in ModelNew.forward (module.py):
correct by construction, generic where the emitter never asked. Formatted into code (`f"{n}"`,
repr), a Size becomes a name (`_d3`) that the kernel takes as an argument and forward computes on
the host from the actual input shapes.

Deliberately independent of torch's ShapeEnv: the capture is cached and built many times
(evolve's schedules); guards recorded in the shared ShapeEnv would leak from one build into the
next, and its specialisations would rewrite later expressions.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Iterator

NAME = re.compile(r"\b_d\d+\b")


@dataclass
class Registry:
    """The symbolic state of one build: names given to expressions, and the guards recorded."""
    ranges: dict = field(default_factory=dict)                # sympy Symbol -> torch ValueRanges
    names: dict = field(default_factory=dict)                 # (sympy expr, is float) -> argument name
    floats: set = field(default_factory=set)                  # names whose host value is a float
    guards: list = field(default_factory=list)                # sympy relations, all true at trace time
    # trace-time value of every input-dim symbol, and those that were 1 (see _decide)
    hints: dict = field(default_factory=dict)
    ones: set = field(default_factory=set)

    def name(self, expr: Any, is_float: bool = False) -> str:
        got = self.names.get((expr, is_float))
        if got is None:
            got = self.names[(expr, is_float)] = f"_d{len(self.names)}"
        if is_float:
            self.floats.add(got)
        return got

    def guard(self, rel: Any) -> None:
        if rel not in self.guards:
            self.guards.append(rel)


_CURRENT: contextvars.ContextVar[Registry | None] = contextvars.ContextVar("kgen_sizes", default=None)


@contextlib.contextmanager
def build(ranges: dict | None = None, hints: dict | None = None) -> Iterator[Registry]:
    """The registry every Size created or compared inside the `with` reports to."""
    hints = dict(hints or {})
    reg = Registry(ranges=dict(ranges or {}), hints=hints, ones={s for s, v in hints.items() if v == 1})
    token = _CURRENT.set(reg)
    try:
        yield reg
    finally:
        _CURRENT.reset(token)


def current() -> Registry | None:
    return _CURRENT.get()


def _sympify(v: Any) -> Any:
    import sympy

    if isinstance(v, Size):
        return v.expr
    return sympy.sympify(v)


def _hint(v: Any) -> Any:
    return v.hint if isinstance(v, Size) else v


def _make(expr: Any, hint: Any, is_float: bool = False) -> Any:
    """A plain number when the expression is constant, else a Size."""
    if expr.is_number:
        return float(expr) if is_float else int(expr)
    return Size(expr, hint, is_float)


def _decide(rel: Any, value: bool, strict: bool = False) -> bool:
    """The truth of relation `rel` (which holds `value` at trace time): static when sympy or the
    value ranges decide it, else `value`, recorded as a guard of the current build.

    A dim that was 1 at trace time is taken size-obliviously (as torch's export does with
    backed_size_oblivious): a comparison is decided as if it were 2 or more, so the kernel is the
    general one, and its guard also admits the traced 1 (`rel or s == 1`), where the verifier
    checked that very kernel. Not with `strict` (a value the generator uses as a number)."""
    import sympy

    if rel is sympy.true or rel is sympy.false:
        return bool(rel)
    reg = current()
    if reg is not None and reg.ranges:
        from torch.utils._sympy.value_ranges import bound_sympy

        try:
            diff = bound_sympy(rel.lhs - rel.rhs, reg.ranges)
            lo, hi = diff.lower, diff.upper
            op = rel.rel_op
            decided = None
            if op == ">":
                decided = True if lo > 0 else (False if hi <= 0 else None)
            elif op == ">=":
                decided = True if lo >= 0 else (False if hi < 0 else None)
            elif op == "<":
                decided = True if hi < 0 else (False if lo >= 0 else None)
            elif op == "<=":
                decided = True if hi <= 0 else (False if lo > 0 else None)
            elif op == "==":
                decided = False if (lo > 0 or hi < 0) else (True if lo == hi == 0 else None)
            elif op == "!=":
                decided = True if (lo > 0 or hi < 0) else (False if lo == hi == 0 else None)
            if decided is not None:
                return bool(decided)
        except Exception:  # noqa: BLE001 - an expression the range analysis cannot bound: guard it
            pass
    if reg is not None and not strict and reg.ones and rel.free_symbols & reg.ones:
        ones = rel.free_symbols & reg.ones
        at = {s: (2 if s in ones else reg.hints.get(s)) for s in rel.free_symbols}
        if None not in at.values():
            general = bool(rel.xreplace(at))
            if general != value:
                kept = rel if general else rel.negated
                reg.guard(sympy.Or(kept, sympy.And(*[sympy.Eq(s, 1) for s in sorted(ones, key=str)])))
                return general
    if reg is not None:
        reg.guard(rel if value else rel.negated)
        if os.environ.get("KGEN_SIZES_DEBUG"):   # where a guard comes from, when a kernel is less generic than hoped
            import traceback

            print(f"kgen guard {rel if value else rel.negated}:", "".join(traceback.format_stack(limit=8)[:-1]),
                  file=sys.stderr)
    return value


class Size:
    """A symbolic size (see the module doc). Immutable; hashes by its expression."""

    __slots__ = ("expr", "hint", "is_float")

    def __init__(self, expr: Any, hint: Any, is_float: bool = False):
        self.expr = expr
        self.hint = hint
        self.is_float = is_float

    # --- naming -----------------------------------------------------------------------------
    def name(self) -> str:
        reg = current()
        if reg is None:
            return "_dsym"   # a dry run outside a build (legality): any name does
        return reg.name(self.expr, self.is_float)

    def __format__(self, spec: str) -> str:
        return self.name() if not spec else format(self.hint, spec)

    def __str__(self) -> str:
        return self.name()

    def __repr__(self) -> str:
        return self.name()

    def __hash__(self) -> int:
        return hash(self.expr)

    # --- concrete values: the generator relies on the trace-time value, so it becomes a guard ---
    def __int__(self) -> int:
        import sympy

        _decide(sympy.Eq(self.expr, self.hint), True, strict=True)
        return int(self.hint)

    def __index__(self) -> int:
        return self.__int__()

    def __float__(self) -> float:
        import sympy

        _decide(sympy.Eq(self.expr, self.hint), True, strict=True)
        return float(self.hint)

    def __bool__(self) -> bool:
        import sympy

        return _decide(sympy.Ne(self.expr, 0), bool(self.hint))

    # --- arithmetic ----------------------------------------------------------------------------
    def _fl(self, other: Any) -> bool:
        return self.is_float or isinstance(other, float) or (isinstance(other, Size) and other.is_float)

    def __add__(self, o: Any) -> Any:
        return _make(self.expr + _sympify(o), self.hint + _hint(o), self._fl(o))

    __radd__ = __add__

    def __sub__(self, o: Any) -> Any:
        return _make(self.expr - _sympify(o), self.hint - _hint(o), self._fl(o))

    def __rsub__(self, o: Any) -> Any:
        return _make(_sympify(o) - self.expr, _hint(o) - self.hint, self._fl(o))

    def __mul__(self, o: Any) -> Any:
        return _make(self.expr * _sympify(o), self.hint * _hint(o), self._fl(o))

    __rmul__ = __mul__

    def __neg__(self) -> Any:
        return _make(-self.expr, -self.hint, self.is_float)

    def __floordiv__(self, o: Any) -> Any:
        from torch.utils._sympy.functions import FloorDiv

        if self._fl(o):
            return float(self) // float(o)
        return _make(FloorDiv(self.expr, _sympify(o)), self.hint // _hint(o))

    def __rfloordiv__(self, o: Any) -> Any:
        from torch.utils._sympy.functions import FloorDiv

        if self._fl(o):
            return float(o) // float(self)
        return _make(FloorDiv(_sympify(o), self.expr), _hint(o) // self.hint)

    def __mod__(self, o: Any) -> Any:
        from torch.utils._sympy.functions import PythonMod

        if self._fl(o):
            return float(self) % float(o)
        return _make(PythonMod(self.expr, _sympify(o)), self.hint % _hint(o))

    def __rmod__(self, o: Any) -> Any:
        from torch.utils._sympy.functions import PythonMod

        if self._fl(o):
            return float(o) % float(self)
        return _make(PythonMod(_sympify(o), self.expr), _hint(o) % self.hint)

    def __truediv__(self, o: Any) -> Any:
        return _make(self.expr / _sympify(o), self.hint / _hint(o), True)

    def __rtruediv__(self, o: Any) -> Any:
        return _make(_sympify(o) / self.expr, _hint(o) / self.hint, True)

    # --- comparisons (guarded) -----------------------------------------------------------------
    def _cmp(self, o: Any, rel: Any, value: bool) -> bool:
        if not isinstance(o, (int, float, Size)):
            return NotImplemented  # type: ignore[return-value]
        return _decide(rel(self.expr, _sympify(o)), value)

    def __lt__(self, o: Any) -> bool:
        import sympy

        return self._cmp(o, sympy.Lt, self.hint < _hint(o))

    def __le__(self, o: Any) -> bool:
        import sympy

        return self._cmp(o, sympy.Le, self.hint <= _hint(o))

    def __gt__(self, o: Any) -> bool:
        import sympy

        return self._cmp(o, sympy.Gt, self.hint > _hint(o))

    def __ge__(self, o: Any) -> bool:
        import sympy

        return self._cmp(o, sympy.Ge, self.hint >= _hint(o))

    def __eq__(self, o: Any) -> bool:  # type: ignore[override]
        import sympy

        if isinstance(o, Size) and o.expr == self.expr:
            return True
        if not isinstance(o, (int, float, Size)):
            return False
        return _decide(sympy.Eq(self.expr, _sympify(o)), self.hint == _hint(o))

    def __ne__(self, o: Any) -> bool:  # type: ignore[override]
        return not self.__eq__(o)


def guard_range(n: Any, lo: int, hi: int) -> None:
    """Guard lo < n <= hi exactly (a block size computed from n's trace-time value)."""
    import sympy

    if isinstance(n, Size):
        _decide(sympy.Gt(n.expr, lo), n.hint > lo, strict=True)
        _decide(sympy.Le(n.expr, hi), n.hint <= hi, strict=True)


def sized(v: Any) -> Any:
    """A plain int/float for a concrete or constant symbolic value, else a Size."""
    import torch

    if isinstance(v, (torch.SymInt, torch.SymFloat)):
        node = v.node
        expr = node.expr
        is_float = isinstance(v, torch.SymFloat)
        if expr.is_number:
            return float(expr) if is_float else int(expr)
        hint = node.hint if node.has_hint() else node.shape_env.size_hint(expr)
        return Size(expr, float(hint) if is_float else int(hint), is_float)
    return v


def is_symbolic(v: Any) -> bool:
    return isinstance(v, Size)


def used_names(text: str) -> list[str]:
    """The size names a piece of generated code uses, in first-use order."""
    return list(dict.fromkeys(NAME.findall(text)))


__all__ = ["Size", "Registry", "build", "current", "sized", "is_symbolic", "used_names", "guard_range"]
