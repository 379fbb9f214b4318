"""Fixtures: a real gateway process per test module (no workers unless a test registers one)."""

import pytest

from gw_helpers import start_gateway


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    home = tmp_path_factory.mktemp("gw-home")
    daemon = start_gateway(home, home / "gateway.db", "--stream-heartbeat", "0.5")
    yield daemon
    daemon.stop()
