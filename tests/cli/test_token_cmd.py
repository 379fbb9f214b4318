"""`kgen token create|list|revoke` through a real gateway's admin API and directly on its database."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "daemon" / "node"))

from node_helpers import TOKEN, Daemon, daemon_env  # noqa: E402

from kgen.cli import main  # noqa: E402
from kgen.core.client import Client  # noqa: E402
from kgen.core.store import Store  # noqa: E402


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    home = tmp_path_factory.mktemp("tokencli")
    gw = Daemon(["gateway", "start", "--port", "0", "--db", str(home / "gw.db")], daemon_env(home), "gateway")
    yield gw
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


def test_create_list_revoke_through_the_gateway(cli, gateway):
    code, out, err = cli("token", "create", "--role", "client", "--name", "ci", "--gateway", gateway.url)
    assert code == 0, err
    secret = out.strip()
    assert secret.startswith("kgt_") and "not shown again" in err
    client = Client(gateway.url, secret)
    assert client.list_jobs() == []                          # a client token works for clients
    code, out, _ = cli("token", "list", "--json", "--gateway", gateway.url)
    [row] = [t for t in json.loads(out)["tokens"] if t["name"] == "ci"]
    assert row["role"] == "client" and row["last_used"] and secret not in out and "hash" not in row
    code, out, _ = cli("token", "list", "--gateway", gateway.url)
    assert code == 0 and "ci" in out and "client" in out and secret not in out
    # a client token cannot manage tokens: 403 is exit 4 with one line
    code, out, err = cli("token", "list", "--gateway", gateway.url, "--token", secret)
    assert code == 4 and err.startswith("kgen: error:") and "admin" in err
    code, out, err = cli("token", "revoke", "ci", "--gateway", gateway.url, "--json")
    assert code == 0 and json.loads(out)["revoked"] is True, err
    code, _, err = cli("job", "list", "--gateway", gateway.url, "--token", secret)
    assert code == 4, err


def test_create_json_and_bad_input(cli, gateway):
    code, out, err = cli("token", "create", "--role", "node", "--json", "--gateway", gateway.url)
    assert code == 0, err
    answer = json.loads(out)
    assert answer["token"]["role"] == "node" and answer["token"]["name"].startswith("node-")
    for args in (("create", "--role", "root"), ("create", "--role", "client", "--name", "../x"),
                 ("create", "--role", "client", "--name", answer["token"]["name"]), ("revoke", "nobody")):
        code, out, err = cli("token", *args, "--gateway", gateway.url)
        assert code == 2 and err.startswith("kgen: error:") and out == "", (args, err)


def test_db_mode_works_without_a_gateway(cli, tmp_path):
    db = tmp_path / "offline.db"
    Store(db).close()
    code, out, err = cli("token", "create", "--role", "admin", "--name", "ops", "--db", str(db))
    assert code == 0, err
    secret = out.strip()
    with Store(db) as store:
        assert store.check_token(secret)["role"] == "admin"
        assert secret not in json.dumps(store.query("SELECT * FROM tokens")[0][:])
    code, out, _ = cli("token", "list", "--json", "--db", str(db))
    assert [t["name"] for t in json.loads(out)["tokens"]] == ["ops"]
    assert cli("token", "revoke", "ops", "--db", str(db))[0] == 0
    code, _, err = cli("token", "list", "--db", str(tmp_path / "missing.db"))
    assert code == 2 and "no gateway database" in err
