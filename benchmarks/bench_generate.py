"""Builtin generator benchmark: generation time for the example and test tasks, and on a GPU the
speedup of the generated kernels over eager PyTorch and torch.compile.

Generation time is quoted as a ratio against a baseline measured in the same process: the bare
torch.export + ATen decomposition of the same reference (what any lowering must pay), so the
ratio is the cost of fusion + emission on top of capture.

    python benchmarks/bench_generate.py            # writes benchmarks/results/generate.{json,md}
    python benchmarks/bench_generate.py --quick    # a few tasks, no file written
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
RESULTS = ROOT / "benchmarks" / "results"


def task_files() -> list[Path]:
    examples = sorted(p for p in (ROOT / "examples").glob("*.py") if not p.stem.endswith("_triton"))
    tests = sorted((ROOT / "tests" / "core" / "generate" / "tasks").glob("*.py"))
    return examples + tests


def _median_s(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_generation(path: Path, repeats: int) -> dict:
    from kgen.core.generate.builtin import BuiltinGenerator
    from kgen.core.generate.builtin.export import capture
    from kgen.core.task import load_task

    task = load_task(path)
    baseline = _median_s(lambda: capture(task.source), repeats)
    cands = []
    gen = _median_s(lambda: cands.append(BuiltinGenerator().initial(task, 1)[0]), repeats)
    g = BuiltinGenerator()
    g.initial(task, 1)
    # later evolve rounds reuse the capture: emission alone
    emit = _median_s(lambda: g.initial(task, 4), repeats) / 4
    c = cands[-1]
    return {"task": path.stem, "source": str(path.relative_to(ROOT)), "kernels": c.params["kernels"],
            "fallback_ops": c.params["fallback_ops"], "export_ms": baseline * 1e3, "generate_ms": gen * 1e3,
            "emit_only_ms": emit * 1e3, "generate_vs_export": gen / baseline if baseline else None,
            "candidate": c}


def bench_gpu(path: Path, cand) -> dict:
    import torch
    import triton.testing

    from kgen.core.generate.builtin.export import load_namespace

    ns = load_namespace(path.read_text())
    cns: dict = {"__name__": "kgen_candidate"}
    exec(compile(cand.source, "<candidate>", "exec"), cns)  # our own generated module
    torch.manual_seed(0)
    init = ns["get_init_inputs"]()
    ref = ns["Model"](*init).cuda()
    new = cns["ModelNew"](*init).cuda()
    new.load_state_dict(ref.state_dict())
    inputs = [x.cuda() if isinstance(x, torch.Tensor) else x for x in ns["get_inputs"]()]
    with torch.no_grad():
        eager = triton.testing.do_bench(lambda: ref(*inputs))
        mine = triton.testing.do_bench(lambda: new(*inputs))
        compiled_fn = torch.compile(ref)
        compiled_fn(*inputs)
        compiled = triton.testing.do_bench(lambda: compiled_fn(*inputs))
    return {"eager_ms": eager, "builtin_ms": mine, "compile_ms": compiled,
            "speedup_vs_eager": eager / mine, "speedup_vs_compile": compiled / mine}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    import torch

    gpu = torch.cuda.is_available()
    if not gpu:
        os.environ.setdefault("TRITON_INTERPRET", "1")
    files = task_files()[:4] if args.quick else task_files()
    rows = []
    for path in files:
        try:
            row = bench_generation(path, args.repeats)
        except Exception as exc:  # noqa: BLE001 - a benchmark reports failures, it does not stop
            rows.append({"task": path.stem, "error": f"{type(exc).__name__}: {exc}"})
            continue
        cand = row.pop("candidate")
        if gpu:
            try:
                row.update(bench_gpu(path, cand))
            except Exception as exc:  # noqa: BLE001
                row["gpu_error"] = f"{type(exc).__name__}: {exc}"[:300]
        rows.append(row)
        print(json.dumps(row), flush=True)
    ok = [r for r in rows if "generate_ms" in r]
    summary = {
        "tasks": len(rows), "generated": len(ok),
        "median_generate_ms": statistics.median(r["generate_ms"] for r in ok) if ok else None,
        "median_emit_only_ms": statistics.median(r["emit_only_ms"] for r in ok) if ok else None,
        "median_generate_vs_export": statistics.median(r["generate_vs_export"] for r in ok) if ok else None,
    }
    if gpu:
        sp = [r for r in ok if "speedup_vs_eager" in r]
        if sp:
            summary["geomean_speedup_vs_eager"] = statistics.geometric_mean(r["speedup_vs_eager"] for r in sp)
            summary["geomean_speedup_vs_compile"] = statistics.geometric_mean(r["speedup_vs_compile"] for r in sp)
    env = {"python": platform.python_version(), "torch": torch.__version__, "machine": platform.machine(),
           "gpu": torch.cuda.get_device_name(0) if gpu else None, "cpu_count": os.cpu_count()}
    doc = {"env": env, "summary": summary, "rows": rows}
    if args.quick:
        print(json.dumps(summary, indent=2))
        return 0
    RESULTS.mkdir(parents=True, exist_ok=True)
    suffix = "_gpu" if gpu else ""
    (RESULTS / f"generate{suffix}.json").write_text(json.dumps(doc, indent=2) + "\n")
    (RESULTS / f"generate{suffix}.md").write_text(render_md(doc))
    print(json.dumps(summary, indent=2))
    return 0


def render_md(doc: dict) -> str:
    env, summary, rows = doc["env"], doc["summary"], doc["rows"]
    gpu = env.get("gpu")
    lines = ["# Builtin generator benchmark", "",
             f"Environment: Python {env['python']}, torch {env['torch']}, {env['machine']}, "
             f"{env['cpu_count']} CPUs, GPU: {gpu or 'none'}.", "",
             "`export` is the baseline (torch.export + ATen decomposition alone, same process); "
             "`gen/export` is the generator's total time over that baseline; `emit only` is a later "
             "evolve candidate (capture reused). Capture dominates: a gen/export ratio near 1 means fusion "
             "and emission cost almost nothing next to torch.export; single ratios scatter by tens of percent "
             "on a shared 2-core machine, so read the medians.", ""]
    head = "| task | kernels | fallbacks | export ms | generate ms | gen/export | emit only ms |"
    sep = "|---|---|---|---|---|---|---|"
    if gpu:
        head += " eager ms | compile ms | builtin ms | vs eager | vs compile |"
        sep += "---|---|---|---|---|"
    lines += [head, sep]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['task']} | error: {r['error'][:80]} |")
            continue
        line = (f"| {r['task']} | {r['kernels']} | {', '.join(r['fallback_ops']) or '-'} | {r['export_ms']:.1f} | "
                f"{r['generate_ms']:.1f} | {r['generate_vs_export']:.2f} | {r['emit_only_ms']:.1f} |")
        if gpu and "speedup_vs_eager" in r:
            line += (f" {r['eager_ms']:.4f} | {r['compile_ms']:.4f} | {r['builtin_ms']:.4f} | "
                     f"{r['speedup_vs_eager']:.2f}x | {r['speedup_vs_compile']:.2f}x |")
        lines.append(line)
    lines += ["", "Summary: " + ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                                          for k, v in summary.items()), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
