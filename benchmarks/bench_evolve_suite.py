"""Evolve on CPU over SUITE tasks (small shapes), fitness = the roofline-h100 model cost.

What `kgen run TASK --generator builtin --job-type evolve` does, through the public core APIs
(kgen.core.evolve.validate_spec, kgen.core.local.run_local, the builtin generator, sandboxed
interpreter verification, early stop off), on the `--small` variant of suite tasks. Tasks are
chosen by rule, not by outcome: the first N files (alphabetical) of each of the categories
matmul, conv, fused, norm, reduction, pooling, attention. Per task it records the model cost
(est_us) of the best correct candidate of round 1 and of the whole job, the round that found it,
the best per round, and the schedule and traffic ratios of both. The cost is a MODEL estimate
from interpreter traffic, not a measured time. Results: benchmarks/results/evolve_suite.{json,md}.

    .venv/bin/python benchmarks/bench_evolve_suite.py [--per-category 3] [--rounds 3] [--parallel 3]
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
SUITE = ROOT / "benchmarks" / "suite"
RESULTS = ROOT / "benchmarks" / "results"
CATEGORIES = ["matmul", "conv", "fused", "norm", "reduction", "pooling", "attention"]


def pick(per_category: int) -> list:
    """The first `per_category` small-shape suite tasks of each category, alphabetically."""
    from kgen.core.bench.discovery import discover

    tasks = discover([SUITE], small=True)
    out = []
    for cat in CATEGORIES:
        out += sorted((t for t in tasks if t.category == cat), key=lambda t: t.name)[:per_category]
    return out


def evolve_one(bt, rounds: int, parallel: int) -> dict:
    from kgen.core.evolve import validate_spec
    from kgen.core.generate.builtin import BuiltinGenerator
    from kgen.core.local import run_local
    from kgen.core.store import Store
    from kgen.core.task import task_from_source
    from kgen.core.verify.verdict import Verdict

    task = task_from_source(bt.source, bt.name, path=bt.path)
    spec = validate_spec({"job_type": "evolve", "max_rounds": rounds, "parallel_num": parallel,
                          "early_stop": False})
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(os.path.join(tmp, "kgen.db"))
        t0 = time.perf_counter()
        try:
            job = run_local(store, task, spec, BuiltinGenerator(), ["cpu"])
            rows = store.candidates(job["job_id"])
        finally:
            store.close()
        wall = time.perf_counter() - t0
    per_round: dict[int, list[tuple[float, dict]]] = {}
    for row in rows:
        if not row["verdict"]:
            continue
        v = Verdict.from_dict(row["verdict"])
        if v.correct and v.cost:
            per_round.setdefault(row["round"], []).append((float(v.cost["est_us"]), {
                "est_us": v.cost["est_us"], "bound": v.cost.get("bound"), "pure": v.pure,
                "launches": (v.traffic or {}).get("launches"),
                "unique_ratio": (v.traffic or {}).get("unique_ratio"), "raw_ratio": (v.traffic or {}).get("raw_ratio"),
                "schedule": row["params"].get("schedule")}))
    base = {"task": bt.key, "status": job["status"], "wall_s": round(wall, 1),
            "candidates": len(rows), "correct": sum(len(c) for c in per_round.values())}
    if 1 not in per_round:
        return {**base, "error": job.get("error") or "no correct candidate in round 1"}
    first = min(per_round[1], key=lambda p: p[0])
    best_round, best = min(((r, min(c, key=lambda p: p[0])) for r, c in per_round.items()),
                           key=lambda rp: (rp[1][0], rp[0]))
    return {**base, "round1_est_us": first[0], "best_est_us": best[0], "best_round": best_round,
            "improvement": round(first[0] / best[0], 4) if best[0] else None,
            "round_best": {r: min(p[0] for p in c) for r, c in sorted(per_round.items())},
            "round1": first[1], "best": best[1]}


def changed_knobs(a: dict | None, b: dict | None) -> str:
    """The schedule knobs that differ between round 1's best and the job's best."""
    if not a or not b:
        return ""
    diffs = []
    for section in sorted(set(a) | set(b)):
        x, y = a.get(section), b.get(section)
        if isinstance(x, dict) and isinstance(y, dict):
            diffs += [f"{section}.{k} {x.get(k)}->{y.get(k)}" for k in sorted(set(x) | set(y)) if x.get(k) != y.get(k)]
        elif x != y:
            diffs.append(f"{section} {x}->{y}")
    return ", ".join(diffs)


def render(summary: dict) -> str:
    rows = summary["rows"]
    lines = ["# Evolve on suite tasks (small shapes, CPU), fitness = roofline-h100 model cost",
             "", f"rounds={summary['rounds']}, parallel={summary['parallel']}, tasks = the first "
             f"{summary['per_category']} of each of {', '.join(CATEGORIES)} (alphabetical), "
             f"wall {summary['wall_s']:.0f} s on {summary['machine']}.",
             "", "est_us is a MODEL estimate from interpreter traffic (kgen.core.perf.cost), not a "
             "measured time. Lower is better. `knobs` lists what the best schedule changed against round 1's best.", "",
             "| task | round 1 est_us | best est_us | best round | round1/best | per round | launches (r1 -> best) | raw/min (r1 -> best) | knobs |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "round1" not in r:
            lines.append(f"| {r['task']} | {r['status']}: {str(r.get('error'))[:70]} | | | | | | | |")
            continue
        a, b = r["round1"], r["best"]
        per = " / ".join(f"{v:.3f}" for v in r["round_best"].values())
        lines.append(f"| {r['task']} | {r['round1_est_us']:.3f} | {r['best_est_us']:.3f} | {r['best_round']} | "
                     f"{r['improvement']:.3f} | {per} | {a['launches']} -> {b['launches']} | "
                     f"{a['raw_ratio']} -> {b['raw_ratio']} | {changed_knobs(a['schedule'], b['schedule'])} |")
    lines += ["", f"**{summary['improved']} of {summary['tasks']} tasks improved on round 1** "
              f"(geometric mean round1/best over tasks with a result: {summary['geomean_improvement']})."]
    return "\n".join(lines) + "\n"


def main() -> int:
    import math
    import platform

    ap = argparse.ArgumentParser()
    ap.add_argument("--per-category", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--parallel", type=int, default=3)
    ap.add_argument("--only", nargs="*", help="category/name keys to run (default: the rule's pick)")
    ap.add_argument("--out", default="evolve_suite")
    args = ap.parse_args()
    os.environ.setdefault("TRITON_INTERPRET", "1")
    chosen = [t for t in pick(args.per_category) if not args.only or t.key in args.only]
    rows = []
    t0 = time.perf_counter()
    for bt in chosen:
        row = evolve_one(bt, args.rounds, args.parallel)
        rows.append(row)
        print(json.dumps({k: row.get(k) for k in ("task", "status", "round1_est_us", "best_est_us", "best_round",
                                                  "improvement", "wall_s", "error")}), flush=True)
    improved = [r for r in rows if r.get("improvement") and r["improvement"] > 1.0]
    ratios = [r["improvement"] for r in rows if r.get("improvement")]
    geo = round(math.exp(sum(math.log(x) for x in ratios) / len(ratios)), 4) if ratios else None
    summary = {"model": "roofline-h100", "rounds": args.rounds, "parallel": args.parallel,
               "per_category": args.per_category, "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
               "wall_s": round(time.perf_counter() - t0, 1), "tasks": len(rows), "improved": len(improved),
               "geomean_improvement": geo, "rows": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(summary, indent=1) + "\n")
    text = render(summary)
    (RESULTS / f"{args.out}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
