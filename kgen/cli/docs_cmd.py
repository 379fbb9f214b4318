"""`kgen completions`, `kgen man` and `kgen systemd`: operations artefacts generated from the CLI itself."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import typer


def _tree(ctx: typer.Context):
    """The snapshot of the command tree this command runs in (its root), without importing kgen.cli."""
    from kgen.cli._docs.tree import command_tree

    return command_tree(ctx.find_root().command)


def completions(
    ctx: typer.Context,
    shell: Literal["bash", "zsh", "fish"] = typer.Argument(..., help="Shell to print a completion script for."),
) -> None:
    """Print a static completion script (bash: source it; zsh: save as _kgen on $fpath; fish: save in completions/)."""
    from kgen.cli._docs import completion

    typer.echo(completion.render(shell, _tree(ctx)), nl=False)


def man(
    ctx: typer.Context,
    output: Path = typer.Option(..., "--output", "-o", help="Directory to write kgen.1 and kgen-<command>.1 into."),
    json_out: bool = typer.Option(False, "--json", help="Print the written files as JSON."),
) -> None:
    """Write the man pages (roff), one per top-level command plus kgen(1), generated from the command tree."""
    from kgen.cli._docs.files import man_pages
    from kgen.cli._output import print_json
    from kgen.core.errors import BadInput

    if output.exists() and not output.is_dir():
        raise BadInput(f"--output {output} exists and is not a directory")
    try:
        output.mkdir(parents=True, exist_ok=True)
        written = []
        for name, text in man_pages(_tree(ctx)).items():
            (output / name).write_text(text)
            written.append(str(output / name))
    except OSError as exc:
        raise BadInput(f"cannot write man pages to {output}: {exc.strerror or exc}") from None
    if json_out:
        print_json({"output": str(output), "files": written})
        return
    for path in written:
        typer.echo(path)


def systemd(
    ctx: typer.Context,
    daemon: Literal["gateway", "node"] = typer.Argument(..., help="Which daemon's unit to print."),
    user: str = typer.Option("kgen", "--user", help="System user the daemon runs as."),
    env_file: str = typer.Option("/etc/kgen/kgen.env", "--env-file", help="EnvironmentFile= path (optional at run time)."),
) -> None:
    """Print a systemd unit that runs this install of kgen (the node unit is a template: kgen-node@PORT)."""
    from kgen.cli._docs import units
    from kgen.core.errors import BadInput

    if not user or any(c.isspace() for c in user):
        raise BadInput(f"--user {user!r} is not a user name")
    if not env_file.startswith("/"):
        raise BadInput(f"--env-file {env_file!r} must be an absolute path (systemd requires it)")
    render = units.gateway_unit if daemon == "gateway" else units.node_unit
    args = units.daemon_args(_tree(ctx), daemon)
    typer.echo(render(units.current_executable(), user=user, env_file=env_file, args=args), nl=False)


def register(app: typer.Typer) -> None:
    app.command("completions")(completions)
    app.command("man")(man)
    app.command("systemd")(systemd)
