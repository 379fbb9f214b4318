"""The second-shape check: the same kernel source, verified against the task at other sizes.

A suite file may define a module-level dict `SECOND` (next to `SMALL`) giving other values for
input-size constants that leave `get_init_inputs()` unchanged (other batch size, sequence length,
spatial size). The second variant is the verified task's source (the file, or its SMALL variant)
with `globals().update(SECOND)` appended: same Model, same parameters, other input shapes. A
shape-generic kernel passes it; one specialised on the traced shapes fails with its own
ValueError ("ModelNew was generated for ...").
"""

from __future__ import annotations

import ast
from typing import Any

SECOND_SUFFIX = "\n\n# kgen bench: module constants replaced by the task's SECOND dict (second shape)\nglobals().update(SECOND)\n"


def has_second(source: str) -> bool:
    """True when the module assigns a non-empty dict literal to a top-level name SECOND."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if any(isinstance(t, ast.Name) and t.id == "SECOND" for t in targets) and isinstance(node.value, ast.Dict):
            return bool(node.value.keys)
    return False


def second_variant(source: str) -> str | None:
    """`source` (a task, possibly already its SMALL variant) at its second shape, or None."""
    return source.rstrip("\n") + "\n" + SECOND_SUFFIX if has_second(source) else None


def check_second(task_source: str, kernel_source: str, *, name: str = "task", device: str = "cpu",
                 timeout_s: float | None = None) -> str | None:
    """'pass', or 'fail: <one line>' for `kernel_source` verified at the task's second shape;
    None when the task has no SECOND."""
    from kgen.core.errors import KgenError
    from kgen.core.task import task_from_source
    from kgen.core.verify import verify

    variant = second_variant(task_source)
    if variant is None:
        return None
    try:
        task = task_from_source(variant, f"{name}[second]")
        verdict = verify(task, kernel_source, device=device, timeout_s=timeout_s, profile=False, trials=1)
    except KgenError as exc:
        return f"fail: {exc.message}"[:300]
    if verdict.status == "correct":
        return "pass"
    return f"fail: {_one_line(verdict)}"[:300]


def _one_line(verdict: Any) -> str:
    msg = str(getattr(verdict, "message", "") or verdict.status)
    lines = [x.strip() for x in msg.splitlines() if x.strip()]
    # the candidate's own ValueError says what it cannot take: prefer that line
    for line in reversed(lines):
        if "ModelNew was generated for" in line:
            return line
    return f"{verdict.status}: {lines[-1] if lines else ''}"
