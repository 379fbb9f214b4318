"""`kgen node start`: run a verification node in the foreground (as systemd expects)."""

from __future__ import annotations

from typing import Optional

import typer

from kgen.core.errors import ConfigError

node_app = typer.Typer(help="Run a verification node (device pool + verify/profile API).", no_args_is_help=True)

NO_TOKEN = "no token: give --token-file (a node token from `kgen token create --role node`), or run `kgen init`"


@node_app.command("start")
def start(
    host: Optional[str] = typer.Option(None, "--host", help="Address to bind (env KGEN_NODE_HOST; default 127.0.0.1)."),
    port: Optional[int] = typer.Option(None, "--port", help="Port to bind, 0 for any free one (env KGEN_NODE_PORT; default 9001)."),
    gateway: Optional[str] = typer.Option(None, "--gateway", help="Gateway URL to self-register with (env KGEN_NODE_GATEWAY)."),
    backend: Optional[str] = typer.Option(None, "--backend", help="cpu (Triton interpreter) or cuda (env KGEN_NODE_BACKEND)."),
    arch: Optional[str] = typer.Option(None, "--arch", help="Arch label, e.g. h100 (env KGEN_NODE_ARCH; default detected)."),
    devices: Optional[str] = typer.Option(None, "--devices", help="Device ids, e.g. 0 or 0,1 (cpu ids name interpreter slots; env KGEN_NODE_DEVICES)."),
    slots: Optional[int] = typer.Option(None, "--slots", help="cpu only: N interpreter slots, ids 0..N-1 (shorthand for --devices)."),
    compile_for: Optional[str] = typer.Option(None, "--compile-for", help="GPU targets every verify also compiles for, e.g. sm_80,sm_90 (env KGEN_NODE_COMPILE_FOR)."),
    token: Optional[str] = typer.Option(None, "--token", help="Local token the local CLI calls this node with (else KGEN_TOKEN, else the token file)."),
    token_file: Optional[str] = typer.Option(None, "--token-file", help="File with this node's node token, used to register with the gateway (else KGEN_NODE_TOKEN, else config node.token_file)."),
    advertise_url: Optional[str] = typer.Option(None, "--advertise-url", help="URL the gateway should use to reach this node (default: the bound address)."),
    insecure_sandbox: Optional[bool] = typer.Option(None, "--insecure-sandbox", help="Start even if the kernel lacks a run-sandbox feature (config node.insecure_sandbox; see `kgen doctor`)."),
) -> None:
    """Start a node and block until SIGTERM/SIGINT."""
    from kgen.core.config import get, resolve_node_token, resolve_token

    resolved_token, _ = resolve_token(token)
    node_token, _ = resolve_node_token(token_file)
    if not resolved_token and not node_token:
        raise ConfigError(NO_TOKEN)
    backend_value = get("node.backend", backend)
    gateway_value = get("node.gateway", gateway)
    if gateway_value and not gateway_value.startswith(("http://", "https://")):
        raise ConfigError(f"--gateway must be an http:// or https:// URL, got {gateway_value!r}")
    if node_token and not gateway_value:
        raise ConfigError("a node token is for registering with a gateway: give --gateway URL too")
    if advertise_url and not advertise_url.startswith(("http://", "https://")):
        raise ConfigError(f"--advertise-url must be an http:// or https:// URL, got {advertise_url!r}")

    from kgen.core.verify.targets import parse_targets
    from kgen.daemon.node.pool import parse_devices
    from kgen.daemon.node.service import NodeConfig, NodeService, sandbox_policy

    sandbox_level = sandbox_policy(bool(get("node.insecure_sandbox", insecure_sandbox)))

    devices_value = get("node.devices", devices)
    try:
        targets = parse_targets(get("node.compile_for", compile_for))
    except ValueError as exc:
        raise ConfigError(f"--compile-for: {exc}") from None
    if backend_value == "cpu" or slots is not None:
        parse_devices(backend_value, devices_value, slots)  # bad ids/slots: one line before any bind

    config = NodeConfig(
        host=get("node.host", host),
        port=get("node.port", port),
        backend=backend_value,
        arch=get("node.arch", arch),
        devices=devices_value,
        slots=slots,
        compile_for=targets,
        gateway=gateway_value,
        token=resolved_token or "",
        node_token=node_token or "",
        advertise_url=advertise_url or "",
        default_timeout_s=get("verify.timeout_s"),
        memory_mb=get("verify.memory_mb"),
        sandbox=sandbox_level,
    )
    try:
        code = NodeService(config).run()
    except OSError as exc:  # e.g. the port is taken
        raise ConfigError(f"cannot bind {config.host}:{config.port}: {exc.strerror or exc}") from None
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.add_typer(node_app, name="node")
