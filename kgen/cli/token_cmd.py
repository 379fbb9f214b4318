"""`kgen token create|list|revoke`: scoped API tokens (roles client, node, admin).

Two ways to reach the tokens, like Nomad's ACL commands: through a running gateway's admin API
(default; needs the admin token), or with `--db PATH` directly on the gateway's SQLite file
(for bootstrapping before the gateway runs, or when it is down). Secrets are printed once, at
creation, and stored only as SHA-256 hashes.
"""

from __future__ import annotations

from typing import Optional

import typer

from kgen.cli.job_cmd import GATEWAY_OPTION, TOKEN_OPTION, gateway_client, local_time

token_app = typer.Typer(help="Create, list and revoke scoped API tokens (client, node, admin).", no_args_is_help=True)

DB_OPTION = typer.Option(None, "--db", help="Work on this gateway database file directly instead of through a running gateway.")
ROLES = ("client", "node", "admin")


def _store(db: str):
    from pathlib import Path

    from kgen.core.errors import BadInput
    from kgen.core.store import Store

    path = Path(db).expanduser()
    if not path.exists():
        raise BadInput(f"no gateway database at {path}")
    return Store(path)


@token_app.command("create")
def create(
    role: str = typer.Option(..., "--role", help="client (submit/read/cancel jobs), node (register itself, heartbeat), or admin (everything)."),
    name: Optional[str] = typer.Option(None, "--name", help="Unique name (default: <role>-<random>)."),
    as_json: bool = typer.Option(False, "--json", help="Print {token, secret} as JSON."),
    db: Optional[str] = DB_OPTION,
    gateway: Optional[str] = GATEWAY_OPTION,
    token: Optional[str] = TOKEN_OPTION,
) -> None:
    """Create a token and print its secret (shown this once only)."""
    from kgen.cli._output import err, print_json
    from kgen.core.errors import BadInput

    if role not in ROLES:
        raise BadInput(f"--role must be one of: {', '.join(ROLES)} (got {role!r})")
    if db:
        with _store(db) as store:
            row, secret = store.create_token(role, name)
        answer = {"token": row, "secret": secret}
    else:
        answer = gateway_client(gateway, token).create_token(role, name)
    if as_json:
        print_json(answer)
        return
    typer.echo(answer["secret"])
    err().print(f"created {answer['token']['role']} token {answer['token']['name']!r}; "
                "the secret above is not shown again")


@token_app.command("list")
def list_tokens(
    as_json: bool = typer.Option(False, "--json", help="Print a JSON document."),
    db: Optional[str] = DB_OPTION,
    gateway: Optional[str] = GATEWAY_OPTION,
    token: Optional[str] = TOKEN_OPTION,
) -> None:
    """List tokens: name, role, created, last used, bound worker (never secrets)."""
    from rich.table import Table

    from kgen.cli._output import out, print_json

    if db:
        with _store(db) as store:
            tokens = store.list_tokens()
    else:
        tokens = gateway_client(gateway, token).list_tokens()
    if as_json:
        print_json({"tokens": tokens})
        return
    table = Table("NAME", "ROLE", "CREATED", "LAST USED", "WORKER", "URL", box=None)
    for t in tokens:
        table.add_row(str(t.get("name", "")), str(t.get("role", "")), local_time(t.get("created_at")),
                      local_time(t.get("last_used")) if t.get("last_used") else "-",
                      str(t.get("worker_id") or "-"), str(t.get("url") or "-"))
    out().print(table)


@token_app.command("revoke")
def revoke(
    name: str = typer.Argument(..., help="Token name (see `kgen token list`)."),
    as_json: bool = typer.Option(False, "--json", help="Print the answer as JSON."),
    db: Optional[str] = DB_OPTION,
    gateway: Optional[str] = GATEWAY_OPTION,
    token: Optional[str] = TOKEN_OPTION,
) -> None:
    """Revoke a token at once; a revoked node token also removes its worker."""
    from kgen.cli._output import print_json

    if db:
        with _store(db) as store:
            store.revoke_token(name)
        answer = {"revoked": True, "name": name, "worker_removed": None}
    else:
        answer = gateway_client(gateway, token).revoke_token(name)
        answer.pop("api_version", None)
    if as_json:
        print_json(answer)
    else:
        typer.echo(f"revoked {name}")


def register(app: typer.Typer) -> None:
    app.add_typer(token_app, name="token")
