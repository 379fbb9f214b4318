"""A plain snapshot of the typer command tree that the generators render from."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field


@dataclass
class Param:
    kind: str                 # "option" | "argument"
    name: str
    opts: list[str]           # every spelling, including --no-x secondaries
    takes_value: bool
    label: str                # as --help shows it: "-n, --n <int>" or "TASK"
    help: str                 # as --help shows it, defaults and env vars included
    choices: list[str]
    is_path: bool
    required: bool
    many: bool


@dataclass
class Command:
    path: list[str]           # ["kgen", "job", "list"]
    help: str
    short_help: str
    usage: str                # "kgen job list [OPTIONS] ..."
    params: list[Param]
    commands: list[Command] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path[-1]

    @property
    def full_name(self) -> str:
        return " ".join(self.path)

    @property
    def options(self) -> list[Param]:
        return [p for p in self.params if p.kind == "option"]

    @property
    def arguments(self) -> list[Param]:
        return [p for p in self.params if p.kind == "argument"]

    def walk(self):
        """This command and every visible descendant, depth first, in --help order."""
        yield self
        for sub in self.commands:
            yield from sub.walk()


def clean_help(text: str | None) -> str:
    # Typer cuts help at a form feed (the rest is for developers) and dedents docstrings.
    text = (text or "").split("\f")[0]
    return inspect.cleandoc(text).strip()


def _choices(param, ctx) -> list[str]:
    desc = getattr(param, "type_descriptor", None)
    if desc is not None and desc.choices:
        return [str(getattr(c, "value", c)) for c in desc.choices]
    info = getattr(desc, "parameter_info", None)
    source = getattr(getattr(info, "autocompletion", None), "kgen_static_values", None)
    return list(source()) if source else []


def _spelling_order(opt: str) -> tuple[bool, str]:
    return (opt.startswith("--"), opt)


def _param(param, ctx) -> Param | None:
    if getattr(param, "hidden", False):
        return None
    desc = getattr(param, "type_descriptor", None)
    is_path = bool(desc is not None and (desc.is_path or desc.is_file))
    many = param.nargs == -1 or bool(getattr(param, "multiple", False))
    if param.param_type_name == "option":
        label, help_text = param.get_help_record(ctx) or ("", "")
        takes_value = not (getattr(param, "is_flag", False) or getattr(param, "count", False))
        # Click keeps some spellings (the help option's) in a set: sort so output is reproducible.
        opts = sorted(param.opts, key=_spelling_order) + sorted(param.secondary_opts, key=_spelling_order)
        return Param("option", param.name, opts, takes_value, label,
                     " ".join(help_text.split()), _choices(param, ctx), is_path, param.required, many)
    record = param.get_help_record(ctx)
    label = param.metavar or param.name.upper()
    help_text = " ".join((record[1] if record else (param.help or "")).split())
    return Param("argument", param.name, [], True, label, help_text, _choices(param, ctx),
                 is_path, param.required, many)


def _command(cmd, ctx) -> Command:
    params = [p for p in (_param(raw, ctx) for raw in cmd.get_params(ctx)) if p is not None]
    usage = " ".join([ctx.command_path, *cmd.collect_usage_pieces(ctx)])
    node = Command(ctx.command_path.split(), clean_help(cmd.help), "", usage, params)
    node.short_help = clean_help(getattr(cmd, "short_help", None)) or node.help.split("\n\n")[0].replace("\n", " ")
    if hasattr(cmd, "list_commands"):
        from typer import Context

        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            if sub is None or getattr(sub, "hidden", False):
                continue
            node.commands.append(_command(sub, Context(sub, parent=ctx, info_name=name)))
    return node


def command_tree(root, prog: str = "kgen") -> Command:
    """Snapshot the tree of `root`, a click command such as `kgen.cli.build_command()` (the
    caller hands it in, so this package never imports the CLI it documents)."""
    from typer import Context

    settings = dict(getattr(root, "context_settings", None) or {})
    ctx = Context(root, info_name=prog, help_option_names=settings.get("help_option_names", ["--help"]))
    return _command(root, ctx)
