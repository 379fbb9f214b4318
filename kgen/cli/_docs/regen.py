"""Every generated file of the repository, and one command to rewrite them all.

    python -m kgen.cli._docs.regen [REPO_ROOT]

rewrites completions/, man/ and contrib/systemd/ from the current command tree; the tests compare
`expected_files()` with what is committed and fail when it is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

from kgen.cli import build_command
from kgen.cli._docs import files
from kgen.cli._docs.files import COMPLETION_FILES, stale_man_pages
from kgen.cli._docs.tree import Command, command_tree

__all__ = ["COMPLETION_FILES", "cli_tree", "expected_files", "man_pages", "main", "write_all"]


def cli_tree() -> Command:
    """The snapshot of the kgen command tree itself."""
    return command_tree(build_command())


def man_pages(root: Command | None = None) -> dict[str, str]:
    return files.man_pages(root or cli_tree())


def expected_files(root: Command | None = None) -> dict[str, str]:
    """{path relative to the repository root: text} of every generated file."""
    return files.expected_files(root or cli_tree())


def write_all(repo: Path) -> list[str]:
    expected = expected_files()
    for old in stale_man_pages(repo, expected):
        old.unlink()
    written = []
    for rel, text in expected.items():
        target = repo / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists() or target.read_text() != text:
            target.write_text(text)
            written.append(rel)
    return written


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    repo = Path(argv[0]) if argv else Path(__file__).resolve().parents[3]
    written = write_all(repo)
    print(f"regenerated {len(written)} file(s) under {repo}" + "".join(f"\n  {w}" for w in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
