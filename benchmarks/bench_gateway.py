"""Gateway overhead: submit latency and candidate dispatches per second with many nodes on loopback.

Everything runs in this process on one event loop, so the ratios compare like with like:

  submit      POST /api/v1/jobs through the real gateway app (auth, strict validation, static task
              checks, cached runtime check, durable job + event in SQLite, queue) vs the
              baseline: the same client POSTing the same body to a bare aiohttp handler that
              parses the JSON and answers.
  dispatch    Scheduler.dispatch of candidates to N registered nodes (placement by free
              capacity, in-flight accounting, a durable `candidate_dispatched` event, verdict
              parsing) vs the baseline: the same number of POSTs to the same nodes with a bare
              aiohttp client session, round robin, same concurrency.

The nodes here are LOOPBACK STUB NODES: tiny aiohttp servers that answer /api/v1/status and
/api/v1/verify at once with a fixed verdict. They exist only in this benchmark, to measure the
gateway's own overhead without the verifier's cost; no test uses them. The job runners are not
started, so submitted jobs stay queued and generation does not compete for the CPU.

Results: benchmarks/results/gateway.json and gateway.md.
Run: python benchmarks/bench_gateway.py [--nodes 50] [--submits 300] [--dispatches 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiohttp import ClientSession, TCPConnector, web  # noqa: E402

from kgen.core.verify.verdict import Verdict  # noqa: E402

TOKEN = "bench-token"
TASK = (ROOT / "examples" / "elementwise.py").read_text() if (ROOT / "examples" / "elementwise.py").exists() else '''
import torch
import torch.nn as nn


class Model(nn.Module):
    def forward(self, x):
        return torch.relu(x) * 2.0


def get_inputs():
    return [torch.randn(64)]


def get_init_inputs():
    return []
'''
CANDIDATE = "import torch.nn as nn\n\nclass ModelNew(nn.Module):\n    pass\n"
VERDICT = Verdict(status="correct", device="cpu", device_name="loopback stub", trials_run=3, pure=True,
                  kernels_launched=1).to_dict()


# -- loopback stub nodes (benchmark only) ----------------------------------------------------
async def start_stub_node(capacity: int) -> tuple[web.AppRunner, str]:
    async def status(request):
        return web.json_response({"api_version": "v1", "node_id": "stub", "state": "running", "backend": "cpu",
                                  "arch": "stub", "devices": [], "capacity": capacity, "load": 0, "version": "0"})

    async def verify(request):
        body = await request.json()
        # Echo the dispatch binding as a real node does; the gateway refuses a verdict without it.
        return web.json_response({"api_version": "v1", "verdict": VERDICT, "dispatch": body.get("dispatch")})

    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.router.add_get("/api/v1/status", status)
    app.router.add_post("/api/v1/verify", verify)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


async def start_echo() -> tuple[web.AppRunner, str]:
    async def echo(request):
        body = await request.json()
        return web.json_response({"api_version": "v1", "job_id": "0" * 32, "status": "queued",
                                  "fields": len(body)}, status=201)

    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.router.add_post("/api/v1/jobs", echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


# -- the gateway, assembled without job runners -------------------------------------------------
async def start_gateway(tmp: Path, *, ui: bool = True, name: str = "gateway.db"):
    from kgen.core.store import Store
    from kgen.daemon.gateway.app import Gateway, build_app
    from kgen.daemon.gateway.jobs import JobManager
    from kgen.daemon.gateway.metrics import Metrics
    from kgen.daemon.gateway.registry import Registry
    from kgen.daemon.gateway.scheduler import Scheduler
    from kgen.daemon.gateway.stream import EventHub

    store = Store(tmp / name)
    metrics = Metrics()
    hub = EventHub(asyncio.get_running_loop())
    store.add_listener(hub.announce)
    registry = Registry(store, ttl=3600.0)
    scheduler = Scheduler(registry, metrics, cross_check="off")
    registry._on_change = scheduler.notify
    await scheduler.start()
    jobs = JobManager(store, registry, scheduler, metrics, max_queue=10**6)
    gw = Gateway(store=store, registry=registry, scheduler=scheduler, jobs=jobs, metrics=metrics, hub=hub)
    gw.ready = True
    runner = web.AppRunner(build_app(gw, TOKEN, ui=ui), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return gw, runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


async def ui_on_off(session: ClientSession, tmp: Path, body: dict, args) -> dict:
    """Submit latency of a gateway with the dashboard off vs on (same process, alternating passes).

    "on, page open" adds what one open dashboard tab does: the jobs list and workers polled every
    2 s and one job's event stream followed, from the same event loop.
    """
    headers = {"Authorization": f"Bearer {TOKEN}"}
    gateways = {}
    for label, ui in (("off", False), ("on", True)):
        gw, runner, url = await start_gateway(tmp, ui=ui, name=f"ui-{label}.db")
        async with session.post(f"{url}/api/v1/workers/register", headers=headers,
                                json={"api_version": "v1", "url": "http://127.0.0.1:9", "backend": "cpu",
                                      "capacity": 1}) as resp:
            assert resp.status == 200, await resp.text()
        await time_posts(session, f"{url}/api/v1/jobs", body, 21, 201)   # task check + warm-up
        gateways[label] = (gw, runner, url)
    on_url = gateways["on"][2]
    async with session.get(f"{on_url}/ui/") as resp:
        assert resp.status == 200 and "Content-Security-Policy" in resp.headers

    stop = asyncio.Event()

    async def open_page():
        job_id = gateways["on"][0].store.list_jobs(limit=1)[0]["job_id"]

        async def follow():
            async with session.get(f"{on_url}/api/v1/jobs/{job_id}/events?follow=1", headers=headers) as resp:
                async for _ in resp.content:
                    if stop.is_set():
                        return
        streamer = asyncio.ensure_future(follow())
        while not stop.is_set():
            for path in ("/api/v1/jobs?limit=500", "/api/v1/workers"):
                async with session.get(on_url + path, headers=headers) as resp:
                    await resp.read()
            try:
                await asyncio.wait_for(stop.wait(), 2.0)
            except asyncio.TimeoutError:
                pass
        streamer.cancel()

    samples: dict[str, list[tuple[float, float]]] = {"off": [], "on": [], "on_page_open": []}
    for i in range(args.repeats * 2 + 1):
        order = ("off", "on") if i % 2 == 0 else ("on", "off")
        for label in order:
            t = await time_posts(session, f"{gateways[label][2]}/api/v1/jobs", body, args.submits, 201)
            samples[label].append((statistics.median(t), percentile(t, 0.99)))
        page = asyncio.ensure_future(open_page())
        t = await time_posts(session, f"{on_url}/api/v1/jobs", body, args.submits, 201)
        stop.set()
        await page
        stop.clear()
        samples["on_page_open"].append((statistics.median(t), percentile(t, 0.99)))
    out = {"n": args.submits, "passes": args.repeats * 2 + 1}
    for label, rows in samples.items():
        out[f"{label}_p50_ms"] = statistics.median(r[0] for r in rows)
        out[f"{label}_p99_ms"] = statistics.median(r[1] for r in rows)
    out["p99_ratio_on_vs_off"] = out["on_p99_ms"] / out["off_p99_ms"]
    out["p99_ratio_page_open_vs_off"] = out["on_page_open_p99_ms"] / out["off_p99_ms"]
    for gw, runner, _ in gateways.values():
        await runner.cleanup()
        await gw.scheduler.close()
        gw.store.close()
    return out


# -- measurements ---------------------------------------------------------------------------------
def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def time_posts(session: ClientSession, url: str, body: dict, n: int, expect: int) -> list[float]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    out = []
    for _ in range(n):
        start = time.perf_counter()
        async with session.post(url, json=body, headers=headers) as resp:
            await resp.read()
            if resp.status != expect:
                raise RuntimeError(f"{url} answered {resp.status}: {await resp.text()}")
        out.append((time.perf_counter() - start) * 1000)
    return out


async def concurrent_rate(n: int, concurrency: int, one) -> float:
    sem = asyncio.Semaphore(concurrency)

    async def run(i):
        async with sem:
            await one(i)

    start = time.perf_counter()
    await asyncio.gather(*(run(i) for i in range(n)))
    return n / (time.perf_counter() - start)


async def bench(args) -> dict:
    from kgen.daemon.gateway.scheduler import DispatchContext

    tmp = Path(tempfile.mkdtemp(prefix="kgen-bench-gw-"))
    os.environ["KGEN_HOME"] = str(tmp)
    nodes = [await start_stub_node(args.capacity) for _ in range(args.nodes)]
    echo_runner, echo_url = await start_echo()
    gw, gw_runner, gw_url = await start_gateway(tmp)
    body = {"api_version": "v1", "task": TASK, "backend": "cpu", "job_type": "evolve", "max_rounds": 2,
            "parallel_num": 4}
    results: dict = {"nodes": args.nodes, "capacity_per_node": args.capacity}
    async with ClientSession(connector=TCPConnector(limit=0)) as session:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        start = time.perf_counter()
        for _, url in nodes:
            async with session.post(f"{gw_url}/api/v1/workers/register", headers=headers,
                                    json={"api_version": "v1", "url": url, "backend": "cpu",
                                          "capacity": args.capacity}) as resp:
                assert resp.status == 200, await resp.text()
        results["register_ms_per_node"] = (time.perf_counter() - start) * 1000 / args.nodes

        # First submit pays the sandboxed runtime task check once; later ones hit the cache.
        start = time.perf_counter()
        await time_posts(session, f"{gw_url}/api/v1/jobs", body, 1, 201)
        results["first_submit_ms_with_task_check"] = (time.perf_counter() - start) * 1000
        await time_posts(session, f"{echo_url}/api/v1/jobs", body, 20, 201)  # warm both paths
        await time_posts(session, f"{gw_url}/api/v1/jobs", body, 20, 201)

        rounds = []
        for _ in range(args.repeats):
            base = await time_posts(session, f"{echo_url}/api/v1/jobs", body, args.submits, 201)
            gate = await time_posts(session, f"{gw_url}/api/v1/jobs", body, args.submits, 201)
            rounds.append((statistics.median(base), percentile(base, 0.99),
                           statistics.median(gate), percentile(gate, 0.99)))
        mid = sorted(rounds, key=lambda r: r[2])[len(rounds) // 2]
        results["submit"] = {"baseline_p50_ms": mid[0], "baseline_p99_ms": mid[1],
                             "gateway_p50_ms": mid[2], "gateway_p99_ms": mid[3],
                             "p50_ratio": mid[2] / mid[0], "p99_ratio": mid[3] / mid[1],
                             "n": args.submits, "repeats": args.repeats}

        results["ui"] = await ui_on_off(session, tmp, body, args)

        async def concurrent_submit(i):
            async with session.post(f"{gw_url}/api/v1/jobs", json=body, headers=headers) as resp:
                await resp.read()
        results["submit_concurrent_per_s"] = await concurrent_rate(args.submits, 32, concurrent_submit)

        job = gw.store.list_jobs(limit=1)[0]
        ctx = DispatchContext(job_id=job["job_id"], task_source=TASK, task_id=job["task_id"], op_name="elementwise",
                              backend="cpu",
                              arch=None, timeout_s=60.0, candidate_id=lambda source: None,
                              add_event=lambda t, d: gw.store.add_event(job["job_id"], t, d))
        urls = [u for _, u in nodes]

        async def raw_dispatch(i):
            payload = {"api_version": "v1", "task": TASK, "candidate": CANDIDATE, "timeout_s": 60.0}
            async with session.post(f"{urls[i % len(urls)]}/api/v1/verify", json=payload, headers=headers) as resp:
                Verdict.from_dict((await resp.json())["verdict"])

        async def gateway_dispatch(i):
            verdict = await gw.scheduler.dispatch(ctx, CANDIDATE)
            assert verdict.status == "correct", verdict.message

        concurrency = min(args.concurrency, args.nodes * args.capacity)
        rates = []
        for _ in range(args.repeats):
            rates.append((await concurrent_rate(args.dispatches, concurrency, raw_dispatch),
                          await concurrent_rate(args.dispatches, concurrency, gateway_dispatch)))
        mid = sorted(rates, key=lambda r: r[1])[len(rates) // 2]
        results["dispatch"] = {"baseline_per_s": mid[0], "gateway_per_s": mid[1], "ratio": mid[1] / mid[0],
                               "n": args.dispatches, "concurrency": concurrency, "repeats": args.repeats}
    await gw_runner.cleanup()
    await gw.scheduler.close()
    gw.store.close()
    await echo_runner.cleanup()
    for runner, _ in nodes:
        await runner.cleanup()
    return results


def write_results(results: dict) -> None:
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    env = {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}
    (out / "gateway.json").write_text(json.dumps({"environment": env, **results}, indent=2) + "\n")
    s, d, u = results["submit"], results["dispatch"], results["ui"]
    md = f"""# Gateway overhead

