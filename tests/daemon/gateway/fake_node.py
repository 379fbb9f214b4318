"""A fake node for trust tests: a small real aiohttp server on 127.0.0.1 that speaks the node API
(registers itself, heartbeats, answers /api/v1/verify) and lies in a chosen way."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request

from aiohttp import web

from kgen.core.verify.verdict import Timing, Verdict


class FakeNode:
    """modes: "liar" (correct, 10000x, whatever it is sent), "mismatch" (a verdict for another
    dispatch), "slow" (answers correct after `delay_s`)."""

    def __init__(self, mode: str, *, delay_s: float = 0.0):
        self.mode, self.delay_s = mode, delay_s
        self.seen_auth: list[str] = []
        self.verifies = 0
        self.answered = threading.Event()
        self.secret: str | None = None
        self.worker_id: str | None = None
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop = threading.Event()
        self.url = ""
        threading.Thread(target=self._serve, daemon=True).start()
        assert self._ready.wait(10)

    # -- server ----------------------------------------------------------------
    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/api/v1/verify", self._verify)
        app.router.add_get("/api/v1/status", self._status)
        self._runner = runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        port = runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        self._ready.set()
        self._loop.run_forever()

    def _authorised(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        self.seen_auth.append(header)
        return self.secret is not None and header == f"Bearer {self.secret}"

    async def _status(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"api_version": "v1", "error": {"code": "unauthorised"}}, status=401)
        return web.json_response({"api_version": "v1", "backend": "cpu", "capacity": 1024, "load": 0})

    async def _verify(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"api_version": "v1", "error": {"code": "unauthorised"}}, status=401)
        body = await request.json()
        self.verifies += 1
        dispatch = dict(body.get("dispatch") or {})
        verdict = Verdict(status="correct", task_id=dispatch.get("task_id", ""),
                          candidate_sha=dispatch.get("candidate_sha", ""), device="cuda:0",
                          device_name="NVIDIA H100 (fake)", pure=True, kernels_launched=1,
                          timing=Timing(kind="gpu", candidate_ms=0.001, eager_ms=10.0, compile_ms=10.0,
                                        speedup_eager=10000.0, speedup_compile=10000.0, repeats=100))
        if self.mode == "mismatch":
            dispatch["dispatch_id"] = "0" * 32          # a verdict for some other dispatch
        if self.mode == "slow":
            await asyncio.sleep(self.delay_s)
        self.answered.set()
        return web.json_response({"api_version": "v1", "verdict": verdict.to_dict(), "dispatch": dispatch,
                                  "device": "cuda:0", "node_id": "fake"})

    # -- the node's side of registration ------------------------------------------
    def register(self, gateway: str, token: str, capacity: int = 1024) -> tuple[int, dict]:
        status, data = _post(f"{gateway}/api/v1/workers/register", token,
                             {"url": self.url, "backend": "cpu", "arch": "x86_64", "capacity": capacity,
                              "node_id": "fake"})
        if status == 200:
            self.secret, self.worker_id = data["node_secret"], data["worker_id"]
            threading.Thread(target=self._heartbeats, args=(gateway, token), daemon=True).start()
        return status, data

    def _heartbeats(self, gateway: str, token: str) -> None:
        while not self._stop.wait(1.0):
            _post(f"{gateway}/api/v1/workers/{self.worker_id}/heartbeat", token, {"load": 0})

    def close(self) -> None:
        self._stop.set()
        done = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)
        try:
            done.result(10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)


def _post(url: str, token: str, body: dict, method: str = "POST") -> tuple[int, dict]:
    req = urllib.request.Request(url, data=json.dumps({"api_version": "v1", **body}).encode(), method=method)
    req.add_header("Content-Type", "application/json")
    req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def wait_for(predicate, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    return None
