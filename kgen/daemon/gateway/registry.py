"""Registered workers (nodes): in memory for scheduling, mirrored in the store for restarts.

A worker whose heartbeat is older than one TTL is unhealthy (not scheduled); after
`remove_after_ttls` TTLs a background sweeper removes it. A dispatch that cannot reach a
worker marks it unhealthy at once; its next heartbeat makes it healthy again.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from kgen.core.errors import NotFound

SCHEDULABLE_STATES = ("running",)


@dataclass
class Worker:
    worker_id: str
    url: str
    backend: str
    arch: str
    capacity: int
    node_id: str = ""
    load: int = 0
    state: str = "running"
    last_heartbeat: float = field(default_factory=time.time)
    registered_at: float = field(default_factory=time.time)
    unreachable: bool = False      # set by a failed dispatch, cleared by a heartbeat
    secret: str = ""               # the gateway's credential for calling this node (never listed)
    suspect: str = ""              # why a cross-check disagreed with this node ("" = not suspect)

    def public(self, ttl: float, now: float | None = None) -> dict[str, Any]:
        data = asdict(self)
        data.pop("unreachable")
        data.pop("secret")
        data["healthy"] = self.healthy(ttl, now)
        return data

    def healthy(self, ttl: float, now: float | None = None) -> bool:
        # A suspect node is never scheduled again; only an admin's `kgen worker remove` clears it.
        now = time.time() if now is None else now
        return (not self.unreachable and not self.suspect and self.state in SCHEDULABLE_STATES
                and now - self.last_heartbeat <= ttl)


class Registry:
    def __init__(self, store, ttl: float, *, remove_after_ttls: float = 3.0,
                 on_change: Callable[[], None] | None = None, log: Callable[..., None] | None = None):
        self.store = store
        self.ttl = ttl
        self.remove_after = ttl * remove_after_ttls
        self._workers: dict[str, Worker] = {}
        self._on_change = on_change or (lambda: None)
        self._log = log or (lambda *a, **k: None)
        self._sweeper: asyncio.Task | None = None

    # -- persistence ----------------------------------------------------------
    def load(self) -> None:
        """Workers known before a restart come back with their old heartbeat time, so stale
        ones expire normally instead of being trusted."""
        for row in self.store.list_workers():
            info = row.get("info") or {}
            w = Worker(
                worker_id=row["worker_id"], url=row["url"], backend=row["backend"],
                arch=row.get("arch") or "", capacity=int(row.get("capacity") or 1),
                node_id=str(info.get("node_id") or ""), load=int(info.get("load") or 0),
                state=str(info.get("state") or "running"),
                last_heartbeat=float(row.get("last_seen") or 0.0),
                registered_at=float(row.get("registered_at") or 0.0),
                secret=row.get("secret") or "", suspect=row.get("suspect") or "",
            )
            self._workers[w.worker_id] = w

    @staticmethod
    def _info(w: Worker) -> dict[str, Any]:
        return {"node_id": w.node_id, "load": w.load, "state": w.state}

    # -- API ------------------------------------------------------------------
    def log(self, event: str, **fields: Any) -> None:
        self._log(event, **fields)

    def register(self, *, url: str, backend: str, arch: str, capacity: int, node_id: str = "",
                 secret: str = "", worker_id: str | None = None) -> Worker:
        url = url.rstrip("/")
        # The store keys workers by URL: a node that re-registers (after a gateway restart or a
        # 404 heartbeat) keeps its worker id.
        existing = next((w for w in self._workers.values() if w.url == url), None)
        state = {"node_id": node_id or (existing.node_id if existing else ""), "load": 0, "state": "running"}
        row = self.store.upsert_worker(url, backend, arch, capacity, info=state, secret=secret,
                                       worker_id=worker_id)
        worker = self._workers.get(row["worker_id"])
        if worker is None:
            if existing is not None:
                self._workers.pop(existing.worker_id, None)
            worker = Worker(worker_id=row["worker_id"], url=url, backend=backend, arch=arch, capacity=capacity,
                            registered_at=float(row.get("registered_at") or time.time()))
            self._workers[worker.worker_id] = worker
        worker.backend, worker.arch, worker.capacity = backend, arch, capacity
        worker.node_id, worker.load, worker.state = state["node_id"], 0, "running"
        worker.unreachable, worker.last_heartbeat = False, time.time()
        worker.secret, worker.suspect = secret, row.get("suspect") or ""
        self._log("worker_registered", worker_id=worker.worker_id, url=url, backend=backend,
                  arch=arch or "-", capacity=capacity)
        self._on_change()
        return worker

    def heartbeat(self, worker_id: str, *, load: int | None = None, state: str | None = None) -> Worker:
        worker = self.get(worker_id)
        worker.last_heartbeat = time.time()
        worker.unreachable = False
        if load is not None:
            worker.load = load
        if state is not None:
            worker.state = state
        try:
            self.store.touch_worker(worker_id, info=self._info(worker))
        except NotFound:  # removed from the store behind our back: forget it, the node re-registers
            self._workers.pop(worker_id, None)
            raise
        self._on_change()
        return worker

    def remove(self, worker_id: str, reason: str = "deregistered") -> None:
        worker = self.get(worker_id)
        del self._workers[worker_id]
        try:
            self.store.remove_worker(worker_id)
        except NotFound:
            pass
        self._log("worker_removed", worker_id=worker_id, url=worker.url, reason=reason)
        self._on_change()

    def get(self, worker_id: str) -> Worker:
        worker = self._workers.get(worker_id)
        if worker is None:
            raise NotFound(f"unknown worker {worker_id}")
        return worker

    def all(self) -> list[Worker]:
        return list(self._workers.values())

    def healthy(self) -> list[Worker]:
        now = time.time()
        return [w for w in self._workers.values() if w.healthy(self.ttl, now)]

    def mark_unreachable(self, worker_id: str) -> None:
        worker = self._workers.get(worker_id)
        if worker is not None and not worker.unreachable:
            worker.unreachable = True
            self._log("worker_unreachable", worker_id=worker_id, url=worker.url)

    def mark_suspect(self, worker_id: str, reason: str) -> None:
        worker = self._workers.get(worker_id)
        if worker is not None:
            worker.suspect = reason
        self.store.set_worker_suspect(worker_id, reason)
        self._log("worker_suspect", worker_id=worker_id, reason=reason)
        self._on_change()

    def served(self) -> list[dict[str, str]]:
        """Distinct (backend, arch) pairs healthy workers serve, for unsupported-backend errors."""
        pairs = sorted({(w.backend, w.arch) for w in self.healthy()})
        return [{"backend": b, "arch": a} for b, a in pairs]

    def serves(self, backend: str, arch: str | None) -> bool:
        return any(w.backend == backend and (not arch or w.arch == arch) for w in self.healthy())

    # -- expiry -----------------------------------------------------------------
    def sweep(self, now: float | None = None) -> list[str]:
        now = time.time() if now is None else now
        expired = [w.worker_id for w in self._workers.values() if now - w.last_heartbeat > self.remove_after]
        for worker_id in expired:
            self.remove(worker_id, reason="heartbeat_expired")
        return expired

    def start_sweeper(self) -> None:
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_loop())

    async def stop_sweeper(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            try:
                await self._sweeper
            except asyncio.CancelledError:
                pass

    async def _sweep_loop(self) -> None:
        interval = max(min(self.ttl / 2, 5.0), 0.1)
        was_healthy: set[str] = set()
        while True:
            await asyncio.sleep(interval)
            try:
                now_healthy = {w.worker_id for w in self.healthy()}
                for worker_id in was_healthy - now_healthy:
                    if worker_id in self._workers:
                        self._log("worker_unhealthy", worker_id=worker_id)
                was_healthy = now_healthy
                self.sweep()
            except Exception as exc:  # the sweeper must outlive a store hiccup
                self._log("sweep_error", error=repr(exc))
