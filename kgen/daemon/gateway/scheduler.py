"""Dispatch of candidates to nodes: placement, per-worker in-flight accounting and retries.

Every call to a node carries that node's own secret (issued when it registered itself), never a
client's or admin's token; every verify carries a dispatch id, the task id and the candidate's
sha, which the node's answer must echo, or the verdict is refused. With cross-checking on, a
`correct` verdict about to become its job's best is re-verified on a different node before it
counts (`confirm`); a disagreement marks the first node suspect (it is never scheduled again)
and the second node's verdict stands.

Placement: a healthy worker serving the job's backend (and arch, when the job names one),
with the most free capacity (capacity minus this gateway's in-flight dispatches to it).
A node that cannot be reached, times out or fails is left out for that candidate and the
candidate is retried on another node, up to `max_attempts`; each retry is a job event.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from kgen.core.verify.verdict import Verdict
from kgen.daemon.gateway.registry import Registry, Worker

API_VERSION = "v1"


@dataclass
class DispatchContext:
    """What the scheduler needs to know about the job a candidate belongs to."""

    job_id: str
    task_source: str
    task_id: str
    op_name: str
    backend: str
    arch: str | None
    timeout_s: float
    atol: float | None = None
    rtol: float | None = None
    allow_cpu_fallback: bool = False
    add_event: Callable[[str, dict], Any] = lambda type_, data: None
    cancel: asyncio.Event | None = None
    extra: dict = field(default_factory=dict)
    verdict_from: dict = field(default_factory=dict)   # candidate sha -> worker id of its verdict
    finished: Callable[[], bool] = lambda: False       # has the job ended (cancelled, or elsewhere)?


class _Retry(Exception):
    def __init__(self, reason: str, *, exclude: bool, unreachable: bool = False, wait_s: float = 0.0,
                 refused: str | None = None):
        super().__init__(reason)
        self.reason, self.exclude, self.unreachable, self.wait_s = reason, exclude, unreachable, wait_s
        self.refused = refused   # why a verdict that arrived was not accepted


CROSS_CHECK_MODES = ("auto", "off")
# Timings that differ by more than these factors are a disagreement. Interpreter wall times on a
# loaded CPU swing a lot, so only gross lies ("10000x") count there.
GPU_TIMING_RATIO = 3.0
INTERPRETER_TIMING_RATIO = 20.0


def candidate_sha(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()


class Scheduler:
    def __init__(self, registry: Registry, metrics, *, max_attempts: int = 3,
                 call_margin_s: float = 60.0, no_worker_wait_s: float | None = None,
                 max_busy_retries: int = 30, cross_check: str = "auto",
                 log: Callable[..., None] | None = None):
        if cross_check not in CROSS_CHECK_MODES:
            raise ValueError(f"cross_check must be one of {CROSS_CHECK_MODES}, got {cross_check!r}")
        self.registry = registry
        self.cross_check = cross_check
        self.metrics = metrics
        self.max_attempts = max_attempts
        self.call_margin_s = call_margin_s
        # How long a candidate waits for a matching worker to (re)appear before giving up.
        self.no_worker_wait_s = no_worker_wait_s if no_worker_wait_s is not None else 2 * registry.ttl
        self.max_busy_retries = max_busy_retries
        self._log = log or (lambda *a, **k: None)
        self._inflight: dict[str, int] = {}
        self._changed: asyncio.Event | None = None
        self._session = None

    # -- lifecycle --------------------------------------------------------------
    async def start(self) -> None:
        import aiohttp

        self._changed = asyncio.Event()
        # No default Authorization: each call carries the secret of the node it goes to.
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, limit_per_host=0))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def notify(self) -> None:
        """Capacity may have changed (a release, a registration, a heartbeat)."""
        if self._changed is not None:
            self._changed.set()

    def inflight(self, worker_id: str) -> int:
        return self._inflight.get(worker_id, 0)

    @property
    def session(self):
        return self._session

    # -- placement ----------------------------------------------------------------
    def matching(self, backend: str, arch: str | None) -> list[Worker]:
        return [w for w in self.registry.healthy()
                if w.backend == backend and (not arch or w.arch == arch)]

    def pick(self, backend: str, arch: str | None, exclude: set[str] = frozenset()) -> Worker | None:
        best, best_key = None, None
        for w in self.matching(backend, arch):
            if w.worker_id in exclude:
                continue
            free = w.capacity - self.inflight(w.worker_id)
            if free <= 0:
                continue
            key = (free, -self.inflight(w.worker_id), random.random())
            if best_key is None or key > best_key:
                best, best_key = w, key
        return best

    async def _acquire(self, ctx: DispatchContext, exclude: set[str], *, strict: bool = False) -> Worker | None:
        """A worker slot, waiting while matching workers are all busy; None when no worker
        that is not excluded has served the backend for `no_worker_wait_s`."""
        absent_since: float | None = None
        while True:
            if ctx.cancel is not None and ctx.cancel.is_set():
                raise asyncio.CancelledError()
            worker = self.pick(ctx.backend, ctx.arch, exclude)
            if worker is not None:
                self._inflight[worker.worker_id] = self.inflight(worker.worker_id) + 1
                return worker
            matching = self.matching(ctx.backend, ctx.arch)
            candidates = [w for w in matching if w.worker_id not in exclude]
            if strict and not candidates:
                return None     # a cross-check needs a different node, never the same one again
            if matching and not candidates:
                # Every healthy worker already failed this candidate once: try them again (the
                # attempt budget still bounds it) rather than wait for a new node to appear.
                exclude.clear()
                await asyncio.sleep(0.5)
                continue
            if candidates:
                absent_since = None
            else:
                absent_since = absent_since or time.monotonic()
                if time.monotonic() - absent_since >= self.no_worker_wait_s:
                    return None
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=0.5)
            except asyncio.TimeoutError:
                pass

    def _release(self, worker_id: str) -> None:
        left = self.inflight(worker_id) - 1
        if left > 0:
            self._inflight[worker_id] = left
        else:
            self._inflight.pop(worker_id, None)
        self.notify()

    # -- dispatch -------------------------------------------------------------------
    async def dispatch(self, ctx: DispatchContext, candidate_source: str, *,
                       allow_ops: list[str] | None = None, candidate_id: str | None = None) -> Verdict:
        """The node's verdict for one candidate, retried on other nodes when a node fails."""
        verdict, worker_id, candidate_id = await self._dispatch(ctx, candidate_source, allow_ops, set(),
                                                                 candidate_id=candidate_id)
        if worker_id is not None:
            ctx.verdict_from[candidate_sha(candidate_source)] = worker_id
        if ctx.finished():
            # The engine writes nothing for an ended job; say here that a verdict arrived too late.
            self._log("late_verdict_dropped", job_id=ctx.job_id, candidate_id=candidate_id or "-",
                      worker_id=worker_id or "-")
        return verdict

    async def confirm(self, ctx: DispatchContext, candidate_source: str, verdict: Verdict, *,
                      allow_ops: list[str] | None = None, candidate_id: str | None = None) -> Verdict:
        """The verdict that counts for a candidate about to become its job's best: with
        cross-checking on and another healthy node serving the backend, a second node's opinion."""
        first = ctx.verdict_from.get(candidate_sha(candidate_source))
        if not verdict.correct or first is None or self.cross_check == "off":
            return verdict
        return await self._cross_check(ctx, candidate_source, allow_ops, verdict, first, candidate_id)

    async def _cross_check(self, ctx: DispatchContext, source: str, allow_ops, claimed: Verdict,
                           first: str, candidate_id: str | None) -> Verdict:
        others = [w for w in self.matching(ctx.backend, ctx.arch) if w.worker_id != first]
        if not others:
            return claimed   # auto: only one healthy node serves this backend
        checked, second, _ = await self._dispatch(ctx, source, allow_ops, {first}, strict=True, cross_check=True,
                                                 candidate_id=candidate_id)
        if second is None:
            await _event(ctx, "cross_check_unavailable", {"candidate_id": candidate_id, "worker_id": first,
                                                          "message": checked.message[:300]})
            self.metrics.inc("kgen_gateway_cross_checks_total", result="unavailable")
            return claimed
        disagreement = verdicts_disagree(claimed, checked)
        if disagreement is None:
            self.metrics.inc("kgen_gateway_cross_checks_total", result="agree")
            await _event(ctx, "cross_checked", {"candidate_id": candidate_id, "worker_id": first,
                                                "checked_by": second})
            return claimed
        self.metrics.inc("kgen_gateway_cross_checks_total", result="disagree")
        self.metrics.inc("kgen_gateway_suspect_workers_total")
        self.registry.mark_suspect(first, f"cross-check by {second}: {disagreement}")
        await _event(ctx, "worker_suspect", {"candidate_id": candidate_id, "worker_id": first, "checked_by": second,
                                             "reason": disagreement, "claimed_status": claimed.status,
                                             "checked_status": checked.status})
        self._log("worker_suspect", job_id=ctx.job_id, worker_id=first, checked_by=second, reason=disagreement)
        return checked   # the candidate's verdict is the honest node's

    async def _dispatch(self, ctx: DispatchContext, candidate_source: str, allow_ops: list[str] | None,
                        exclude: set[str], *, strict: bool = False, cross_check: bool = False,
                        candidate_id: str | None = None) -> tuple[Verdict, str | None, str | None]:
        """(verdict, worker id that gave it or None, candidate id)."""
        failures: list[str] = []
        attempt, busy = 0, 0    # node failures (bounded by max_attempts); busy answers (bounded apart)
        while attempt < self.max_attempts and busy <= self.max_busy_retries:
            worker = await self._acquire(ctx, exclude, strict=strict)
            if worker is None:
                failures.append("no healthy worker serves "
                                f"backend={ctx.backend} arch={ctx.arch or 'any'}")
                break
            wait_s = 0.0
            dispatch = {"dispatch_id": uuid.uuid4().hex, "task_id": ctx.task_id,
                        "candidate_sha": candidate_sha(candidate_source)}
            try:
                await _event(ctx, "candidate_dispatched", {"candidate_id": candidate_id, "worker_id": worker.worker_id,
                                                           "dispatch_id": dispatch["dispatch_id"],
                                                           **({"cross_check": True} if cross_check else {})})
                verdict = await self._call_node(worker, ctx, candidate_source, allow_ops, dispatch)
                self.metrics.inc("kgen_gateway_dispatches_total", result="ok")
                return verdict, worker.worker_id, candidate_id
            except _Retry as retry:
                self.metrics.inc("kgen_gateway_dispatch_errors_total", reason=retry.reason)
                if retry.reason == "busy":
                    busy += 1
                else:
                    attempt += 1
                failures.append(f"{worker.url}: {retry.reason}")
                if retry.unreachable:
                    self.registry.mark_unreachable(worker.worker_id)
                if retry.exclude:
                    exclude.add(worker.worker_id)
                if retry.refused is not None:
                    await _event(ctx, "verdict_refused", {"candidate_id": candidate_id, "worker_id": worker.worker_id,
                                                          "dispatch_id": dispatch["dispatch_id"],
                                                          "reason": retry.refused})
                    self._log("verdict_refused", job_id=ctx.job_id, worker_id=worker.worker_id, reason=retry.refused)
                await _event(ctx, "candidate_retry", {"candidate_id": candidate_id, "worker_id": worker.worker_id,
                                                      "reason": retry.reason, "attempt": attempt + busy})
                self._log("dispatch_retry", job_id=ctx.job_id, worker_id=worker.worker_id,
                          reason=retry.reason, attempt=attempt + busy)
                wait_s = retry.wait_s
            finally:
                self._release(worker.worker_id)
            if wait_s:
                await asyncio.sleep(wait_s)
        self.metrics.inc("kgen_gateway_dispatches_total", result="failed")
        return (Verdict(status="crashed", device="",
                        message="no node could verify the candidate: " + "; ".join(failures[-5:])),
                None, candidate_id)

    async def _call_node(self, worker: Worker, ctx: DispatchContext, candidate_source: str,
                         allow_ops: list[str] | None, dispatch: dict[str, str]) -> Verdict:
        import aiohttp

        if not worker.secret:
            # Registered before secrets existed (or by hand): it never proved itself; send nothing.
            raise _Retry("no_node_secret", exclude=True, unreachable=True)
        body: dict[str, Any] = {"api_version": API_VERSION, "task": ctx.task_source,
                                "candidate": candidate_source, "timeout_s": ctx.timeout_s,
                                "op_name": ctx.op_name, "dispatch": dispatch}
        if ctx.atol is not None:
            body["atol"] = ctx.atol
        if ctx.rtol is not None:
            body["rtol"] = ctx.rtol
        if allow_ops:
            body["allow_ops"] = list(allow_ops)
        if ctx.extra.get("compile_for"):
            body["compile_for"] = list(ctx.extra["compile_for"])
            body["reject_spills"] = bool(ctx.extra.get("reject_spills"))
        timeout = aiohttp.ClientTimeout(total=ctx.timeout_s + self.call_margin_s)
        lease = None
        try:
            if ctx.allow_cpu_fallback:
                lease = await self._acquire_lease(worker, ctx)
                body["lease_id"] = lease
            async with self._session.post(f"{worker.url}/api/v1/verify", json=body, timeout=timeout,
                                          headers=_auth(worker)) as resp:
                data = await _json_or_none(resp)
                verdict = _verdict_from_response(resp.status, resp.headers, data)
            if resp.status == 200:
                _check_binding(data, verdict, dispatch)
            return verdict
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, ConnectionError) as exc:
            raise _Retry("unreachable", exclude=True, unreachable=True) from exc
        except asyncio.TimeoutError as exc:
            raise _Retry("timeout", exclude=True, unreachable=True) from exc
        finally:
            if lease:
                await self._release_lease(worker, lease)

    async def _acquire_lease(self, worker: Worker, ctx: DispatchContext) -> str:
        import aiohttp

        body = {"api_version": API_VERSION, "ttl_s": ctx.timeout_s + self.call_margin_s,
                "allow_cpu_fallback": True}
        async with self._session.post(f"{worker.url}/api/v1/acquire_device", json=body, headers=_auth(worker),
                                      timeout=aiohttp.ClientTimeout(total=30)) as resp:
            data = await _json_or_none(resp)
            if resp.status == 200 and isinstance(data, dict) and data.get("lease_id"):
                return data["lease_id"]
            _raise_for_status(resp.status, resp.headers, data)
            raise _Retry("bad_response", exclude=True)

    async def _release_lease(self, worker: Worker, lease_id: str) -> None:
        import aiohttp

        try:
            async with self._session.post(f"{worker.url}/api/v1/release_device",
                                          json={"api_version": API_VERSION, "lease_id": lease_id},
                                          headers=_auth(worker), timeout=aiohttp.ClientTimeout(total=10)) as resp:
                await resp.read()
        except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError):
            pass  # the node expires the lease on its own


