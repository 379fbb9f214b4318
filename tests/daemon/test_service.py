"""The shared daemon lifecycle: states, signals, sd_notify and watchdog, in real processes."""

import os
import signal
import socket
import subprocess
import sys
import textwrap

import pytest

from kgen.daemon.service import sd_notify

SCRIPT = textwrap.dedent('''
    import asyncio, os, sys
    from kgen.daemon.service import Service

    class Demo(Service):
        async def on_start(self):
            if os.environ.get("FAIL_START"):
                raise RuntimeError("cannot start")
            self.log("listening", url="demo://")

        async def on_stop(self):
            self.log("cleaned_up")
            if os.environ.get("FAIL_STOP"):
                raise RuntimeError("stop hook failed")

        async def on_reload(self):
            self.log("reloaded_config")

    sys.exit(Demo("demo").run())
''')


def _notify_socket(tmp_path):
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(20)
    return sock, path


def _start(tmp_path, **env):
    full = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
    full.update(env)
    return subprocess.Popen([sys.executable, "-c", SCRIPT], env=full, stderr=subprocess.PIPE, text=True)


def _recv_until(sock, needle):
    seen = []
    while not any(needle in m for m in seen):
        seen.append(sock.recv(4096).decode())
    return seen


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_lifecycle_states_and_notifications(tmp_path, sig):
    sock, path = _notify_socket(tmp_path)
    proc = _start(tmp_path, NOTIFY_SOCKET=path)
    try:
        assert any("READY=1" in m for m in _recv_until(sock, "READY=1"))
        proc.send_signal(signal.SIGHUP)
        assert _recv_until(sock, "RELOADING=1")
        _recv_until(sock, "READY=1")
        proc.send_signal(sig)
        _recv_until(sock, "STOPPING=1")
        assert proc.wait(20) == 0
    finally:
        proc.kill()
        sock.close()
    lines = proc.stderr.read().splitlines()
    states = [line.split("state=")[1] for line in lines if " state state=" in line]
    assert states == ["initializing", "running", "stopping", "stopped"]
    assert any(line == "kgen-demo: reloaded_config" for line in lines)
    assert any(line == "kgen-demo: cleaned_up" for line in lines)
    assert all(line.startswith("kgen-demo: ") for line in lines), lines


def test_a_failing_start_stops_cleanly_and_exits_non_zero(tmp_path):
    proc = _start(tmp_path, FAIL_START="1")
    assert proc.wait(20) != 0
    err = proc.stderr.read()
    assert "state=stopping" in err and "state=stopped" in err and "cleaned_up" in err


def test_a_failing_stop_hook_still_stops_with_exit_1(tmp_path):
    sock, path = _notify_socket(tmp_path)
    proc = _start(tmp_path, NOTIFY_SOCKET=path, FAIL_STOP="1")
    try:
        _recv_until(sock, "READY=1")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 1
    finally:
        proc.kill()
        sock.close()
    err = proc.stderr.read()
    assert "stop_error" in err and "state=stopped" in err


def test_watchdog_pings_when_asked(tmp_path):
    sock, path = _notify_socket(tmp_path)
    # WATCHDOG_PID must name the service's own pid; without it every process would ping.
    proc = _start(tmp_path, NOTIFY_SOCKET=path, WATCHDOG_USEC="1000000")
    try:
        seen = _recv_until(sock, "WATCHDOG=1")
        assert any("READY=1" in m for m in seen)
        _recv_until(sock, "WATCHDOG=1")  # and again, periodically
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
        sock.close()


def test_sd_notify_without_socket_is_a_no_op(monkeypatch, tmp_path):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sd_notify("READY=1") is False
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "missing.sock"))
    assert sd_notify("READY=1") is False


def test_sd_notify_sends_one_datagram(monkeypatch, tmp_path):
    sock, path = _notify_socket(tmp_path)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    try:
        assert sd_notify("STATUS=hello") is True
        assert sock.recv(100) == b"STATUS=hello"
    finally:
        sock.close()
