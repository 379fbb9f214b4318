"""man/: fresh with respect to the command tree, complete, and clean under groff."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from kgen.cli import main
from kgen.cli._docs.manpage import esc
from kgen.cli._docs.regen import man_pages
from kgen.cli._docs.regen import cli_tree

REPO = Path(__file__).resolve().parents[2]
TREE = cli_tree()
PAGES = man_pages(TREE)
REGEN = "python -m kgen.cli._docs.regen"


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("KGEN_HOME", str(tmp_path / "home"))


def test_committed_pages_are_fresh():
    committed = {p.name: p.read_text() for p in (REPO / "man").glob("kgen*.1")}
    assert sorted(committed) == sorted(PAGES), f"man/ lists other pages than the tree: run `{REGEN}`"
    stale = [name for name, text in PAGES.items() if committed[name] != text]
    assert not stale, f"stale man pages {stale}: run `{REGEN}`"


def test_one_page_per_top_level_command_documenting_every_option():
    assert set(PAGES) == {"kgen.1"} | {f"kgen-{c.name}.1" for c in TREE.commands}
    for top in TREE.commands:
        page = PAGES[f"kgen-{top.name}.1"]
        for cmd in top.walk():
            assert esc(cmd.full_name) in page
            for param in cmd.params:
                assert esc(param.label) in page, f"{param.label} of {cmd.full_name} missing"
    root = PAGES["kgen.1"]
    for section in ("SYNOPSIS", "COMMANDS", "ENVIRONMENT", "FILES", "EXIT STATUS", "SEE ALSO"):
        assert f".SH {section}" in root
    for code in ("0", "1", "2", "3", "4", "78", "130"):
        assert f".TP\n\\fB{code}\\fR" in root


def test_man_command_writes_the_pages(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["man", "--output", str(tmp_path / "out"), "--json"])
    assert info.value.code == 0
    result = json.loads(capsys.readouterr().out)
    assert sorted(Path(p).name for p in result["files"]) == sorted(PAGES)
    for name, text in PAGES.items():
        assert (tmp_path / "out" / name).read_text() == text


def test_man_output_must_be_a_directory(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit) as info:
        main(["man", "--output", str(tmp_path / "file")])
    assert info.value.code == 2
    assert "not a directory" in capsys.readouterr().err


def test_roff_escaping_of_hostile_help_text():
    assert esc(".SH injected\n'quote \\ back -dash") == "\\&.SH injected\n\\&'quote \\e back \\-dash"


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff not installed (apt package: groff-base)")
@pytest.mark.parametrize("name", sorted(PAGES))
def test_pages_render_without_warnings(name, tmp_path):
    page = tmp_path / name
    page.write_text(PAGES[name])
    done = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", str(page)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    rendered = subprocess.run(["groff", "-man", "-Tutf8", str(page)], capture_output=True, text=True, timeout=60)
    plain = re.sub(".\b", "", rendered.stdout)  # drop overstrike bold/underline
    assert "NAME" in plain and "SYNOPSIS" in plain
