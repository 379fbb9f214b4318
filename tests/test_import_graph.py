"""The import graph of kgen/, read with `ast` (every import statement: module level, inside
functions, under TYPE_CHECKING), has no cycles, and no module reaches into another's privates.

Rules checked:
- An edge A -> B is an import of kgen module B anywhere in A (`import B`, `from B import x`,
  `from P import B` where B is a module). Importing a submodule is an edge to the submodule, not
  to its parent package (Python runs the parent's __init__ first, but that is not a design
  dependency: a package may pick among its own submodules without being "imported back").
- No name starting with one underscore is imported from another module (`from m import _x`).
- A private module or package (`_docs`, `_output`) is imported only from inside the package
  that holds it: kgen.cli._docs.tree may be used by kgen.cli.docs_cmd, not by kgen.core.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "kgen"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, path: Path) -> list[tuple[str, str | None, int]]:
    """(imported module, imported attribute or None, line) for every kgen import in a module."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, None, node.lineno) for a in node.names if a.name.split(".")[0] == "kgen"]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            if base.split(".")[0] != "kgen":
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append((sub, None, node.lineno) if sub in MODULES else (base, alias.name, node.lineno))
    return found


def _graph() -> dict[str, set[str]]:
    return {name: {m for m, _, _ in _imports(name, path) if m in MODULES and m != name}
            for name, path in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        found.append(sorted(comp))
    return found


def _private(part: str) -> bool:
    return part.startswith("_") and not part.startswith("__")


def test_the_checker_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_kgen_imports_form_no_cycle():
    assert _cycles(_graph()) == []


def test_no_module_imports_another_modules_private_names():
    problems = []
    for name, path in MODULES.items():
        for module, attr, line in _imports(name, path):
            where = f"{path.relative_to(ROOT)}:{line}"
            if attr is not None and _private(attr) and module != name:
                problems.append(f"{where} imports {attr} from {module}")
            parts = module.split(".")
            for i, part in enumerate(parts):
                if _private(part):
                    owner = ".".join(parts[:i])          # the package holding the private part
                    if not (name == owner or name.startswith(owner + ".")):
                        problems.append(f"{where} imports private module {module} from outside {owner}")
                    break
    assert problems == []


def test_the_builtin_generator_layers_import_only_downward():
    """ops < graph < legality < fusion < indexing < codegen < emit < module < the generator."""
    order = ["sizes", "ops", "rewrite", "prelude", "schedule", "graph", "export", "legality", "strided", "positions",
             "attention_match", "inline", "rowfuse", "convfuse", "fusion",
             "indexing", "codegen", "emit", "tidy", "module", ""]
    prefix = "kgen.core.generate.builtin"

    def layer(mod: str) -> int | None:
        if mod == prefix:
            return order.index("")
        if not mod.startswith(prefix + "."):
            return None
        return order.index(mod[len(prefix) + 1:].split(".")[0])

    graph = _graph()
    upward = []
    for mod, targets in graph.items():
        here = layer(mod)
        if here is None:
            continue
        for t in targets:
            there = layer(t)
            if there is not None and there > here and not t.startswith(mod + "."):
                upward.append(f"{mod} -> {t}")
    assert upward == []
