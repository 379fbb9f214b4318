"""Self-registration with the gateway and heartbeats at TTL/2 with jitter.

The node proves itself by registering with its node token (`kgen token create --role node`); the
gateway answers with a per-node secret (`node_secret`), the only credential it will call this node
with, handed to `on_secret` so the node's API accepts it from then on.

The gateway forgets a worker whose heartbeats stop (or after its own restart may answer 404/410):
the node then registers again. An unreachable gateway is retried with capped backoff; the node
keeps serving meanwhile.
"""

from __future__ import annotations

import asyncio
import random
from typing import Callable

import aiohttp

API_VERSION = "v1"


class Registration:
    def __init__(self, gateway_url: str, token: str, advertise_url: str, describe: Callable[[], dict],
                 log: Callable[..., None], *, request_timeout_s: float = 10.0,
                 on_secret: Callable[[str], None] = lambda secret: None):
        self.gateway_url = gateway_url.rstrip("/")
        self.token = token
        self.advertise_url = advertise_url
        self.describe = describe          # -> {backend, arch, capacity, node_id, load, state}
        self.on_secret = on_secret
        self.log = log
        self.worker_id: str | None = None
        self.ttl_s = 30.0
        self._timeout = aiohttp.ClientTimeout(total=request_timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task | None = None
        self.registered = asyncio.Event()

    @property
    def _headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}

    async def _post(self, path: str, body: dict) -> tuple[int, dict]:
        assert self._session is not None
        async with self._session.post(self.gateway_url + path, json={"api_version": API_VERSION, **body},
                                      headers=self._headers) as resp:
            try:
                data = await resp.json(content_type=None)
            except (ValueError, aiohttp.ContentTypeError):
                data = {}
            return resp.status, data if isinstance(data, dict) else {}

    async def register(self) -> None:
        info = self.describe()
        status, data = await self._post("/api/v1/workers/register", {
            "url": self.advertise_url, "backend": info["backend"], "arch": info["arch"],
            "capacity": info["capacity"], "node_id": info["node_id"]})
        if status >= 400 or "worker_id" not in data:
            message = (data.get("error") or {}).get("message", "") if isinstance(data.get("error"), dict) else ""
            raise RuntimeError(f"gateway answered {status} {message}".strip())
        secret = data.get("node_secret")
        if isinstance(secret, str) and secret:
            self.on_secret(secret)
        self.worker_id = data["worker_id"]
        ttl = data.get("heartbeat_ttl_s")
        if isinstance(ttl, (int, float)) and ttl > 0:
            self.ttl_s = float(ttl)
        self.registered.set()
        self.log("registered", gateway=self.gateway_url, worker_id=self.worker_id, ttl_s=self.ttl_s)

    async def heartbeat(self) -> bool:
        """False when the gateway no longer knows this worker (so it must register again)."""
        info = self.describe()
        status, _ = await self._post(f"/api/v1/workers/{self.worker_id}/heartbeat",
                                     {"load": info["load"], "state": info["state"]})
        if status in (404, 410):
            return False
        if status in (401, 403):   # revoked, or bound to another worker: a config problem, say so
            raise RuntimeError(f"heartbeat answered {status}: the gateway refuses this node token")
        if status >= 400:
            raise RuntimeError(f"heartbeat answered {status}")
        return True

    async def _loop(self) -> None:
        backoff = 0.5
        while True:
            try:
                if self.worker_id is None:
                    await self.register()
                elif not await self.heartbeat():
                    self.log("reregister", reason="gateway forgot this worker", worker_id=self.worker_id)
                    self.worker_id = None
                    self.registered.clear()
                    continue
                backoff = 0.5
                await asyncio.sleep(self.ttl_s / 2 * random.uniform(0.8, 1.0))
            except asyncio.CancelledError:
                raise
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError, RuntimeError) as exc:
                self.log("gateway_unreachable" if not isinstance(exc, RuntimeError) else "gateway_error",
                         gateway=self.gateway_url, error=str(exc) or type(exc).__name__, retry_s=round(backoff, 1))
                await asyncio.sleep(backoff * random.uniform(0.8, 1.2))
                backoff = min(backoff * 2, max(self.ttl_s / 2, 1.0))

    def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=self._timeout)
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self, *, deregister: bool = True) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        if deregister and self.worker_id and self._session is not None:
            try:
                async with self._session.delete(f"{self.gateway_url}/api/v1/workers/{self.worker_id}",
                                                headers=self._headers) as resp:
                    self.log("deregistered", worker_id=self.worker_id, status=resp.status)
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                self.log("deregister_failed", error=str(exc) or type(exc).__name__)
        if self._session is not None:
            await self._session.close()
