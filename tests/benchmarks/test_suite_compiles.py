"""Every kernel the builtin generator emits for benchmarks/suite (at its SMALL shapes) compiles for
sm_80 and sm_90, with the arguments of its real launches; kernels that spill are reported, not
failed. Skips when the checkout has no suite.

CI runs a stable sample (the first SAMPLE_PER_CATEGORY tasks of each category folder) to keep the
suite's time in budget; KGEN_SUITE_COMPILE=all runs every task. Each task is generated once and
each distinct kernel specialisation compiled once per target (kgen.core.verify.targets caches).
Findings go to <pytest basetemp>/suite_compile_report.jsonl, one line per kernel and target.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SUITE = Path(os.environ.get("KGEN_SUITE_DIR") or REPO / "benchmarks" / "suite")
TARGETS = ["sm_80", "sm_90"]
SAMPLE_PER_CATEGORY = 2


def _small_tasks() -> list[Path]:
    if not SUITE.is_dir():
        return []
    files = sorted(p for p in SUITE.rglob("*.py") if not p.name.startswith("_") and "SMALL" in p.read_text())
    if os.environ.get("KGEN_SUITE_COMPILE") == "all":
        return files
    picked: dict[Path, list[Path]] = {}
    for p in files:
        group = picked.setdefault(p.parent, [])
        if len(group) < SAMPLE_PER_CATEGORY:
            group.append(p)
    return [p for group in picked.values() for p in group]


TASKS = _small_tasks()


def small_source(path: Path) -> str:
    """The suite's convention (benchmarks/suite/README.md): the file with its SMALL sizes applied."""
    return path.read_text() + "\n\nglobals().update(SMALL)\n"


@pytest.mark.slow
@pytest.mark.skipif(not TASKS, reason=f"no benchmark suite with SMALL shapes under {SUITE}")
@pytest.mark.parametrize("path", TASKS, ids=[f"{p.parent.name}/{p.stem}" for p in TASKS])
def test_builtin_kernels_compile_for_sm80_and_sm90(path, runner_pool, tmp_path_factory):
    from kgen.core.generate.builtin import BuiltinGenerator
    from kgen.core.task import task_from_source
    from kgen.core.verify import verify

    task = task_from_source(small_source(path), path.stem)
    try:
        cands = BuiltinGenerator().initial(task, 1)
    except Exception as exc:  # noqa: BLE001 - an op the generator cannot lower is not a compile finding
        pytest.skip(f"the builtin generator does not lower this task: {exc}")
    if not cands:
        pytest.skip("the builtin generator produced no candidate")
    cand = cands[0]
    verdict = verify(task, cand.source, device="cpu", pool=runner_pool, profile=False, timeout_s=600,
                     allow_ops=cand.params.get("fallback_ops") or [], compile_for=TARGETS)
    root = tmp_path_factory.getbasetemp()
    root = root.parent if root.name.startswith("popen-gw") else root
    with open(root / "suite_compile_report.jsonl", "a") as fh:
        for rec in verdict.compiled:
            fh.write(json.dumps({"task": f"{path.parent.name}/{path.stem}", "status": verdict.status, **rec}) + "\n")
    failed = [f"{r['kernel']}@{r['target']}: {r['error'][:300]}" for r in verdict.compiled if not r.get("ok")]
    assert not failed, failed
    assert verdict.status != "compile_error", verdict.message
    spills = [f"{r['kernel']}@{r['target']} {r['n_spills']} B" for r in verdict.compiled if (r.get("n_spills") or 0) > 0]
    if spills:
        warnings.warn(f"{path.parent.name}/{path.stem}: kernels spill: {'; '.join(spills)}", stacklevel=2)
    if verdict.kernels_launched:
        assert {r["target"] for r in verdict.compiled} == set(TARGETS)
