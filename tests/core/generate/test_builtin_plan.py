"""The builtin generator's decisions, pinned: the fusion plan of every test task (groups, kinds,
ops, kernels, fallbacks) against expected_plans.json, and the generated source of representative
tasks against golden/. No verifier: this catches a change that is still correct but worse (softmax
split into three kernels) or simply different. After an intended change, regenerate with
`.venv/bin/python tests/core/generate/regen_golden.py` and review the diff."""

from __future__ import annotations

import difflib
import json

import pytest
from regen_golden import GOLDEN, GOLDEN_TASKS, PLANS, generated, plan_of, task_paths

EXPECTED = json.loads(PLANS.read_text())
REGEN = "regenerate with: .venv/bin/python tests/core/generate/regen_golden.py (and review the diff)"


def test_every_task_has_an_expected_plan():
    assert sorted(EXPECTED) == [p.stem for p in task_paths()], REGEN


@pytest.mark.parametrize("stem", [p.stem for p in task_paths()])
def test_fusion_plan_matches_expectation(stem):
    got, want = plan_of(stem), EXPECTED.get(stem)
    assert want is not None, REGEN
    assert got["kernels"] == want["kernels"], f"{stem}: {want['kernels']} kernels expected, got {got['kernels']}"
    assert got["fallback_ops"] == want["fallback_ops"]
    assert got["groups"] == want["groups"], f"{stem}: plan changed; {REGEN}"


@pytest.mark.parametrize("stem", GOLDEN_TASKS)
def test_generated_source_matches_golden(stem):
    want = (GOLDEN / f"{stem}.py").read_text()
    got = generated(stem).source
    if got != want:
        diff = "".join(difflib.unified_diff(want.splitlines(True), got.splitlines(True), "golden", "generated", n=2))
        pytest.fail(f"{stem}: generated source differs from golden/{stem}.py; {REGEN}\n{diff[:4000]}")
    compile(got, f"golden/{stem}.py", "exec")
