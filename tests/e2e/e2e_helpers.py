"""A real cluster for the acceptance tests: one gateway and cpu nodes, each its own process."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "daemon" / "node"))

from node_helpers import HANGING_SRC, HONEST_SRC, TASK_SRC, TOKEN, Daemon, daemon_env, wait_until  # noqa: E402

from kgen.core.client import Client  # noqa: E402

__all__ = ["Cluster", "HANGING_SRC", "HONEST_SRC", "TASK_SRC", "TOKEN", "Daemon", "daemon_env", "kgen", "wait_until"]


def kgen(*args: str, env: dict, timeout: float = 240) -> subprocess.CompletedProcess:
    """Run the real `kgen` CLI in a subprocess."""
    return subprocess.run([sys.executable, "-m", "kgen", *args], env=env, capture_output=True, text=True, timeout=timeout)


class Cluster:
    def __init__(self, home: Path, *, nodes: int = 2, devices_per_node: int = 1):
        self.home = home
        self.env = daemon_env(home)
        self.db = home / "gateway.db"
        self.gateway = self.start_gateway()
        self.nodes = [self.start_node(devices_per_node) for _ in range(nodes)]
        self.env["KGEN_GATEWAY_URL"] = self.gateway.url
        assert wait_until(lambda: len([w for w in self.client.list_workers() if w["healthy"]]) == nodes, 30), \
            self.client.list_workers()

    def start_gateway(self, port: int = 0) -> Daemon:
        return Daemon(["gateway", "start", "--port", str(port), "--db", str(self.db), "--stream-heartbeat", "1"],
                      self.env, "gateway")

    def node_token(self) -> Path:
        """A fresh node token (one per node, as in a real deployment), in a 0600 file."""
        done = kgen("token", "create", "--role", "node", "--json", "--gateway", self.gateway.url, env=self.env)
        assert done.returncode == 0, done.stderr
        answer = json.loads(done.stdout)
        path = self.home / f"{answer['token']['name']}.token"
        path.write_text(answer["secret"] + "\n")
        path.chmod(0o600)
        return path

    def start_node(self, devices: int) -> Daemon:
        return Daemon(["node", "start", "--port", "0", "--slots", str(devices), "--gateway", self.gateway.url,
                       "--token-file", str(self.node_token())], self.env, "node")

    @property
    def client(self) -> Client:
        return Client(self.gateway.url, TOKEN, timeout=30)

    def task_file(self, name: str = "relu2.py", source: str = TASK_SRC) -> Path:
        path = self.home / name
        path.write_text(source)
        return path

    def submit(self, *extra: str) -> str:
        done = kgen("submit", str(self.task_file()), "--json", *extra, env=self.env)
        assert done.returncode == 0, self.explain(done)
        return json.loads(done.stdout)["job_id"]

    def wait_for_event(self, job_id: str, kinds: tuple[str, ...], timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.client.events(job_id, follow=False):
                if event.get("type") in kinds:
                    return event
            time.sleep(0.1)
        raise AssertionError(f"no {kinds} event for job {job_id} within {timeout}s")

    def explain(self, done: subprocess.CompletedProcess | None = None) -> str:
        """Everything useful when an assertion fails: the command's output, daemon logs, recent jobs."""
        parts = []
        if done is not None:
            parts += [f"exit {done.returncode}", "stdout:", done.stdout[-3000:], "stderr:", done.stderr[-3000:]]
        try:
            for job in self.client.list_jobs(limit=5):
                parts.append(f"job {job.get('job_id')} {job.get('status')} error={job.get('error')}")
        except Exception as exc:  # the gateway may be the thing that broke
            parts.append(f"(jobs unavailable: {exc})")
        parts += ["gateway log:", *self.gateway.lines[-40:]]
        for node in self.nodes:
            parts += [f"node {node.url} log:", *node.lines[-15:]]
        return "\n".join(parts)

    def close(self) -> None:
        for node in self.nodes:
            node.stop()
        self.gateway.stop()
