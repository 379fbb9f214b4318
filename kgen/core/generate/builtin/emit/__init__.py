"""Emitters: one module per group kind, each turning a planned group into one Triton kernel.

Every emitter module declares `KIND` (the group kind it lowers), `SECTION` (the schedule section
whose knobs it reads: pointwise, reduction or matmul) and `emit(...)`, the `Emitter` protocol
below. `EMITTERS` is the registry the module writer looks kinds up in; `SECTION_OF_KIND` is the one
group-kind -> schedule-section table. A new group kind is a new module here, listed in `_MODULES`,
plus its legality check (legality.py) and its placement in the plan (fusion.py).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Protocol

from torch.fx import Node

from kgen.core.generate.builtin.codegen import Launch
from kgen.core.generate.builtin.emit import (
    attention,
    conv,
    matmul,
    pointwise,
    pool,
    reduction,
    rowmatmul,
    scan,
    scatter,
    sort,
)
from kgen.core.generate.builtin.fusion import Group


class Emitter(Protocol):
    """What every module under emit/ provides."""

    KIND: str
    SECTION: str

    def emit(self, group: Group, name: str, sched: dict, consts: set[Node], pyname: Any,
             stored: list[Node]) -> Launch:
        """The kernel for `group`, named `name`, with the knobs of its schedule section `sched`;
        `pyname(node)` is the host expression of a node's tensor, `stored` the group's outputs."""
        ...


_MODULES: tuple[ModuleType, ...] = (pointwise, reduction, scan, sort, scatter, matmul, conv, pool, attention,
                                     rowmatmul)
EMITTERS: dict[str, Emitter] = {m.KIND: m for m in _MODULES}  # type: ignore[misc]
SECTION_OF_KIND: dict[str, str] = {m.KIND: m.SECTION for m in _MODULES}

__all__ = ["EMITTERS", "SECTION_OF_KIND", "Emitter"]
