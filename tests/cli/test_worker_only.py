"""Worker-only mode: `kgen verify --node URL` and `kgen run --node URL` against a real node daemon.

Generation and the job stay on this machine; every candidate goes to the node over HTTP
(acquire_device -> verify/profile -> release_device). A recording relay in front of the node
shows which calls the CLI really made.
"""

from __future__ import annotations

import http.server
import json
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "daemon" / "node"))

from node_helpers import TOKEN, Daemon, daemon_env  # noqa: E402

from kgen.core.client import NodeClient  # noqa: E402

TASK = ROOT / "examples" / "elementwise.py"
HONEST = ROOT / "examples" / "elementwise_triton.py"


class Relay:
    """Forwards every request to the node unchanged and records (method, path, lease_id)."""

    def __init__(self, target: str):
        self.calls: list[tuple[str, str, str | None]] = []
        self.in_flight = self.most_in_flight = 0
        lock = threading.Lock()
        relay = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _forward(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)) or None
                lease = None
                if body:
                    try:
                        lease = json.loads(body).get("lease_id")
                    except ValueError:
                        pass
                with lock:
                    relay.calls.append((self.command, self.path, lease))
                    relay.in_flight += 1
                    relay.most_in_flight = max(relay.most_in_flight, relay.in_flight)
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "content-type")}
                request = urllib.request.Request(target + self.path, data=body, method=self.command, headers=headers)
                try:
                    with urllib.request.urlopen(request, timeout=300) as resp:
                        status, raw = resp.status, resp.read()
                except urllib.error.HTTPError as exc:
                    status, raw = exc.code, exc.read()
                finally:
                    with lock:
                        relay.in_flight -= 1
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = _forward

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def paths(self) -> list[str]:
        return [path for _, path, _ in self.calls]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    daemon = Daemon(["node", "start", "--port", "0", "--backend", "cpu", "--slots", "2"],
                    daemon_env(tmp_path_factory.mktemp("node-home")), "node")
    yield daemon
    daemon.stop()


@pytest.fixture
def relay(node):
    r = Relay(node.url)
    yield r
    r.close()


@pytest.fixture
def env(tmp_path):
    # The client side: its own home, the cluster token in the environment.
    return daemon_env(tmp_path / "client-home", NO_COLOR="1", COLUMNS="200")


