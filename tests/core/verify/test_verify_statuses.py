"""Every verdict status, reached by real candidates (honest, broken and hostile) through verify()."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from kgen.core.task import load_task
from kgen.core.verify import STATUSES, verify

CANDIDATES = Path(__file__).parent / "candidates"


@pytest.fixture(scope="module")
def task():
    return load_task(CANDIDATES / "task_relu_add.py")


def check(task, pool, name: str, **kw):
    source = (CANDIDATES / f"{name}.py").read_text()
    kw.setdefault("timeout_s", 60)
    v = verify(task, source, pool=pool, **kw)
    assert v.status in STATUSES
    assert v.task_id == task.id
    return v


def test_honest_candidate_is_correct_and_pure(task, runner_pool):
    v = check(task, runner_pool, "good")
    assert v.status == "correct", v.message
    assert v.pure and v.torch_ops == []
    assert v.kernels_launched == 3 and v.trials_run == 3
    assert len({t.seed for t in v.trials}) == 3 and all(t.ok for t in v.trials)
    assert v.atol == 1e-4 and v.rtol == 1e-4
    assert v.timing is not None and v.timing.kind == "interpreter"
    assert v.timing.speedup_eager is None and v.timing.speedup_compile is None
    assert v.peak_mem_bytes > 0 and v.wall_s > 0
    assert v.to_dict()["status"] == "correct"


def test_torch_only_candidate_is_rejected(task, runner_pool):
    v = check(task, runner_pool, "torch_only")
    assert v.status == "rejected"
    assert "no Triton kernel launched" in v.message
    assert "aten.relu.default" in v.torch_ops and not v.pure


def test_copy_kernel_around_torch_math_is_rejected(task, runner_pool):
    v = check(task, runner_pool, "copy_around_torch")
    assert v.status == "rejected"
    assert v.kernels_launched == 3
    assert "aten.relu.default" in v.message and "aten.add.Tensor" in v.message
    assert "torch.relu" in v.static_torch_calls


def test_declared_fallback_is_correct_but_not_pure(task, runner_pool):
    rejected = check(task, runner_pool, "partial_fallback")
    assert rejected.status == "rejected" and "aten.add.Tensor" in rejected.message
    allowed = check(task, runner_pool, "partial_fallback", allow_ops=("aten.add",))
    assert allowed.status == "correct", allowed.message
    assert allowed.torch_ops == ["aten.add.Tensor"] and allowed.pure is False


def test_memoising_candidate_fails_on_fresh_inputs(task, runner_pool):
    v = check(task, runner_pool, "memoise")
    assert v.status == "incorrect"
    assert v.trials[0].ok and not v.trials[1].ok and not v.trials[2].ok


def test_broadcastable_wrong_shape_is_incorrect(task, runner_pool):
    v = check(task, runner_pool, "wrong_shape")
    assert v.status == "incorrect"
    assert "shape (1, 300), expected (300,)" in v.message


def test_wrong_dtype_is_incorrect(task, runner_pool):
    v = check(task, runner_pool, "wrong_dtype")
    assert v.status == "incorrect"
    assert "dtype float64, expected float32" in v.message


def test_patching_comparison_functions_changes_nothing(task, runner_pool):
    # Without its Tensor.__eq__ patch (a torch.Tensor attribute: tampering, see below), the
    # candidate only patches module-level comparison functions, which the caller never uses.
    source = (CANDIDATES / "patch_compare.py").read_text()
    source = source.replace("torch.Tensor.__eq__ = ", "_unused = ")
    v = verify(task, source, pool=runner_pool, timeout_s=60, allow_ops=("import:numpy",))
    assert v.status == "incorrect"
    assert "outside atol" in v.message
    assert all(t.max_abs_err and t.max_abs_err > 0.1 for t in v.trials)


def test_patching_tensor_methods_is_tampering(task, runner_pool):
    v = check(task, runner_pool, "patch_compare", allow_ops=("import:numpy",))
    assert v.status == "rejected"
    assert "torch.Tensor.__eq__ was replaced" in v.message


def test_writing_into_an_input_is_incorrect(task, runner_pool):
    v = check(task, runner_pool, "mutate_input")
    assert v.status == "incorrect"
    assert "input 0 was modified" in v.message


def test_nan_output_is_incorrect(task, runner_pool):
    v = check(task, runner_pool, "nan_output")
    assert v.status == "incorrect"
    assert "NaN positions differ" in v.message


def test_hang_is_a_timeout_and_the_pool_survives(task, runner_pool):
    v = check(task, runner_pool, "hang", timeout_s=4)
    assert v.status == "timeout"
    assert "4 s" in v.message
    assert check(task, runner_pool, "good").status == "correct"


def test_segfault_is_crashed_and_the_pool_survives(task, runner_pool):
    v = check(task, runner_pool, "segfault")
    assert v.status == "crashed"
    assert signal.Signals.SIGSEGV.name in v.message
    assert check(task, runner_pool, "good").status == "correct"


def test_syntax_error_is_compile_error(task, runner_pool):
    v = check(task, runner_pool, "syntax_error")
    assert v.status == "compile_error"
    assert "line 3" in v.message


def test_import_error_is_compile_error(task, runner_pool):
    v = check(task, runner_pool, "import_error")
    assert v.status == "compile_error"
    assert "triton_language_that_does_not_exist" in v.message


def test_exception_in_forward_is_runtime_error(task, runner_pool):
    v = check(task, runner_pool, "raises")
    assert v.status == "runtime_error"
    assert "boom from the candidate" in v.message
    assert "boom from the candidate" in v.log_tail


def test_memory_limit_stops_a_greedy_candidate(task, runner_pool):
    v = check(task, runner_pool, "memory_hog")
    assert v.status == "runtime_error"
    assert "memory" in v.message.lower()


HEADER = (CANDIDATES / "good.py").read_text().split("class ModelNew")[0]


@pytest.mark.parametrize("body, expected", [
    ("return float(relu_add(x, y).sum())", "expected a tensor or a tuple/list of tensors"),
    ("return {'out': relu_add(x, y)}", "expected a tensor or a tuple/list of tensors"),
    ("class Sneaky(torch.Tensor):\n            pass\n        return relu_add(x, y).as_subclass(Sneaky)",
     "not a plain torch.Tensor"),
])
def test_non_tensor_outputs_are_incorrect(task, runner_pool, body, expected):
    src = HEADER + f"class ModelNew(nn.Module):\n    def forward(self, x, y):\n        {body}\n"
    v = verify(task, src, pool=runner_pool, timeout_s=60)
    assert v.status == "incorrect", v.message
    assert expected in v.message


def test_silent_exit_is_crashed(task, runner_pool):
    src = HEADER + "import os\n\nclass ModelNew(nn.Module):\n    def forward(self, x, y):\n        os._exit(0)\n"
    v = verify(task, src, pool=runner_pool, timeout_s=60)
    assert v.status == "crashed"
    assert "exited with code 0 without a result" in v.message


def test_missing_model_new_is_compile_error(task, runner_pool):
    v = verify(task, HEADER, pool=runner_pool, timeout_s=60)
    assert v.status == "compile_error" and "ModelNew" in v.message


def test_forged_result_file_cannot_break_the_verifier(task, runner_pool):
    src = HEADER + (
        "import json, os\n\nclass ModelNew(nn.Module):\n    def forward(self, x, y):\n"
        "        with open('result.json', 'w') as fh:\n"
        "            json.dump({'ok': True, 'trials': [{'seed': 1000, 'launches': 'many', 'ops': 7}]}, fh)\n"
        "        os._exit(0)\n")
    v = verify(task, src, pool=runner_pool, timeout_s=60)
    assert v.status == "crashed" and "malformed result" in v.message


def test_a_result_with_the_right_nonce_but_bad_fields_is_the_candidates_fault(task, runner_pool, monkeypatch):
    """Fields are validated before they are read: a well-formed-looking forgery is `crashed`."""
    from kgen.core.verify import harness

    forged = {"ok": True, "trials": [{"seed": 1000, "launches": "many", "ops": 7}]}
    real = harness._read_result
    monkeypatch.setattr(harness, "_read_result",
                        lambda workdir, nonce=None: dict(forged) if nonce else real(workdir, nonce))
    v = verify(task, (CANDIDATES / "good.py").read_text(), pool=runner_pool, timeout_s=60)
    assert v.status == "crashed" and "malformed result" in v.message and "launch count" in v.message


def test_a_bug_in_the_verifier_is_a_harness_error_not_a_crashed_candidate(task, runner_pool, monkeypatch):
    from kgen.core.verify import compare, harness

    def broken(*args, **kwargs):
        raise TypeError("compare_trial() got an unexpected keyword argument")

    monkeypatch.setattr(compare, "compare_trial", broken)
    with pytest.raises(harness.HarnessError) as info:
        verify(task, (CANDIDATES / "good.py").read_text(), pool=runner_pool, timeout_s=60)
    assert "kgen bug" in info.value.message and "TypeError" in info.value.message


def test_timing_is_measured_by_the_runner_and_a_forged_clock_is_rejected(task, runner_pool):
    honest = check(task, runner_pool, "good")
    assert honest.status == "correct" and honest.timing is not None
    assert honest.timing.kind == "interpreter" and honest.timing.repeats == 3 and honest.timing.candidate_ms > 0
    forged = check(task, runner_pool, "forge_timing")
    assert forged.status == "rejected", forged.message
    assert "timing disagrees" in forged.message and "measured outside the candidate's process" in forged.message
    assert forged.timing is None
