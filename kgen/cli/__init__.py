"""The `kgen` command. Each command group lives in its own module and registers itself here.

Import discipline: nothing here (or in any kgen.cli module at import time) may import torch,
triton, numpy or aiohttp, so that `kgen --help` stays fast. Heavy imports happen inside commands.
"""

from __future__ import annotations

import sys
import traceback

import typer

from kgen import __version__
from kgen.cli.state import state
from kgen.core.errors import EXIT_INTERRUPTED, EXIT_USAGE, KgenError

app = typer.Typer(
    name="kgen",
    help="Distributed AI kernel generation: PyTorch reference ops in, verified Triton kernels out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)



def _version(value: bool) -> None:
    if value:
        typer.echo(f"kgen {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors.", envvar="KGEN_DEBUG"),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    state["debug"] = state["debug"] or debug


def _register_all() -> None:
    # One module per command group; each exposes register(app).
    from kgen.cli import (  # noqa: PLC0415
        bench_cmd,
        config_cmd,
        docs_cmd,
        doctor_cmd,
        gateway_cmd,
        job_cmd,
        node_cmd,
        run_cmd,
        token_cmd,
        ui_cmd,
        verify_cmd,
        worker_cmd,
    )

    for module in (verify_cmd, run_cmd, job_cmd, worker_cmd, token_cmd, gateway_cmd, node_cmd, config_cmd, docs_cmd,
                   bench_cmd, doctor_cmd, ui_cmd):
        module.register(app)


_register_all()


def build_command():
    """The click command tree of `app`, as `kgen` runs it.

    typer (>= 0.26) prints every option's value type in --help, flags included, which shows
    `--debug <bool>` and `--help -h <bool>` although flags take no value. An explicit empty
    metavar is what typer shows instead, so every on/off flag (the help option too) gets one."""
    import typer.main

    root = typer.main.get_command(app)
    _hide_flag_types(root, typer.Context(root, info_name="kgen", help_option_names=["-h", "--help"]))
    return root


def _hide_flag_types(cmd, ctx) -> None:
    for param in [*cmd.params, cmd.get_help_option(ctx)]:
        if param is not None and getattr(param, "is_flag", False) and not getattr(param, "count", False) \
                and param.metavar is None:
            param.metavar = ""
    if hasattr(cmd, "list_commands"):
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            if sub is not None:
                _hide_flag_types(sub, typer.Context(sub, parent=ctx, info_name=name))


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: maps expected errors to one-line messages and exit codes."""
    try:
        rv = build_command().main(args=argv, prog_name="kgen", standalone_mode=False)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        print("kgen: interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except typer.TyperException as exc:   # click's usage errors (typer vendors click under it)
        # One line, like every other error; the usage text is one --help away.
        message = " ".join(exc.format_message().split())
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        print(f"kgen: error: {message}{hint}", file=sys.stderr)
        sys.exit(exc.exit_code if exc.exit_code else EXIT_USAGE)
    except KgenError as exc:
        if state["debug"]:
            traceback.print_exc()
        print(f"kgen: error: {exc.message}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except Exception as exc:  # an unexpected bug: say so in one line unless --debug
        if state["debug"]:
            traceback.print_exc()
        else:
            print(f"kgen: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)", file=sys.stderr)
        sys.exit(1)
    sys.exit(rv if isinstance(rv, int) else 0)
