"""The node's HTTP API (wire contract: status, acquire_device, release_device, verify, profile).

Shared rules (auth, body limit, api_version, strict schemas, JSON errors) come from
kgen.daemon.http. A draining node answers 503 to new work so the gateway places it elsewhere.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from dataclasses import dataclass, field

from aiohttp import web

from kgen import __version__
from kgen.core.errors import TaskError
from kgen.core.spec import LIMITS, VERIFY_LIMITS
from kgen.core.spec import check as check_limit
from kgen.core.task import task_from_source
from kgen.daemon.http import HttpError, Principal, json_response, make_app, read_json, retry_after
from kgen.daemon.node.pool import DEFAULT_TTL_S, DevicePool, InsufficientMemory, Lease, NoDevice, UnknownLease
from kgen.daemon.node.runners import Runners

MAX_SOURCE_BYTES = 1024 * 1024

ACQUIRE_SCHEMA = {
    "ttl_s": (float, False),
    "min_free_memory_bytes": (int, False),
    "allow_cpu_fallback": (bool, False),
}
RELEASE_SCHEMA = {"lease_id": (str, True)}
VERIFY_SCHEMA = {
    "task": (str, True),
    "candidate": (str, True),
    "lease_id": (str, False),
    "allow_ops": (list, False),
    "op_name": ((str, type(None)), False),
    "dispatch": (dict, False),
    # numeric fields from the core's one table of limits (kgen.core.spec); null means "default"
    **{name: ((int if LIMITS[name].kind is int else float, type(None)), False) for name in VERIFY_LIMITS},
    "compile_for": (list, False),
    "reject_spills": (bool, False),
}
DISPATCH_KEYS = ("dispatch_id", "task_id", "candidate_sha")


@dataclass
class Node:
    """What the HTTP layer needs to know about the running node."""

    pool: DevicePool
    runners: Runners
    backend: str
    arch: str
    node_id: str
    verify_wait_s: float = 30.0      # how long a verify without a lease waits for a free device
    sandbox: str = "off"             # run sandbox level: "full", "partial:<missing>" or "off"
    state: str = "running"
    # Who may call this node: its local token (for the local CLI; "" = none) and the per-node
    # secret the gateway issued when this node registered itself (the gateway's only credential).
    local_token: str = ""
    gateway_secret: str = ""
    started_at: float = field(default_factory=time.time)

    @property
    def draining(self) -> bool:
        return self.state != "running"

    def status(self) -> dict:
        return {
            "node_id": self.node_id,
            "state": self.state,
            "backend": self.backend,
            "arch": self.arch,
            "devices": self.pool.snapshot(),
            "capacity": self.pool.capacity,
            "load": self.pool.load,
            "running": self.runners.running,
            "version": __version__,
            "uptime_s": round(time.time() - self.started_at, 1),
            "sandbox": self.sandbox,
        }


NODE_KEY = web.AppKey("kgen_node", Node)


def _refuse_if_draining(node: Node) -> None:
    if node.draining:
        raise HttpError(503, "draining", "node is shutting down; send work elsewhere", headers=retry_after(5))


def _check_positive(body: dict, name: str, upper: float) -> None:
    value = body.get(name)
    if value is not None and not 0 < value <= upper:
        raise HttpError(400, "bad_value", f"field {name!r} must be > 0 and <= {upper:g}, got {value}", field=name)


def _lease_body(lease: Lease) -> dict:
    return {"lease_id": lease.lease_id, "device": lease.device.id, "device_name": lease.device.name,
            "expires_at": lease.expires_at, "ttl_s": lease.ttl_s}


def _acquire(node: Node, body: dict) -> Lease:
    try:
        return node.pool.acquire(ttl_s=body.get("ttl_s") or DEFAULT_TTL_S,
                                 min_free_memory_bytes=body.get("min_free_memory_bytes"),
                                 allow_cpu_fallback=bool(body.get("allow_cpu_fallback")))
    except NoDevice as exc:
        raise HttpError(503, "no_device", exc.message, headers=retry_after(1)) from None
    except InsufficientMemory as exc:
        raise HttpError(409, "insufficient_memory", exc.message) from None


async def status(request: web.Request) -> web.Response:
    return json_response(request.app[NODE_KEY].status())


async def livez(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    node = request.app[NODE_KEY]
    if node.draining:
        return json_response({"status": node.state}, status=503)
    return json_response({"status": "ready"})


async def acquire_device(request: web.Request) -> web.Response:
    node = request.app[NODE_KEY]
    body = await read_json(request, ACQUIRE_SCHEMA)
    _refuse_if_draining(node)
    _check_positive(body, "ttl_s", 24 * 3600)
    if (body.get("min_free_memory_bytes") or 0) < 0:
        raise HttpError(400, "bad_value", "field 'min_free_memory_bytes' must be >= 0")
    return json_response(_lease_body(_acquire(node, body)))


async def release_device(request: web.Request) -> web.Response:
    node = request.app[NODE_KEY]
    body = await read_json(request, RELEASE_SCHEMA)
    if not node.pool.release(body["lease_id"]):
        raise HttpError(404, "unknown_lease", f"unknown or expired lease {body['lease_id']!r}")
    return json_response({"released": True})


async def _wait_for_device(node: Node) -> Lease:
    """A short-lived lease for a verify call without one; waits up to verify_wait_s, then 503."""
    deadline = time.monotonic() + node.verify_wait_s
    while True:
        try:
            return node.pool.acquire(ttl_s=DEFAULT_TTL_S)
        except NoDevice:
            if time.monotonic() >= deadline:
                raise HttpError(503, "no_device", f"no device became free within {node.verify_wait_s:g}s",
                                headers=retry_after(2)) from None
        await asyncio.sleep(0.05)
        _refuse_if_draining(node)


def check_verify_body(body: dict) -> None:
    for name in ("task", "candidate"):
        if not body[name].strip():
            raise HttpError(400, "bad_value", f"field {name!r} must be non-empty Python source", field=name)
        if len(body[name].encode()) > MAX_SOURCE_BYTES:
            raise HttpError(413, "body_too_large", f"field {name!r} exceeds {MAX_SOURCE_BYTES} bytes", field=name)
    for name in VERIFY_LIMITS:
        problem = check_limit(name, body.get(name))
        if problem:
            raise HttpError(400, "bad_value", f"field {name!r} {problem}", field=name)
    dispatch = body.get("dispatch")
    if dispatch is not None and (set(dispatch) != set(DISPATCH_KEYS)
                                 or not all(isinstance(v, str) and 0 < len(v) <= 128 for v in dispatch.values())):
        raise HttpError(400, "bad_value", f"field 'dispatch' must be an object with string fields "
                        f"{', '.join(DISPATCH_KEYS)}", field="dispatch")
    ops = body.get("allow_ops")
    if ops is not None and not all(isinstance(op, str) for op in ops):
        raise HttpError(400, "wrong_type", "field 'allow_ops' must be an array of strings", field="allow_ops")
    from kgen.core.verify.targets import parse_targets

    try:
        parse_targets(body.get("compile_for"))
    except ValueError as exc:
        raise HttpError(400, "bad_value", f"field 'compile_for': {exc}", field="compile_for") from None


async def _run(request: web.Request, *, profile: bool) -> web.Response:
    node = request.app[NODE_KEY]
    body = await read_json(request, VERIFY_SCHEMA)
    check_verify_body(body)
    _refuse_if_draining(node)
    try:  # static checks only: a broken task must not take a device
        task_from_source(body["task"], body.get("op_name"))
    except TaskError as exc:
        raise HttpError(400, exc.code, exc.message) from None
    own_lease = body.get("lease_id") is None
    lease = await _wait_for_device(node) if own_lease else None
    lease_id = lease.lease_id if lease else body["lease_id"]
    try:
        lease = node.pool.begin_call(lease_id)
    except UnknownLease as exc:
        raise HttpError(404, "unknown_lease", exc.message) from None

    def thread_done() -> None:
        node.pool.end_call(lease_id)
        if own_lease:
            node.pool.release(lease_id)

    lock = node.runners.device_lock(lease.device)
    try:
        await lock.acquire()  # two calls on one lease run one after the other
    except BaseException:
        thread_done()
        raise
    try:
        verdict = await node.runners.run(
            lease.device, body["task"], body["candidate"], profile=profile, timeout_s=body.get("timeout_s"),
            atol=body.get("atol"), rtol=body.get("rtol"), op_name=body.get("op_name"),
            allow_ops=body.get("allow_ops"), trials=body.get("trials"), on_thread_done=thread_done,
            compile_for=body.get("compile_for"), reject_spills=bool(body.get("reject_spills")))
    except TaskError as exc:
        raise HttpError(400, exc.code, exc.message) from None
    finally:
        lock.release()
    answer = {"verdict": verdict, "device": lease.device.id, "node_id": node.node_id}
    if body.get("dispatch") is not None:
        answer["dispatch"] = body["dispatch"]   # the gateway matches the verdict to its dispatch
    return json_response(answer)


async def verify(request: web.Request) -> web.Response:
    return await _run(request, profile=False)


async def profile(request: web.Request) -> web.Response:
    return await _run(request, profile=True)


def node_authenticator(node: Node):
    local = Principal(role="admin", name="local")
    gateway = Principal(role="admin", name="gateway")

    def authenticate(secret: str) -> Principal | None:
        given = secret.encode()
        # Both compared every time (constant time, no early exit revealing which one matched).
        is_local = bool(node.local_token) & hmac.compare_digest(given, node.local_token.encode())
        is_gateway = bool(node.gateway_secret) & hmac.compare_digest(given, node.gateway_secret.encode())
        return local if is_local else gateway if is_gateway else None

    return authenticate


def build_app(node: Node, token: str | None = None, *, max_body: int | None = None) -> web.Application:
    # Without a local token, nothing is accepted until the node has registered with its gateway.
    if token:
        node.local_token = token
    app = make_app(node_authenticator(node), **({"max_body": max_body} if max_body else {}))
    app[NODE_KEY] = node
    app.router.add_get("/livez", livez)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/api/v1/status", status)
    app.router.add_post("/api/v1/acquire_device", acquire_device)
    app.router.add_post("/api/v1/release_device", release_device)
    app.router.add_post("/api/v1/verify", verify)
    app.router.add_post("/api/v1/profile", profile)
    return app
