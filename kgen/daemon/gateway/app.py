"""The gateway's REST API (DESIGN.md section 4) on top of the shared HTTP rules (kgen.daemon.http)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from kgen.core.errors import NotFound
from kgen.daemon.gateway import schemas
from kgen.daemon.gateway.jobs import JobManager
from kgen.daemon.gateway.metrics import Metrics
from kgen.daemon.gateway.registry import Registry
from kgen.daemon.gateway.scheduler import Scheduler
from kgen.daemon.gateway.stream import EventHub, stream_events
from kgen.daemon.http import (
    DEFAULT_MAX_BODY,
    OPEN_PATHS,
    PRINCIPAL_KEY,
    ROLES,
    Authenticator,
    HttpError,
    Principal,
    json_response,
    make_app,
)

DEFAULT_MAX_NODE_CAPACITY = 16

C, N, A = "client", "node", "admin"
# Route -> roles it admits (one table). A node token may touch only its own worker (handlers check).
ROUTE_ROLES: dict[tuple[str, str], tuple[str, ...]] = {
    ("GET", "/metrics"): (C, A),
    ("POST", "/api/v1/workers/register"): (N, A),
    ("POST", "/api/v1/workers/{worker_id}/heartbeat"): (N, A),
    ("DELETE", "/api/v1/workers/{worker_id}"): (N, A),
    ("GET", "/api/v1/workers"): (C, A),
    ("POST", "/api/v1/jobs"): (C, A),
    ("GET", "/api/v1/jobs"): (C, A),
    ("GET", "/api/v1/jobs/{job_id}"): (C, A),
    ("POST", "/api/v1/jobs/{job_id}/cancel"): (C, A),
    ("GET", "/api/v1/jobs/{job_id}/result"): (C, A),
    ("GET", "/api/v1/jobs/{job_id}/events"): (C, A),
    ("GET", "/api/v1/jobs/{job_id}/task"): (C, A),
    ("GET", "/api/v1/whoami"): (C, N, A),
    ("POST", "/api/v1/tokens"): (A,),
    ("GET", "/api/v1/tokens"): (A,),
    ("DELETE", "/api/v1/tokens/{name}"): (A,),
}


def route_roles(request: web.Request) -> tuple[str, ...]:
    method = "GET" if request.method == "HEAD" else request.method
    info = request.match_info
    resource = info.route.resource if info is not None and info.route is not None else None
    if resource is None:
        return ROLES  # no such route: any valid token then gets the 404/405
    return ROUTE_ROLES.get((method, resource.canonical), (A,))


def new_node_secret() -> str:
    import secrets

    return "kgn_" + secrets.token_urlsafe(32)


def gateway_authenticator(admin_token: str, store) -> Authenticator:
    """The configured token (token file / KGEN_TOKEN) is admin; others are looked up by hash."""
    import hmac

    expected = admin_token.encode()
    admin = Principal(role="admin", name="admin")

    def authenticate(secret: str) -> Principal | None:
        if hmac.compare_digest(secret.encode(), expected):
            return admin
        row = store.check_token(secret)
        if row is None:
            return None
        return Principal(role=row["role"], name=row["name"], worker_id=row.get("worker_id"), url=row.get("url"))

    return authenticate


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
    max_node_capacity: int = DEFAULT_MAX_NODE_CAPACITY
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
def _principal(request: web.Request) -> Principal:
    return request[PRINCIPAL_KEY]


def _own_worker(request: web.Request, worker_id: str) -> None:
    """A node token touches only the worker it is bound to."""
    p = _principal(request)
    if p.role == "node" and p.worker_id != worker_id:
        raise HttpError(403, "forbidden", f"node token {p.name!r} is bound to worker {p.worker_id or '(none yet)'}, "
                        f"not {worker_id}", role=p.role)


def _check_node_claim(gw: Gateway, p: Principal, url: str) -> None:
    """A node token registers one node: the URL it was issued for, the worker it is bound to."""
    if p.role != "node":
        return
    if p.url and p.url.rstrip("/") != url:
        raise HttpError(403, "forbidden", f"node token {p.name!r} was issued for {p.url}, not {url}")
    holder = gw.store.worker_id_for_url(url)
    if p.worker_id:
        if holder not in (None, p.worker_id):
            raise HttpError(403, "forbidden", f"{url} is registered as another worker ({holder})")
        try:
            bound_url = gw.store.get_worker(p.worker_id)["url"]
        except NotFound:
            bound_url = None
        if bound_url not in (None, url):
            raise HttpError(403, "forbidden", f"node token {p.name!r} is bound to worker {p.worker_id} at {bound_url}")
    elif holder is not None:
        owner = gw.store.token_bound_to(holder)
        if owner is not None and owner != p.name:
            raise HttpError(403, "forbidden", f"{url} is registered as worker {holder} by another node token")


async def register_worker(request: web.Request) -> web.Response:
    """Self-registration: the caller proves it holds a node token (or admin token) by making the call.

    Nothing here contacts the URL: the gateway sends no credential anywhere before that proof.
    The reply carries a fresh per-node secret, the only credential the gateway will call the node with.
    """
    gw = _gw(request)
    p = _principal(request)
    body = await schemas.read_body(request, schemas.REGISTER)
    url = body["url"].rstrip("/")
    if p.role == "node":
        # Re-read after the body's await: a concurrent registration may have bound the token since.
        try:
            p = dataclasses.replace(p, worker_id=gw.store.get_token(p.name).get("worker_id"))
        except NotFound:
            raise HttpError(401, "unauthorised", "token was revoked") from None
    for name in ("backend", "capacity"):
        if body.get(name) is None:
            raise HttpError(400, "missing_field", f"missing required field {name!r}: a node registers itself "
                            "with its backend and capacity (`kgen node start --gateway URL`)", field=name)
    _check_node_claim(gw, p, url)
    reported = body["capacity"]
    capacity = min(reported, gw.max_node_capacity)
    secret = new_node_secret()
    worker = gw.registry.register(url=url, backend=body["backend"], arch=body.get("arch") or "", capacity=capacity,
                                  node_id=body.get("node_id") or "", secret=secret,
                                  worker_id=p.worker_id if p.role == "node" else None)
    if reported > capacity:
        gw.registry.log("capacity_capped", worker_id=worker.worker_id, reported=reported, capacity=capacity)
    if p.role == "node" and not p.worker_id:
        gw.store.bind_token(p.name, worker.worker_id)
    return json_response({"worker_id": worker.worker_id, "heartbeat_ttl_s": gw.registry.ttl,
                          "node_secret": secret, "worker": worker.public(gw.registry.ttl)})


async def heartbeat(request: web.Request) -> web.Response:
    gw = _gw(request)
    worker_id = schemas.worker_id_param(request.match_info["worker_id"])
    _own_worker(request, worker_id)
    body = await schemas.read_body(request, schemas.HEARTBEAT)
    gw.registry.heartbeat(worker_id, load=body.get("load"), state=body.get("state"))
    return json_response({"ok": True, "heartbeat_ttl_s": gw.registry.ttl})


async def remove_worker(request: web.Request) -> web.Response:
    gw = _gw(request)
    worker_id = schemas.worker_id_param(request.match_info["worker_id"])
    _own_worker(request, worker_id)
    gw.registry.remove(worker_id, reason="deregistered" if _principal(request).role == "node" else "removed")
    return json_response({"removed": True, "worker_id": worker_id})


# -- tokens (admin) -------------------------------------------------------------------------------
async def create_token(request: web.Request) -> web.Response:
    gw = _gw(request)
    body = await schemas.read_body(request, schemas.TOKEN_CREATE)
    url = body.get("url")
    token, secret = gw.store.create_token(body["role"], body.get("name"), url=url.rstrip("/") if url else None)
    gw.registry.log("token_created", name=token["name"], role=token["role"], by=_principal(request).name)
    return json_response({"token": token, "secret": secret}, status=201)


async def list_tokens(request: web.Request) -> web.Response:
    return json_response({"tokens": _gw(request).store.list_tokens()})


async def revoke_token(request: web.Request) -> web.Response:
    gw = _gw(request)
    name = schemas.token_name_param(request.match_info["name"])
    token = gw.store.get_token(name)
    gw.store.revoke_token(name)
    # A revoked node token takes its worker with it: the gateway stops calling that node.
    removed = None
    if token.get("worker_id"):
        try:
            gw.registry.remove(token["worker_id"], reason="token_revoked")
            removed = token["worker_id"]
        except NotFound:
            pass
    gw.registry.log("token_revoked", name=name, by=_principal(request).name)
    return json_response({"revoked": True, "name": name, "worker_removed": removed})


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


async def job_task(request: web.Request) -> web.Response:
    """The reference (task source) a job was submitted with: the dashboard shows it beside the kernel."""
    gw = _gw(request)
    job = _job(gw, request)
    task = gw.store.get_task(job["task_id"])
    return json_response({"job_id": job["job_id"], "task_id": task["task_id"], "op_name": task["op_name"],
                          "source": task["source"]})


async def whoami(request: web.Request) -> web.Response:
    """The caller's role and token name (never the secret): the dashboard shows who is signed in."""
    p = _principal(request)
    return json_response({"role": p.role, "name": p.name})


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
        yield "kgen_gateway_workers_suspect", {}, sum(1 for w in gw.registry.all() if w.suspect)
        yield "kgen_gateway_inflight_dispatches", {}, sum(gw.scheduler.inflight(w.worker_id)
                                                          for w in gw.registry.all())
    return collect


def build_app(gw: Gateway, token: str, *, max_body: int = DEFAULT_MAX_BODY, ui: bool = True) -> web.Application:
    """The gateway's app; `ui` adds the web dashboard's static files at /ui/ (served without a token)."""
    ui_files = None
    open_paths = list(OPEN_PATHS)
    if ui:
        from kgen.daemon.gateway import ui_static

        ui_files = ui_static.load_files()
        open_paths += ui_static.open_paths(ui_files)
    app = make_app(gateway_authenticator(token, gw.store), max_body=max_body, route_roles=route_roles,
                   open_paths=open_paths)
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
    r.add_post("/api/v1/tokens", create_token)
    r.add_get("/api/v1/tokens", list_tokens)
    r.add_delete("/api/v1/tokens/{name}", revoke_token)
    r.add_get("/api/v1/jobs/{job_id}/task", job_task)
    r.add_get("/api/v1/whoami", whoami)
    if ui_files is not None:
        ui_static.add_routes(app, ui_files)
    return app

