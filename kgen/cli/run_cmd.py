"""Placeholder: this command group is being written; replace register() with the real commands."""

import typer


def register(app: typer.Typer) -> None:
    return None
