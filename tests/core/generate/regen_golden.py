"""Expectations that pin what the builtin generator makes of its test tasks, and the one command
that rewrites them after an intended change:

    .venv/bin/python tests/core/generate/regen_golden.py

- `expected_plans.json`: for every task under tasks/, the fusion plan: each group's kind and ops
  in order, the number of kernels and the torch fallbacks (checked by test_builtin_plan.py);
- `golden/<task>.py`: the whole generated module of a few representative tasks, so a change to
  code generation shows up as a reviewable diff.

Review the diff (`git diff tests/core/generate`) before committing: a fusion split (more groups
or kernels) or a new fallback is a regression unless it is the point of the change.
"""

from __future__ import annotations

import json
import sys
from functools import lru_cache
from pathlib import Path

HERE = Path(__file__).resolve().parent
TASKS = HERE / "tasks"
PLANS = HERE / "expected_plans.json"
GOLDEN = HERE / "golden"
# one or more per group kind and template: pointwise, reduction (multi-stage), scan, matmul with
# epilogue, conv, pool, data movement (gather/cat), a fallback
GOLDEN_TASKS = ("pw_activations", "norm_softmax", "norm_layernorm", "red_var_std", "scan_cumsum",
                "mm_linear_gelu", "conv2d_bias_relu", "pool2d_max_avg", "pw_gather_cat_embed", "fb_sort")


def task_paths() -> list[Path]:
    return sorted(TASKS.glob("*.py"))


@lru_cache(maxsize=None)
def generated(stem: str):
    """The default-schedule candidate for a task (generated once per process)."""
    from kgen.core.generate.builtin import BuiltinGenerator
    from kgen.core.task import load_task

    return BuiltinGenerator().initial(load_task(TASKS / f"{stem}.py"), 1)[0]


def plan_of(stem: str) -> dict:
    params = generated(stem).params
    return {"kernels": params["kernels"], "fallback_ops": params["fallback_ops"],
            "groups": [[g["kind"], g["ops"]] for g in params["groups"]]}


def main() -> int:
    plans = {p.stem: plan_of(p.stem) for p in task_paths()}
    PLANS.write_text(json.dumps(plans, indent=1, sort_keys=True) + "\n")
    GOLDEN.mkdir(exist_ok=True)
    for old in GOLDEN.glob("*.py"):
        if old.stem not in GOLDEN_TASKS:
            old.unlink()
    for stem in GOLDEN_TASKS:
        (GOLDEN / f"{stem}.py").write_text(generated(stem).source)
    print(f"wrote {PLANS.relative_to(HERE.parents[2])} ({len(plans)} tasks) and "
          f"{len(GOLDEN_TASKS)} golden modules under {GOLDEN.relative_to(HERE.parents[2])}/")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parents[2]))
    sys.exit(main())
