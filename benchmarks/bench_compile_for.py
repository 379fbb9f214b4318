"""What `--compile-for sm_80,sm_90` adds to a verification (CPU, Triton interpreter).

Measured in one process with one warm runner pool, on builtin-generator candidates for a spread
of the generator's test tasks (tests/core/generate/tasks): each task is verified without and with
compile_for (order alternated per repeat), median wall seconds per task, and the ratio
with/without. Also reports the distinct kernels compiled, and which spill.

Results: benchmarks/results/compile_for.json and compile_for.md.
Run: python benchmarks/bench_compile_for.py [-n N] [--tasks a,b,...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TRITON_INTERPRET", "1")

from kgen.core.generate.builtin import BuiltinGenerator  # noqa: E402
from kgen.core.task import load_task  # noqa: E402
from kgen.core.verify import RunnerPool, verify  # noqa: E402

TASKS = ["pw_math_unary", "norm_softmax", "mm_plain", "red_sum_dims", "conv2d_bias_relu", "scan_cumsum"]
TARGETS = ["sm_80", "sm_90"]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=2)
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args()
    pool = RunnerPool(memory_mb=4096)
    rows = []
    try:
        for name in args.tasks.split(","):
            task = load_task(ROOT / "tests" / "core" / "generate" / "tasks" / f"{name}.py")
            cand = BuiltinGenerator().initial(task, 1)[0]
            kw = dict(pool=pool, profile=False, allow_ops=cand.params["fallback_ops"], timeout_s=600)
            verify(task, cand.source, **kw)  # warm the reference cache and the runner
            plain, compiled, verdict = [], [], None
            for i in range(args.n):
                for with_targets in ((False, True) if i % 2 == 0 else (True, False)):
                    t0 = time.perf_counter()
                    v = verify(task, cand.source, compile_for=TARGETS if with_targets else (), **kw)
                    (compiled if with_targets else plain).append(time.perf_counter() - t0)
                    if with_targets:
                        verdict = v
            rows.append({"task": name, "status": verdict.status, "plain_s": statistics.median(plain),
                         "compile_for_s": statistics.median(compiled),
                         "ratio": statistics.median(compiled) / statistics.median(plain),
                         "kernels": len(verdict.compiled) // len(TARGETS),
                         "spilling": [f"{r['kernel']}@{r['target']}" for r in verdict.compiled
                                      if (r.get("n_spills") or 0) > 0],
                         "failed": [f"{r['kernel']}@{r['target']}" for r in verdict.compiled if not r.get("ok")]})
            print(json.dumps(rows[-1]), flush=True)
    finally:
        pool.close()
    ratio = statistics.median(r["ratio"] for r in rows)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    doc = {"benchmark": "compile_for", "targets": TARGETS, "repeats": args.n, "machine": platform.machine(),
           "cpus": os.cpu_count(), "python": platform.python_version(), "median_ratio": ratio, "tasks": rows}
    (out / "compile_for.json").write_text(json.dumps(doc, indent=2) + "\n")
    lines = ["# verify --compile-for sm_80,sm_90 vs plain verify (CPU interpreter)", "",
             f"Median ratio with/without: **{ratio:.2f}x** ({args.n} repeats per task, one warm pool).", "",
             "| task | kernels | plain s | with compile_for s | ratio | spilling | failed |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['task']} | {r['kernels']} | {r['plain_s']:.2f} | {r['compile_for_s']:.2f} | "
                     f"{r['ratio']:.2f}x | {', '.join(r['spilling']) or '-'} | {', '.join(r['failed']) or '-'} |")
    (out / "compile_for.md").write_text("\n".join(lines) + "\n")
    print(f"median ratio {ratio:.2f}x; wrote {out / 'compile_for.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