def kgen(args, env, cwd, timeout=240):
    return subprocess.run([sys.executable, "-m", "kgen", *map(str, args)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def error_line(proc) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.startswith("kgen: error:")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def no_lease_held(node) -> bool:
    return not any(d["leased"] for d in NodeClient(node.url, TOKEN).status()["devices"])


def test_verify_on_node_json_verdict(relay, node, env, tmp_path):
    proc = kgen(["verify", TASK, HONEST, "--node", relay.url, "--json"], env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    verdict = json.loads(proc.stdout)
    assert verdict["status"] == "correct" and verdict["pure"] and verdict["kernels_launched"] >= 1
    assert len(verdict["trials"]) >= 3
    assert verdict["timing"]["kind"] == "interpreter"  # profiled by default, like local verify
    assert "/api/v1/profile" in relay.paths()
    assert no_lease_held(node)


def test_verify_on_node_human_summary_and_wrong_candidate(relay, env, tmp_path):
    wrong = tmp_path / "wrong.py"
    wrong.write_text(HONEST.read_text().replace("+ y", "- y"))
    proc = kgen(["verify", TASK, wrong, "--node", relay.url, "--no-profile"], env, tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.startswith("incorrect")
    assert relay.paths()[-1] == "/api/v1/verify"


def test_verify_on_a_leased_device(node, relay, env, tmp_path):
    client = NodeClient(node.url, TOKEN)
    lease = client.acquire(ttl_s=120)
    try:
        proc = kgen(["verify", TASK, HONEST, "--node", relay.url, "--lease", lease["lease_id"], "--json"],
                    env, tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["status"] == "correct"
        assert relay.calls[-1][2] == lease["lease_id"]
    finally:
        client.release(lease["lease_id"])
    gone = kgen(["verify", TASK, HONEST, "--node", node.url, "--lease", lease["lease_id"]], env, tmp_path)
    assert gone.returncode == 2 and "lease" in error_line(gone)


def test_wrong_token_exits_4(node, env, tmp_path):
    proc = kgen(["verify", TASK, HONEST, "--node", node.url, "--token", "not-the-token"], env, tmp_path)
    assert proc.returncode == 4
    assert node.url in error_line(proc)
    env = {**env, "KGEN_TOKEN": "not-the-token-either"}
    run = kgen(["run", TASK, "--node", node.url], env, tmp_path)
    assert run.returncode == 4 and node.url in error_line(run)


def test_dead_node_exits_3_and_says_where_the_url_came_from(env, tmp_path):
    url = dead_url()
    proc = kgen(["verify", TASK, HONEST, "--node", url], env, tmp_path)
    assert proc.returncode == 3
    assert f"cannot reach node at {url} (from flag)" in error_line(proc)
    run = kgen(["run", TASK, "--node", url], env, tmp_path)
    assert run.returncode == 3 and f"cannot reach node at {url}" in error_line(run)


def test_contradictory_options_exit_2(node, env, tmp_path):
    proc = kgen(["verify", TASK, HONEST, "--node", node.url, "--device", "cpu"], env, tmp_path)
    assert proc.returncode == 2 and "--device" in error_line(proc)


def test_trials_travel_to_the_node(relay, env, tmp_path):
    proc = kgen(["verify", TASK, HONEST, "--node", relay.url, "--trials", "4", "--no-profile", "--json"], env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)["trials"]) == 4


def test_lease_without_node_and_bad_url_exit_2(env, tmp_path):
    proc = kgen(["verify", TASK, HONEST, "--lease", "abc"], env, tmp_path)
    assert proc.returncode == 2 and "--node" in error_line(proc)
    proc = kgen(["verify", TASK, HONEST, "--node", "127.0.0.1:9"], env, tmp_path)
    assert proc.returncode == 2 and "http://" in error_line(proc)


def test_run_generates_locally_and_verifies_on_the_node(node, relay, env, tmp_path):
    out = tmp_path / "best.py"
    proc = kgen(["run", TASK, "--node", relay.url, "--json", "-o", out], env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["status"] == "succeeded"
    assert result["best"]["verdict"]["status"] == "correct" and result["best"]["path"] == str(out)
    assert "class ModelNew" in out.read_text()
    # Each candidate: its own lease, profiled under that lease, then released.
    profiled = [lease for method, path, lease in relay.calls if path == "/api/v1/profile"]
    assert len(profiled) == len(result["candidates"]) >= 1 and all(profiled)
    paths = relay.paths()
    assert paths.count("/api/v1/acquire_device") == paths.count("/api/v1/release_device") == len(profiled)
    assert no_lease_held(node)


def test_run_with_a_backend_the_node_does_not_serve_exits_2(node, env, tmp_path):
    proc = kgen(["run", TASK, "--node", node.url, "--backend", "cuda"], env, tmp_path)
    assert proc.returncode == 2 and "serves 'cpu'" in error_line(proc)


def test_evolve_round_is_verified_on_the_node_within_its_capacity(node, relay, env, tmp_path):
    # The node has 2 devices; 3 candidates per round must never hold more than 2 at once.
    proc = kgen(["run", TASK, "--node", relay.url, "--job-type", "evolve", "--max-rounds", "1",
                 "--parallel-num", "3", "--json", "-o", tmp_path / "best.py"], env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["best"]["verdict"]["status"] == "correct"
    verified = [c for c in result["candidates"] if c["verdict"]]
    assert relay.paths().count("/api/v1/profile") == len(verified) >= 2
    assert relay.most_in_flight <= 2, relay.most_in_flight
    assert no_lease_held(node)
