"""Static screen of a candidate's source, run in the verifier before any candidate code runs.

Two rules, each a `rejected` verdict with the names found:
- Escape libraries: importing numpy, scipy, numba, cupy, jax, tensorflow, ctypes, cffi,
  subprocess, multiprocessing or socket (as `import x`, `from x import y`, or a constant
  `__import__("x")` / `importlib.import_module("x")`). A Triton candidate has no use for them;
  Triton's interpreter imports numpy for itself, which is not the candidate's doing. Allowed
  when the task imports the same library (generated modules carry the task's own imports), or
  when allow_ops names it as "import:NAME" (e.g. "import:numpy").
- Harness reach: names that only serve to disable or sidestep the instrumentation: torch
  dispatch-mode internals, frame and code-object introspection, kgen itself. No allowance.
- Torch's compiler: `torch.compile`, `torch._dynamo`, `torch._inductor`. Compiled code runs
  kernels torch generated (Triton ones on a GPU, which would count as the candidate's launches)
  and bypasses the op recorder. No allowance.
"""

from __future__ import annotations

import ast

ESCAPE_LIBRARIES = frozenset("""
numpy scipy numba cupy jax jaxlib tensorflow ctypes cffi subprocess multiprocessing socket
_posixsubprocess _ctypes
""".split())

HARNESS_NAMES = frozenset("""
_python_dispatch _unset_dispatch_mode _set_dispatch_mode _pop_torch_dispatch_mode _pop_torch_dispatch_stack
_push_on_torch_dispatch_stack _pop_mode _push_mode _pop_mode_temporarily _disable_current_modes
_DisableTorchDispatch _ExcludeDispatchKeyGuard _len_torch_dispatch_stack _get_dispatch_stack_at
TensorBase _getframe f_back f_locals f_globals __closure__ __code__ __globals__ settrace setprofile
""".split())


def _root(name: str) -> str:
    return name.split(".")[0]


def imported_modules(tree: ast.AST) -> set[str]:
    """Top-level module names a source imports, statically or by a constant dynamic import."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(_root(a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(_root(node.module))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            fn = node.func
            name = fn.id if isinstance(fn, ast.Name) else fn.attr if isinstance(fn, ast.Attribute) else ""
            if name in ("__import__", "import_module"):
                found.add(_root(node.args[0].value))
    return found


def _parse(source: str) -> ast.AST | None:
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError):
        return None


def escape_imports(source: str, task_source: str = "", allow_ops=()) -> list[str]:
    tree = _parse(source)
    if tree is None:
        return []
    task_tree = _parse(task_source) if task_source else None
    permitted = imported_modules(task_tree) if task_tree is not None else set()
    permitted |= {op.split(":", 1)[1] for op in allow_ops or () if str(op).startswith("import:")}
    return sorted((imported_modules(tree) & ESCAPE_LIBRARIES) - permitted)


def harness_references(source: str) -> list[str]:
    tree = _parse(source)
    if tree is None:
        return []
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in HARNESS_NAMES:
            found.add(node.attr)
        elif isinstance(node, ast.Name) and node.id in HARNESS_NAMES:
            found.add(node.id)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in HARNESS_NAMES:
            found.add(node.value)
        elif isinstance(node, ast.alias):
            found.update(set(node.name.split(".")) & HARNESS_NAMES)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.update(set(node.module.split(".")) & HARNESS_NAMES)
    if "kgen" in imported_modules(tree):
        found.add("kgen")
    return sorted(found)


COMPILER_NAMES = frozenset({"_dynamo", "_inductor"})


def torch_compiler_uses(source: str) -> list[str]:
    tree = _parse(source)
    if tree is None:
        return []
    torch_names = {a.asname or "torch" for node in ast.walk(tree) if isinstance(node, ast.Import)
                   for a in node.names if a.name == "torch"}
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in COMPILER_NAMES:
            found.add(f"torch.{node.attr}")
        elif isinstance(node, ast.Attribute) and node.attr == "compile" and isinstance(node.value, ast.Name) \
                and node.value.id in torch_names:
            found.add("torch.compile")
        elif isinstance(node, ast.alias) and set(node.name.split(".")) & COMPILER_NAMES:
            found.add("torch." + next(iter(set(node.name.split(".")) & COMPILER_NAMES)))
        elif isinstance(node, ast.ImportFrom) and node.module:
            parts = node.module.split(".")
            if parts[0] == "torch" and set(parts) & COMPILER_NAMES:
                found.add("torch." + next(iter(set(parts) & COMPILER_NAMES)))
            elif node.module == "torch" and any(a.name == "compile" for a in node.names):
                found.add("torch.compile")
    return sorted(found)


def screen(source: str, task_source: str = "", allow_ops=()) -> str | None:
    """The reason to reject, or None."""
    compiled = torch_compiler_uses(source)
    if compiled:
        return (f"candidate uses torch's compiler ({', '.join(compiled)}): its kernels must be "
                "its own Triton code")
    reach = harness_references(source)
    if reach:
        return f"candidate reaches into the harness instrumentation: {', '.join(reach)}"
    libs = escape_imports(source, task_source, allow_ops)
    if libs:
        return (f"candidate imports {', '.join(libs)}: compute must run in Triton kernels "
                f"(allow with allow_ops={tuple('import:' + n for n in libs)!r})")
    return None
