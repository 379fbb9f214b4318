"""The node daemon: device pool + verify API + optional self-registration, under one Service lifecycle.

On SIGTERM: refuse new work (503), let running verifications finish up to a bound, deregister
from the gateway, exit.
"""

from __future__ import annotations

import asyncio
import platform
import re
import socket
import uuid
from dataclasses import dataclass, field

from aiohttp import web

from kgen.daemon.http import SERVER_LIMITS
from kgen.daemon.node.app import Node, build_app
from kgen.daemon.node.pool import DevicePool, parse_devices
from kgen.daemon.node.registration import Registration
from kgen.daemon.node.runners import Runners
from kgen.daemon.service import Service

SWEEP_INTERVAL_S = 1.0


@dataclass
class NodeConfig:
    host: str = "127.0.0.1"
    port: int = 9001
    backend: str = "cpu"
    arch: str = ""
    devices: str = ""
    slots: int | None = None          # cpu shorthand for devices 0..slots-1
    compile_for: list[str] = field(default_factory=list)
    gateway: str = ""
    token: str = ""               # local token: the local CLI (`kgen verify --node`) calls with it
    node_token: str = ""          # registers with the gateway (else `token` is used)
    advertise_url: str = ""
    drain_timeout_s: float = 60.0
    verify_wait_s: float = 30.0
    default_timeout_s: float = 300.0
    memory_mb: int | None = None
    prewarm: bool = True
    sandbox: str = ""       # the run sandbox level this node started with ("full", "partial:...")


def sandbox_policy(insecure: bool) -> str:
    """The node's run-sandbox level; raises ConfigError (exit 78) naming what the kernel lacks,
    unless `insecure` (--insecure-sandbox / node.insecure_sandbox) accepts a weaker sandbox."""
    from kgen.core import isolation
    from kgen.core.errors import ConfigError

    features = isolation.features()
    missing = features.missing
    if missing and not insecure:
        why = "; ".join(f"{name}: {features.errors[name]}" for name in missing if features.errors.get(name))
        raise ConfigError(f"run sandbox incomplete: missing {', '.join(missing)}"
                          f"{' (' + why + ')' if why else ''}; fix the kernel settings or start with "
                          "--insecure-sandbox (see `kgen doctor`)")
    return features.level


def detect_arch(backend: str, device_names: list[str]) -> str:
    """A short arch label: a GPU model ("h100") for cuda, the machine type ("x86_64") for cpu."""
    if backend == "cuda" and device_names:
        match = re.search(r"\b([A-Z]{1,2}\d{2,4}[A-Z]?)\b", device_names[0])
        if match:
            return match.group(1).lower()
        return re.sub(r"[^a-z0-9]+", "-", device_names[0].lower()).strip("-")
    return platform.machine().lower() or "cpu"


class NodeService(Service):
    def __init__(self, config: NodeConfig):
        super().__init__("node")
        self.config = config
        self.node: Node | None = None
        self.url: str | None = None
        self._runner: web.AppRunner | None = None
        self._sweeper: asyncio.Task | None = None
        self._registration: Registration | None = None

    async def on_start(self) -> None:
        cfg = self.config
        devices = parse_devices(cfg.backend, cfg.devices, cfg.slots)
        pool = DevicePool(devices)
        arch = cfg.arch or detect_arch(cfg.backend, [d.name for d in devices if not d.fallback_only])
        runners = Runners(memory_mb=cfg.memory_mb, default_timeout_s=cfg.default_timeout_s)
        runners.compile_for = list(cfg.compile_for)
        self.node = Node(pool=pool, runners=runners, backend=cfg.backend, arch=arch,
                         node_id=uuid.uuid4().hex[:12], verify_wait_s=cfg.verify_wait_s,
                         sandbox=cfg.sandbox or sandbox_policy(True))
        self._runner = web.AppRunner(build_app(self.node, cfg.token or None), access_log=None, shutdown_timeout=5,
                                     **SERVER_LIMITS)
        await self._runner.setup()
        site = web.TCPSite(self._runner, cfg.host, cfg.port)
        await site.start()
        port = self._bound_port() or cfg.port
        host = cfg.host if cfg.host not in ("0.0.0.0", "::", "") else socket.getfqdn()
        self.url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
        self.log("listening", url=self.url, backend=cfg.backend, arch=arch, capacity=pool.capacity,
                 sandbox=self.node.sandbox)
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep())
        if cfg.prewarm:
            runners.prewarm([d for d in devices if not d.fallback_only])
        if cfg.gateway:
            self._registration = Registration(cfg.gateway, cfg.node_token or cfg.token, cfg.advertise_url or self.url,
                                              self._describe, self.log, on_secret=self._set_gateway_secret)
            self._registration.start()

    def _set_gateway_secret(self, secret: str) -> None:
        assert self.node is not None
        self.node.gateway_secret = secret

    def _bound_port(self) -> int | None:
        # aiohttp exposes the listening sockets only through the site's asyncio server.
        assert self._runner is not None
        for site in self._runner.sites:
            sock = getattr(site, "_server", None)
            for s in getattr(sock, "sockets", None) or []:
                return s.getsockname()[1]
        return None

    def _describe(self) -> dict:
        assert self.node is not None
        return {"backend": self.node.backend, "arch": self.node.arch, "capacity": self.node.pool.capacity,
                "node_id": self.node.node_id, "load": self.node.pool.load, "state": self.node.state}

    async def _sweep(self) -> None:
        assert self.node is not None
        while True:
            await asyncio.sleep(SWEEP_INTERVAL_S)
            for lease_id in self.node.pool.sweep():
                self.log("lease_expired", lease_id=lease_id)

    async def on_stop(self) -> None:
        if self.node is not None:
            self.node.state = "stopping"
            idle = await self.node.runners.wait_idle(self.config.drain_timeout_s)
            if not idle:
                self.log("drain_timeout", running=self.node.runners.running)
        if self._registration is not None:
            await self._registration.stop(deregister=True)
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
        if self.node is not None:
            await asyncio.to_thread(self.node.runners.close)
            self.node.state = "stopped"
