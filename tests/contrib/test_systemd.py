"""contrib/systemd/ and `kgen systemd`: fresh, hardened, and accepted by systemd-analyze."""

from __future__ import annotations

import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

from kgen.cli import main
from kgen.cli._docs import units
from kgen.cli._docs.regen import cli_tree
from kgen.core.config import KEYS

REPO = Path(__file__).resolve().parents[2]
CONTRIB = REPO / "contrib" / "systemd"
TREE = cli_tree()
REGEN = "python -m kgen.cli._docs.regen"


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("KGEN_HOME", str(tmp_path / "home"))


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """Sections -> key -> every value (systemd allows repeated keys)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], defaultdict(list))
            continue
        assert current is not None and "=" in line, f"stray line {raw!r}"
        key, value = line.split("=", 1)
        current[key.strip()].append(value.strip())
    return sections


def _kgen(capsys, *argv) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    captured = capsys.readouterr()
    return info.value.code, captured.out, captured.err


def test_committed_files_are_fresh():
    for name, text in units.contrib_files(KEYS, TREE).items():
        path = CONTRIB / name
        assert path.exists() and path.read_text() == text, f"{path} is stale: run `{REGEN}`"


@pytest.mark.parametrize("name, daemon", [("kgen-gateway.service", "gateway"), ("kgen-node@.service", "node")])
def test_units_are_notify_watchdog_restart_and_hardened(name, daemon):
    unit = parse_unit((CONTRIB / name).read_text())
    service = unit["Service"]
    assert service["Type"] == ["notify"]
    assert service["WatchdogSec"] and service["Restart"] == ["on-failure"]
    assert service["RestartPreventExitStatus"] == ["78"]
    assert service["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    exec_start = service["ExecStart"][0].split()
    assert exec_start[0].startswith("/") and exec_start[1:] == units.daemon_args(TREE, daemon)
    assert service["NoNewPrivileges"] == ["yes"] and service["ProtectSystem"] == ["strict"]
    assert service["PrivateTmp"] == ["yes"] and service["CapabilityBoundingSet"] == [""]
    assert any(v.startswith("-/etc/kgen/") for v in service["EnvironmentFile"])
    assert service["StateDirectory"] and service["ConfigurationDirectory"] == ["kgen"]
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]
    if daemon == "node":
        # GPU access: /dev/nvidia* must stay visible and JIT-compiled code must stay executable.
        assert "PrivateDevices" not in service and "MemoryDenyWriteExecute" not in service
        assert "Environment" in service and "KGEN_NODE_PORT=%i" in service["Environment"]
        assert "-/etc/kgen/node-%i.env" in service["EnvironmentFile"]
    else:
        assert service["PrivateDevices"] == ["yes"]


def test_env_example_lists_every_variable():
    text = (CONTRIB / "kgen.env").read_text()
    for key in KEYS.values():
        if key.env:
            assert f"#{key.env}=" in text


def test_systemd_command_points_at_this_install(capsys):
    code, out, _ = _kgen(capsys, "systemd", "node", "--user", "alice", "--env-file", "/srv/kgen.env")
    assert code == 0
    service = parse_unit(out)["Service"]
    assert service["User"] == ["alice"]
    assert service["EnvironmentFile"] == ["-/srv/kgen.env", "-/srv/node-%i.env"]
    executable = service["ExecStart"][0].split()[0]
    assert Path(executable).is_absolute() and Path(executable).exists()
    assert Path(executable).parent == Path(units.current_executable()[0]).parent


@pytest.mark.parametrize("argv, needle", [
    (["systemd", "gateway", "--env-file", "relative.env"], "absolute"),
    (["systemd", "gateway", "--user", "two words"], "user"),
])
def test_systemd_command_rejects_bad_input(capsys, argv, needle):
    code, out, err = _kgen(capsys, *argv)
    assert code == 2 and out == "" and needle in err and err.count("\n") == 1


def test_protect_home_relaxes_for_an_install_in_a_home_directory():
    assert "ProtectHome=read-only" in units.gateway_unit(["/home/ann/.venv/bin/kgen"])
    assert "ProtectHome=yes" in units.gateway_unit(["/opt/kgen/bin/kgen"])


def _verify(tmp_path, name: str, text: str) -> subprocess.CompletedProcess:
    path = tmp_path / name
    path.write_text(text)
    return subprocess.run(["systemd-analyze", "verify", "--man=no", str(path)], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed (apt: systemd)")
@pytest.mark.parametrize("name", ["kgen-gateway.service", "kgen-node@.service"])
def test_systemd_analyze_accepts_the_units(tmp_path, name):
    # systemd-analyze insists that ExecStart exists: point the committed unit at this install.
    text = (CONTRIB / name).read_text().replace(units.DEFAULT_EXEC, units.current_executable()[0])
    instance = name.replace("@.", "@9001.")
    done = _verify(tmp_path, instance, text)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    broken = _verify(tmp_path, "broken-" + instance, text.replace("Type=notify", "Type=notifyy"))
    assert "notifyy" in broken.stderr  # the check can fail


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed (apt: systemd)")
@pytest.mark.parametrize("daemon", ["gateway", "node"])
def test_systemd_analyze_accepts_the_printed_unit(tmp_path, capsys, daemon):
    code, out, _ = _kgen(capsys, "systemd", daemon)
    assert code == 0
    done = _verify(tmp_path, "kgen-gateway.service" if daemon == "gateway" else "kgen-node@9002.service", out)
    assert done.returncode == 0 and done.stderr == "", done.stderr
