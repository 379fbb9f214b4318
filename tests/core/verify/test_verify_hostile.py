"""Hostile candidates that try to look pure or to blind the harness: host escapes (NumPy,
pure Python), instrumentation tampering, banned imports, inputs tuned to known seeds, and the
owner's environment. Each is a real candidate file run through verify()."""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kgen.core.task import load_task, task_from_source
from kgen.core.verify import verify

CANDIDATES = Path(__file__).parent / "candidates"
FIXED_SEEDS = [1000, 8919]


@pytest.fixture(scope="module")
def task():
    return load_task(CANDIDATES / "task_relu_add.py")


def check(task, pool, name: str, **kw):
    kw.setdefault("timeout_s", 60)
    return verify(task, (CANDIDATES / f"{name}.py").read_text(), pool=pool, **kw)


@pytest.mark.parametrize("name, allow, escapes", [
    ("numpy_math", ("import:numpy",), ["host:numpy", "host:tensor"]),
    ("numpy_unimported", (), ["host:numpy"]),
    ("python_tolist", (), ["host:tensor", "host:tolist"]),
    ("python_items", (), ["host:item", "host:tensor"]),
    ("thread_compute", (), ["host:thread"]),
    ("fork_compute", (), ["host:process"]),
    ("ctypes_pointer", (), ["host:data_ptr"]),
])
def test_math_escaping_to_the_host_is_rejected(task, runner_pool, name, allow, escapes):
    v = check(task, runner_pool, name, allow_ops=allow)
    assert v.status == "rejected", v.message
    assert v.kernels_launched == 3  # the decoy kernel did launch: launches alone prove nothing
    assert "computation escaped the op recorder" in v.message
    assert v.torch_ops == escapes and not v.pure
    for escape in escapes:
        assert escape in v.message


def test_torch_inside_an_interpreted_kernel_body_is_recorded(task, runner_pool):
    v = check(task, runner_pool, "torch_in_kernel_body")
    assert v.status == "rejected", v.message
    assert "aten.relu.default" in v.torch_ops and "aten.add.Tensor" in v.torch_ops


def test_a_few_scalar_reads_and_a_small_constant_table_are_fine(task, runner_pool):
    header = (CANDIDATES / "good.py").read_text().split("class ModelNew")[0]
    src = header + (
        "class ModelNew(nn.Module):\n"
        "    def forward(self, x, y):\n"
        "        n = int(torch.tensor(x.numel()))\n"
        "        table = torch.tensor([0.0, 1.0, 2.0, 3.0])\n"
        "        assert float(table[1]) == 1.0 and n == x.numel()\n"
        "        return relu_add(x, y)\n")
    v = verify(task, src, pool=runner_pool, timeout_s=60)
    assert v.status == "correct", v.message
    assert v.pure


@pytest.mark.parametrize("name, what", [
    ("tamper_dispatch_pop", "_pop_torch_dispatch_stack during forward"),
    ("tamper_dispatch_guard", "no longer reaches the op recorder"),
    ("tamper_launch_hook", "JITFunction.run (the Triton launch hook) was replaced"),
    ("tamper_harness_module", "_flatten_output was replaced"),
    ("tamper_mode_exit", "the op recorder was exited during forward"),
])
def test_tampering_with_the_instrumentation_is_rejected(task, runner_pool, name, what):
    v = check(task, runner_pool, name)
    assert v.status == "rejected", v.message
    assert v.message.startswith("candidate tampered with the harness instrumentation")
    assert what in v.message


def test_patched_builtins_are_tampering_and_never_reach_the_comparison(task, runner_pool):
    v = check(task, runner_pool, "patch_builtins")
    assert v.status == "rejected", v.message
    assert "builtins.abs was replaced" in v.message
    # Even unnoticed, the patch lives in the candidate's process; the comparison runs here.
    import builtins
    import math

    assert builtins.abs(-1.0) == 1.0 and not math.isclose(0.0, 1.0)


def test_escape_library_import_is_rejected_unless_allowed(task, runner_pool):
    v = check(task, runner_pool, "patch_compare")
    assert v.status == "rejected"
    assert "imports numpy" in v.message and "import:numpy" in v.message
    assert v.trials_run == 0  # screened before anything ran


@pytest.mark.parametrize("line", [
    "import ctypes", "from subprocess import run", "import multiprocessing.pool",
    "scipy = __import__('scipy')", "import importlib\nnp = importlib.import_module('numpy')",
])
def test_each_escape_library_is_named(task, runner_pool, line):
    src = line + "\n" + (CANDIDATES / "good.py").read_text()
    v = verify(task, src, pool=runner_pool, timeout_s=60)
    assert v.status == "rejected", v.message
    assert "candidate imports" in v.message


