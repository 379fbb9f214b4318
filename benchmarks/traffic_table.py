"""Traffic of the builtin generator's default kernels on every generator test task.

For each task in tests/core/generate/tasks: generate the default-schedule candidate, verify it
on the interpreter, and record unique/minimum, raw/minimum, launches and the roofline model's
estimate. Geometric means are given over all tasks and over the memory-bound ones (no matmul or
convolution in the reference, whose tiles re-read operands by design); for those the operand
re-read factor (raw / unique: how often each byte a kernel touches is loaded again) is given
instead. Results: benchmarks/results/traffic_table.{json,md}.

    .venv/bin/python benchmarks/traffic_table.py [task ...]
    .venv/bin/python benchmarks/traffic_table.py --suite benchmarks/suite --small --out traffic_suite_after

With --suite, the tasks are those `kgen bench` finds in that folder (same discovery, same SMALL
variants), named category/name; positional arguments then filter them (shell patterns).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TASKS_DIR = ROOT / "tests" / "core" / "generate" / "tasks"
RESULTS = ROOT / "benchmarks" / "results"


def geomean(xs: list[float]) -> float | None:
    xs = [x for x in xs if x and x > 0]
    return round(math.exp(sum(math.log(x) for x in xs) / len(xs)), 4) if xs else None


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("tasks", nargs="*")
    ap.add_argument("--out", default="traffic_table")
    ap.add_argument("--suite", help="a bench folder (e.g. benchmarks/suite) instead of the generator test tasks")
    ap.add_argument("--small", action="store_true", help="with --suite: the tasks' SMALL variants (as kgen bench --small)")
    args = ap.parse_args()
    os.environ.setdefault("TRITON_INTERPRET", "1")
    sys.path.insert(0, str(ROOT))
    from kgen.core.generate.builtin import BuiltinGenerator
    from kgen.core.generate.builtin import schedule as sched
    from kgen.core.task import load_task, task_from_source
    from kgen.core.verify import verify

    if args.suite:
        from kgen.core.bench.discovery import discover

        found = discover([args.suite], small=args.small, only=args.tasks or None)
        items = [(bt.key, lambda bt=bt: task_from_source(bt.source, bt.name, path=bt.path)) for bt in found]
    else:
        names = args.tasks or sorted(p.stem for p in TASKS_DIR.glob("*.py"))
        items = [(n, lambda n=n: load_task(TASKS_DIR / f"{n}.py")) for n in names]
    rows = []
    for name, make in items:
        task = make()
        t0 = time.perf_counter()
        try:
            cand = BuiltinGenerator().generate(task, sched.DEFAULT)
        except Exception as exc:  # noqa: BLE001 - a task the generator cannot lower is a row too
            rows.append({"task": name, "status": f"generator: {type(exc).__name__}"})
            continue
        v = verify(task, cand.source, allow_ops=tuple(cand.params.get("fallback_ops") or ()), timeout_s=600)
        tr, cost = v.traffic or {}, v.cost or {}
        kinds = sorted({g["kind"] for g in cand.params.get("groups", [])})
        rows.append({"task": name, "status": v.status, "kinds": kinds,
                     # memory-bound: the reference has no matmul/conv flops (torch's flop counter)
                     "memory_bound": not cost.get("flops_reference"), "flops_reference": cost.get("flops_reference"),
                     "minimum": tr.get("minimum"), "raw": tr.get("raw"), "unique": tr.get("unique"),
                     "unique_ratio": tr.get("unique_ratio"), "raw_ratio": tr.get("raw_ratio"),
                     "reread": round(tr["raw"] / tr["unique"], 4) if tr.get("unique") else None,
                     "launches": tr.get("launches"), "est_us": cost.get("est_us"), "bound": cost.get("bound"),
                     "wall_s": round(time.perf_counter() - t0, 1)})
        print(json.dumps(rows[-1]), flush=True)
    ok = [r for r in rows if r.get("unique_ratio")]
    mem = [r for r in ok if r["memory_bound"]]
    dense = [r for r in ok if not r["memory_bound"]]
    summary = {"tasks": len(rows), "measured": len(ok),
               "geomean_unique_ratio": geomean([r["unique_ratio"] for r in ok]),
               "geomean_raw_ratio": geomean([r["raw_ratio"] for r in ok]),
               "geomean_unique_ratio_memory_bound": geomean([r["unique_ratio"] for r in mem]),
               "geomean_raw_ratio_memory_bound": geomean([r["raw_ratio"] for r in mem]),
               "geomean_reread_matmul_conv": geomean([r["reread"] for r in dense]),
               "launches_total": sum(r.get("launches") or 0 for r in rows),
               "rows": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(summary, indent=1) + "\n")
    lines = ["# Traffic of the builtin generator's default kernels (Triton interpreter, one forward)", "",
             "unique/min and raw/min: bytes moved vs the minimum (inputs and parameters read once, outputs "
             "written once); est_us: roofline-h100 model, not a measurement.", "",
             "| task | status | group kinds | launches | unique/min | raw/min | re-read | est_us |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['task']} | {r['status']} | {', '.join(r.get('kinds') or [])} | {r.get('launches', '-')} | "
                     f"{r.get('unique_ratio', '-')} | {r.get('raw_ratio', '-')} | {r.get('reread', '-')} | {r.get('est_us', '-')} |")
    lines += ["", f"Geometric means over {len(ok)} measured tasks: unique/min {summary['geomean_unique_ratio']}, "
              f"raw/min {summary['geomean_raw_ratio']}; over the {len(mem)} memory-bound ones (no matmul/conv): "
              f"unique/min {summary['geomean_unique_ratio_memory_bound']}, raw/min {summary['geomean_raw_ratio_memory_bound']}; "
              f"over the {len(dense)} with matmul/conv: operand re-read (raw/unique) {summary['geomean_reread_matmul_conv']}. "
              f"Launches in all: {summary['launches_total']}."]
    (RESULTS / f"{args.out}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[-1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
