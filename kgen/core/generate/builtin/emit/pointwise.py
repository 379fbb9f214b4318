"""Pointwise groups: one program per XBLOCK elements of the flat output space."""

from __future__ import annotations

from typing import Any

from torch.fx import Node

from kgen.core.generate.builtin.codegen import (
    BodyWriter,
    Ctx,
    Kernel,
    Launch,
    clip_block,
    finish_params,
    output_params,
    store_all,
)
from kgen.core.generate.builtin.fusion import Group

KIND = "pointwise"
SECTION = "pointwise"


def emit(group: Group, name: str, sched: dict, consts: set[Node], pyname: Any, stored: list[Node]) -> Launch:
    k = Kernel(name)
    n = group.numel
    block = clip_block(sched["XBLOCK"], n, host=True)
    k.constexprs["XBLOCK"] = block
    output_params(k, stored)
    k.emit("xi = tl.program_id(0) * XBLOCK + tl.arange(0, XBLOCK)")
    if n >= 2**31:
        k.emit("xi = xi.to(tl.int64)")
    k.emit(f"xmask = xi < {n}")
    ctx = Ctx(k, "xmask", "xi")
    BodyWriter(group, consts, pyname).nodes(ctx, group.pro)
    store_all(ctx, k, group.pro, stored)
    finish_params(k, stored)
    return Launch(k, f"(triton.cdiv({n}, {block}),)", stored, {"num_warps": sched["num_warps"]})
