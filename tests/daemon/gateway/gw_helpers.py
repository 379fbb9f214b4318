"""A real gateway (and, where needed, a real cpu node) in subprocesses on ephemeral ports,
and a tiny stdlib HTTP client for talking to them."""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

# The daemon helpers are shared with the node and e2e tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "node"))
from node_helpers import TASK_SRC, TOKEN, Daemon, daemon_env, wait_until  # noqa: E402,F401


env_for = daemon_env


def start_gateway(home, db, *extra: str, env_extra: dict | None = None) -> Daemon:
    return Daemon(["gateway", "start", "--port", "0", "--db", str(db), *extra],
                  env_for(home, **(env_extra or {})), "gateway")


def start_node(home, *extra: str) -> Daemon:
    return Daemon(["node", "start", "--port", "0", "--backend", "cpu", "--slots", "1", *extra],
                  env_for(home), "node")


class Reply:
    def __init__(self, status: int, headers, body: bytes):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)

    def error_code(self) -> str:
        data = self.json()
        assert data["api_version"] == "v1", data
        return data["error"]["code"]


def request(url: str, method: str = "GET", body=None, *, token: str | None = TOKEN, raw: bytes | None = None,
            timeout: float = 60.0) -> Reply:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return Reply(resp.status, resp.headers, resp.read())
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, exc.headers, exc.read())


def submit_body(**fields) -> dict:
    return {"api_version": "v1", "task": TASK_SRC, "backend": "cpu", "job_type": "single", **fields}


def read_events(base: str, job_id: str, after: int = 0, follow: bool = False, timeout: float = 60.0) -> list[dict]:
    url = f"{base}/api/v1/jobs/{job_id}/events?after={after}&follow={1 if follow else 0}"
    reply = request(url, timeout=timeout)
    assert reply.status == 200, reply.body
    return [json.loads(line) for line in reply.body.decode().splitlines() if line.strip()]


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return None