def _auth(worker: Worker) -> dict[str, str]:
    return {"Authorization": f"Bearer {worker.secret}"}


def _check_binding(data: Any, verdict: Verdict, dispatch: dict[str, str]) -> None:
    """The answer must be for this dispatch: same dispatch id, task and candidate, echoed back."""
    echo = data.get("dispatch") if isinstance(data, dict) else None
    problems = []
    if not isinstance(echo, dict):
        problems.append("no dispatch echo")
    else:
        for key, sent in dispatch.items():
            if echo.get(key) != sent:
                problems.append(f"{key} {str(echo.get(key))[:16]!r} != {sent[:16]!r}")
    if verdict.task_id and verdict.task_id != dispatch["task_id"]:
        problems.append("verdict is for another task")
    if verdict.candidate_sha and verdict.candidate_sha != dispatch["candidate_sha"]:
        problems.append("verdict is for another candidate")
    if problems:
        raise _Retry("verdict_mismatch", exclude=True, refused="; ".join(problems))


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or a <= 0 or b <= 0:
        return None
    return max(a, b) / min(a, b)


def verdicts_disagree(claimed: Verdict, checked: Verdict) -> str | None:
    """Why two verdicts for the same candidate cannot both be honest, or None if they agree."""
    if claimed.status != checked.status:
        return f"status {claimed.status} vs {checked.status}"
    kinds = (claimed.device or "").split(":")[0], (checked.device or "").split(":")[0]
    if kinds[0] != kinds[1]:
        return f"device {claimed.device or '-'} vs {checked.device or '-'}"
    a, b = claimed.timing, checked.timing
    if (a is None) != (b is None):
        return "timing reported by one node only"
    if a is None or b is None:
        return None
    if a.kind != b.kind:
        return f"timing kind {a.kind} vs {b.kind}"
    limit = GPU_TIMING_RATIO if a.kind == "gpu" else INTERPRETER_TIMING_RATIO
    for name in ("candidate_ms", "speedup_eager"):
        ratio = _ratio(getattr(a, name), getattr(b, name))
        if ratio is not None and ratio > limit:
            return f"{name} {getattr(a, name):.4g} vs {getattr(b, name):.4g}"
    if (a.speedup_eager is None) != (b.speedup_eager is None):
        return "speedup claimed by one node only"
    return None


