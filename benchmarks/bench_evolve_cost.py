"""Evolve on CPU with the roofline model as fitness: round 1 vs the best of later rounds.

Runs real evolve jobs (builtin generator, sandboxed interpreter verification, early stop off) on
generator test tasks and writes, per task, the model cost (est_us, roofline-h100) of the best
correct candidate of round 1 and of the whole job, the round that found it, and the traffic
ratios of both. Results: benchmarks/results/evolve_cost.{json,md}.

    .venv/bin/python benchmarks/bench_evolve_cost.py [--rounds 3] [--parallel 3] [task ...]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TASKS_DIR = ROOT / "tests" / "core" / "generate" / "tasks"
RESULTS = ROOT / "benchmarks" / "results"
DEFAULT_TASKS = ["red_long_row", "red_argmax_ties", "red_mean_epilogue", "red_var_std", "red_norms",
                 "norm_softmax", "norm_layernorm", "norm_rmsnorm", "norm_log_softmax_dim0", "pw_chain_broadcast",
                 "pw_activations", "pw_where_mask", "mm_plain", "mm_bmm_scale"]


def evolve_one(name: str, rounds: int, parallel: int) -> dict:
    from kgen.core.evolve import validate_spec
    from kgen.core.generate.builtin import BuiltinGenerator
    from kgen.core.local import run_local
    from kgen.core.store import Store
    from kgen.core.task import load_task
    from kgen.core.verify.verdict import Verdict

    task = load_task(TASKS_DIR / f"{name}.py")
    spec = validate_spec({"job_type": "evolve", "max_rounds": rounds, "parallel_num": parallel,
                          "early_stop": False})
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(os.path.join(tmp, "kgen.db"))
        t0 = time.perf_counter()
        job = run_local(store, task, spec, BuiltinGenerator(), ["cpu"])
        wall = time.perf_counter() - t0
        rows = store.candidates(job["job_id"])
    per_round: dict[int, list[tuple[float, dict]]] = {}
    for row in rows:
        if not row["verdict"]:
            continue
        v = Verdict.from_dict(row["verdict"])
        if v.correct and v.cost:
            per_round.setdefault(row["round"], []).append((float(v.cost["est_us"]), {
                "est_us": v.cost["est_us"], "launches": (v.traffic or {}).get("launches"),
                "unique_ratio": (v.traffic or {}).get("unique_ratio"), "raw_ratio": (v.traffic or {}).get("raw_ratio"),
                "schedule": row["params"].get("schedule")}))
    if 1 not in per_round:
        return {"task": name, "status": job["status"], "error": job.get("error"), "wall_s": round(wall, 1)}
    first = min(per_round[1], key=lambda p: p[0])
    best_round, best = min(((r, min(c, key=lambda p: p[0])) for r, c in per_round.items()),
                           key=lambda rp: (rp[1][0], rp[0]))
    return {"task": name, "status": job["status"], "wall_s": round(wall, 1),
            "candidates": sum(len(c) for c in per_round.values()),
            "round1_est_us": first[0], "best_est_us": best[0], "best_round": best_round,
            "improvement": round(first[0] / best[0], 4) if best[0] else None,
            "round_best": {r: min(p[0] for p in c) for r, c in sorted(per_round.items())},
            "round1": first[1], "best": best[1]}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("tasks", nargs="*")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--parallel", type=int, default=3)
    ap.add_argument("--out", default="evolve_cost")
    args = ap.parse_args()
    os.environ.setdefault("TRITON_INTERPRET", "1")
    rows = []
    for name in args.tasks or DEFAULT_TASKS:
        row = evolve_one(name, args.rounds, args.parallel)
        rows.append(row)
        print(json.dumps({k: row.get(k) for k in ("task", "status", "round1_est_us", "best_est_us", "best_round",
                                                  "improvement", "wall_s")}), flush=True)
    improved = [r for r in rows if r.get("improvement") and r["improvement"] > 1.0]
    summary = {"rounds": args.rounds, "parallel": args.parallel, "model": "roofline-h100",
               "tasks": len(rows), "improved": len(improved), "rows": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(summary, indent=1) + "\n")
    lines = [f"# Evolve on CPU, fitness = roofline-h100 model cost (rounds={args.rounds}, parallel={args.parallel})",
             "", "A model estimate from interpreter traffic, not a measured time. Lower is better.", "",
             "| task | round 1 est_us | best est_us | best round | round1/best | unique/min (r1 -> best) | raw/min (r1 -> best) | launches (r1 -> best) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "round1" not in r:
            lines.append(f"| {r['task']} | {r['status']}: {str(r.get('error'))[:60]} | | | | | | |")
            continue
        a, b = r["round1"], r["best"]
        lines.append(f"| {r['task']} | {r['round1_est_us']:.2f} | {r['best_est_us']:.2f} | {r['best_round']} | "
                     f"{r['improvement']:.3f} | {a['unique_ratio']} -> {b['unique_ratio']} | "
                     f"{a['raw_ratio']} -> {b['raw_ratio']} | {a['launches']} -> {b['launches']} |")
    lines += ["", f"{len(improved)} of {len(rows)} tasks improved after round 1."]
    (RESULTS / f"{args.out}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
