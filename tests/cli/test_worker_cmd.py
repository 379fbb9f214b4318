"""`kgen worker register|list|remove` against a real gateway and a node started without --gateway."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "daemon" / "node"))

from node_helpers import TOKEN, Daemon, daemon_env  # noqa: E402

from kgen.cli import main  # noqa: E402


@pytest.fixture(scope="module")
def daemons(tmp_path_factory):
    home = tmp_path_factory.mktemp("workercli")
    env = daemon_env(home)
    gw = Daemon(["gateway", "start", "--port", "0", "--db", str(home / "gw.db")], env, "gateway")
    node = Daemon(["node", "start", "--port", "0", "--slots", "2"], env, "node")
    yield gw, node
    node.stop()
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


def test_register_queries_the_node_then_list_and_remove(cli, daemons):
    gw, node = daemons
    code, out, err = cli("worker", "register", node.url, "--gateway", gw.url)
    assert code == 0, err
    worker_id = out.strip()
    code, out, _ = cli("worker", "list", "--gateway", gw.url, "--json")
    workers = json.loads(out)["workers"]
    mine = [w for w in workers if w["worker_id"] == worker_id]
    assert len(mine) == 1
    assert mine[0]["url"] == node.url and mine[0]["backend"] == "cpu" and mine[0]["capacity"] == 2
    assert mine[0]["healthy"] is True
    code, out, _ = cli("worker", "list", "--gateway", gw.url)
    assert code == 0 and worker_id in out and node.url in out

    code, out, err = cli("worker", "remove", worker_id, "--gateway", gw.url)
    assert code == 0, err
    code, out, _ = cli("worker", "list", "--gateway", gw.url, "--jsonl")
    assert worker_id not in out


def test_explicit_capacity_wins(cli, daemons):
    gw, node = daemons
    code, out, err = cli("worker", "register", node.url, "--gateway", gw.url, "--capacity", "1", "--json")
    assert code == 0, err
    worker_id = json.loads(out)["worker_id"]
    code, out, _ = cli("worker", "list", "--gateway", gw.url, "--json")
    assert [w["capacity"] for w in json.loads(out)["workers"] if w["worker_id"] == worker_id] == [1]
    code, out, err = cli("worker", "remove", worker_id, "--gateway", gw.url, "--json")
    assert code == 0, err
    assert json.loads(out) == {"worker_id": worker_id, "removed": True}


@pytest.mark.parametrize("args", [
    ("register", "ftp://nowhere"),
    ("register", "http://127.0.0.1:1"),          # nothing listens there: the gateway cannot ask it
    ("register", "http://x", "--backend", "tpu"),
    ("remove", "does-not-exist"),
    ("remove", "../../etc"),
])
def test_bad_worker_commands_exit_2(cli, daemons, args):
    gw, _ = daemons
    code, out, err = cli("worker", *args, "--gateway", gw.url)
    assert code == 2 and err.startswith("kgen: error:") and out == ""
