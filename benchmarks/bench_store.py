"""Store write cost: a durable job event through kgen's Store vs a bare sqlite3 insert.

Both run in this process on the same disk with the same durability (WAL, synchronous=FULL, one
commit per write), so the ratio is the price of the Store's discipline (writer lock, BEGIN
IMMEDIATE, per-job seq counter, JSON payload, listeners):

  baseline       sqlite3 INSERT + COMMIT of a comparable row, one connection
  store          Store.add_event(job, "tick", {...})
  store_threads  Store.add_event from 4 threads at once (per event, wall clock)
  engine         run_job overhead per candidate (evolve job, verifier answering at once), i.e.
                 everything the engine stores and announces around one candidate

Results: benchmarks/results/store.json and store.md. Run: python benchmarks/bench_store.py [-n N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kgen.core.evolve import run_job, validate_spec  # noqa: E402
from kgen.core.generate import Candidate  # noqa: E402
from kgen.core.store import Store  # noqa: E402
from kgen.core.task import task_from_source  # noqa: E402
from kgen.core.verify.verdict import Timing, Verdict  # noqa: E402

TASK = task_from_source((ROOT / "examples" / "elementwise.py").read_text(), "elementwise")


def bench_baseline(path: Path, n: int) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE ev (job TEXT, seq INTEGER, type TEXT, ts REAL, data TEXT, PRIMARY KEY (job, seq))")
    start = time.perf_counter()
    for i in range(n):
        conn.execute("BEGIN")
        conn.execute("INSERT INTO ev VALUES (?, ?, ?, ?, ?)", ("job", i, "tick", time.time(), json.dumps({"i": i})))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed / n


def bench_store(path: Path, n: int, threads: int = 1) -> float:
    store = Store(path)
    job_id = store.create_job(TASK, {})["job_id"]
    per = n // threads

    def work():
        for i in range(per):
            store.add_event(job_id, "tick", {"i": i})

    start = time.perf_counter()
    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - start
    assert [e["seq"] for e in store.events(job_id)] == list(range(1, per * threads + 2))
    store.close()
    return elapsed / (per * threads)


class _Instant:
    name = "instant"

    def initial(self, task, n):
        return [Candidate(f"# candidate {i}\n") for i in range(n)]

    def mutate(self, task, best, n):
        return [Candidate(f"# mutant {time.perf_counter_ns()} {i}\n") for i in range(n)]

    def repair(self, task, candidate, verdict):
        return None


def bench_engine(path: Path, rounds: int, parallel: int) -> float:
    store = Store(path)
    spec = validate_spec({"job_type": "evolve", "max_rounds": rounds, "parallel_num": parallel, "early_stop": False})

    async def verify(source, attempt):
        return Verdict(status="incorrect", timing=Timing(kind="interpreter", candidate_ms=1.0))

    job = store.create_job(TASK, spec)
    start = time.perf_counter()
    asyncio.run(run_job(store, job["job_id"], TASK, spec, _Instant(), verify))
    elapsed = time.perf_counter() - start
    count = len(store.candidates(job["job_id"]))
    store.close()
    return elapsed / count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=400, help="events per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[float]] = {"baseline": [], "store": [], "store_threads": [], "engine": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            results["baseline"].append(bench_baseline(Path(tmp) / f"b{r}.db", args.n))
            results["store"].append(bench_store(Path(tmp) / f"s{r}.db", args.n))
            results["store_threads"].append(bench_store(Path(tmp) / f"t{r}.db", args.n, threads=4))
            results["engine"].append(bench_engine(Path(tmp) / f"e{r}.db", rounds=5, parallel=8))
    med = {k: statistics.median(v) for k, v in results.items()}
    ratios = {
        "store / baseline": med["store"] / med["baseline"],
        "store_threads / baseline": med["store_threads"] / med["baseline"],
        "engine per candidate / baseline write": med["engine"] / med["baseline"],
    }
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    meta = {"events": args.n, "repeats": args.repeats, "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version, "cpus": __import__("os").cpu_count()}
    (out / "store.json").write_text(json.dumps({"meta": meta, "median_s": med, "ratios": ratios}, indent=2) + "\n")
    lines = ["# Store write cost", "",
             f"Median of {args.repeats} runs of {args.n} durable writes (WAL, synchronous=FULL, a commit per write); "
             f"Python {meta['python']}, SQLite {meta['sqlite']}, {meta['cpus']} CPUs. "
             "Regenerate with `python benchmarks/bench_store.py`.", "",
             "| measurement | ms per item |", "| --- | --- |"]
    names = {"baseline": "bare sqlite3 insert + commit (baseline)", "store": "Store.add_event",
             "store_threads": "Store.add_event, 4 threads", "engine": "run_job overhead per candidate"}
    lines += [f"| {names[k]} | {v * 1000:.3f} |" for k, v in med.items()]
    lines += [""] + [f"- {k}: **{v:.2f}**" for k, v in ratios.items()]
    (out / "store.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
