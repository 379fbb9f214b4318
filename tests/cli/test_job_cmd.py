"""`kgen submit|tail|job ...` against a real gateway and node: exit codes, messages, outputs."""

from __future__ import annotations

import json
import re
import socket
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "daemon" / "node"))

from node_helpers import TASK_SRC, TOKEN, Daemon, daemon_env  # noqa: E402

from kgen.cli import main  # noqa: E402


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    """A gateway with one registered cpu node (so cpu jobs are accepted)."""
    home = tmp_path_factory.mktemp("jobcli")
    env = daemon_env(home)
    gw = Daemon(["gateway", "start", "--port", "0", "--db", str(home / "gw.db"), "--stream-heartbeat", "1"], env, "gateway")
    node = Daemon(["node", "start", "--port", "0", "--slots", "1", "--gateway", gw.url], env, "node")
    from kgen.core.client import Client
    from node_helpers import wait_until

    assert wait_until(lambda: len(Client(gw.url, TOKEN).list_workers()) == 1, 30)
    yield gw
    node.stop()
    gw.stop()


@pytest.fixture
def cli(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("KGEN_HOME", str(tmp_path))
    monkeypatch.setenv("KGEN_TOKEN", TOKEN)
    for var in ("KGEN_GATEWAY_URL", "KGEN_DEBUG"):
        monkeypatch.delenv(var, raising=False)

    def run(*args: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as exc:
            main(list(args))
        captured = capsys.readouterr()
        return exc.value.code, captured.out, captured.err

    return run


@pytest.fixture
def task_file(tmp_path) -> Path:
    path = tmp_path / "relu2.py"
    path.write_text(TASK_SRC)
    return path


def free_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_unreachable_gateway_exits_3_and_says_where_the_address_came_from(cli, monkeypatch, task_file):
    url = free_url()
    code, _, err = cli("job", "list", "--gateway", url)
    assert code == 3 and f"cannot reach gateway at {url} (from flag)" in err
    monkeypatch.setenv("KGEN_GATEWAY_URL", url)
    code, _, err = cli("submit", str(task_file))
    assert code == 3 and "(from env KGEN_GATEWAY_URL)" in err
    assert len(err.strip().splitlines()) == 1


def test_wrong_token_exits_4(cli, gateway):
    code, _, err = cli("job", "list", "--gateway", gateway.url, "--token", "nope")
    assert code == 4 and "token" in err


@pytest.mark.parametrize("args, needle", [
    (("--job-type", "bogus"), "--job-type"),
    (("--generator", "gpt"), "--generator"),
    (("--backend", "tpu"), "--backend"),
    (("--job-type", "evolve", "--max-rounds", "1000000"), "max_rounds"),
    (("--dsl", "cuda-c"), "dsl"),
])
def test_bad_submit_options_exit_2(cli, gateway, task_file, args, needle):
    code, out, err = cli("submit", str(task_file), "--gateway", gateway.url, *args)
    assert code == 2 and needle in err and out == ""


def test_bad_task_files_exit_2(cli, gateway, tmp_path):
    code, _, err = cli("submit", str(tmp_path / "missing.py"), "--gateway", gateway.url)
    assert code == 2 and "cannot read task file" in err
    broken = tmp_path / "broken.py"
    broken.write_text("def f(:\n")
    code, _, err = cli("submit", str(broken), "--gateway", gateway.url)
    assert code == 2 and "syntax error" in err
    no_model = tmp_path / "nomodel.py"
    no_model.write_text("def get_inputs():\n    return []\n\ndef get_init_inputs():\n    return []\n")
    code, _, err = cli("submit", str(no_model), "--gateway", gateway.url)
    assert code == 2 and "Model" in err


def test_unknown_and_hostile_job_ids_exit_2(cli, gateway):
    for job_id in ("f" * 32, "../../etc/passwd", "zz"):
        code, _, err = cli("job", "status", job_id, "--gateway", gateway.url)
        assert code == 2 and err.startswith("kgen: error:")


def test_submit_list_status_cancel_and_tail(cli, gateway, task_file, tmp_path):
    code, out, err = cli("submit", str(task_file), "--gateway", gateway.url, "--job-type", "evolve",
                         "--max-rounds", "50", "--parallel-num", "1", "--json")
    assert code == 0, err
    job_id = json.loads(out)["job_id"]
    assert len(job_id) == 32

    code, out, _ = cli("job", "list", "--gateway", gateway.url, "--jsonl")
    assert code == 0 and job_id in [json.loads(line)["job_id"] for line in out.splitlines()]
    code, out, _ = cli("job", "list", "--gateway", gateway.url)
    assert code == 0 and job_id[:12] in out
    row = next(line for line in out.splitlines() if job_id[:12] in line)
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$", row.rstrip()), row   # local time, not an epoch
    assert not re.search(r"\d{9,}\.\d", out), out
    code, out, _ = cli("job", "list", "--gateway", gateway.url, "--json")
    listed = next(j for j in json.loads(out)["jobs"] if j["job_id"] == job_id)
    assert isinstance(listed["created_at"], float)                     # --json keeps the raw stable value
    code, out, _ = cli("job", "status", job_id, "--gateway", gateway.url)
    assert re.search(r"created_at\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", out) and not re.search(r"\d{9,}\.\d", out), out

    code, out, _ = cli("job", "status", job_id[:10], "--gateway", gateway.url, "--json")
    assert code == 0 and json.loads(out)["job_id"] == job_id

    code, out, err = cli("job", "cancel", job_id[:10], "--gateway", gateway.url)
    assert code == 0, err
    code, out, err = cli("tail", job_id, "--gateway", gateway.url, "--jsonl")
    assert code == 1                                   # cancelled
    events = [json.loads(line) for line in out.splitlines()]
    assert events[0]["type"] == "queued" and events[-1]["type"] == "cancelled"
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(set(seqs))

    code, out, err = cli("job", "tail", job_id, "--gateway", gateway.url, "--no-follow", "--after", "1")
    assert code == 1 and "queued" not in out.splitlines()[0]

    code, _, err = cli("job", "result", job_id, "--gateway", gateway.url, "-o", str(tmp_path))
    assert code in (1, 2) and err.startswith("kgen: error:")
