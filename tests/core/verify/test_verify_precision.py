"""fp32 on CUDA means fp32: references run with TF32 off, baselines with the user's settings.
Here (CPU) the switch itself and the verdict's record of it; tests/gpu has the effect on a GPU."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from kgen.core.task import load_task
from kgen.core.verify import verify

CANDIDATES = Path(__file__).parent / "candidates"


def test_strict_fp32_switches_tf32_off_and_restores_the_users_settings():
    # In a fresh interpreter: these are process-wide torch flags.
    code = """
import torch
from kgen.core.verify.child import math_settings, restore_math, strict_fp32
torch.backends.cuda.matmul.allow_tf32 = True
torch.backends.cudnn.allow_tf32 = True
torch.set_float32_matmul_precision("high")
before = strict_fp32()
assert before == {"cuda_matmul_allow_tf32": True, "cudnn_allow_tf32": True, "float32_matmul_precision": "high"}, before
assert math_settings() == {"cuda_matmul_allow_tf32": False, "cudnn_allow_tf32": False,
                           "float32_matmul_precision": "highest"}, math_settings()
restore_math(before)
assert math_settings() == before
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_cpu_verdict_says_how_the_reference_was_computed(runner_pool):
    task = load_task(CANDIDATES / "task_relu_add.py")
    v = verify(task, (CANDIDATES / "good.py").read_text(), pool=runner_pool, timeout_s=120)
    assert v.status == "correct"
    assert v.reference_precision == "default"      # no TF32 on a CPU
    assert v.baseline_settings == {}                # no GPU baselines timed here
