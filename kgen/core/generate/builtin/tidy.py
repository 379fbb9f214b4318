"""Making the generated module read like hand-written code: only the helpers it uses, no dead
locals in kernels, no runs of blank lines.

Templates emit what any instance might need (every index variable, a flat offset for a store
that a sweep may not do); pruning afterwards keeps the templates simple and the output short.
"""

from __future__ import annotations

import ast
import functools
import re

# Calls with an effect beyond their value: an assignment from one of these is never dead.
_EFFECTS = ("store", "atomic", "print", "assert", "barrier")


@functools.lru_cache(maxsize=8)
def definitions(text: str) -> dict[str, str]:
    """Top-level functions of `text` by name, each with its decorators, in source order (cached:
    the helper libraries are the same text on every build; treat the result as read-only)."""
    tree = ast.parse(text)
    lines = text.splitlines()
    out: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            start = min([node.lineno] + [d.lineno for d in node.decorator_list])
            out[node.name] = "\n".join(lines[start - 1:node.end_lineno]) + "\n"
    return out


def names_in(code: str) -> set[str]:
    return set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", code))


def used_definitions(code: str, defs: dict[str, str]) -> list[str]:
    """The sources of `defs` that `code` reaches, directly or through other definitions, in the
    order `defs` lists them."""
    reached: set[str] = set()
    frontier = names_in(code) & set(defs)
    while frontier:
        name = frontier.pop()
        reached.add(name)
        frontier |= (names_in(defs[name]) & set(defs)) - reached
    return [src for name, src in defs.items() if name in reached]


def _has_effect(expr: ast.AST) -> bool:
    for sub in ast.walk(expr):
        if isinstance(sub, ast.Call):
            func = sub.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if any(word in name for word in _EFFECTS):
                return True
    return False


def _uses(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


class _Liveness:
    """Backward liveness over a kernel body (straight code, for/while loops, if): an assignment
    is dead when no path from it reads the name before it is assigned again."""

    def __init__(self) -> None:
        self.dead: set[int] = set()
        self._memo: dict[int, set[str]] = {}   # the loop fixpoint revisits the same statements

    def uses(self, node: ast.AST) -> set[str]:
        got = self._memo.get(id(node))
        if got is None:
            got = self._memo[id(node)] = _uses(node)
        return got

    def block(self, body: list[ast.stmt], live: set[str], mark: bool) -> set[str]:
        live = set(live)
        dead_here = []
        for stmt in reversed(body):
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
                name = stmt.targets[0].id
                if name not in live and not _has_effect(stmt.value):
                    dead_here.append(stmt)
                    continue
                live = (live - {name}) | self.uses(stmt.value)
            elif isinstance(stmt, (ast.For, ast.While)):
                live = self.loop(stmt, live, mark)
            elif isinstance(stmt, ast.If):
                live = (self.block(stmt.body, live, mark) | self.block(stmt.orelse, live, mark)
                        | self.uses(stmt.test))
            else:
                live |= self.uses(stmt)
                if isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name):
                    live.add(stmt.target.id)
        if mark:
            if len(dead_here) == len(body) and body:
                dead_here = dead_here[:-1]  # a block must keep a statement
            for stmt in dead_here:
                self.dead.update(range(stmt.lineno, (stmt.end_lineno or stmt.lineno) + 1))
        return live

    def loop(self, stmt: ast.For | ast.While, after: set[str], mark: bool) -> set[str]:
        # a while condition is read again after every pass of the body
        head = set(after) | (self.uses(stmt.test) if isinstance(stmt, ast.While) else set())
        for _ in range(100):
            entry = self.block(stmt.body, head, False)
            if isinstance(stmt, ast.For):
                entry = entry - _uses_store(stmt.target)
            grown = head | entry
            if grown == head:
                break
            head = grown
        if mark:
            self.block(stmt.body, head, True)
        extra = self.uses(stmt.iter) if isinstance(stmt, ast.For) else self.uses(stmt.test)
        return head | extra | self.block(stmt.orelse, after, mark)


def _uses_store(target: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}


def _dead_assignment_lines(func: ast.FunctionDef) -> set[int]:
    analysis = _Liveness()
    analysis.block(func.body, set(), True)
    return analysis.dead


def _stored(node: ast.AST) -> list[str]:
    return [n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)]


