"""`kgen ui`: prints the dashboard URL of the configured gateway and opens it with the system's browser."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "daemon" / "node"))

from node_helpers import Daemon, daemon_env  # noqa: E402


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    home = tmp_path_factory.mktemp("uicli")
    gw = Daemon(["gateway", "start", "--port", "0", "--db", str(home / "gw.db")], daemon_env(home), "gateway")
    yield gw
    gw.stop()


def kgen(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kgen", *args], env=env, capture_output=True, text=True, timeout=60)


def test_prints_the_url_without_opening(gateway, tmp_path):
    env = {**daemon_env(tmp_path), "KGEN_GATEWAY_URL": gateway.url}
    done = kgen("ui", "--no-open", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{gateway.url}/ui/"
    assert "token" not in done.stdout.lower()
    data = json.loads(kgen("ui", "--no-open", "--json", "--gateway", gateway.url, env=env).stdout)
    assert data == {"url": f"{gateway.url}/ui/", "reachable": True, "opened": False}


def test_opens_the_url_in_the_browser(gateway, tmp_path):
    # $BROWSER is how Python's webbrowser finds a browser; this one records what it was asked to open.
    record = tmp_path / "opened.txt"
    browser = tmp_path / "browser.sh"
    browser.write_text(f"#!/bin/sh\nprintf '%s' \"$1\" > {record}\n")
    browser.chmod(0o755)
    env = {**daemon_env(tmp_path), "KGEN_GATEWAY_URL": gateway.url, "BROWSER": str(browser)}
    env.pop("DISPLAY", None)
    done = kgen("ui", env=env)
    assert done.returncode == 0, done.stderr
    deadline = time.monotonic() + 10
    while not record.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert record.read_text() == f"{gateway.url}/ui/"


def test_no_browser_still_prints_the_url(tmp_path):
    env = {**daemon_env(tmp_path), "KGEN_GATEWAY_URL": "http://127.0.0.1:9", "BROWSER": "", "PATH": "/nonexistent"}
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    done = subprocess.run([sys.executable, "-m", "kgen", "ui"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "http://127.0.0.1:9/ui/"
    assert "no gateway answers" in done.stderr and "no browser" in done.stderr


def test_a_gateway_without_the_dashboard_is_an_error(tmp_path):
    gw = Daemon(["gateway", "start", "--port", "0", "--db", str(tmp_path / "gw.db"), "--no-ui"],
                daemon_env(tmp_path), "gateway")
    try:
        done = kgen("ui", "--no-open", "--gateway", gw.url, env=daemon_env(tmp_path))
        assert done.returncode != 0
        assert "--no-ui" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    finally:
        gw.stop()
