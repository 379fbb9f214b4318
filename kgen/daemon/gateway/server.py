"""The gateway daemon under the shared Service lifecycle: store, registry, scheduler, jobs, HTTP."""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from kgen.core.errors import ConfigError, KgenError
from kgen.daemon.gateway.app import Gateway, build_app
from kgen.daemon.gateway.jobs import JobManager
from kgen.daemon.gateway.metrics import Metrics
from kgen.daemon.gateway.registry import Registry
from kgen.daemon.gateway.scheduler import Scheduler
from kgen.daemon.gateway.stream import EventHub
from kgen.daemon.http import DEFAULT_MAX_BODY, SERVER_LIMITS
from kgen.daemon.service import Service


@dataclass
class GatewayConfig:
    db_path: str
    token: str
    host: str = "127.0.0.1"
    port: int = 8000
    max_queue: int = 256
    max_running: int = 4
    heartbeat_ttl_s: float = 30.0
    max_attempts: int = 3
    default_timeout_s: float = 300.0
    stream_heartbeat_s: float = 15.0
    max_body: int = DEFAULT_MAX_BODY
    generator_workers: int = 2
    max_node_capacity: int = 16
    cross_check: str = "auto"
    ui: bool = True


class GatewayService(Service):
    def __init__(self, config: GatewayConfig):
        super().__init__("gateway")
        self.config = config
        self.url: str | None = None
        self.gateway: Gateway | None = None
        self._runner: web.AppRunner | None = None
        self._store = None
        self._lock: int | None = None

    async def on_start(self) -> None:
        from kgen.core.store import Store

        cfg = self.config
        # One gateway per database: a second one would run the same jobs and write after `succeeded`.
        self._lock = lock_database(Path(cfg.db_path).expanduser())
        try:
            self._store = store = Store(Path(cfg.db_path).expanduser())
        except (KgenError, OSError) as exc:
            raise ConfigError(f"cannot open gateway database {cfg.db_path}: {getattr(exc, 'message', exc)}") from None
        metrics = Metrics()
        hub = EventHub(asyncio.get_running_loop())
        store.add_listener(hub.announce)
        scheduler_ref: list[Scheduler] = []
        registry = Registry(store, cfg.heartbeat_ttl_s, log=self.log,
                            on_change=lambda: scheduler_ref and scheduler_ref[0].notify())
        registry.load()
        scheduler = Scheduler(registry, metrics, max_attempts=cfg.max_attempts, cross_check=cfg.cross_check,
                              log=self.log)
        scheduler_ref.append(scheduler)
        await scheduler.start()
        jobs = JobManager(store, registry, scheduler, metrics, max_queue=cfg.max_queue,
                          max_running=cfg.max_running, default_timeout_s=cfg.default_timeout_s,
                          generator_workers=cfg.generator_workers, log=self.log)
        self.gateway = gw = Gateway(store=store, registry=registry, scheduler=scheduler, jobs=jobs,
                                    metrics=metrics, hub=hub, heartbeat_s=cfg.stream_heartbeat_s,
                                    max_node_capacity=cfg.max_node_capacity)
        self._runner = web.AppRunner(build_app(gw, cfg.token, max_body=cfg.max_body, ui=cfg.ui), access_log=None,
                                     shutdown_timeout=2.0, **SERVER_LIMITS)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, cfg.host, cfg.port).start()
        except OSError as exc:
            reason = "address already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
            raise ConfigError(f"cannot listen on {cfg.host}:{cfg.port}: {reason}") from None
        port = self._bound_port() or cfg.port
        host = f"[{cfg.host}]" if ":" in cfg.host else cfg.host
        self.url = f"http://{host}:{port}"
        registry.start_sweeper()
        await jobs.start()
        gw.ready = True
        self.log("listening", url=self.url, db=cfg.db_path, workers=len(registry.all()),
                 queued=jobs.queue_depth, ui=f"{self.url}/ui/" if cfg.ui else "off")

    def _bound_port(self) -> int | None:
        for address in self._runner.addresses if self._runner else []:
            if isinstance(address, tuple) and len(address) >= 2:
                return int(address[1])
        return None

    async def on_stop(self) -> None:
        gw = self.gateway
        if gw is not None:
            gw.ready = False
            gw.closing.set()
            gw.hub.wake_all()
        if self._runner is not None:
            await self._runner.cleanup()   # stop taking requests; open streams end without `end`
        if gw is not None:
            await gw.jobs.stop()           # running jobs stay `running`: the next start re-queues them
            await gw.registry.stop_sweeper()
            await gw.scheduler.close()
        if self._store is not None:
            self._store.close()
        if self._lock is not None:
            os.close(self._lock)   # releases the flock
            self._lock = None


def lock_database(db: Path) -> int:
    """An exclusive flock on `<db>.lock`, held for the gateway's life; ConfigError (exit 78) if taken.

    flock, not a pid file: the kernel drops it when the holder dies, even by SIGKILL, so a crashed
    gateway never blocks its successor. The holder's pid is written into the file for the message.
    """
    path = db.with_name(db.name + ".lock")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise ConfigError(f"cannot open lock file {path}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        try:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
        except OSError:
            holder = ""
        os.close(fd)
        who = f"pid {holder}" if holder.isdigit() else "another process"
        raise ConfigError(f"database {db} is in use by another gateway ({who} holds {path})") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd
