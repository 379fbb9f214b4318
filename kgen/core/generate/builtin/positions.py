"""Whether a value a row tile holds can be read through a view chain without memory.

A reduction tile holds each of its values at the flat row-major positions of the group's element
space (its `shape`): a per-element value directly, a per-row value or a value that varies only
along some reduced dims (group norm's per-channel scale, [N, G, C/G, 1] in a [N, G, C/G, HW]
space) broadcast there. A consumer elsewhere in the tile may see that value through views the
register does not follow (group norm reads the scale as [N, C, 1, 1] through as_strided and
unsqueezes, broadcast over [N, C, H, W]); reading the register as is is right exactly when, at
every flat position, the view picks the element the broadcast register holds there.

That is decided by replaying the chain on an index tensor (each element its own flat position)
at two unrelated sets of concrete sizes for the symbolic dims (distinct odd sizes), so that a
layout that only lines up at some sizes is not taken. Nothing here records a size guard.
"""

from __future__ import annotations

from typing import Any

from torch.fx import Node

from kgen.core.generate.builtin import ops
from kgen.core.generate.builtin.graph import shape_of
from kgen.core.generate.builtin.sizes import Size

# the most elements of the space the check replays
_CAP = 1 << 22


def _symbols(values: list[Any], out: set) -> None:
    for v in values:
        if isinstance(v, Size):
            out |= v.expr.free_symbols
        elif isinstance(v, (list, tuple)):
            _symbols(list(v), out)


def _at(v: Any, env: dict) -> Any:
    import sympy

    if isinstance(v, Size):
        val = sympy.sympify(v.expr.xreplace(env))
        if not val.is_number:
            raise ValueError("a size with an unknown value")
        return int(val)
    if isinstance(v, (list, tuple)):
        return type(v)(_at(x, env) for x in v)
    return v


def _envs(values: list[Any]) -> list[dict]:
    """Two unrelated sets of sizes for the symbolic dims among `values` (distinct odd sizes: no
    dim of 1 hides an index, and no two dims are equal by chance)."""
    syms: set = set()
    _symbols(values, syms)
    ordered = sorted(syms, key=str)
    n = len(ordered)
    return [{s: 2 * i + 3 for i, s in enumerate(ordered)},
            {s: 2 * (n + i) + 3 for i, s in enumerate(reversed(ordered))}]


def _replay(t: Any, chain: list[Node], env: dict) -> Any:
    import torch

    for v in chain:
        name = ops.packet(v)
        args = [_at(a, env) for a in v.args[1:]]
        kwargs = {k: _at(x, env) for k, x in v.kwargs.items()}
        if name in ("view", "_unsafe_view", "reshape"):
            # the module replays these with reshape: the same elements, copied or not
            t = torch.reshape(t, args[0])
        else:
            t = v.target(t, *args, **kwargs)  # type: ignore[operator]
    return t


def same_positions(root: Node, chain: list[Node], at: tuple, space: tuple) -> bool:
    """Whether `root` seen through `chain` (views, outermost last, as graph.trace returns them)
    and broadcast to shape `at` holds, at every flat position, what the register of `root`
    holds there: `root` broadcast to the element space `space`, or, when it has as many
    elements as the space, `root` at its own flat positions (`at` and `space` have as many
    elements)."""
    import torch

    rshape = shape_of(root)
    if any(ops.packet(v) == "as_strided" for v in chain):
        # as_strided addresses the root's storage: the replay's is contiguous, so must the root's be
        val = root.meta.get("val")
        try:
            if val is None or not val.is_contiguous() or val.storage_offset() != 0:
                return False
        except Exception:  # noqa: BLE001 - strides unknown: not decidable here
            return False
    sizes = [list(rshape), list(at), list(space)] + [list(shape_of(v)) for v in chain] + \
        [list(v.args[1:]) for v in chain] + [list(v.kwargs.values()) for v in chain]
    try:
        for env in _envs(sizes):
            rs, a, sp = _at(rshape, env), _at(tuple(at), env), _at(tuple(space), env)
            n = 1
            for s in sp:
                n *= s
            if n > _CAP:
                return False   # static sizes this large: not worth the check, read memory
            n = 1
            for s in rs:
                n *= s
            index = torch.arange(n, dtype=torch.int64).reshape(rs)
            seen = _replay(index, list(reversed(chain)), env).expand(a).reshape(-1)
            # a value with as many elements as the space is held at its own flat positions
            want = index.reshape(-1) if n == seen.numel() else index.expand(sp).reshape(-1)
            if seen.shape != want.shape or not torch.equal(seen, want):
                return False
    except Exception:  # noqa: BLE001 - a chain that cannot be replayed: not a register read
        return False
    return True


__all__ = ["same_positions"]
