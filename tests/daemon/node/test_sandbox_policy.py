"""The node's run-sandbox policy: refuse to start (exit 78, one line naming the missing feature)
on a kernel without user namespaces unless --insecure-sandbox; report the level in its status;
`kgen doctor` and local `kgen verify` see the same kernel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kgen.core import isolation
from kgen.core.client import NodeClient
from node_helpers import TOKEN, Daemon, daemon_env

HERE = Path(__file__).parent
NO_USERNS = [sys.executable, str(HERE / "no_userns.py")]
pytestmark = pytest.mark.skipif(isolation.features().level != "full" or not isolation.features().seccomp,
                                reason="needs a full sandbox here to take a layer away")


def test_full_node_reports_full_sandbox(node):
    assert NodeClient(node.url, TOKEN).status()["sandbox"] == "full"


def test_node_refuses_to_start_without_user_namespaces(tmp_path):
    out = subprocess.run([*NO_USERNS, "node", "start", "--port", "0"], env=daemon_env(tmp_path),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 78
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "user_ns" in lines[0] and "--insecure-sandbox" in lines[0], out.stderr


def test_insecure_sandbox_starts_and_reports_the_level(tmp_path):
    env = daemon_env(tmp_path)
    daemon = Daemon(["node", "start", "--port", "0", "--devices", "1", "--insecure-sandbox"], env, "node")
    daemon.proc.kill()
    daemon.proc.wait()
    # the same under the restricted kernel: the helper execs `python -m kgen`
    proc = subprocess.Popen([*NO_USERNS, "node", "start", "--port", "0", "--devices", "1"],
                            env={**env, "KGEN_NODE_INSECURE_SANDBOX": "1"}, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        while line and "listening" not in line:
            line = proc.stderr.readline()
        url = line.split("url=")[1].split()[0]
        level = NodeClient(url, TOKEN).status()["sandbox"]
        assert level.startswith("partial:") and "user_ns" in level
    finally:
        proc.terminate()
        proc.wait(30)


def test_doctor_json_and_text(tmp_path):
    full = subprocess.run([sys.executable, "-m", "kgen", "doctor", "--json"], capture_output=True, text=True,
                          timeout=60, env=daemon_env(tmp_path))
    assert full.returncode == 0 and json.loads(full.stdout)["level"] == "full"
    restricted = subprocess.run([*NO_USERNS, "doctor"], capture_output=True, text=True, timeout=60,
                                env=daemon_env(tmp_path))
    assert restricted.returncode == 0
    assert "MISSING user namespace" in restricted.stdout and "sandbox level: partial:" in restricted.stdout


def test_local_verify_falls_back_with_one_warning(tmp_path):
    candidates = HERE.parents[1] / "core" / "verify" / "candidates"
    out = subprocess.run([*NO_USERNS, "verify", str(candidates / "task_relu_add.py"), str(candidates / "good.py"),
                          "--json", "--no-profile"], capture_output=True, text=True, timeout=300,
                         env=daemon_env(tmp_path))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["status"] == "correct"
    warnings = [line for line in out.stderr.splitlines() if "run sandbox is partial:" in line]
    assert len(warnings) == 1 and "user_ns" in warnings[0]
