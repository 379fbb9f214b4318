"""`kgen gateway start`: run the gateway in the foreground (as systemd expects)."""

from __future__ import annotations

from typing import Optional

import typer

from kgen.core.errors import ConfigError

gateway_app = typer.Typer(help="Run the gateway (job API, scheduler, worker registry).", no_args_is_help=True)

NO_TOKEN = "no token: run `kgen init` or set KGEN_TOKEN"


@gateway_app.command("start")
def start(
    host: Optional[str] = typer.Option(None, "--host", help="Address to bind (env KGEN_GATEWAY_HOST; default 127.0.0.1)."),
    port: Optional[int] = typer.Option(None, "--port", help="Port to bind, 0 for any free one (env KGEN_GATEWAY_PORT; default 8000)."),
    db: Optional[str] = typer.Option(None, "--db", help="SQLite file (env KGEN_GATEWAY_DB; default <state dir>/gateway.db)."),
    token: Optional[str] = typer.Option(None, "--token", help="Admin token (else KGEN_TOKEN, else the token file); other tokens live in the database (`kgen token`)."),
    max_queue: Optional[int] = typer.Option(None, "--max-queue", help="Queued jobs before submits get 429 (default 256)."),
    heartbeat_ttl: Optional[float] = typer.Option(None, "--heartbeat-ttl", help="Worker heartbeat TTL in seconds (default 30)."),
    max_running: int = typer.Option(4, "--max-running", envvar="KGEN_GATEWAY_MAX_RUNNING",
                                    help="Jobs run at the same time (1-256)."),
    max_node_capacity: Optional[int] = typer.Option(None, "--max-node-capacity", help="Cap on the capacity a node reports (config gateway.max_node_capacity; default 16)."),
    cross_check: Optional[str] = typer.Option(None, "--cross-check", help="auto (re-verify correct candidates on a second node when one serves the backend) or off (config gateway.cross_check)."),
    ui: Optional[bool] = typer.Option(None, "--ui/--no-ui", help="Serve the web dashboard at /ui/ (config gateway.ui; default on)."),
    stream_heartbeat: float = typer.Option(15.0, "--stream-heartbeat", envvar="KGEN_GATEWAY_STREAM_HEARTBEAT",
                                           help="Seconds between heartbeat lines on idle event streams."),
) -> None:
    """Start the gateway and block until SIGTERM/SIGINT."""
    from kgen.core.config import get, resolve_token, state_dir

    # Out-of-range settings are bad daemon configuration (exit 78), like bad config-file values.
    if not 1 <= max_running <= 256:
        raise ConfigError(f"--max-running must be between 1 and 256 (got {max_running})")
    if not 0.05 <= stream_heartbeat <= 3600:
        raise ConfigError(f"--stream-heartbeat must be between 0.05 and 3600 seconds (got {stream_heartbeat:g})")
    resolved_token, _ = resolve_token(token)
    if not resolved_token:
        raise ConfigError(NO_TOKEN)
    db_value = get("gateway.db", db) or str(state_dir() / "gateway.db")
    capacity_value = get("gateway.max_node_capacity", max_node_capacity)
    if not 1 <= capacity_value <= 100_000:
        raise ConfigError(f"--max-node-capacity must be between 1 and 100000 (got {capacity_value})")
    cross_value = get("gateway.cross_check", cross_check)
    if cross_value not in ("auto", "off"):
        raise ConfigError(f"--cross-check must be auto or off (got {cross_value!r})")

    from kgen.daemon.gateway.server import GatewayConfig, GatewayService

    config = GatewayConfig(
        db_path=db_value,
        token=resolved_token,
        host=get("gateway.host", host),
        port=get("gateway.port", port),
        max_queue=get("gateway.max_queue", max_queue),
        max_running=max_running,
        heartbeat_ttl_s=get("gateway.heartbeat_ttl_s", heartbeat_ttl),
        max_attempts=get("gateway.max_attempts"),
        default_timeout_s=get("verify.timeout_s"),
        stream_heartbeat_s=stream_heartbeat,
        max_node_capacity=capacity_value,
        cross_check=cross_value,
        ui=get("gateway.ui", ui),
    )
    raise typer.Exit(GatewayService(config).run())


def register(app: typer.Typer) -> None:
    app.add_typer(gateway_app, name="gateway")
