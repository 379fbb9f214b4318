"""KernelBench-format tasks: loading, static checks and the sandboxed "does Model run?" check.

A task is a Python source defining `class Model(nn.Module)`, `get_inputs()` and
`get_init_inputs()`. Its identity is the SHA-256 of the source text, so the same file submitted
twice is the same task everywhere (store, baseline cache, reference cache).
"""

from __future__ import annotations

import ast
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kgen.core.errors import BadInput, TaskError

REQUIRED_NAMES = ("Model", "get_inputs", "get_init_inputs")
MAX_TASK_BYTES = 1_000_000


@dataclass(frozen=True)
class Task:
    id: str          # sha256 hex of source
    source: str
    op_name: str     # file stem, or given
    path: str | None = None


def task_id(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def _top_level_names(tree: ast.Module) -> dict[str, str]:
    """Names bound at module level, with what binds them ("class", "function", "assign", "import")."""
    names: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            names[node.name] = "class"
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names[node.name] = "function"
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, ast.Name):
                    names[t.id] = "assign"
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                names[(alias.asname or alias.name).split(".")[0]] = "import"
    return names


def missing_required(namespace: Any) -> list[str]:
    """The REQUIRED_NAMES that an imported task (a module or its namespace dict) does not define
    as callables: the run-time half of the check that static_check does on the source."""
    get = namespace.get if isinstance(namespace, dict) else (lambda name: getattr(namespace, name, None))
    return [name for name in REQUIRED_NAMES if not callable(get(name))]


def static_check(source: str, *, what: str = "task") -> ast.Module:
    """Parse and check the required names; raises TaskError with the reason."""
    if len(source.encode("utf-8", "replace")) > MAX_TASK_BYTES:
        raise TaskError(f"{what} source is larger than {MAX_TASK_BYTES} bytes")
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise TaskError(f"{what} has a syntax error at line {exc.lineno}: {exc.msg}") from None
    except ValueError as exc:  # e.g. null bytes
        raise TaskError(f"{what} cannot be parsed: {exc}") from None
    names = _top_level_names(tree)
    missing = [n for n in REQUIRED_NAMES if n not in names]
    if missing:
        raise TaskError(f"{what} is missing {', '.join(missing)} (a KernelBench task defines "
                        "class Model, get_inputs() and get_init_inputs())")
    if names["Model"] not in ("class", "assign", "import"):
        raise TaskError(f"{what}: Model must be a class (an nn.Module)")
    for fn in ("get_inputs", "get_init_inputs"):
        if names[fn] == "class":
            raise TaskError(f"{what}: {fn} must be a function")
    return tree


def task_from_source(source: str, op_name: str | None = None, *, path: str | None = None) -> Task:
    if not isinstance(source, str):
        raise TaskError("task source must be text")
    static_check(source)
    return Task(id=task_id(source), source=source, op_name=op_name or "task", path=path)


def load_task(path: str | Path, op_name: str | None = None) -> Task:
    p = Path(path)
    if not p.exists():
        raise BadInput(f"task file not found: {p}")
    if not p.is_file():
        raise BadInput(f"task path is not a file: {p}")
    try:
        source = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise TaskError(f"task file is not UTF-8 text: {p}") from None
    except OSError as exc:
        raise BadInput(f"cannot read task file {p}: {exc.strerror}") from None
    try:
        static_check(source, what=f"task {p.name}")
    except TaskError:
        raise
    return Task(id=task_id(source), source=source, op_name=op_name or p.stem, path=str(p))


def check_task(task: Task, timeout_s: float = 120.0, *, device: str = "cpu", pool: Any = None) -> dict:
    """Run Model on its own inputs in a sandboxed child; raise TaskError with the reason.

    Returns {"task_id", "outputs": [{"shape", "dtype"}...], "device"}.
    """
    from kgen.core.verify.harness import reference_specs  # torch-free import until here

    return reference_specs(task, device=device, timeout_s=timeout_s, pool=pool)
