"""Node lifecycle with real processes: start-up refusals, SIGTERM drain, re-registration."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from kgen.core.client import ApiError, Client, NodeClient
from kgen.core.errors import Unreachable
from node_helpers import HONEST_SRC, TASK_SRC, TOKEN, Daemon, daemon_env, wait_until


def kgen(args, env, timeout=120):
    return subprocess.run([sys.executable, "-m", "kgen", *args], env=env, capture_output=True, text=True, timeout=timeout)


def test_refuses_to_start_without_token_or_with_a_missing_gpu(tmp_path):
    env = daemon_env(tmp_path)
    del env["KGEN_TOKEN"]
    done = kgen(["node", "start", "--port", "0"], env)
    assert done.returncode == 78 and "no token: give --token-file" in done.stderr
    done = kgen(["node", "start", "--port", "0", "--backend", "cuda", "--token", "t"], env)
    assert done.returncode == 78 and "cuda" in done.stderr.splitlines()[-1]
    done = kgen(["node", "start", "--port", "0", "--devices", "many", "--token", "t"], env)
    assert done.returncode == 78 and "--devices" in done.stderr.splitlines()[-1]
    for args, words in ((["--devices", "0,0"], "listed twice"), (["--devices", "-1"], "negative"),
                        (["--slots", "0"], "--slots must be 1-256"),
                        (["--slots", "2", "--devices", "0"], "give one of them"),
                        (["--compile-for", "sm_x"], "--compile-for")):
        done = kgen(["node", "start", "--port", "0", "--token", "t", *args], env)
        assert done.returncode == 78 and words in done.stderr.splitlines()[-1], (args, done.stderr)


def test_port_in_use_is_a_config_error(tmp_path):
    node = Daemon(["node", "start", "--port", "0", "--slots", "1"], daemon_env(tmp_path), "node")
    try:
        port = node.url.rsplit(":", 1)[1]
        done = kgen(["node", "start", "--port", port], daemon_env(tmp_path))
        assert done.returncode == 78 and f"cannot bind 127.0.0.1:{port}" in done.stderr
    finally:
        node.stop()


def test_sigterm_refuses_new_work_and_finishes_the_running_verification(tmp_path):
    node = Daemon(["node", "start", "--port", "0", "--slots", "1"], daemon_env(tmp_path), "node")
    client = NodeClient(node.url, TOKEN)
    verdicts = []
    worker = threading.Thread(target=lambda: verdicts.append(client.verify(TASK_SRC, HONEST_SRC, timeout_s=60)))
    worker.start()
    assert wait_until(lambda: client.status()["load"] == 1, timeout=10)
    node.proc.terminate()
    assert wait_until(lambda: any("state=stopping" in line for line in node.lines), timeout=10)
    with pytest.raises((ApiError, Unreachable)) as refused:
        client.acquire()
    if isinstance(refused.value, ApiError):
        assert refused.value.status == 503 and refused.value.code == "draining"
    worker.join(90)
    assert verdicts and verdicts[0]["status"] == "correct"
    assert node.proc.wait(30) == 0


def test_reregisters_when_the_gateway_forgets_it(tmp_path):
    env = daemon_env(tmp_path)
    gw = Daemon(["gateway", "start", "--port", "0", "--db", str(tmp_path / "gw.db"), "--heartbeat-ttl", "2"], env, "gateway")
    node = Daemon(["node", "start", "--port", "0", "--slots", "1", "--gateway", gw.url], env, "node")
    try:
        client = Client(gw.url, TOKEN)
        assert wait_until(lambda: len(client.list_workers()) == 1, timeout=20)
        first = client.list_workers()[0]["worker_id"]
        client.remove_worker(first)
        assert wait_until(lambda: [w["url"] for w in client.list_workers()] == [node.url], timeout=20)
        assert client.list_workers()[0]["worker_id"] != first
        assert any("reregister" in line for line in node.lines)
    finally:
        node.stop()
        gw.stop()


def test_sd_notify_ready_then_stopping(tmp_path):
    import socket

    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(30)
        env = daemon_env(tmp_path)
        env["NOTIFY_SOCKET"] = path
        node = Daemon(["node", "start", "--port", "0", "--slots", "1"], env, "node")
        try:
            assert sock.recv(4096).decode().startswith("READY=1")
            node.proc.terminate()
            assert sock.recv(4096).decode() == "STOPPING=1"
            assert node.proc.wait(30) == 0
        finally:
            node.stop()