async def _event(ctx: DispatchContext, type_: str, data: dict) -> None:
    # A durable write waits for fsync: off the event loop, so other dispatches and requests go on.
    await asyncio.to_thread(ctx.add_event, type_, data)


async def _json_or_none(resp) -> Any:
    try:
        return await resp.json(content_type=None)
    except ValueError:
        return None


def _error_message(data: Any) -> str:
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        return str(data["error"].get("message", ""))[:300]
    return ""


def _raise_for_status(status: int, headers, data: Any) -> None:
    if status == 503:
        try:
            wait = min(float(headers.get("Retry-After", "1")), 5.0)
        except ValueError:
            wait = 1.0
        raise _Retry("busy", exclude=False, wait_s=max(wait, 0.05))
    if status in (401, 403):
        raise _Retry("unauthorised", exclude=True, unreachable=True)
    if status >= 500:
        raise _Retry(f"node_error_{status}", exclude=True)


def _verdict_from_response(status: int, headers, data: Any) -> Verdict:
    if status == 200:
        if isinstance(data, dict) and isinstance(data.get("verdict"), dict):
            try:
                return Verdict.from_dict(data["verdict"])
            except (TypeError, ValueError):
                pass
        raise _Retry("bad_response", exclude=True)
    _raise_for_status(status, headers, data)
    if status == 413:
        return Verdict(status="rejected", device="", message="candidate is larger than the node accepts")
    # Any other 4xx: the node refused this request; another node would refuse it too.
    return Verdict(status="crashed", device="",
                   message=f"node refused the candidate (HTTP {status}): {_error_message(data)}")
