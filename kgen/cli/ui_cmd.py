"""`kgen ui`: print the web dashboard's URL and open it in a browser where one exists."""

from __future__ import annotations

from typing import Optional

import typer

from kgen.cli.job_cmd import GATEWAY_OPTION


def _probe(url: str) -> int | None:
    """The HTTP status of GET <url> (no token: the page's files are public), None if unreachable."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="GET"), timeout=3) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError, ValueError):
        return None


def ui(
    gateway: Optional[str] = GATEWAY_OPTION,
    no_open: bool = typer.Option(False, "--no-open", help="Only print the URL; do not start a browser."),
    as_json: bool = typer.Option(False, "--json", help="Print {url, reachable, opened} as JSON."),
) -> None:
    """Print the web dashboard's URL (<gateway>/ui/) and open it in a browser if there is one.

    Sign in on the page with a client or admin token; it stays in that browser tab only.
    """
    import sys

    from kgen.core.config import resolve
    from kgen.core.errors import BadInput

    base, source = resolve("gateway.url", gateway)
    url = base.rstrip("/") + "/ui/"
    status = _probe(url)
    # With the dashboard on, /ui/ answers 200 without a token; off, it is no public path (401/404).
    if status in (401, 404):
        raise BadInput(f"the gateway at {base} (from {source}) serves no dashboard: it runs with --no-ui "
                       "(config gateway.ui = false)")
    if not as_json:
        typer.echo(url)
    if status is None:
        print(f"kgen: warning: no gateway answers at {base} (from {source}) yet", file=sys.stderr)
    opened = False
    if not no_open:
        import webbrowser

        try:
            opened = webbrowser.open(url)
        except webbrowser.Error:
            opened = False
        if not opened:
            print("kgen: no browser found here; open the URL in one", file=sys.stderr)
    if as_json:
        import json

        typer.echo(json.dumps({"url": url, "reachable": status is not None, "opened": opened}))


def register(app: typer.Typer) -> None:
    app.command("ui")(ui)
