"""The generated module reads like hand-written code: only the helpers it uses, no dead locals,
no task imports the constructor does not need, plain-data params (no verifier: in-process)."""

from __future__ import annotations

import ast
import pickle
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kgen.core.generate.builtin import BuiltinGenerator
from kgen.core.generate.builtin.tidy import collapse_blank_lines, drop_dead_locals, inline_aliases
from kgen.core.task import load_task, task_from_source

TASKS = Path(__file__).parent / "tasks"
REPO_ROOT = Path(__file__).resolve().parents[3]


def _generate(name: str):
    return BuiltinGenerator().initial(load_task(TASKS / name), 1)[0]


def _top_functions(tree: ast.Module) -> dict[str, ast.FunctionDef]:
    return {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}


@pytest.mark.parametrize("name", ["norm_softmax.py", "pw_activations.py", "red_max_indices.py",
                                  "pw_int_divmod.py", "fb_sort.py"])
def test_module_defines_only_what_it_uses(name):
    src = _generate(name).source
    tree = ast.parse(src)
    funcs = _top_functions(tree)
    for fname, node in funcs.items():
        rest = src.replace(ast.get_source_segment(src, node), "")
        assert re.search(rf"\b{fname}\b", rest), f"{fname} is defined but never used"
    assert "\n\n\n\n" not in src, "runs of blank lines left behind"
    for fname, node in funcs.items():
        if not fname.startswith("k"):
            continue
        loaded = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        stored = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        assert stored <= loaded, f"{fname} assigns locals nothing reads: {stored - loaded}"


def test_softmax_module_names_what_each_kernel_fuses_and_keeps_one_flat_index():
    src = _generate("norm_softmax.py").source
    doc = ast.get_docstring(ast.parse(src))
    assert re.search(r"k0_reduction\s+fuses .*amax.*exp.*sum", doc.replace("\n", " ")), doc
    kernel = src[src.index("def k0_reduction"):src.index("class ModelNew")]
    # three sweeps over the row, one store: only the storing sweep needs a flat output index
    assert kernel.count("flat =") == kernel.count("tl.store(") == 1
    assert "_kgen_pow" not in src and "_kgen_round" not in src and "_kgen_attr" not in src


def test_task_imports_the_constructor_does_not_need_are_dropped():
    src = _generate("pw_task_imports.py").source
    tree = ast.parse(src)
    imported = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
                for a in n.names}
    assert imported == {"torch", "triton", "tl", "nn", "math"}, imported
    assert not imported & {"numpy", "np", "F", "torch.nn.functional"}, imported
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | set(_top_functions(tree))
    assert not names & {"np", "F", "_helper_for_forward", "get_inputs", "get_init_inputs"}
    assert "math.sqrt" in src   # the inherited __init__ uses math, so its import stays
    assert src.count("import torch\n") == 1
    ns: dict = {"__name__": "kgen_candidate_test"}
    exec(compile(src, "<candidate>", "exec"), ns)
    assert ns["ModelNew"](64).scale == pytest.approx(1 / 8)


def test_future_import_and_docstring_of_the_task_keep_the_module_valid():
    source = '''"""A task written with postponed annotations."""
from __future__ import annotations

import torch
import torch.nn as nn


class Model(nn.Module):
    """Scales its input."""

    def __init__(self, factor: float = 2.0) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


def get_inputs():
    return [torch.randn(4, 8)]


def get_init_inputs():
    return [3.0]
'''
    src = BuiltinGenerator().initial(task_from_source(source, "future"), 1)[0].source
    tree = ast.parse(src)
    assert isinstance(tree.body[1], ast.ImportFrom) and tree.body[1].module == "__future__"
    assert "A task written with postponed annotations." in ast.get_docstring(tree)
    ns: dict = {"__name__": "kgen_candidate_test"}
    exec(compile(src, "<candidate>", "exec"), ns)
    assert ns["ModelNew"](3.0).factor == 3.0