@pytest.mark.parametrize("snippet, name", [
    ("from torch.utils._python_dispatch import _get_current_dispatch_mode_stack", "_python_dispatch"),
    ("import sys\nframe = sys._getframe(0)", "_getframe"),
    ("import torch\nf = getattr(torch._C, '_pop_torch_dispatch_stack')", "_pop_torch_dispatch_stack"),
    ("import kgen.core.verify.child", "kgen"),
])
def test_reaching_for_harness_internals_is_rejected_statically(task, runner_pool, snippet, name):
    src = snippet + "\n" + (CANDIDATES / "good.py").read_text()
    v = verify(task, src, pool=runner_pool, timeout_s=60)
    assert v.status == "rejected", v.message
    assert "reaches into the harness instrumentation" in v.message and name in v.message


@pytest.mark.parametrize("snippet", [
    "import torch\n_compiled = torch.compile(lambda a, b: torch.relu(a) + b)",
    "from torch import compile as c",
    "import torch._inductor.config",
])
def test_torch_compiler_is_rejected_statically(task, runner_pool, snippet):
    src = (CANDIDATES / "good.py").read_text() + "\n" + snippet + "\n"
    v = verify(task, src, pool=runner_pool, timeout_s=60)
    assert v.status == "rejected", v.message
    assert "uses torch's compiler" in v.message


def test_task_that_imports_numpy_lets_its_candidates_import_it(runner_pool):
    source = (CANDIDATES / "task_relu_add.py").read_text().replace("import torch\n", "import numpy as np\nimport torch\n", 1)
    numpy_task = task_from_source(source)
    v = verify(numpy_task, "import numpy as np\n" + (CANDIDATES / "good.py").read_text(), pool=runner_pool,
               timeout_s=60)
    assert v.status == "correct", v.message


def test_every_verification_has_a_fresh_seed(task, runner_pool):
    first = check(task, runner_pool, "good")
    second = check(task, runner_pool, "good")
    for v in (first, second):
        assert v.status == "correct", v.message
        assert [t.seed for t in v.trials][:2] == FIXED_SEEDS and v.trials_run == 3
    assert first.trials[2].seed not in FIXED_SEEDS
    assert first.trials[2].seed != second.trials[2].seed


def test_candidate_tuned_to_the_known_seeds_fails_the_fresh_one(task, runner_pool):
    v = check(task, runner_pool, "precomputed")
    assert v.status == "incorrect", v.message
    assert [t.ok for t in v.trials] == [True, True, False]
    assert v.pure  # it really is "pure": only the fresh trial exposes it


def test_more_trials_mean_more_fixed_seeds_and_still_one_fresh(task, runner_pool):
    v = check(task, runner_pool, "good", trials=4)
    assert v.status == "correct", v.message
    seeds = [t.seed for t in v.trials]
    assert seeds[:3] == FIXED_SEEDS + [1000 + 2 * 7919] and len(set(seeds)) == 4


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux only")
def test_the_pool_owner_becomes_non_dumpable(task, runner_pool):
    runner_pool.runner("cpu")
    PR_GET_DUMPABLE = 3
    assert ctypes.CDLL(None).prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0


_OWNER_SCRIPT = """
import ctypes, json, sys
from pathlib import Path
from kgen.core.task import load_task
from kgen.core.verify import RunnerPool, verify

c = Path(sys.argv[1])
task, src = load_task(c / "task_relu_add.py"), (c / "parent_environ.py").read_text()
out = {}
with RunnerPool(memory_mb=2048) as pool:
    out["protected"] = verify(task, src, pool=pool, timeout_s=60).to_dict()
    ctypes.CDLL(None).prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE back to 1: the control run
    out["control"] = verify(task, src, pool=pool, timeout_s=60).to_dict()
print(json.dumps(out))
"""


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every process's environ; "
                    "the protection needs the node to run as an unprivileged user")
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux only")
def test_candidate_cannot_read_the_owner_environment(tmp_path):
    env = {**os.environ, "KGEN_TEST_API_KEY": "hunter2-key", "KGEN_HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", _OWNER_SCRIPT, str(CANDIDATES)], env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["protected"]["status"] == "correct", out["protected"]["log_tail"]
    assert "environ unreadable" in out["protected"]["log_tail"]
    # Without the flag the same candidate does find the secret: the check above can fail.
    assert out["control"]["status"] == "incorrect" and "LEAKED" in out["control"]["log_tail"]
