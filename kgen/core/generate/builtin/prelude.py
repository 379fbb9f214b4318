"""The part of the task source that ModelNew inherits: the reference class minus its forward.

Inheriting the reference class keeps the constructor, the parameter layout and the
initialisation identical; ModelNew only replaces forward. Everything else in the task that the
constructor does not need is left out, so the generated module carries no imports (numpy,
math, functional, ...) and no helpers that only the reference forward or the input factories
used. Rule: a top-level import, function, class or plain assignment is kept exactly when the
kept reference class reaches it, directly or through other kept statements; statements that
bind nothing (a module-level call, an attribute assignment) are kept because they may matter.
Helper nn.Module classes the constructor builds lose their forward too: ModelNew.forward has
lowered them, and their torch math would only be dead host code.
"""

from __future__ import annotations

import ast
import io
import tokenize
from dataclasses import dataclass

# The generated module imports these itself, ahead of the prelude.
_HEADER_IMPORTS = {"import torch", "import triton", "import triton.language as tl"}


@dataclass
class Prelude:
    text: str             # the kept task source, `Model` renamed
    future: list[str]     # `from __future__` lines, which must open the generated module
    doc: str | None       # the task's module docstring, first line


def _is_main(node: ast.stmt) -> bool:
    return (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__")


def _start(node: ast.stmt) -> int:
    return min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])


def _bound(node: ast.stmt) -> set[str] | None:
    """Names a droppable statement binds; None if the statement is not droppable."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            return None
        return {(a.asname or a.name).split(".")[0] for a in node.names if a.name != "*"} or None
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, (ast.Assign, ast.AnnAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        names = set()
        for t in targets:
            for sub in ast.walk(t):
                if isinstance(sub, ast.Name):
                    names.add(sub.id)
                elif not isinstance(sub, (ast.Tuple, ast.List, ast.Starred, ast.Store)):
                    return None  # an attribute or item assignment has an effect
        return names or None
    return None


def _used(node: ast.AST, skip: ast.AST | None = None) -> set[str]:
    names: set[str] = set()
    stack = [node]
    while stack:
        cur = stack.pop()
        if cur is skip:
            continue
        if isinstance(cur, ast.Name):
            names.add(cur.id)
        stack.extend(ast.iter_child_nodes(cur))
    return names


def _forward_of(cls: ast.ClassDef) -> ast.stmt | None:
    return next((i for i in cls.body if isinstance(i, (ast.FunctionDef, ast.AsyncFunctionDef))
                 and i.name == "forward"), None)


def _submodule_forward(node: ast.stmt) -> ast.stmt | None:
    """The forward of a helper nn.Module class (its bases name a ...Module), if it has one."""
    if not isinstance(node, ast.ClassDef):
        return None
    if not any(ast.unparse(b).split(".")[-1].endswith("Module") for b in node.bases):
        return None
    return _forward_of(node)


def reference_prelude(source: str, base_name: str) -> Prelude:
    tree = ast.parse(source)
    lines = source.splitlines()
    drop: list[tuple[int, int]] = []
    stub: dict[int, str] = {}
    doc = None
    future: list[str] = []
    body = list(tree.body)
    first = body[0] if body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        doc = first.value.value.strip().splitlines()[0] if first.value.value.strip() else None
        drop.append((body[0].lineno, body[0].end_lineno or body[0].lineno))
        body = body[1:]

    roots: set[str] = set()
    droppable: list[tuple[ast.stmt, set[str]]] = []
    for node in body:
        span = (_start(node), node.end_lineno or node.lineno)
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            future.append(ast.unparse(node))
            drop.append(span)
            continue
        if isinstance(node, ast.FunctionDef) and node.name in ("get_inputs", "get_init_inputs") or _is_main(node):
            drop.append(span)
            continue
        if isinstance(node, ast.ClassDef) and node.name == "Model":
            fwd = _forward_of(node)
            if fwd is not None:
                fstart = _start(fwd)
                drop.append((fstart, fwd.end_lineno or fwd.lineno))
                if len(getattr(node, "body", ())) == 1:  # a class needs a body; say where forward went
                    stub[fstart] = " " * fwd.col_offset + "pass  # forward: see ModelNew.forward"
            roots |= _used(node, skip=fwd)
            continue
        if isinstance(node, ast.Import) and ast.unparse(node) in _HEADER_IMPORTS:
            drop.append(span)
            continue
        bound = _bound(node)
        if bound is None:
            roots |= _used(node)
        else:
            droppable.append((node, bound))

    live = set(roots)
    kept: set[int] = set()
    changed = True
    while changed:
        changed = False
        for i, (node, bound) in enumerate(droppable):
            if i not in kept and bound & live:
                kept.add(i)
                live |= _used(node, skip=_submodule_forward(node))
                changed = True
    for i, (node, _) in enumerate(droppable):
        if i not in kept:
            drop.append((_start(node), node.end_lineno or node.lineno))
            continue
        fwd = _submodule_forward(node)
        if fwd is not None:
            # the constructor builds this submodule for its parameters; its forward never runs
            fstart = _start(fwd)
            drop.append((fstart, fwd.end_lineno or fwd.lineno))
            if len(getattr(node, "body", ())) == 1:
                stub[fstart] = " " * fwd.col_offset + "pass  # forward: lowered into ModelNew.forward"

    text_lines = [stub[i] if i in stub else ln for i, ln in enumerate(lines, 1)
                  if i in stub or not any(a <= i <= b for a, b in drop)]
    text = "\n".join(text_lines).strip("\n") + "\n"
    return Prelude(text=_rename(text, "Model", base_name), future=future, doc=doc)


def _rename(text: str, old: str, new: str) -> str:
    rows = text.splitlines(keepends=True)
    hits = [tok.start for tok in tokenize.generate_tokens(io.StringIO(text).readline)
            if tok.type == tokenize.NAME and tok.string == old]
    for row, col in reversed(hits):
        line = rows[row - 1]
        rows[row - 1] = line[:col] + new + line[col + len(old):]
    return "".join(rows)


__all__ = ["Prelude", "reference_prelude"]