def test_candidate_unpickles_without_torch():
    cands = [_generate(name) for name in ("red_max_indices.py", "fb_sort.py", "mm_linear_gelu.py")]
    payload = pickle.dumps(cands)
    code = ("import pickle, sys; cands = pickle.loads(sys.stdin.buffer.read()); "
            "assert 'torch' not in sys.modules, 'unpickling imported torch'; "
            "print(len(cands), type(cands[0].params).__name__)")
    done = subprocess.run([sys.executable, "-W", "error", "-c", code], input=payload, capture_output=True,
                          cwd=REPO_ROOT, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().split() == ["3", "dict"]


KERNEL = '''@triton.jit
def k(in0, out0, N: tl.constexpr):
    rows = tl.arange(0, N)
    unused_row = rows * 2
    acc = tl.zeros([N], tl.float32)
    for k0 in range(0, 4):
        flat = rows * 4 + k0
        x = tl.load(in0 + rows)
        acc = acc + x
    for k0 in range(0, 4):
        flat = rows * 4 + k0
        gone = flat + 1
        tl.store(out0 + flat, acc)
    for k0 in range(0, 4):
        only = rows + k0
    carried = rows
    for k0 in range(0, 4):
        tl.store(out0 + carried, acc)
        carried = carried + 1
    step = 0
    while step < N:
        step = step + 1
'''


def test_dead_locals_go_live_ones_and_effects_stay():
    out = drop_dead_locals(KERNEL)
    ast.parse(out)
    assert "unused_row" not in out and "gone" not in out
    assert out.count("flat = rows * 4 + k0") == 1          # the first loop's flat is never read
    assert "acc = acc + x" in out and "tl.store(out0 + flat, acc)" in out
    assert "carried = carried + 1" in out                    # read by the next iteration
    assert "only = rows + k0" in out                         # a loop body may not become empty
    assert "step = step + 1" in out                          # read by the while condition
    assert drop_dead_locals("def broken(:\n") == "def broken(:\n"


ALIASES = '''@triton.jit
def k(in0, out0, N: tl.constexpr):
    rows = tl.arange(0, N)
    for k0 in range(0, 4):
        ks = k0 + rows
        i1 = rows
        i2 = ks
        tl.store(out0 + i1 * 4 + i2, tl.load(in0 + i2))
    moving = rows
    keep = moving
    moving = moving + 1
    tl.store(out0 + keep, moving)
    i3 = N
    tl.store(out0 + i3, rows)
'''


def test_aliases_are_inlined_only_where_the_copied_name_cannot_change():
    out = inline_aliases(ALIASES)
    ast.parse(out)
    assert "i1" not in out and "i2" not in out and "i3" not in out
    assert "tl.store(out0 + rows * 4 + ks, tl.load(in0 + ks))" in out
    assert "keep = moving" in out and "tl.store(out0 + keep, moving)" in out   # moving changes after
    assert "tl.store(out0 + N, rows)" in out


def test_collapse_blank_lines():
    assert collapse_blank_lines("a\n\n\n\n\nb\n\n\n") == "a\n\n\nb\n"


def test_literal_tensors_of_forward_become_buffers_outside_the_state_dict():
    task = load_task(TASKS / "pw_literal_constants.py")
    src = BuiltinGenerator().initial(task, 1)[0].source
    ns: dict = {"__name__": "kgen_candidate_test"}
    exec(compile(src, "<candidate>", "exec"), ns)
    ref: dict = {"__name__": "kgen_reference_test"}
    exec(compile(task.source, "<reference>", "exec"), ref)
    new = ns["ModelNew"]()
    assert new.state_dict().keys() == ref["Model"]().state_dict().keys()
    consts = dict(new.named_buffers())
    assert any(v.dtype.is_floating_point is False and v.tolist() == [1, 2, 3, 0, 7, 6] for v in consts.values())
