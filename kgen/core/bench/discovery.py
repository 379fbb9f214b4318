"""Which tasks a bench runs: files and folders of KernelBench-format tasks.

Category: a `# kgen: category NAME` line in the file, else the name of the folder holding it.
Small shapes (`--small`): a task may define a module-level dict `SMALL` mapping some of its
module-level constants to smaller values; the small variant is the file with
`globals().update(SMALL)` appended, so `get_inputs()`/`get_init_inputs()` (which read the
constants when called) build small tensors. The variant is a task of its own (its own id, its
own cached references), and the file stays a plain KernelBench task without kgen.
"""

from __future__ import annotations

import ast
import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path

from kgen.core.errors import BadInput

CATEGORY_RE = re.compile(r"^#\s*kgen:\s*category\s+([A-Za-z0-9_.-]+)\s*$", re.MULTILINE)
SMALL_SUFFIX = "\n\n# kgen bench --small: module constants replaced by the task's SMALL dict\nglobals().update(SMALL)\n"


@dataclass(frozen=True)
class BenchTask:
    name: str           # file stem; also the name of its kernel in a --candidates folder
    category: str
    path: str
    source: str         # what is verified: the file, or its small variant
    small: bool         # True when `source` is the SMALL variant

    @property
    def key(self) -> str:
        return f"{self.category}/{self.name}"


def has_small(source: str) -> bool:
    """True when the module assigns a dict literal to a top-level name SMALL."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == "SMALL" for t in targets) and isinstance(node.value, ast.Dict):
            return True
    return False


def small_variant(source: str) -> str | None:
    return source.rstrip("\n") + "\n" + SMALL_SUFFIX if has_small(source) else None


def category_of(path: Path, source: str) -> str:
    match = CATEGORY_RE.search(source)
    if match:
        return match.group(1)
    return path.parent.name or "default"


def _files(paths: list[str | Path]) -> list[Path]:
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise BadInput(f"no such task file or folder: {raw}")
        if p.is_dir():
            found = sorted(f for f in p.rglob("*.py")
                           if not f.name.startswith(("_", ".")) and not any(part.startswith((".", "_")) for part in f.relative_to(p).parts[:-1]))
            if not found:
                raise BadInput(f"folder {raw} holds no task files (*.py)")
            out.extend(found)
        elif p.suffix != ".py":
            raise BadInput(f"task file must be a .py file: {raw}")
        else:
            out.append(p)
    return out


def discover(paths: list[str | Path], *, small: bool = False, only: list[str] | None = None) -> list[BenchTask]:
    """BenchTasks for the given files/folders, sorted by (category, name). A file that is not a
    task, or two tasks with the same name, are bad input (one error naming the file).
    `only`: shell patterns matched against "category/name"; a task is kept when any matches."""
    from kgen.core.task import load_task

    if not paths:
        raise BadInput("give at least one task file or folder")
    tasks: dict[str, BenchTask] = {}
    seen_paths: set[Path] = set()
    for f in _files(paths):
        resolved = f.resolve()
        if resolved in seen_paths:
            continue
        seen_paths.add(resolved)
        task = load_task(f)  # static checks: syntax, Model, get_inputs, get_init_inputs
        variant = small_variant(task.source) if small else None
        bt = BenchTask(name=f.stem, category=category_of(f, task.source), path=str(f),
                       source=variant or task.source, small=variant is not None)
        if bt.name in tasks:
            raise BadInput(f"two tasks are named {bt.name!r} ({tasks[bt.name].path} and {f}); task names must be unique")
        tasks[bt.name] = bt
    kept = [t for t in tasks.values() if not only or any(fnmatch.fnmatchcase(t.key, pat) for pat in only)]
    if not kept:
        raise BadInput(f"--only {' '.join(only or [])}: no task matches (tasks are named category/name)")
    return sorted(kept, key=lambda t: (t.category, t.name))
