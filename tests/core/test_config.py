"""kgen.core.config: schema, precedence, validation, atomic writes, init of the home."""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path

import pytest

from kgen.core import config
from kgen.core.errors import BadInput, ConfigError

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    for name in list(os.environ):
        if name.startswith("KGEN_") or name in ("CONFIGURATION_DIRECTORY", "STATE_DIRECTORY"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("KGEN_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_set_value_writes_nested_toml_that_load_file_reads_back(home):
    assert config.set_value("gateway.port", "8123") == 8123
    config.set_value("llm.model", "m1")
    data = tomllib.loads(config.config_path().read_text())
    assert data == {"gateway": {"port": 8123}, "llm": {"model": "m1"}}
    assert config.load_file() == {"gateway.port": 8123, "llm.model": "m1"}
    assert config.resolve("gateway.port") == (8123, f"config {config.config_path()}")


def test_set_value_is_atomic_private_and_keeps_other_keys(home):
    config.set_value("gateway.url", "http://10.0.0.1:8000")
    config.set_value("node.port", "9100")
    assert stat.S_IMODE(config.config_path().stat().st_mode) == 0o600
    assert [p.name for p in home.iterdir()] == ["config.toml"]  # no temp files left behind
    assert config.load_file()["gateway.url"] == "http://10.0.0.1:8000"


@pytest.mark.parametrize("key, value, needle", [
    ("gateway.port", "70000", "port number"),
    ("gateway.port", "eighty", "expected int"),
    ("gateway.url", "ftp://x", "http"),
    ("node.backend", "tpu", "cpu"),
    ("verify.timeout_s", "-1", "> 0"),
])
def test_set_value_rejects_bad_values_naming_key_and_file(home, key, value, needle):
    config.set_value("llm.model", "kept")
    before = config.config_path().read_text()
    with pytest.raises(BadInput) as info:
        config.set_value(key, value)
    message = info.value.message
    assert key in message and str(config.config_path()) in message and needle in message
    assert "\n" not in message
    assert config.config_path().read_text() == before


def test_unknown_key_suggests_the_close_one():
    with pytest.raises(BadInput, match="did you mean gateway.port"):
        config.set_value("gateway.prot", "1")
    with pytest.raises(BadInput, match="unknown config key"):
        config.resolve("nothing.like.it")


def test_bad_value_in_file_is_a_config_error_naming_key_and_file(home):
    home.mkdir(parents=True)
    config.config_path().write_text('[gateway]\nport = "http"\n')
    with pytest.raises(ConfigError) as info:
        config.resolve("gateway.port")
    assert "gateway.port" in info.value.message and str(config.config_path()) in info.value.message
    assert info.value.exit_code == 78


def test_broken_toml_and_unknown_keys_are_config_errors(home):
    home.mkdir(parents=True)
    config.config_path().write_text("[gateway\n")
    with pytest.raises(ConfigError, match="cannot read"):
        config.load_file()
    config.config_path().write_text("[gateway]\nprot = 1\n")
    with pytest.raises(ConfigError, match="unknown key 'gateway.prot'"):
        config.load_file()


def test_set_value_can_repair_a_file_with_a_bad_value(home):
    home.mkdir(parents=True)
    config.config_path().write_text('[gateway]\nport = "http"\n')
    config.set_value("gateway.port", "8001")
    assert config.get("gateway.port") == 8001


def test_precedence_flag_env_config_default(home, monkeypatch):
    assert config.resolve("node.port") == (9001, "default")
    config.set_value("node.port", "9100")
    assert config.resolve("node.port")[0] == 9100
    monkeypatch.setenv("KGEN_NODE_PORT", "9200")
    assert config.resolve("node.port") == (9200, "env KGEN_NODE_PORT")
    assert config.resolve("node.port", 9300) == (9300, "flag")


def test_bad_env_value_names_the_variable(monkeypatch):
    monkeypatch.setenv("KGEN_NODE_PORT", "gpu0")
    with pytest.raises(ConfigError, match=r"node.port in \$KGEN_NODE_PORT"):
        config.resolve("node.port")


def test_unset_value(home):
    config.set_value("node.port", "9100")
    assert config.unset_value("node.port") is True
    assert config.unset_value("node.port") is False
    assert config.resolve("node.port") == (9001, "default")


def test_show_lists_every_key_with_source_and_masks_secrets(monkeypatch):
    monkeypatch.setenv("KGEN_LLM_API_KEY", "sk-secret")
    config.set_value("gateway.max_queue", "12")
    rows = {row["key"]: row for row in config.show()}
    assert list(rows) == list(config.KEYS)
    assert rows["llm.api_key"]["value"] == "********" and rows["llm.api_key"]["source"] == "env KGEN_LLM_API_KEY"
    assert rows["gateway.max_queue"]["value"] == 12 and rows["gateway.max_queue"]["source"].startswith("config ")
    assert rows["node.port"] == {"key": "node.port", "value": 9001, "source": "default", "env": "KGEN_NODE_PORT",
                                 "default": 9001, "type": "int", "help": config.KEYS["node.port"].help}
    assert {r["key"]: r for r in config.show(reveal=True)}["llm.api_key"]["value"] == "sk-secret"


def test_init_home_creates_private_token_and_is_idempotent(home):
    first = config.init_home()
    assert first["config_created"] and first["token"] == "created" and first["home_created"]
    token = config.token_path().read_text().strip()
    assert len(token) >= 40 and token.replace("-", "").replace("_", "").isalnum()
    assert stat.S_IMODE(config.token_path().stat().st_mode) == 0o600
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert config.resolve_token() == (token, f"file {config.token_path()}")

    config.set_value("node.port", "9100")
    again = config.init_home()
    assert not again["config_created"] and again["token"] == "kept"
    assert config.token_path().read_text().strip() == token
    assert config.get("node.port") == 9100  # init never clobbers the config

    forced = config.init_home(force=True)
    assert forced["token"] == "replaced"
    assert config.token_path().read_text().strip() != token
    assert stat.S_IMODE(config.token_path().stat().st_mode) == 0o600


def test_init_home_refills_an_empty_token_file(home):
    home.mkdir(parents=True)
    config.token_path().write_text("\n")
    assert config.init_home()["token"] == "created"
    assert config.token_path().read_text().strip()


def test_init_home_reports_a_broken_existing_config(home):
    home.mkdir(parents=True)
    config.config_path().write_text("[node]\nport = -5\n")
    with pytest.raises(ConfigError, match="node.port"):
        config.init_home()


def test_systemd_directories(tmp_path, monkeypatch):
    monkeypatch.delenv("KGEN_HOME")
    monkeypatch.setenv("CONFIGURATION_DIRECTORY", str(tmp_path / "etc"))
    monkeypatch.setenv("STATE_DIRECTORY", f"{tmp_path / 'state'}:{tmp_path / 'other'}")
    assert config.config_path() == tmp_path / "etc" / "config.toml"
    assert config.token_path() == tmp_path / "etc" / "token"
    assert config.state_dir() == tmp_path / "state"
    monkeypatch.setenv("KGEN_HOME", str(tmp_path / "h"))  # an explicit home wins over systemd's
    assert config.config_path() == tmp_path / "h" / "config.toml"


def test_readme_documents_every_key_and_env_var():
    text = README.read_text()
    missing = [k.name for k in config.KEYS.values() if f"`{k.name}`" not in text]
    missing += [k.env for k in config.KEYS.values() if k.env and k.env not in text]
    assert not missing, f"README.md configuration table lacks: {missing}"
