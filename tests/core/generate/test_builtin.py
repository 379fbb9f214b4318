"""The builtin generator end to end: every task under tasks/ is lowered, then checked by the core
verifier (sandboxed, 3 trials, fp32 1e-4). Tasks named fb_* exercise the declared torch fallback;
all others must come out pure (no torch compute op left in forward)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kgen.core.generate.builtin import BuiltinGenerator
from kgen.core.task import load_task

TASKS = sorted((Path(__file__).parent / "tasks").glob("*.py"))


@pytest.mark.slow
@pytest.mark.parametrize("path", TASKS, ids=[p.stem for p in TASKS])
def test_task_is_lowered_correct_and_pure(path, runner_pool):
    from kgen.core.verify import verify

    task = load_task(path)
    cand = BuiltinGenerator().initial(task, 1)[0]
    # params and notes travel as JSON and pickles: plain data only, no torch objects
    assert json.loads(json.dumps(cand.params)) == cand.params
    assert type(cand.notes) is str and type(cand.source) is str
    verdict = verify(task, cand.source, device="cpu", pool=runner_pool, profile=False,
                     allow_ops=cand.params["fallback_ops"])
    assert verdict.status == "correct", f"{verdict.message}\n{verdict.log_tail}"
    assert verdict.kernels_launched >= 1
    if path.stem.startswith("fb_"):
        assert cand.params["fallback_ops"], "a fallback task must declare its torch ops"
        assert not verdict.pure
        assert set(verdict.torch_ops) <= set(cand.params["fallback_ops"])
    else:
        assert cand.params["fallback_ops"] == []
        assert verdict.pure, verdict.torch_ops
        assert not verdict.static_torch_calls, verdict.static_torch_calls


def test_at_least_thirty_tasks_across_categories():
    prefixes = {p.stem.split("_")[0] for p in TASKS}
    assert len(TASKS) >= 30
    assert {"pw", "red", "norm", "scan", "mm", "conv1d", "conv2d", "pool2d", "fb"} <= prefixes
