"""The SDK against real HTTP servers on 127.0.0.1: error mapping, prefixes, resumable event streams.

The gateway here is a small scripted aiohttp server (real sockets, real NDJSON) so the tests can
drop connections at exact points; the full gateway is exercised in tests/e2e.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading

import pytest
from aiohttp import web

from kgen.core.client import ApiError, Client, WaitTimeout
from kgen.core.errors import BadInput, NotFound, Unauthorised, Unreachable

TOKEN = "client-test-token"
JOB_A = "a" * 31 + "1"
JOB_B = "a" * 30 + "22"
JOB_C = "c" * 32


class ScriptedGateway:
    """Serves a fixed job list and an event stream that drops the connection on the first requests."""

    def __init__(self, drops: int = 2):
        self.events = [{"seq": i, "type": t, "ts": float(i)} for i, t in
                       enumerate(["queued", "running", "round_started", "candidate_generated",
                                  "candidate_verified", "best_updated", "succeeded"], start=1)]
        self.drops = drops
        self.stream_requests: list[int] = []
        self.submits: list[dict] = []
        self.statuses = iter(["queued", "running", "succeeded"])
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()
        self.ready.wait(10)

    def _serve(self):
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_get("/api/v1/jobs", self.list_jobs)
        app.router.add_post("/api/v1/jobs", self.submit)
        app.router.add_get("/api/v1/jobs/{id}", self.get_job)
        app.router.add_get("/api/v1/jobs/{id}/events", self.stream)
        self.runner = web.AppRunner(app)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
        self.ready.set()
        self.loop.run_forever()

    def close(self):
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)

    @staticmethod
    def _authorised(request):
        return request.headers.get("Authorization") == f"Bearer {TOKEN}"

    async def list_jobs(self, request):
        if not self._authorised(request):
            return web.json_response({"api_version": "v1", "error": {"code": "unauthorised", "message": "bad token"}}, status=401)
        return web.json_response({"api_version": "v1", "jobs": [{"job_id": j} for j in (JOB_A, JOB_B, JOB_C)]})

    async def submit(self, request):
        body = await request.json()
        self.submits.append(body)
        if body.get("job_type") == "huge":
            return web.json_response({"api_version": "v1", "error": {"code": "queue_full", "message": "queue full"}},
                                     status=429, headers={"Retry-After": "7"})
        if "task" not in body:
            return web.json_response({"api_version": "v1", "error": {"code": "missing_field", "message": "missing task"}}, status=400)
        return web.json_response({"api_version": "v1", "job_id": JOB_C, "status": "queued"}, status=201)

    async def get_job(self, request):
        job_id = request.match_info["id"]
        if job_id not in (JOB_A, JOB_B, JOB_C):
            return web.json_response({"api_version": "v1", "error": {"code": "not_found", "message": f"no job {job_id}"}}, status=404)
        status = next(self.statuses, "succeeded") if job_id == JOB_C else "running"
        return web.json_response({"api_version": "v1", "job": {"job_id": job_id, "status": status}})

    async def stream(self, request):
        after = int(request.query.get("after", 0))
        self.stream_requests.append(after)
        resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await resp.prepare(request)
        # Resend the last event the client already has: it must not yield it twice.
        pending = [e for e in self.events if e["seq"] >= max(after, 1)]
        if self.drops > 0:
            self.drops -= 1
            for event in pending[:2]:
                await resp.write((json.dumps(event) + "\n").encode())
            await resp.write(b'{"seq": 99, "type": "cut-off')  # half a line, then the connection drops
            request.transport.close()
            return resp
        await resp.write(b'{"type": "heartbeat"}\n')
        for event in pending:
            await resp.write((json.dumps(event) + "\n").encode())
        await resp.write(b'{"type": "end", "status": "succeeded"}\n')
        await resp.write_eof()
        return resp


@pytest.fixture
def gateway():
    server = ScriptedGateway()
    yield server
    server.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_names_the_address_and_its_origin():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(Unreachable) as err:
        Client(url, TOKEN, timeout=2, origin="env KGEN_GATEWAY_URL").list_jobs()
    assert url in err.value.message and "from env KGEN_GATEWAY_URL" in err.value.message
    assert err.value.exit_code == 3


def test_bad_url_is_bad_input():
    with pytest.raises(BadInput):
        Client("ftp://example", TOKEN)


def test_typed_errors(gateway):
    with pytest.raises(Unauthorised):
        Client(gateway.url, "wrong").list_jobs()
    client = Client(gateway.url, TOKEN)
    with pytest.raises(NotFound):
        client.get_status("f" * 32)
    with pytest.raises(ApiError) as err:
        client.submit_job("src", job_type="huge")
    assert err.value.status == 429 and err.value.retry_after == 7.0
    with pytest.raises(BadInput) as bad:
        client.request("POST", "/api/v1/jobs", {})
    assert "missing task" in bad.value.message


def test_submit_sends_only_given_fields(gateway):
    answer = Client(gateway.url, TOKEN).submit_job("TASK", op_name="relu", backend="cpu", job_type="evolve", max_rounds=2)
    assert answer["job_id"] == JOB_C
    assert gateway.submits[-1] == {"api_version": "v1", "task": "TASK", "op_name": "relu", "backend": "cpu",
                                   "job_type": "evolve", "max_rounds": 2}


def test_job_id_prefixes(gateway):
    client = Client(gateway.url, TOKEN)
    assert client.resolve_job_id("c") == JOB_C
    assert client.resolve_job_id("aaaa1".rjust(32, "a")[:32]) == JOB_A
    with pytest.raises(BadInput, match="ambiguous"):
        client.resolve_job_id("aaaa")
    with pytest.raises(BadInput):
        client.resolve_job_id("../etc")
    with pytest.raises(NotFound):
        client.resolve_job_id("b")


def test_events_resume_after_dropped_connections_without_loss_or_repeats(gateway):
    events = list(Client(gateway.url, TOKEN).events(JOB_C))
    seqs = [e["seq"] for e in events if "seq" in e]
    assert seqs == list(range(1, 8))
    assert events[-1] == {"type": "end", "status": "succeeded"}
    assert all(e["type"] != "heartbeat" for e in events)
    assert gateway.stream_requests == [0, 2, 3]   # each reconnect asks after the last seq it got


def test_events_after_skips_what_the_caller_has(gateway):
    gateway.drops = 0
    seqs = [e.get("seq") for e in Client(gateway.url, TOKEN).events(JOB_C, after=5)]
    assert seqs == [6, 7, None]


def test_events_stream_gone_for_good_is_unreachable():
    with pytest.raises(Unreachable):
        list(Client(f"http://127.0.0.1:{free_port()}", TOKEN, timeout=1).events(JOB_C, reconnect_timeout=0.5))


def test_wait_for_completion(gateway):
    job = Client(gateway.url, TOKEN).wait_for_completion(JOB_C, timeout=30, poll_s=0.05)
    assert job["status"] == "succeeded"
    with pytest.raises(WaitTimeout):
        Client(gateway.url, TOKEN).wait_for_completion(JOB_A, timeout=0.3, poll_s=0.05)
