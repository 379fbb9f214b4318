"""`kgen worker register|list|remove` against a real gateway; register enrolls a node token that
the node then registers itself with (the gateway never contacts a URL it was only told about)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "daemon" / "node"))

from node_helpers import TOKEN, Daemon, daemon_env, wait_until  # noqa: E402

from kgen.cli import main  # noqa: E402
from kgen.core.client import Client, NodeClient  # noqa: E402
from kgen.core.errors import Unauthorised  # noqa: E402


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    home = tmp_path_factory.mktemp("workercli")
    gw = Daemon(["gateway", "start", "--port", "0", "--db", str(home / "gw.db")], daemon_env(home), "gateway")
    yield gw, home
    gw.stop()


@pytest.fixture
def cli(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("KGEN_HOME", str(tmp_path))
    monkeypatch.setenv("KGEN_TOKEN", TOKEN)
    monkeypatch.delenv("KGEN_GATEWAY_URL", raising=False)

    def run(*args: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as exc:
            main(list(args))
        captured = capsys.readouterr()
        return exc.value.code, captured.out, captured.err

    return run


def test_register_enrolls_a_node_that_then_registers_itself_and_list_and_remove(cli, gateway, tmp_path):
    gw, home = gateway
    import socket

    with socket.socket() as s:   # the node's future address, known before it starts
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    code, out, err = cli("worker", "register", url, "--name", "enrolled", "--gateway", gw.url)
    assert code == 0, err
    secret = out.strip()
    assert secret and "--token-file" in err
    assert Client(gw.url, TOKEN).list_workers() == []     # nothing registered, nothing contacted

    token_file = tmp_path / "node.token"
    token_file.write_text(secret + "\n")
    env = daemon_env(home)
    del env["KGEN_TOKEN"]                                  # the node holds its node token only
    node = Daemon(["node", "start", "--port", str(port), "--slots", "2", "--gateway", gw.url,
                   "--token-file", str(token_file)], env, "node")
    try:
        assert wait_until(lambda: Client(gw.url, TOKEN).list_workers(), 60)
        # The node answers only the gateway's per-node secret: not the admin token, not its node token.
        for credential in (TOKEN, secret):
            with pytest.raises(Unauthorised):
                NodeClient(url, credential).status()
        code, out, _ = cli("worker", "list", "--gateway", gw.url, "--json")
        [worker] = json.loads(out)["workers"]
        assert worker["url"] == url and worker["backend"] == "cpu" and worker["capacity"] == 2
        assert worker["healthy"] is True and worker["suspect"] == ""
        code, out, _ = cli("token", "list", "--gateway", gw.url, "--json")
        [enrolled] = [t for t in json.loads(out)["tokens"] if t["name"] == "enrolled"]
        assert enrolled["worker_id"] == worker["worker_id"] and enrolled["url"] == url
        code, out, _ = cli("worker", "list", "--gateway", gw.url)
        assert code == 0 and worker["worker_id"] in out and "SUSPECT" in out

        code, out, err = cli("worker", "remove", worker["worker_id"], "--gateway", gw.url, "--json")
        assert code == 0, err
        assert json.loads(out) == {"worker_id": worker["worker_id"], "removed": True}
    finally:
        node.stop()
    code, out, _ = cli("worker", "list", "--gateway", gw.url, "--jsonl")
    assert worker["worker_id"] not in out


@pytest.mark.parametrize("args", [
    ("register", "ftp://nowhere"),
    ("register", "http://127.0.0.1:1/path"),
    ("remove", "does-not-exist"),
    ("remove", "../../etc"),
])
def test_bad_worker_commands_exit_2(cli, gateway, args):
    gw, _ = gateway
    code, out, err = cli("worker", *args, "--gateway", gw.url)
    assert code == 2 and err.startswith("kgen: error:") and out == ""
