"""A real gateway (and, where needed, a real cpu node) in subprocesses on ephemeral ports,
and a tiny stdlib HTTP client for talking to them."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

TOKEN = "gateway-test-token"

TASK_SRC = '''
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return torch.relu(x) * 2.0


def get_inputs():
    return [torch.randn(64)]


def get_init_inputs():
    return []
'''


def env_for(home, **extra) -> dict:
    env = dict(os.environ)
    for key in ("KGEN_GATEWAY_URL", "KGEN_NODE_GATEWAY", "NOTIFY_SOCKET", "KGEN_GATEWAY_PORT",
                "KGEN_GATEWAY_DB", "KGEN_GATEWAY_HOST", "WATCHDOG_USEC", "WATCHDOG_PID"):
        env.pop(key, None)
    env.update({"KGEN_HOME": str(home), "KGEN_TOKEN": TOKEN, "TRITON_INTERPRET": "1", **extra})
    return env


class Daemon:
    """A kgen daemon subprocess; stderr is drained in a thread so the pipe never fills."""

    def __init__(self, args: list[str], env: dict, name: str, timeout: float = 90.0):
        self.name = name
        self.lines: list[str] = []
        self.proc = subprocess.Popen([sys.executable, "-m", "kgen", *args], env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        self.url = None
        found = threading.Event()

        def drain():
            for line in self.proc.stderr:
                self.lines.append(line.rstrip())
                match = re.search(rf"kgen-{name}: listening url=(\S+)", line)
                if match and not found.is_set():
                    self.url = match.group(1)
                    found.set()
            found.set()

        threading.Thread(target=drain, daemon=True).start()
        if not found.wait(timeout) or self.url is None:
            self.stop()
            raise RuntimeError(f"{name} did not start: " + "\n".join(self.lines[-20:]))

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def start_gateway(home, db, *extra: str, env_extra: dict | None = None) -> Daemon:
    return Daemon(["gateway", "start", "--port", "0", "--db", str(db), *extra],
                  env_for(home, **(env_extra or {})), "gateway")


def start_node(home, *extra: str) -> Daemon:
    return Daemon(["node", "start", "--port", "0", "--backend", "cpu", "--devices", "1", *extra],
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

