"""Warm-runner verification vs a fresh process per candidate (the AIKG-style design).

Measured in one process, on the same task and candidate (examples/elementwise*.py, CPU Triton
interpreter), medians of N repeats:

  import_baseline  a fresh `python -c "import torch, triton"`
  fresh            one verification where the candidate run is a fresh Python process running the
                   same harness (same inputs, same instrumentation, same comparison)
  warm             one verify() call through the warm runner pool (fork from a zygote), each run
                   inside the kernel sandbox (kgen.core.isolation)
  warm_unsandboxed the same through a pool whose runs skip the sandbox (baseline only)
  warm_overhead    warm minus the candidate's own forward time (trials + externally timed calls)
  fork / sandboxed_fork
                   in this process (torch and triton imported, like a warm runner): fork a child
                   that exits at once, vs fork a child that enters the sandbox (namespaces,
                   private /tmp, fresh /proc, Landlock, seccomp, the two inner forks) and exits

Results: benchmarks/results/verify.json and verify.md. Run: python benchmarks/bench_verify.py [-n N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kgen.core.task import load_task  # noqa: E402
from kgen.core.verify import RunnerPool, verify  # noqa: E402
from kgen.core.verify import harness  # noqa: E402
from kgen.core.verify.sandbox import Outcome, runner_env  # noqa: E402
from kgen.core.verify.verdict import Verdict  # noqa: E402

TASK = ROOT / "examples" / "elementwise.py"
CANDIDATE = ROOT / "examples" / "elementwise_triton.py"


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def import_baseline(env: dict) -> float:
    return timed(lambda: subprocess.run([sys.executable, "-c", "import torch, triton"], env=env, check=True))


def fresh_verify(task, source: str, pool: RunnerPool, env: dict) -> Verdict:
    """A verification whose candidate run is a brand-new interpreter (no warm runner)."""
    seeds = harness._seeds(3)
    ref = harness._reference(task, "cpu", seeds, 300.0, pool, False)
    workdir = tempfile.mkdtemp(prefix="kgen-fresh-")
    try:
        Path(workdir, "candidate.py").write_text(source)
        ref.copy_inputs_to(workdir)
        cfg = harness._run_config("cpu", seeds, False)
        code = ("import json, sys; from kgen.core.verify import child; "
                f"sys.exit(child.main('candidate', {workdir!r}, json.loads({json.dumps(json.dumps(cfg))})))")
        proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=workdir,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        verdict = Verdict(status="rejected", task_id=task.id, device="cpu")
        harness._judge(verdict, ref, workdir, Outcome(exit_code=proc.returncode), 300.0, None, None, (), source)
        return verdict
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def fork_cost(sandboxed: bool, features) -> float:
    """Seconds from fork to reaped, the child entering the sandbox first or not."""
    from kgen.core import isolation

    workdir = tempfile.mkdtemp(prefix="kgen-bench-run-")
    try:
        t0 = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                if sandboxed:
                    isolation.enter(isolation.Spec(workdir=workdir, features=features))
            except BaseException:  # noqa: BLE001
                code = 1
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        elapsed = time.perf_counter() - t0
        assert os.waitstatus_to_exitcode(status) == 0, "sandbox entry failed"
        return elapsed
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=5, help="repeats per measurement")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args()
    task = load_task(TASK)
    source = CANDIDATE.read_text()
    import torch  # noqa: F401 - forks below copy a process as heavy as a warm runner
    import triton  # noqa: F401

    from kgen.core import isolation

    features = isolation.probe()
    forks, sandboxed_forks = [], []
    for _ in range(max(args.n, 10)):
        forks.append(fork_cost(False, features))
        sandboxed_forks.append(fork_cost(True, features))
    bare = RunnerPool(isolate=False)
    first_bare = verify(task, source, pool=bare)
    assert first_bare.status == "correct", first_bare.message
    warm_bare = []
    with bare, RunnerPool() as pool:
        env = runner_env("cpu", os.path.join(pool.root, "cache"))
        t0 = time.perf_counter()
        first = verify(task, source, pool=pool)  # starts the zygote, computes and caches the reference
        cold_first = time.perf_counter() - t0
        assert first.status == "correct", first.message

        baseline = [import_baseline(env) for _ in range(args.n)]
        fresh, warm, own = [], [], []
        for _ in range(args.n):
            holder = {}
            fresh.append(timed(lambda: holder.update(v=fresh_verify(task, source, pool, env))))
            assert holder["v"].status == "correct", holder["v"].message
            # Interleaved with the sandboxed runs, so both see the same machine load.
            warm_bare.append(timed(lambda: verify(task, source, pool=bare)))
            t0 = time.perf_counter()
            v = verify(task, source, pool=pool)
            warm.append(time.perf_counter() - t0)
            assert v.status == "correct", v.message
            own.append((3 + harness.EXTERNAL_REPEATS_CPU) * (v.timing.candidate_ms or 0.0) / 1000.0)

    med = statistics.median
    overhead = [w - o for w, o in zip(warm, own)]
    result = {
        "benchmark": "verify: warm runner vs fresh process per candidate",
        "task": "examples/elementwise.py", "candidate": "examples/elementwise_triton.py",
        "device": "cpu (triton interpreter)", "repeats": args.n, "sandbox": features.level,
        "host": {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count()},
        "seconds": {
            "import_baseline_median": round(med(baseline), 4),
            "fresh_verify_median": round(med(fresh), 4),
            "warm_verify_median": round(med(warm), 4),
            "warm_overhead_median": round(med(overhead), 4),
            "candidate_own_run_median": round(med(own), 4),
            "cold_first_verify": round(cold_first, 4),
            "warm_unsandboxed_verify_median": round(med(warm_bare), 4),
            "fork_median": round(med(forks), 5),
            "sandboxed_fork_median": round(med(sandboxed_forks), 5),
            "sandbox_setup_median": round(med(sandboxed_forks) - med(forks), 5),
        },
        "ratios": {
            "warm_over_fresh": round(med(warm) / med(fresh), 4),
            "warm_overhead_over_import_baseline": round(med(overhead) / med(baseline), 4),
            "fresh_over_import_baseline": round(med(fresh) / med(baseline), 4),
            "sandboxed_fork_over_fork": round(med(sandboxed_forks) / med(forks), 4),
            "warm_over_warm_unsandboxed": round(med(warm) / med(warm_bare), 4),
        },
        "target": "warm_overhead_over_import_baseline < 0.1",
    }
    result["target_met"] = result["ratios"]["warm_overhead_over_import_baseline"] < 0.1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "verify.json").write_text(json.dumps(result, indent=2) + "\n")
    s, r = result["seconds"], result["ratios"]
    (out / "verify.md").write_text(
        "# Verification overhead: warm runner vs fresh process\n\n"
        f"Task `{result['task']}`, candidate `{result['candidate']}`, CPU Triton interpreter, "
        f"median of {args.n}; {result['host']['cpus']} CPUs, Python {result['host']['python']}.\n"
        "Regenerate with `python benchmarks/bench_verify.py`.\n\n"
        "| measurement | seconds |\n| --- | --- |\n"
        f"| fresh `python -c 'import torch, triton'` (baseline) | {s['import_baseline_median']} |\n"
        f"| verification, fresh process per candidate | {s['fresh_verify_median']} |\n"
        f"| verification, warm runner (fork from zygote) | {s['warm_verify_median']} |\n"
        f"| warm: overhead beyond the candidate's own forward | {s['warm_overhead_median']} |\n"
        f"| first verification (zygote start + reference) | {s['cold_first_verify']} |\n"
        f"| verification, warm runner, runs NOT sandboxed (baseline) | {s['warm_unsandboxed_verify_median']} |\n"
        f"| fork + exit of a torch+triton process | {s['fork_median']} |\n"
        f"| fork + sandbox entry + exit (sandbox: {result['sandbox']}) | {s['sandboxed_fork_median']} |\n\n"
        f"- sandbox set-up per run: **{s['sandbox_setup_median']} s**, sandboxed fork / plain fork: "
        f"**{r['sandboxed_fork_over_fork']}**\n"
        f"- warm sandboxed / warm unsandboxed verification: **{r['warm_over_warm_unsandboxed']}**\n"
        f"- warm / fresh: **{r['warm_over_fresh']}**\n"
        f"- warm overhead / import baseline: **{r['warm_overhead_over_import_baseline']}** "
        f"(target < 0.1: {'met' if result['target_met'] else 'NOT met'})\n"
        f"- fresh / import baseline: {r['fresh_over_import_baseline']}\n\n"
        "The fresh path runs the same harness as the warm path, so it also pays the lazy imports\n"
        "that the harness's op recorder triggers (torch._dynamo, on the first TorchDispatchMode\n"
        "entry), which the warm runner performs once at start. The machine was shared with other\n"
        "work while measuring, so compare the ratios, not the absolute seconds.\n\n"
        "The sandbox's set-up per run is the namespaces (the PID namespace's init is a posix_spawned\n"
        "`sleep`, the run one more fork of the runner), a private /tmp and /proc, Landlock and seccomp.\n"
        "Every verify() also drives its timed calls from outside the run (kgen.core.verify.timing).\n"
        "Its fresh-seed trial comes from a stock that one reference run fills with up to 8 trials\n"
        "(harness._fresh_trials), so most warm verifications run no reference at all.\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
