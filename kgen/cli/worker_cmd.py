"""`kgen worker register|list|remove`: the nodes a gateway dispatches to (register = enroll a node token)."""

from __future__ import annotations

from typing import Optional

import typer

from kgen.cli.job_cmd import GATEWAY_OPTION, TOKEN_OPTION, gateway_client
from kgen.core.errors import BadInput

worker_app = typer.Typer(help="Register, list and remove the nodes of a gateway.", no_args_is_help=True)


@worker_app.command("register")
def register_worker(
    node_url: str = typer.Argument(..., help="The node's URL, e.g. http://10.0.0.5:9001."),
    name: Optional[str] = typer.Option(None, "--name", help="Token name (default: node-<random>)."),
    as_json: bool = typer.Option(False, "--json", help="Print {token, secret, url} as JSON."),
    gateway: Optional[str] = GATEWAY_OPTION,
    token: Optional[str] = TOKEN_OPTION,
) -> None:
    """Enroll a node: create a node token valid for NODE_URL only; the node then registers itself with it.

    The gateway never contacts NODE_URL here: it sends no credential to a node before the node has
    proved, by registering with this token, that it holds it.
    """
    from kgen.cli._output import err, print_json
    from kgen.core.config import resolve

    if not node_url.startswith(("http://", "https://")):
        raise BadInput(f"node URL must start with http:// or https://, got {node_url!r}")
    answer = gateway_client(gateway, token).create_token("node", name, url=node_url.rstrip("/"))
    answer.pop("api_version", None)
    if as_json:
        print_json({**answer, "url": node_url.rstrip("/")})
        return
    typer.echo(answer["secret"])
    gateway_url, _ = resolve("gateway.url", gateway)
    err().print(f"node token {answer['token']['name']!r} for {node_url} (shown once). On the node, save it to a "
                f"file (mode 0600) and run:\n  kgen node start --gateway {gateway_url} "
                f"--advertise-url {node_url} --token-file FILE")


@worker_app.command("list")
def list_workers(
    as_json: bool = typer.Option(False, "--json", help="Print a JSON document."),
    jsonl: bool = typer.Option(False, "--jsonl", help="One JSON worker per line."),
    gateway: Optional[str] = GATEWAY_OPTION,
    token: Optional[str] = TOKEN_OPTION,
) -> None:
    """List registered workers with their health and load."""
    from rich.table import Table

    from kgen.cli._output import out, print_json, print_jsonl

    workers = gateway_client(gateway, token).list_workers()
    if as_json:
        print_json({"workers": workers})
        return
    if jsonl:
        for worker in workers:
            print_jsonl(worker)
        return
    table = Table("WORKER", "URL", "BACKEND", "ARCH", "LOAD", "HEALTHY", "SUSPECT", box=None)
    for w in workers:
        table.add_row(str(w.get("worker_id", "")), str(w.get("url", "")), str(w.get("backend", "")),
                      str(w.get("arch", "")), f"{w.get('load', 0)}/{w.get('capacity', '?')}",
                      "yes" if w.get("healthy") else "no", "yes" if w.get("suspect") else "no")
    out().print(table)


@worker_app.command("remove")
def remove_worker(
    worker_id: str = typer.Argument(..., help="Worker id (see `kgen worker list`)."),
    as_json: bool = typer.Option(False, "--json", help="Print {worker_id, removed} as JSON."),
    gateway: Optional[str] = GATEWAY_OPTION,
    token: Optional[str] = TOKEN_OPTION,
) -> None:
    """Remove a worker; the gateway stops dispatching to it."""
    from kgen.cli._output import print_json

    gateway_client(gateway, token).remove_worker(worker_id)
    if as_json:
        print_json({"worker_id": worker_id, "removed": True})
    else:
        typer.echo(f"removed {worker_id}")


def register(app: typer.Typer) -> None:
    app.add_typer(worker_app, name="worker")
