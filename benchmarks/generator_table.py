"""What the builtin generator makes of every generator test task: verdict status, purity, kernels
launched and torch fallback ops, as one table. Run it before and after a change to the generator
and compare: a change must keep every verdict, launch no more kernels and add no fallback.

    python benchmarks/generator_table.py --out benchmarks/results/generator_before
    # writes <out>.json and <out>.md
    python benchmarks/generator_table.py --compare A.json B.json   # markdown before/after table

Runs the real sandboxed verifier (3 trials, CPU, Triton interpreter): slow, minutes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TASKS = ROOT / "tests" / "core" / "generate" / "tasks"


def measure(paths: list[Path]) -> list[dict]:
    from kgen.core.generate.builtin import BuiltinGenerator
    from kgen.core.task import load_task
    from kgen.core.verify import RunnerPool, verify

    pool = RunnerPool(memory_mb=2048)
    rows = []
    try:
        for path in paths:
            t0 = time.perf_counter()
            task = load_task(path)
            cand = BuiltinGenerator().initial(task, 1)[0]
            verdict = verify(task, cand.source, device="cpu", pool=pool, profile=False,
                             allow_ops=cand.params["fallback_ops"])
            row = {"task": path.stem, "status": verdict.status, "pure": verdict.pure,
                   "kernels_launched": verdict.kernels_launched, "kernels_emitted": cand.params["kernels"],
                   "fallback_ops": sorted(cand.params["fallback_ops"]), "torch_ops": sorted(verdict.torch_ops),
                   "wall_s": round(time.perf_counter() - t0, 1)}
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    finally:
        pool.close()
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| task | status | pure | launched | emitted | fallback ops |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['task']} | {r['status']} | {r['pure']} | {r['kernels_launched']} | "
                     f"{r['kernels_emitted']} | {', '.join(r['fallback_ops']) or '-'} |")
    return "\n".join(lines) + "\n"


def compare(before: list[dict], after: list[dict]) -> tuple[str, bool]:
    """A before/after markdown table and whether `after` is the same or better on every task."""
    b = {r["task"]: r for r in before}
    ok = True
    lines = ["| task | status before → after | launched before → after | fallback before → after | ok |",
             "|---|---|---|---|---|"]
    for r in after:
        old = b.get(r["task"])
        if old is None:
            lines.append(f"| {r['task']} | (new) → {r['status']} | {r['kernels_launched']} | "
                         f"{', '.join(r['fallback_ops']) or '-'} | new |")
            continue
        good = (r["status"] == old["status"] and r["pure"] == old["pure"]
                and r["kernels_launched"] <= old["kernels_launched"]
                and set(r["fallback_ops"]) <= set(old["fallback_ops"]))
        ok = ok and good
        lines.append(f"| {r['task']} | {old['status']} → {r['status']} | {old['kernels_launched']} → "
                     f"{r['kernels_launched']} | {', '.join(old['fallback_ops']) or '-'} → "
                     f"{', '.join(r['fallback_ops']) or '-'} | {'yes' if good else 'NO'} |")
    return "\n".join(lines) + "\n", ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="write <out>.json and <out>.md")
    ap.add_argument("-k", default="", help="only tasks whose name contains this")
    ap.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"))
    args = ap.parse_args()
    if args.compare:
        before, after = (json.loads(Path(p).read_text())["rows"] for p in args.compare)
        table, ok = compare(before, after)
        print(table)
        return 0 if ok else 1
    paths = [p for p in sorted(TASKS.glob("*.py")) if args.k in p.stem]
    rows = measure(paths)
    if args.out:
        Path(args.out + ".json").write_text(json.dumps({"rows": rows}, indent=1) + "\n")
        Path(args.out + ".md").write_text(markdown(rows))
    else:
        print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
