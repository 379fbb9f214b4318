"""A real node daemon (2 cpu slots) shared by the node API tests of a module."""

import pytest

from node_helpers import Daemon, daemon_env


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    daemon = Daemon(["node", "start", "--port", "0", "--slots", "2"],
                    daemon_env(tmp_path_factory.mktemp("node")), "node")
    yield daemon
    daemon.stop()
