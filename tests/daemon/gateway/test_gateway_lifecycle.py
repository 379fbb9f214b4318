"""The gateway as systemd sees it: sd_notify READY/STOPPING, exit 78 on bad config, worker expiry."""

import signal
import socket
import subprocess
import sys

import pytest

from gw_helpers import env_for, request, start_gateway, submit_body, wait_until


def test_notify_socket_sees_ready_then_stopping(tmp_path):
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(30)
    gateway = start_gateway(tmp_path, tmp_path / "gw.db", env_extra={"NOTIFY_SOCKET": path})
    try:
        messages = [sock.recv(4096).decode()]
        assert "READY=1" in messages[0]
        assert request(f"{gateway.url}/readyz", token=None).status == 200
        gateway.proc.send_signal(signal.SIGTERM)
        while "STOPPING=1" not in messages[-1]:
            messages.append(sock.recv(4096).decode())
        assert gateway.proc.wait(30) == 0
        assert any("state state=stopped" in line for line in gateway.lines)
    finally:
        gateway.stop()
        sock.close()


def _run_gateway(tmp_path, *args, env=None):
    return subprocess.run([sys.executable, "-m", "kgen", "gateway", "start", "--db", str(tmp_path / "g.db"), *args],
                          env=env or env_for(tmp_path), capture_output=True, text=True, timeout=60)


def test_no_token_is_exit_78(tmp_path):
    env = env_for(tmp_path)
    env.pop("KGEN_TOKEN")
    result = _run_gateway(tmp_path, "--port", "0", env=env)
    assert result.returncode == 78
    assert "no token" in result.stderr and result.stderr.count("\n") <= 2


def test_port_in_use_is_exit_78(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = _run_gateway(tmp_path, "--port", str(busy.getsockname()[1]))
    assert result.returncode == 78
    assert "address already in use" in result.stderr


@pytest.mark.parametrize("args", [["--port", "70000"], ["--heartbeat-ttl", "-1", "--port", "0"],
                                  ["--max-queue", "0", "--port", "0"], ["--max-running", "0", "--port", "0"],
                                  ["--stream-heartbeat", "0", "--port", "0"]])
def test_bad_settings_are_exit_78(tmp_path, args):
    result = _run_gateway(tmp_path, *args)
    assert result.returncode == 78, result.stderr


def test_unreadable_database_is_exit_78(tmp_path):
    (tmp_path / "g.db").write_bytes(b"this is not a sqlite file" * 100)
    result = _run_gateway(tmp_path, "--port", "0")
    assert result.returncode == 78, result.stderr
    assert "database" in result.stderr


def test_missed_heartbeats_make_a_worker_unhealthy_then_remove_it(tmp_path):
    gateway = start_gateway(tmp_path, tmp_path / "gw.db", "--heartbeat-ttl", "1")
    try:
        body = {"api_version": "v1", "url": "http://127.0.0.1:9", "backend": "cpu", "arch": "x", "capacity": 1}
        worker_id = request(f"{gateway.url}/api/v1/workers/register", "POST", body).json()["worker_id"]

        def health():
            workers = request(f"{gateway.url}/api/v1/workers").json()["workers"]
            return {w["worker_id"]: w["healthy"] for w in workers}.get(worker_id, "gone")

        assert health() is True
        assert wait_until(lambda: health() is False, 10, 0.05)
        # Unhealthy workers serve nothing: the backend is now unsupported.
        reply = request(f"{gateway.url}/api/v1/jobs", "POST", submit_body())
        assert reply.status == 422 and reply.json()["error"]["served"] == []
        assert wait_until(lambda: health() == "gone", 15, 0.1)
        assert any("reason=heartbeat_expired" in line for line in gateway.lines)
        gone = request(f"{gateway.url}/api/v1/workers/{worker_id}/heartbeat", "POST", {"api_version": "v1"})
        assert gone.status == 404  # the node's cue to register again
    finally:
        gateway.stop()
