"""benchmarks/gpu_check.sh, dry-run here (no GPU): it must stop at once, clearly, non-zero."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "gpu_check.sh"


def _run(args, env_extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KGEN_")}
    env.update(env_extra or {})
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=120, env=env)


def test_usage_error_without_outdir():
    done = _run([])
    assert done.returncode == 2 and "usage: bash benchmarks/gpu_check.sh OUTDIR" in done.stderr


def test_no_gpu_fails_fast_and_clearly(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the real check runs instead (benchmarks/README.md)")
    out = tmp_path / "out"
    started = time.monotonic()
    done = _run([str(out)], {"PYTHON": sys.executable})
    took = time.monotonic() - started
    assert done.returncode == 3, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("gpu_check: no CUDA GPU visible")
    assert took < 60  # stops before installing, testing or benchmarking anything
    log = (out / "gpu_check.log").read_text()
    assert "no CUDA GPU visible" in log
    assert not (out / "gpu-tests.log").exists() and not (out / "bench").exists()


def test_python_without_torch_is_refused(tmp_path):
    done = _run([str(tmp_path / "o")], {"PYTHON": "/usr/bin/python3" if Path("/usr/bin/python3").exists() else "python3"})
    probe = subprocess.run(["python3", "-c", "import torch"], capture_output=True)
    if probe.returncode == 0:
        pytest.skip("the system python3 has torch")
    assert done.returncode == 2 and "lacks torch, triton or numpy" in done.stderr.strip().splitlines()[-1]


def test_carried_wheels_are_pure_python():
    wheels = sorted((REPO / "benchmarks" / "wheels").glob("*.whl"))
    assert {w.name.split("-")[0] for w in wheels} >= {"typer", "rich", "pytest", "pluggy", "pygments"}
    assert all(w.name.endswith(("-py3-none-any.whl", "-py2.py3-none-any.whl")) for w in wheels)
