"""A candidate that tries to get out of its run, through `kgen verify` (a real CLI process), through
verify() in this process (with the warm runner's own pid as a target), and through a real node
daemon. Every attack must fail to have its effect: the token never shows up, the loopback
listener never sees a connection, no file appears outside the run dir (the Triton cache
included), no process survives the verdict, and no /proc/PID/mem opens. The candidate answers
correctly only when every attack failed, so `correct` is part of the proof."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from kgen.core import isolation
from kgen.core.task import load_task
from kgen.core.verify import verify

CANDIDATES = Path(__file__).parent / "candidates"
TESTS = Path(__file__).resolve().parents[2]
FULL = isolation.features().level == "full"
pytestmark = pytest.mark.skipif(not FULL, reason=f"sandbox is {isolation.features().level} here")


class Listener:
    """A loopback TCP listener that records every connection it accepts."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def close(self):
        self._stop = True
        self._thread.join(2)
        self.sock.close()


def _processes_named(name: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path(f"/proc/{entry}/comm").read_text().strip() == name:
                    found.append(int(entry))
            except OSError:
                pass
    return found


@pytest.fixture
def attack(tmp_path, kgen_home):
    """-> (candidate source, context); checks after the test that nothing took effect."""
    token = "tok-" + secrets.token_hex(12)
    (kgen_home / "token").write_text(token + "\n")
    node_cache = tmp_path / "node-triton-cache"
    node_cache.mkdir()
    (node_cache / "existing").write_text("a cached kernel")
    listener = Listener()
    var_tmp = Path("/var/tmp") / f"kgen-escape-{uuid.uuid4().hex[:8]}"
    var_tmp.mkdir()  # outside /tmp, so the private /tmp of a run does not hide it
    daemon_name = "kgend-" + secrets.token_hex(4)
    write_paths = [str(kgen_home / "pwned"), str(var_tmp / "pwned"), str(node_cache / "pwned"),
                   str(node_cache / "existing"), str(tmp_path / "pwned")]
    params = {"attacks": ["token", "connect", "write", "daemon", "mem"], "port": listener.port,
              "token_files": [str(kgen_home / "token")], "write_paths": write_paths,
              "daemon_name": daemon_name, "pids": [os.getpid(), os.getppid()]}
    template = (CANDIDATES / "escape_sandbox.py").read_text()

    def source(pids=(), token_files=()):
        filled = {**params, "pids": params["pids"] + list(pids),
                  "token_files": params["token_files"] + [str(f) for f in token_files]}
        return template.replace("PARAMS = {}", f"PARAMS = {filled!r}", 1)

    ctx = {"token": token, "env": {"KGEN_TOKEN": token, "TRITON_CACHE_DIR": str(node_cache),
                                   "KGEN_HOME": str(kgen_home)}}
    try:
        yield source, ctx
        # No process the candidate started outlives its verdict (checked for a while: a
        # survivor would keep rewriting the files below).
        time.sleep(0.5)
        assert _processes_named(daemon_name) == []
        assert listener.accepted == 0
        for path in write_paths:
            assert not Path(path).exists() or Path(path).read_text() == "a cached kernel", path
        assert list(var_tmp.iterdir()) == []
    finally:
        for child in var_tmp.iterdir():
            child.unlink()
        var_tmp.rmdir()
        listener.close()
        for pid in _processes_named(daemon_name):
            os.kill(pid, 9)


def _assert_contained(verdict: dict, token: str):
    assert token not in json.dumps(verdict)
    assert verdict["status"] == "correct", verdict["message"]


def test_escapes_fail_through_kgen_verify(attack, tmp_path):
    source, ctx = attack
    cand = tmp_path / "cand.py"
    cand.write_text(source())
    env = {**os.environ, **ctx["env"], "TRITON_INTERPRET": "1"}
    out = subprocess.run([sys.executable, "-m", "kgen", "verify", str(CANDIDATES / "task_relu_add.py"), str(cand),
                          "--json", "--timeout", "120"], capture_output=True, text=True, env=env, timeout=300)
    verdict = json.loads(out.stdout)
    _assert_contained(verdict, ctx["token"])
    assert ctx["token"] not in out.stderr


def test_escapes_fail_in_process_against_the_warm_runner(attack, runner_pool):
    source, ctx = attack
    runner = runner_pool.runner("cpu")
    # The warm runner itself: its /proc/PID/mem is the prize (a write there poisons later runs).
    verdict = verify(load_task(CANDIDATES / "task_relu_add.py"), source(pids=[runner.proc.pid]), pool=runner_pool,
                     timeout_s=120).to_dict()
    _assert_contained(verdict, ctx["token"])
    assert runner.alive and runner_pool.runner("cpu") is runner


def test_escapes_fail_through_a_real_node(attack, tmp_path):
    sys.path.insert(0, str(TESTS / "daemon" / "node"))
    try:
        from node_helpers import TOKEN, Daemon, daemon_env
    finally:
        sys.path.pop(0)
    from kgen.core.client import NodeClient

    source, ctx = attack
    home = tmp_path / "node-home"
    home.mkdir()
    (home / "token").write_text(TOKEN + "\n")
    env = daemon_env(home, TRITON_CACHE_DIR=ctx["env"]["TRITON_CACHE_DIR"])
    node = Daemon(["node", "start", "--port", "0", "--devices", "1"], env, "node")
    try:
        verdict = NodeClient(node.url, TOKEN).verify((CANDIDATES / "task_relu_add.py").read_text(),
                                                     source(pids=[node.proc.pid], token_files=[home / "token"]),
                                                     timeout_s=120)
        _assert_contained(verdict, ctx["token"])
        _assert_contained(verdict, TOKEN)
        assert not any(ctx["token"] in line or TOKEN in line for line in node.lines)
    finally:
        node.stop()
