"""Warm runners: reuse, replacement after a hostile candidate, concurrency, environment scrub."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from kgen.core.errors import BadInput, TaskError
from kgen.core.task import load_task, task_from_source
from kgen.core.verify import RunnerPool, verify

CANDIDATES = Path(__file__).parent / "candidates"


@pytest.fixture(scope="module")
def task():
    return load_task(CANDIDATES / "task_relu_add.py")


def source(name: str) -> str:
    return (CANDIDATES / f"{name}.py").read_text()


def test_warm_runner_is_reused_across_candidates(task, runner_pool):
    assert verify(task, source("good"), pool=runner_pool).status == "correct"
    zygote = runner_pool.runner("cpu")
    pid = zygote.proc.pid
    assert verify(task, source("raises"), pool=runner_pool).status == "runtime_error"
    assert verify(task, source("good"), pool=runner_pool).status == "correct"
    assert runner_pool.runner("cpu").proc.pid == pid


def test_candidate_cannot_kill_its_runner(task):
    """The run's parent is outside its PID namespace (getppid() is 0, so the candidate's kill hits
    only its own process group) and outside its Landlock domain: the warm runner is out of reach."""
    from kgen.core import isolation

    if isolation.features().level != "full":
        pytest.skip(f"sandbox is {isolation.features().level} here")
    with RunnerPool(memory_mb=2048) as pool:
        assert verify(task, source("good"), pool=pool).status == "correct"
        first = pool.runner("cpu").proc.pid
        v = verify(task, source("kill_runner"), pool=pool, timeout_s=60)
        assert v.status in ("runtime_error", "crashed"), v.message
        after = verify(task, source("good"), pool=pool)
        assert after.status == "correct"
        assert pool.runner("cpu").proc.pid == first and pool.replaced == 0


def test_secrets_never_reach_the_candidate(task, monkeypatch):
    monkeypatch.setenv("KGEN_TEST_API_KEY", "hunter2-key")
    monkeypatch.setenv("db_password", "hunter2-password")
    monkeypatch.setenv("GITHUB_TOKEN", "hunter2-token")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "hunter2-aws")
    monkeypatch.setenv("TRITON_TEST_VISIBLE", "marker")  # allow-listed: proves the candidate reads its env
    with RunnerPool(memory_mb=2048) as pool:  # started now, from this (secret-laden) environment
        v = verify(task, source("secrets"), pool=pool)
    assert v.status == "correct", (v.message, v.log_tail)
    assert "hunter2" not in v.log_tail


def test_concurrent_verifications_on_cpu_slots(task, runner_pool):
    names = ["good", "memoise", "good", "raises"]
    results: dict[int, str] = {}

    def work(i: int) -> None:
        results[i] = verify(task, source(names[i]), device=f"cpu:{i}", pool=runner_pool).status

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(names))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert results == {0: "correct", 1: "incorrect", 2: "correct", 3: "runtime_error"}


def test_bad_device_and_tolerance_are_bad_input(task, runner_pool):
    for device in ("gpu", "cuda:x", "", "cpu:-1"):
        with pytest.raises(BadInput):
            verify(task, source("good"), device=device, pool=runner_pool)
    with pytest.raises(BadInput):
        verify(task, source("good"), atol=-1.0, pool=runner_pool)


def test_missing_gpu_is_bad_input(task, runner_pool):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(BadInput, match="no CUDA GPU"):
        verify(task, source("good"), device="cuda:0", pool=runner_pool)


def test_task_whose_model_fails_raises_task_error(runner_pool):
    bad = task_from_source(
        "import torch\nimport torch.nn as nn\n"
        "class Model(nn.Module):\n    def forward(self, x):\n        return x @ x\n"
        "def get_inputs():\n    return [torch.randn(3, 4)]\n"
        "def get_init_inputs():\n    return []\n")
    with pytest.raises(TaskError, match="Model failed on its own inputs"):
        verify(bad, source("good"), pool=runner_pool)


def test_tolerance_override_is_applied(task, runner_pool):
    v = verify(task, source("good"), pool=runner_pool, atol=1e-3, rtol=0.0)
    assert v.status == "correct" and (v.atol, v.rtol) == (1e-3, 0.0)


def test_reference_outputs_are_out_of_reach_and_poisoned_inputs_are_recomputed(task, runner_pool):
    v = verify(task, source("snoop_and_tamper"), pool=runner_pool)
    assert v.status == "incorrect", v.message
    after = verify(task, source("good"), pool=runner_pool)
    assert after.status == "correct", after.message
