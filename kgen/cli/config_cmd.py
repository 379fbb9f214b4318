"""`kgen init` and `kgen config path|show|get|set|unset`: the config file and the API token."""

from __future__ import annotations

import typer

from kgen.cli._docs.choices import static_choices

_PATHS = ("config", "token", "home", "state")


def _config_keys():
    from kgen.core.config import KEYS

    return list(KEYS)


def _render(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def init(
    force: bool = typer.Option(False, "--force", help="Replace an existing admin token (whoever holds the old one loses access)."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Create the config file and the admin token (idempotent; keeps an existing token unless --force).

    The token file holds the gateway's admin token; give clients and nodes their own scoped
    tokens with `kgen token create --role client|node`.
    """
    from kgen.cli._output import out, print_json
    from kgen.core import config

    result = config.init_home(force=force)
    if json_out:
        print_json(result)
        return
    console = out()
    console.print(f"config  {result['config_path']}  ({'created' if result['config_created'] else 'kept'})")
    console.print(f"token   {result['token_path']}  ({result['token']}, mode 0600; the admin token)")


def path(
    which: str = typer.Argument("config", help="Which path: config, token, home or state.", metavar="WHICH",
                                autocompletion=static_choices(_PATHS)),
    json_out: bool = typer.Option(False, "--json", help="Print every path as JSON."),
) -> None:
    """Print where kgen keeps its config file, token, home and daemon state."""
    from kgen.cli._output import print_json
    from kgen.core import config
    from kgen.core.errors import BadInput

    paths = {"config": str(config.config_path()), "token": str(config.token_path()),
             "home": str(config.kgen_home()), "state": str(config.state_dir())}
    if json_out:
        print_json(paths)
        return
    if which not in paths:
        raise BadInput(f"unknown path {which!r}: expected one of {', '.join(_PATHS)}")
    typer.echo(paths[which])


def show(
    reveal: bool = typer.Option(False, "--reveal", help="Show secret values (llm.api_key) instead of ********."),
    json_out: bool = typer.Option(False, "--json", help="Print the keys as JSON."),
) -> None:
    """List every key with its effective value and where it came from (flag > env > config > default)."""
    from kgen.cli._output import out, print_json
    from kgen.core import config

    rows = config.show(reveal=reveal)
    if json_out:
        print_json({"config_path": str(config.config_path()), "keys": rows})
        return
    from rich.table import Table

    table = Table(title=f"kgen configuration ({config.config_path()})", title_justify="left")
    table.add_column("key", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_column("source", no_wrap=True)
    for row in rows:
        # The file is named in the title; repeating its path per row only forces wrapping.
        source = "config" if row["source"].startswith("config ") else row["source"]
        table.add_row(row["key"], _render(row["value"]), source)
    out().print(table)


def get(
    key: str = typer.Argument(..., metavar="KEY", help="Dotted key, e.g. gateway.url.", autocompletion=static_choices(_config_keys)),
    json_out: bool = typer.Option(False, "--json", help="Print key, value and source as JSON."),
) -> None:
    """Print the effective value of one key (the value alone, for scripts)."""
    from kgen.cli._output import print_json
    from kgen.core import config

    value, source = config.resolve(key)
    if json_out:
        print_json({"key": key, "value": value, "source": source})
        return
    typer.echo(_render(value))


def set_(
    key: str = typer.Argument(..., metavar="KEY", help="Dotted key, e.g. gateway.url.", autocompletion=static_choices(_config_keys)),
    value: str = typer.Argument(..., metavar="VALUE", help="New value; checked against the key's type."),
    json_out: bool = typer.Option(False, "--json", help="Print the stored value as JSON."),
) -> None:
    """Validate and store one key in the config file (written atomically)."""
    from kgen.cli._output import err, print_json
    from kgen.core import config

    stored = config.set_value(key, value)
    effective, source = config.resolve(key)
    if json_out:
        print_json({"key": key, "value": stored, "config_path": str(config.config_path()),
                    "effective_value": effective, "effective_source": source})
        return
    typer.echo(f"{key} = {_render(stored)}")
    if not source.startswith("config"):
        # Say so when the new value is shadowed: a silent no-op would mislead.
        err().print(f"note: {key} is overridden by {source} (effective value {_render(effective)})")


def unset(
    key: str = typer.Argument(..., metavar="KEY", help="Dotted key, e.g. gateway.url.", autocompletion=static_choices(_config_keys)),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Remove one key from the config file, so the env or the default applies again."""
    from kgen.cli._output import print_json
    from kgen.core import config

    removed = config.unset_value(key)
    if json_out:
        print_json({"key": key, "removed": removed, "config_path": str(config.config_path())})
        return
    typer.echo(f"{key} {'removed' if removed else 'was not set'} in {config.config_path()}")


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    group = typer.Typer(name="config", help="Read and change the kgen configuration (config.toml).",
                        no_args_is_help=True)
    group.command("path")(path)
    group.command("show")(show)
    group.command("get")(get)
    group.command("set")(set_)
    group.command("unset")(unset)
    app.add_typer(group, name="config")
