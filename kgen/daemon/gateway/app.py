"""The gateway's REST API (DESIGN.md section 4) on top of the shared HTTP rules (kgen.daemon.http)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from kgen.daemon.gateway import schemas
from kgen.daemon.gateway.jobs import JobManager
from kgen.daemon.gateway.metrics import Metrics
from kgen.daemon.gateway.registry import Registry
from kgen.daemon.gateway.scheduler import Scheduler
from kgen.daemon.gateway.stream import EventHub, stream_events
from kgen.daemon.http import DEFAULT_MAX_BODY, HttpError, json_response, make_app

NODE_STATUS_TIMEOUT_S = 10.0


@dataclass
class Gateway:
    """Everything the handlers reach: one per running gateway."""

    store: Any
    registry: Registry
    scheduler: Scheduler
    jobs: JobManager
    metrics: Metrics
    hub: EventHub
    heartbeat_s: float = 15.0
    ready: bool = False
    closing: asyncio.Event = field(default_factory=asyncio.Event)
    started_at: float = field(default_factory=time.time)


GATEWAY_KEY = web.AppKey("kgen_gateway", Gateway)


def _gw(request: web.Request) -> Gateway:
    return request.app[GATEWAY_KEY]


# -- health -------------------------------------------------------------------------------
async def livez(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    gw = _gw(request)
    if not gw.ready or gw.closing.is_set():
        return json_response({"status": "not_ready"}, status=503)
    return json_response({"status": "ready", "workers_healthy": len(gw.registry.healthy())})


async def metrics(request: web.Request) -> web.Response:
    return web.Response(text=_gw(request).metrics.render(), content_type="text/plain", charset="utf-8",
                        headers={"X-Content-Type-Options": "nosniff"})


# -- workers ------------------------------------------------------------------------------
async def _node_status(gw: Gateway, url: str) -> dict:
    import aiohttp

    try:
        async with gw.scheduler.session.get(f"{url}/api/v1/status",
                                            timeout=aiohttp.ClientTimeout(total=NODE_STATUS_TIMEOUT_S)) as resp:
            data = await resp.json(content_type=None)
            if resp.status != 200 or not isinstance(data, dict):
                raise HttpError(422, "node_unavailable", f"node at {url} answered HTTP {resp.status} to /api/v1/status")
            return data
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, ConnectionError) as exc:
        raise HttpError(422, "node_unreachable",
                        f"cannot query node status at {url}: {type(exc).__name__}: {exc}".rstrip(": ")) from None


async def register_worker(request: web.Request) -> web.Response:
    gw = _gw(request)
    body = await schemas.read_body(request, schemas.REGISTER)
    url = body["url"].rstrip("/")
    backend, arch, capacity = body.get("backend"), body.get("arch"), body.get("capacity")
    if backend is None or arch is None or capacity is None:
        status = await _node_status(gw, url)
        try:
            queried = schemas.check_values(
                {"backend": status.get("backend"), "arch": status.get("arch") or "",
                 "capacity": int(status.get("capacity"))}, schemas.REGISTER)
        except (TypeError, ValueError):
            raise HttpError(422, "node_unavailable", f"node at {url} reported an unusable status") from None
        backend = backend if backend is not None else queried["backend"]
        arch = arch if arch is not None else queried["arch"]
        capacity = capacity if capacity is not None else queried["capacity"]
        body.setdefault("node_id", str(status.get("node_id") or ""))
    worker = gw.registry.register(url=url, backend=backend, arch=arch, capacity=capacity,
                                  node_id=body.get("node_id") or "")
    return json_response({"worker_id": worker.worker_id, "heartbeat_ttl_s": gw.registry.ttl,
                          "worker": worker.public(gw.registry.ttl)})


async def heartbeat(request: web.Request) -> web.Response:
    gw = _gw(request)
    worker_id = schemas.worker_id_param(request.match_info["worker_id"])
    body = await schemas.read_body(request, schemas.HEARTBEAT)
    gw.registry.heartbeat(worker_id, load=body.get("load"), state=body.get("state"))
    return json_response({"ok": True, "heartbeat_ttl_s": gw.registry.ttl})


async def remove_worker(request: web.Request) -> web.Response:
    gw = _gw(request)
    worker_id = schemas.worker_id_param(request.match_info["worker_id"])
    gw.registry.remove(worker_id)
    return json_response({"removed": True, "worker_id": worker_id})


async def list_workers(request: web.Request) -> web.Response:
    gw = _gw(request)
    now = time.time()
    workers = []
    for w in gw.registry.all():
        item = w.public(gw.registry.ttl, now)
        item["inflight"] = gw.scheduler.inflight(w.worker_id)
        workers.append(item)
    return json_response({"workers": workers})


# -- jobs -----------------------------------------------------------------------------------
def _job_view(gw: Gateway, job: dict) -> dict:
    """A job with a summary of its candidates and its best verdict."""
    candidates = gw.store.candidates(job["job_id"])
    # Verdicts are stored by the engine, which does not know nodes; the dispatch events do.
    placed = {e.get("candidate_id"): e.get("worker_id") for e in gw.store.events(job["job_id"])
              if e["type"] == "candidate_dispatched"}
    summary = []
    best = None
    for c in candidates:
        verdict = c["verdict"] or {}
        summary.append({"candidate_id": c["candidate_id"], "round": c["round"], "index": c["index"],
                        "origin": c["origin"], "status": verdict.get("status"), "device": verdict.get("device"),
                        "worker_id": c.get("worker_id") or placed.get(c["candidate_id"])})
        if c["candidate_id"] == job.get("best_candidate_id"):
            best = {"candidate_id": c["candidate_id"], "verdict": c["verdict"]}
    return {**job, "candidates": summary, "best": best}


async def submit_job(request: web.Request) -> web.Response:
    gw = _gw(request)
    body = await schemas.read_body(request, schemas.SUBMIT)
    job = await gw.jobs.submit(body)
    return json_response({"job_id": job["job_id"], "status": job["status"]}, status=201)


async def list_jobs(request: web.Request) -> web.Response:
    gw = _gw(request)
    unknown = sorted(set(request.query) - {"status", "limit"})
    if unknown:
        raise HttpError(400, "unknown_field", f"unknown query parameter(s): {', '.join(unknown)}")
    status = schemas.status_filter(request.query.get("status"))
    limit = schemas.int_query(request.query.get("limit"), "limit", 100, 1, 10_000)
    return json_response({"jobs": gw.store.list_jobs(status=status, limit=limit)})


def _job(gw: Gateway, request: web.Request) -> dict:
    return gw.store.get_job(schemas.job_id_param(request.match_info["job_id"]))


async def get_job(request: web.Request) -> web.Response:
    gw = _gw(request)
    return json_response({"job": _job_view(gw, _job(gw, request))})


async def cancel_job(request: web.Request) -> web.Response:
    gw = _gw(request)
    job = _job(gw, request)
    if request.can_read_body:
        await schemas.read_body(request, schemas.EMPTY)
    job = gw.jobs.cancel(job["job_id"])
    return json_response({"job_id": job["job_id"], "status": job["status"]})


async def job_result(request: web.Request) -> web.Response:
    gw = _gw(request)
    job = _job(gw, request)
    best_id = job.get("best_candidate_id")
    if not best_id:
        detail = f": {job['error']}" if job.get("error") else ""
        raise HttpError(409, "no_result", f"job {job['job_id'][:12]} is {job['status']} and has no result{detail}",
                        job_status=job["status"])
    best = gw.store.get_candidate(best_id)
    return json_response({"job_id": job["job_id"], "status": job["status"],
                          "best": {"candidate_id": best_id, "source": best["source"], "verdict": best["verdict"]}})


async def job_events(request: web.Request) -> web.StreamResponse:
    gw = _gw(request)
    job = _job(gw, request)
    unknown = sorted(set(request.query) - {"after", "follow"})
    if unknown:
        raise HttpError(400, "unknown_field", f"unknown query parameter(s): {', '.join(unknown)}")
    after = schemas.int_query(request.query.get("after"), "after", 0, 0, 2**62)
    follow_raw = request.query.get("follow", "1")
    if follow_raw not in ("0", "1", "true", "false"):
        raise HttpError(400, "bad_request", "query parameter 'follow' must be 0 or 1")
    follow = follow_raw in ("1", "true")
    return await stream_events(request, gw.store, gw.hub, job["job_id"], after, follow, gw.heartbeat_s, gw.closing)


# -- app ----------------------------------------------------------------------------------------
def _route_label(request: web.Request) -> str:
    # The route pattern, not the raw path: ids and hostile paths must not become label values.
    info = request.match_info
    resource = info.route.resource if info is not None and info.route is not None else None
    return resource.canonical if resource is not None else "unmatched"


def _metrics_middleware(metrics: Metrics):
    @web.middleware
    async def count(request: web.Request, handler):
        status = 500
        try:
            resp = await handler(request)
            status = resp.status
            return resp
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            metrics.inc("kgen_gateway_requests_total", method=request.method, route=_route_label(request),
                        status=str(status))

    return count


def _gauges(gw: Gateway):
    def collect():
        counts = {s: 0 for s in schemas.JOB_STATUSES}
        for row in gw.store.query("SELECT status, COUNT(*) AS n FROM jobs GROUP BY status"):
            counts[row["status"]] = row["n"]
        for status, n in counts.items():
            yield "kgen_gateway_jobs", {"status": status}, n
        yield "kgen_gateway_queue_depth", {}, gw.jobs.queue_depth
        yield "kgen_gateway_jobs_running", {}, gw.jobs.running
        healthy = len(gw.registry.healthy())
        yield "kgen_gateway_workers", {"health": "healthy"}, healthy
        yield "kgen_gateway_workers", {"health": "unhealthy"}, len(gw.registry.all()) - healthy
        yield "kgen_gateway_inflight_dispatches", {}, sum(gw.scheduler.inflight(w.worker_id)
                                                          for w in gw.registry.all())
    return collect


def build_app(gw: Gateway, token: str, *, max_body: int = DEFAULT_MAX_BODY) -> web.Application:
    app = make_app(token, max_body=max_body)
    app.middlewares.insert(0, _metrics_middleware(gw.metrics))
    gw.metrics.add_gauges(_gauges(gw))
    app[GATEWAY_KEY] = gw
    r = app.router
    r.add_get("/livez", livez)
    r.add_get("/readyz", readyz)
    r.add_get("/metrics", metrics)
    r.add_post("/api/v1/workers/register", register_worker)
    r.add_post("/api/v1/workers/{worker_id}/heartbeat", heartbeat)
    r.add_delete("/api/v1/workers/{worker_id}", remove_worker)
    r.add_get("/api/v1/workers", list_workers)
    r.add_post("/api/v1/jobs", submit_job)
    r.add_get("/api/v1/jobs", list_jobs)
    r.add_get("/api/v1/jobs/{job_id}", get_job)
    r.add_post("/api/v1/jobs/{job_id}/cancel", cancel_job)
    r.add_get("/api/v1/jobs/{job_id}/result", job_result)
    r.add_get("/api/v1/jobs/{job_id}/events", job_events)
    return app

