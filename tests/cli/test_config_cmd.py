"""`kgen init` and `kgen config ...`, through the real entry point."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from kgen.cli import main
from kgen.core import config


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    for name in list(os.environ):
        if name.startswith("KGEN_") or name in ("CONFIGURATION_DIRECTORY", "STATE_DIRECTORY"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("KGEN_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def kgen(capsys):
    def run(*argv: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as info:
            main(list(argv))
        captured = capsys.readouterr()
        return info.value.code, captured.out, captured.err

    return run


def test_init_creates_config_and_token_then_keeps_them(kgen, home):
    code, out, err = kgen("init", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["config_created"] is True and result["token"] == "created"
    assert result["token_path"] == str(home / "token")
    token = (home / "token").read_text()
    assert stat.S_IMODE((home / "token").stat().st_mode) == 0o600

    code, out, _ = kgen("init")
    assert code == 0 and "kept" in out
    assert (home / "token").read_text() == token
    assert token.strip() not in out  # the secret is never printed

    code, out, _ = kgen("init", "--force", "--json")
    assert code == 0 and json.loads(out)["token"] == "replaced"
    assert (home / "token").read_text() != token


def test_config_path_variants(kgen, home):
    assert kgen("config", "path") == (0, f"{home / 'config.toml'}\n", "")
    assert kgen("config", "path", "token")[1] == f"{home / 'token'}\n"
    code, out, _ = kgen("config", "path", "--json")
    assert code == 0 and json.loads(out) == {"config": str(home / "config.toml"), "token": str(home / "token"),
                                              "home": str(home), "state": str(home)}
    code, _, err = kgen("config", "path", "elsewhere")
    assert code == 2 and err.count("\n") == 1 and "elsewhere" in err


def test_set_get_roundtrip_and_sources(kgen, home, monkeypatch):
    assert kgen("config", "set", "gateway.port", "8123") == (0, "gateway.port = 8123\n", "")
    assert kgen("config", "get", "gateway.port") == (0, "8123\n", "")
    code, out, _ = kgen("config", "get", "gateway.port", "--json")
    assert json.loads(out) == {"key": "gateway.port", "value": 8123, "source": f"config {home / 'config.toml'}"}

    monkeypatch.setenv("KGEN_GATEWAY_PORT", "8200")
    assert kgen("config", "get", "gateway.port")[1] == "8200\n"
    code, out, err = kgen("config", "set", "gateway.port", "8124")
    assert code == 0 and "overridden by env KGEN_GATEWAY_PORT" in err
    code, out, _ = kgen("config", "set", "gateway.port", "8125", "--json")
    assert json.loads(out) == {"key": "gateway.port", "value": 8125, "config_path": str(home / "config.toml"),
                               "effective_value": 8200, "effective_source": "env KGEN_GATEWAY_PORT"}


def test_set_bad_value_is_one_line_exit_2_naming_key_and_file(kgen, home):
    code, out, err = kgen("config", "set", "node.port", "99999")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("kgen: error: ")
    assert "node.port" in err and str(home / "config.toml") in err


def test_unknown_key_is_exit_2_with_a_suggestion(kgen):
    code, _, err = kgen("config", "get", "node.prot")
    assert code == 2 and "did you mean node.port" in err and err.count("\n") == 1


def test_broken_config_file_is_exit_78_naming_key_and_file(kgen, home):
    home.mkdir()
    (home / "config.toml").write_text("[verify]\ntimeout_s = 'soon'\n")
    for argv in (("config", "show"), ("config", "get", "node.port")):
        code, out, err = kgen(*argv)
        assert code == 78 and out == ""
        assert err.count("\n") == 1 and "verify.timeout_s" in err and str(home / "config.toml") in err


def test_show_json_has_stable_keys_and_every_config_key(kgen, monkeypatch):
    monkeypatch.setenv("KGEN_LLM_API_KEY", "sk-123")
    code, out, _ = kgen("config", "show", "--json")
    data = json.loads(out)
    assert code == 0 and set(data) == {"config_path", "keys"}
    assert [row["key"] for row in data["keys"]] == list(config.KEYS)
    assert all(set(row) == {"key", "value", "source", "env", "default", "type", "help"} for row in data["keys"])
    assert "sk-123" not in out
    assert "sk-123" in kgen("config", "show", "--json", "--reveal")[1]


def test_show_human_table_without_colour_when_not_a_tty(kgen):
    kgen("config", "set", "node.backend", "cuda")
    code, out, _ = kgen("config", "show")
    assert code == 0 and "\x1b[" not in out
    for name in config.KEYS:
        assert name in out
    line = next(line for line in out.splitlines() if "node.backend" in line)
    assert "cuda" in line and "config" in line
    assert "http://127.0.0.1:8000" in out  # values are not folded at 80 columns


def test_unset(kgen, home):
    kgen("config", "set", "node.port", "9100")
    assert kgen("config", "unset", "node.port")[1] == f"node.port removed in {home / 'config.toml'}\n"
    code, out, _ = kgen("config", "unset", "node.port", "--json")
    assert json.loads(out) == {"key": "node.port", "removed": False, "config_path": str(home / "config.toml")}
    assert kgen("config", "get", "node.port")[1] == "9001\n"


def test_real_binary_env_precedence_and_debug_traceback(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KGEN_")}
    env.update(KGEN_HOME=str(tmp_path / "h"), KGEN_GATEWAY_URL="http://10.1.2.3:8000")
    cmd = [sys.executable, "-m", "kgen"]
    done = subprocess.run([*cmd, "config", "get", "gateway.url"], env=env, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, "http://10.1.2.3:8000\n")

    plain = subprocess.run([*cmd, "config", "set", "node.port", "x"], env=env, capture_output=True, text=True, timeout=60)
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    debug = subprocess.run([*cmd, "--debug", "config", "set", "node.port", "x"], env=env, capture_output=True,
                           text=True, timeout=60)
    assert debug.returncode == 2 and "Traceback" in debug.stderr
