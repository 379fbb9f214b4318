"""The generated files of the repository (completions, man pages, systemd units) as text, from a
command tree snapshot. kgen.cli._docs.regen writes them; `kgen man` renders the pages."""

from __future__ import annotations

from pathlib import Path

from kgen.cli._docs import completion, manpage, units
from kgen.cli._docs.tree import Command

COMPLETION_FILES = {"bash": "completions/kgen.bash", "zsh": "completions/_kgen", "fish": "completions/kgen.fish"}


def man_extras() -> manpage.Extras:
    from kgen import __version__
    from kgen.core import config, errors

    environment = [
        ("KGEN_HOME", "Directory holding config.toml and the token (default: the platform config directory, "
                      "~/.config/kgen on Linux)."),
        ("KGEN_TOKEN", "API token; overrides the token file."),
        ("KGEN_DEBUG", "Set to 1 to show tracebacks, like --debug."),
        ("NO_COLOR", "Disable colour (colour is also off when output is not a terminal)."),
        ("CONFIGURATION_DIRECTORY", "Set by systemd's ConfigurationDirectory=; used for config.toml and the "
                                    "token when KGEN_HOME is unset."),
        ("STATE_DIRECTORY", "Set by systemd's StateDirectory=; daemons keep their databases there."),
    ]
    environment += [(k.env, f"Overrides {k.name}: {k.help}.") for k in config.KEYS.values() if k.env]
    files = [
        ("$KGEN_HOME/config.toml", "Configuration (TOML). See kgen config show. Precedence: flag > environment > "
                                   "config file > default."),
        ("$KGEN_HOME/token", "API token (mode 0600), created by kgen init."),
        ("$KGEN_HOME/kgen.db", "Local-mode job store (SQLite)."),
    ]
    exit_status = [
        (str(errors.EXIT_OK), "Success."),
        (str(errors.EXIT_FAILED), "The job or verification failed."),
        (str(errors.EXIT_USAGE), "Usage error or bad input."),
        (str(errors.EXIT_UNREACHABLE), "Cannot reach a daemon."),
        (str(errors.EXIT_UNAUTHORISED), "Unauthorised (missing or wrong token)."),
        (str(errors.EXIT_BAD_CONFIG), "Bad daemon configuration (systemd RestartPreventExitStatus=78)."),
        (str(errors.EXIT_INTERRUPTED), "Interrupted."),
    ]
    return manpage.Extras(version=__version__, environment=environment, files=files, exit_status=exit_status)


def man_pages(root: Command) -> dict[str, str]:
    return manpage.render_pages(root, man_extras())


def expected_files(root: Command) -> dict[str, str]:
    """{path relative to the repository root: text} of every generated file."""
    from kgen.core.config import KEYS

    files = {path: completion.render(shell, root) for shell, path in COMPLETION_FILES.items()}
    files.update({f"man/{name}": text for name, text in man_pages(root).items()})
    files.update({f"contrib/systemd/{name}": text for name, text in units.contrib_files(KEYS, root).items()})
    return files


def stale_man_pages(repo: Path, expected: dict[str, str]) -> list[Path]:
    """Committed kgen*.1 pages that no command produces any more."""
    return [p for p in sorted((repo / "man").glob("kgen*.1")) if f"man/{p.name}" not in expected]