def _aliases(func: ast.FunctionDef) -> list[tuple[ast.stmt, list[ast.Name], str]]:
    """Assignments `t = s` that can go, with the reads of t to rename to s: t is assigned only
    there, every read of t follows it in the same block, and s is not reassigned in that stretch.
    A later alias of an earlier one reads the earlier one's source."""
    params = {a.arg for a in func.args.args + func.args.posonlyargs + func.args.kwonlyargs}
    counts: dict[str, int] = {}
    loads: dict[str, list[ast.Name]] = {}
    blocks = [func.body]
    for n in ast.walk(func):
        if isinstance(n, ast.Name):
            if isinstance(n.ctx, ast.Load):
                loads.setdefault(n.id, []).append(n)
            else:
                counts[n.id] = counts.get(n.id, 0) + 1
        elif isinstance(n, (ast.For, ast.While, ast.If)):
            blocks += [n.body, n.orelse]
    stored_memo: dict[int, set[str]] = {}

    def stored_in(stmt: ast.stmt) -> set[str]:
        got = stored_memo.get(id(stmt))
        if got is None:
            got = stored_memo[id(stmt)] = set(_stored(stmt))
        return got

    found: list[tuple[ast.stmt, list[ast.Name], str]] = []
    targets: dict[str, str] = {}   # alias -> the name it will read
    sources: set[str] = set()
    for body in blocks:
        for i, stmt in enumerate(body):
            if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                    and isinstance(stmt.targets[0], ast.Name) and isinstance(stmt.value, ast.Name)):
                continue
            t, src = stmt.targets[0].id, stmt.value.id
            if t == src or t in params or counts.get(t) != 1:
                continue
            rest = body[i + 1:]
            if not rest:
                continue
            first, last = rest[0].lineno, max(r.end_lineno or r.lineno for r in rest)
            reads = loads.get(t, [])
            if any(not first <= r.lineno <= last for r in reads):
                continue
            if t in sources or any(src in stored_in(r) for r in rest):
                continue
            # `b = a; c = b`: c's reads lie within b's stretch, where a does not change either
            src = targets.get(src, src)
            targets[t] = src
            sources.add(src)
            found.append((stmt, reads, src))
    return found


def inline_aliases(kernel_src: str) -> str:
    """Replace locals that only rename another (`i4 = rows`) by the name they copy."""
    text = kernel_src
    for _ in range(50):
        try:
            tree = ast.parse(text)
        except SyntaxError:
            return kernel_src
        found = [a for node in tree.body if isinstance(node, ast.FunctionDef) for a in _aliases(node)]
        if not found:
            return text
        lines = text.splitlines()
        edits = [(r, src) for _, reads, src in found for r in reads]
        for r, src in sorted(edits, key=lambda e: (e[0].lineno, e[0].col_offset), reverse=True):
            line = lines[r.lineno - 1]
            lines[r.lineno - 1] = line[:r.col_offset] + src + line[r.end_col_offset:]
        gone = {i for stmt, _, _ in found for i in range(stmt.lineno, (stmt.end_lineno or stmt.lineno) + 1)}
        text = "\n".join(ln for i, ln in enumerate(lines, 1) if i not in gone) + "\n"
    return text


def drop_dead_locals(kernel_src: str) -> str:
    """Remove assignments to locals that nothing reads, until none is left. A kernel that does
    not parse is returned unchanged (the verifier will say what is wrong with it)."""
    text = kernel_src
    for _ in range(50):
        try:
            tree = ast.parse(text)
        except SyntaxError:
            return kernel_src
        dead: set[int] = set()
        for node in tree.body:
            if isinstance(node, ast.FunctionDef):
                dead |= _dead_assignment_lines(node)
        if not dead:
            break
        text = "\n".join(ln for i, ln in enumerate(text.splitlines(), 1) if i not in dead) + "\n"
    return text


def collapse_blank_lines(text: str, keep: int = 2) -> str:
    """At most `keep` blank lines in a row, and none at the end but one newline."""
    out: list[str] = []
    blank = 0
    for line in text.splitlines():
        if line.strip():
            blank = 0
            out.append(line.rstrip())
        else:
            blank += 1
            if blank <= keep:
                out.append("")
    while out and not out[-1]:
        out.pop()
    return "\n".join(out) + "\n"


__all__ = ["definitions", "used_definitions", "drop_dead_locals", "inline_aliases", "collapse_blank_lines",
           "names_in"]
