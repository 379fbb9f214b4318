"""completions/: fresh with respect to the command tree, and working in real shells."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from kgen.cli import main
from kgen.cli._docs import completion
from kgen.cli._docs.regen import COMPLETION_FILES
from kgen.cli._docs.regen import cli_tree

REPO = Path(__file__).resolve().parents[2]
TREE = cli_tree()
REGEN = "python -m kgen.cli._docs.regen"


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("KGEN_HOME", str(tmp_path / "home"))


@pytest.mark.parametrize("shell", completion.SHELLS)
def test_committed_scripts_are_fresh(shell, tmp_path):
    fresh = tmp_path / Path(COMPLETION_FILES[shell]).name
    fresh.write_text(completion.render(shell, TREE))
    committed = REPO / COMPLETION_FILES[shell]
    assert committed.exists(), f"{committed} missing: run `{REGEN}`"
    assert committed.read_text() == fresh.read_text(), f"{committed} is stale: run `{REGEN}`"


@pytest.mark.parametrize("shell", completion.SHELLS)
def test_completions_command_prints_the_script(shell, capsys):
    with pytest.raises(SystemExit) as info:
        main(["completions", shell])
    assert info.value.code == 0
    assert capsys.readouterr().out == completion.render(shell, TREE)


@pytest.fixture
def script(tmp_path):
    """A freshly rendered script (staleness of the committed ones is checked above)."""

    def render(shell: str) -> str:
        path = tmp_path / Path(COMPLETION_FILES[shell]).name
        path.write_text(completion.render(shell, TREE))
        return str(path)

    return render


def _cases() -> list[tuple[str, set[str]]]:
    """(command line being typed, words that must be offered), derived from the live tree."""
    cases = []
    for cmd in TREE.commands:
        cases.append((f"kgen {cmd.name[:2]}", {cmd.name}))
        cases.append((f"kgen --debug {cmd.name[:2]}", {cmd.name}))
    for group in (c for c in TREE.walk() if c.commands):
        cases.append((group.full_name + " ", {s.name for s in group.commands}))
    for cmd in TREE.walk():
        cases.append((cmd.full_name + " --", {o for p in cmd.options for o in p.opts if o.startswith("--")}))
    cases += [
        ("kgen completions ", {"bash", "zsh", "fish"}),
        ("kgen systemd n", {"node"}),
        ("kgen config get gateway.p", {"gateway.port"}),
        ("kgen man --output /dev/nul", {"/dev/null"}),       # a path option completes files
        ("kgen man -o x --js", {"--json"}),                  # and swallows its value
        ("kgen config set node.port ", set()),               # nothing to offer: no error either
    ]
    return cases


_BASH = r"""
source "$1"
shift
for line in "$@"; do
    read -ra COMP_WORDS <<< "$line"
    [[ "$line" == *" " ]] && COMP_WORDS+=("")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMPREPLY=()
    _kgen || exit 1
    echo "${COMPREPLY[*]}"
done
"""


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash not installed")
def test_bash_completes_commands_options_and_values(script):
    cases = _cases()
    done = subprocess.run(["bash", "--norc", "--noprofile", "-c", _BASH, "_", script("bash"),
                           *[line for line, _ in cases]], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    replies = done.stdout.split("\n")
    for (line, want), got in zip(cases, replies):
        offered = set(got.split())
        assert want <= offered, f"{line!r}: offered {sorted(offered)}, want {sorted(want)}"
        prefix = line.split(" ")[-1]
        assert all(word.startswith(prefix) for word in offered), f"{line!r}: {sorted(offered)}"


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish not installed (apt package: fish)")
def test_fish_completes_commands_and_values(script):
    cases = [(line, want) for line, want in _cases() if not line.endswith(" ") or want]
    script = f"source {script('fish')}\n" + "".join(
        f"echo (complete -C {_fish_quote(line)} | string replace -r '\\t.*' '')\n" for line, _ in cases)
    done = subprocess.run(["fish", "--no-config", "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    for (line, want), got in zip(cases, done.stdout.split("\n")):
        assert want <= set(got.split()), f"{line!r}: offered {got!r}, want {sorted(want)}"


def _fish_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


_ZSH = r"""
# Stand-ins for the completion system: print what would be offered.
_describe() { local arr=${@[-1]}; print -r -- ${(j: :)${(@)${(@P)arr}%%:*}}; }
compadd() { [[ $1 == -a ]] && print -r -- ${(j: :)${(@P)2}}; }
_files() { print -r -- @files; }
compdef() { :; }
source "$1"
shift
for line in "$@"; do
    words=(${=line})
    [[ "$line" == *" " ]] && words+=("")
    CURRENT=${#words}
    _kgen
done
"""


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh not installed (apt package: zsh)")
def test_zsh_script_offers_the_same_candidates(script):
    cases = [(line, want) for line, want in _cases() if want and "/dev/nul" not in line]
    done = subprocess.run(["zsh", "-f", "-c", _ZSH, "_", script("zsh"),
                           *[line for line, _ in cases]], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    for (line, want), got in zip(cases, done.stdout.split("\n")):
        assert want <= set(got.split()), f"{line!r}: offered {got!r}, want {sorted(want)}"


def test_generated_files_do_not_depend_on_the_hash_seed(tmp_path):
    """Staleness checks are only meaningful if two runs render the same bytes."""
    import json
    import os
    import sys

    code = "import json; from kgen.cli._docs.regen import expected_files; print(json.dumps(expected_files()))"
    outputs = []
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed, KGEN_HOME=str(tmp_path))
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        outputs.append(json.loads(done.stdout))
    differing = [name for name in outputs[0] if outputs[0][name] != outputs[1].get(name)]
    assert not differing, f"rendering depends on PYTHONHASHSEED: {differing}"
