"""CLI start-up and gateway shutdown latency.

  help      wall time of `kgen --help`, `kgen run --help`, `kgen verify --help` in a fresh
            interpreter (median of N), against two baselines measured in the same run:
            `python -c pass` (the interpreter alone) and `python -c "import typer, rich"` (the
            libraries every CLI command needs). The ratio against the second is kgen's own cost.
  shutdown  SIGTERM -> process exit of `kgen gateway start`, idle and right after a job ran
            (task check and generator children alive), and how long the process lingers after
            logging `exit`; baseline: a bare aiohttp app (web.run_app) on loopback, same signal.

Results: benchmarks/results/cli.json and cli.md.
Run: python benchmarks/bench_cli.py [--repeats 9] [--shutdowns 3] [--no-job]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT / "tests" / "daemon" / "gateway"))

BARE_AIOHTTP = """
import sys
from aiohttp import web
app = web.Application()
app.router.add_get("/livez", lambda r: web.json_response({"status": "ok"}))
web.run_app(app, host="127.0.0.1", port=0, print=lambda *a: print("listening", file=sys.stderr, flush=True),
            shutdown_timeout=2.0)
"""


def _env(home: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KGEN_")}
    env.update(KGEN_HOME=home, NO_COLOR="1", TRITON_INTERPRET="1")
    return env


def _median_run(argv: list[str], env: dict, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def bench_help(repeats: int, home: str) -> dict:
    env = _env(home)
    py = sys.executable
    out = {"python -c pass": _median_run([py, "-c", "pass"], env, repeats),
           "import typer, rich": _median_run([py, "-c", "import typer, rich"], env, repeats)}
    for args in (["--help"], ["run", "--help"], ["verify", "--help"]):
        out["kgen " + " ".join(args)] = _median_run([py, "-m", "kgen", *args], env, repeats)
    return out


class _Proc:
    """A daemon subprocess whose stderr lines are time-stamped as they arrive."""

    def __init__(self, argv: list[str], env: dict, ready: str):
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: list[tuple[float, str]] = []
        self.url = None
        started = threading.Event()

        def drain():
            for line in self.proc.stderr:
                self.lines.append((time.perf_counter(), line.rstrip()))
                match = re.search(r"url=(\S+)", line)
                if match and self.url is None:
                    self.url = match.group(1)
                if ready in line:
                    started.set()
            started.set()

        threading.Thread(target=drain, daemon=True).start()
        if not started.wait(120):
            raise RuntimeError("daemon did not start")

    def sigterm(self) -> tuple[float, float | None]:
        """-> (ms from SIGTERM to exit, ms from the `exit` log line to exit)."""
        sent = time.perf_counter()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(120)
        gone = time.perf_counter()
        time.sleep(0.2)
        logged = [t for t, line in self.lines if ": exit code=" in line]
        return (gone - sent) * 1000, ((gone - logged[-1]) * 1000 if logged else None)


def bench_shutdown(runs: int, with_job: bool, home: str) -> dict:
    from gw_helpers import TOKEN, read_events, request, submit_body  # noqa: F401 (TOKEN: the env below)

    env = {**_env(home), "KGEN_TOKEN": TOKEN}
    py = sys.executable
    gateway = [py, "-m", "kgen", "gateway", "start", "--port", "0"]
    result: dict = {}

    bare = [_Proc([py, "-c", BARE_AIOHTTP], env, "listening").sigterm()[0] for _ in range(runs)]
    result["bare aiohttp app"] = {"sigterm_to_exit_ms": statistics.median(bare)}

    idle = [_Proc(gateway + ["--db", f"{home}/idle{i}.db"], env, "listening").sigterm() for i in range(runs)]
    result["gateway, idle"] = {"sigterm_to_exit_ms": statistics.median(t for t, _ in idle),
                               "exit_log_to_exit_ms": statistics.median(l for _, l in idle if l is not None)}
    if with_job:
        node = _Proc([py, "-m", "kgen", "node", "start", "--port", "0", "--devices", "1"], env, "listening")
        try:
            after = []
            for i in range(runs):
                gw = _Proc(gateway + ["--db", f"{home}/job{i}.db"], env, "listening")
                request(gw.url + "/api/v1/workers/register", "POST", {"api_version": "v1", "url": node.url})
                job = request(gw.url + "/api/v1/jobs", "POST", submit_body(op_name="bench")).json()["job_id"]
                read_events(gw.url, job, follow=True, timeout=300)
                after.append(gw.sigterm())
            result["gateway, after a job"] = {
                "sigterm_to_exit_ms": statistics.median(t for t, _ in after),
                "exit_log_to_exit_ms": statistics.median(l for _, l in after if l is not None)}
        finally:
            node.sigterm()
    return result


def write(results: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "cli.json").write_text(json.dumps(results, indent=2) + "\n")
    h = results["help_ms"]
    base, libs = h["python -c pass"], h["import typer, rich"]
    lines = ["# CLI start-up and gateway shutdown", "",
             f"Python {platform.python_version()}, {os.cpu_count()} CPUs; help: median of {results['repeats']} "
             f"fresh interpreters; shutdown: median of {results['shutdowns']} runs. Regenerate with "
             "`python benchmarks/bench_cli.py`.", "",
             "| command | ms | vs `python -c pass` | vs `import typer, rich` |", "| --- | --- | --- | --- |"]
    for name, ms in h.items():
        lines.append(f"| `{name}` | {ms:.0f} | {ms / base:.2f}x | {ms / libs:.2f}x |")
    s = results["shutdown"]
    bare = s["bare aiohttp app"]["sigterm_to_exit_ms"]
    lines += ["", "| process | SIGTERM -> exit (ms) | vs bare aiohttp app | `exit` logged -> gone (ms) |",
              "| --- | --- | --- | --- |"]
    for name, row in s.items():
        linger = row.get("exit_log_to_exit_ms")
        lines.append(f"| {name} | {row['sigterm_to_exit_ms']:.0f} | {row['sigterm_to_exit_ms'] / bare:.2f}x | "
                     f"{'-' if linger is None else f'{linger:.0f}'} |")
    lines += ["", "Before the gateway ran task checks in a child of its own, it imported torch itself (to load the",
              "reference outputs) and owned a warm sandbox runner: it lingered about 1.5 s after logging `exit`",
              "(1 s waiting for the runner to exit, the rest tearing down torch)."]
    (RESULTS / "cli.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--shutdowns", type=int, default=3)
    parser.add_argument("--no-job", action="store_true", help="skip the after-a-job shutdown (needs a node)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        results = {"repeats": args.repeats, "shutdowns": args.shutdowns,
                   "help_ms": bench_help(args.repeats, home),
                   "shutdown": bench_shutdown(args.shutdowns, not args.no_job, home)}
    write(results)
    print((RESULTS / "cli.md").read_text())


if __name__ == "__main__":
    main()