{results['nodes']} loopback stub nodes (capacity {results['capacity_per_node']} each), one process, one event
loop; Python {env['python']}, {env['cpus']} CPUs. Median of {s['repeats']} runs. Regenerate with
`python benchmarks/bench_gateway.py`.

| measurement | baseline | gateway | ratio |
| --- | --- | --- | --- |
| submit p50 (ms), {s['n']} sequential | {s['baseline_p50_ms']:.2f} (bare aiohttp JSON handler) | {s['gateway_p50_ms']:.2f} | **{s['p50_ratio']:.1f}** |
| submit p99 (ms) | {s['baseline_p99_ms']:.2f} | {s['gateway_p99_ms']:.2f} | **{s['p99_ratio']:.1f}** |
| dispatches per second, {d['n']} at concurrency {d['concurrency']} | {d['baseline_per_s']:.0f} (bare client POSTs) | {d['gateway_per_s']:.0f} | **{d['ratio']:.2f}** |

- first submit of a task, including the sandboxed runtime check of the task: {results['first_submit_ms_with_task_check']:.0f} ms (later submits of the same task reuse it)
- concurrent submits (32 in flight): {results['submit_concurrent_per_s']:.0f} per second
- worker registration: {results['register_ms_per_node']:.2f} ms per node

Web dashboard (`/ui/`): submit latency of two gateways in this process, one with the dashboard off
and one with it on, {u['n']} sequential submits per pass, alternating order, median of {u['passes']} passes:

| dashboard | submit p50 (ms) | submit p99 (ms) | p99 ratio to off |
| --- | --- | --- | --- |
| off (`--no-ui`) | {u['off_p50_ms']:.2f} | {u['off_p99_ms']:.2f} | 1.00 |
| on, no page open | {u['on_p50_ms']:.2f} | {u['on_p99_ms']:.2f} | **{u['p99_ratio_on_vs_off']:.2f}** |
| on, one page open (jobs + workers polled every 2 s, one event stream) | {u['on_page_open_p50_ms']:.2f} | {u['on_page_open_p99_ms']:.2f} | **{u['p99_ratio_page_open_vs_off']:.2f}** |

A gateway submit writes the job and its first event durably (SQLite WAL, synchronous=FULL), so
its latency is mostly one fsync; see benchmarks/results/store.md for the cost of a durable write
on this disk. Each dispatch also stores a durable `candidate_dispatched` event, written off the
event loop.
"""
    (out / "gateway.md").write_text(md)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument("--capacity", type=int, default=4)
    parser.add_argument("--submits", type=int, default=300)
    parser.add_argument("--dispatches", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    results = asyncio.run(bench(args))
    write_results(results)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
