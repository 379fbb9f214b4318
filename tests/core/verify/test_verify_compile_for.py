"""`compile_for`: every launch of a candidate is also compiled for real GPU targets, no GPU needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from kgen.core.errors import BadInput
from kgen.core.task import load_task
from kgen.core.verify import verify
from kgen.core.verify.targets import parse_targets
from kgen.core.verify.verdict import Verdict

CANDIDATES = Path(__file__).parent / "candidates"


@pytest.fixture(scope="module")
def task():
    return load_task(CANDIDATES / "task_relu_add.py")


def _verify(task, pool, name, **kw):
    return verify(task, (CANDIDATES / f"{name}.py").read_text(), pool=pool, timeout_s=240, **kw)


def test_parse_targets_canonical_and_errors():
    assert parse_targets("sm_80, SM90,sm_90a") == ["sm_80", "sm_90"]
    assert parse_targets(None) == [] and parse_targets("") == []
    for bad in ("gfx90a", "sm_8", "sm_80x", "cuda"):
        with pytest.raises(ValueError, match="compile target"):
            parse_targets(bad)


def test_bad_target_is_bad_input(task, runner_pool):
    with pytest.raises(BadInput, match="sm_xx"):
        _verify(task, runner_pool, "good", compile_for=["sm_xx"])


def test_honest_kernel_compiles_for_both_targets_with_figures(task, runner_pool):
    v = _verify(task, runner_pool, "good", compile_for="sm_80,sm_90")
    assert v.status == "correct", v.message
    assert v.compile_targets == ["sm_80", "sm_90"]
    # Three trials launch the same specialisation: compiled once per target, not once per launch.
    assert [(r["kernel"], r["target"]) for r in v.compiled] == [("relu_add_kernel", "sm_80"),
                                                                 ("relu_add_kernel", "sm_90")]
    for r in v.compiled:
        assert r["ok"] and r["error"] == ""
        assert 0 < r["n_regs"] <= 255 and r["n_spills"] == 0 and r["shared"] >= 0
        assert r["grid"] == [3] and r["num_warps"] == 4
    again = Verdict.from_dict(v.to_dict())
    assert again.compiled == v.compiled and again.compile_targets == v.compile_targets


def test_second_kernel_compiles_after_an_interpreted_nested_jit_call(task, runner_pool):
    v = _verify(task, runner_pool, "two_kernels_helper", compile_for=["sm_80"])
    assert v.status == "correct", v.message
    assert [(r["kernel"], r["ok"]) for r in v.compiled] == [("relu_kernel", True), ("add_kernel", True)]
    assert v.compiled[1]["grid"] == [2]


def test_kernel_that_fails_one_target_is_compile_error_naming_it(task, runner_pool):
    v = _verify(task, runner_pool, "fp8_sm90_only", compile_for=["sm_90", "sm_80"])
    assert v.status == "compile_error"
    assert "sm_80" in v.message and "relu_add_kernel" in v.message and "fp8e4nv" in v.message
    by_target = {r["target"]: r for r in v.compiled}
    assert by_target["sm_90"]["ok"] and not by_target["sm_80"]["ok"]
    # The same kernel, asked only for sm_90, is judged on its numbers (fp8 rounding: incorrect).
    v90 = _verify(task, runner_pool, "fp8_sm90_only", compile_for=["sm_90"])
    assert v90.status == "incorrect" and v90.compiled[0]["ok"]


@pytest.mark.slow
def test_spills_are_reported_and_rejected_on_request(task, runner_pool):
    v = _verify(task, runner_pool, "spills_sm80", compile_for=["sm_80"])
    assert v.status == "correct", v.message
    assert v.compiled[0]["n_spills"] > 0 and v.compiled[0]["num_warps"] == 1
    strict = _verify(task, runner_pool, "spills_sm80", compile_for=["sm_80"], reject_spills=True)
    assert strict.status == "compile_error" and "spills" in strict.message and "sm_80" in strict.message
    assert strict.trials_run == 0  # stopped at the first launch: no interpreter time spent


def test_old_verdicts_without_compile_fields_still_load():
    old = {"status": "correct", "message": "ok", "trials": [], "timing": None}
    v = Verdict.from_dict(old)
    assert v.compiled == [] and v.compile_targets == [] and v.reference_precision == ""
