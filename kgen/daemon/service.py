"""One lifecycle for both daemons: initializing -> running -> stopping -> stopped.

Foreground only (systemd Type=notify): SIGTERM/SIGINT stop gracefully, SIGHUP reloads,
sd_notify READY/STOPPING/WATCHDOG when NOTIFY_SOCKET is set, one line per log event on stderr.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time

STATES = ("initializing", "running", "stopping", "stopped")


def sd_notify(message: str) -> bool:
    """Send one datagram to systemd's notify socket; a no-op (False) when not under systemd."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    if path.startswith("@"):  # abstract namespace socket
        path = "\0" + path[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(path)
            sock.sendall(message.encode())
        return True
    except OSError:
        return False


def _watchdog_interval() -> float | None:
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return max(int(usec) / 1e6 / 2, 0.5)
    except ValueError:
        return None


class Service:
    """Subclass and override on_start / on_stop (and on_reload); then call run()."""

    def __init__(self, name: str):
        self.name = name
        self.state = "initializing"
        self._stop = None  # asyncio.Event, created on the loop
        self.exit_code = 0

    # -- hooks --------------------------------------------------------------
    async def on_start(self) -> None:
        """Bind sockets and start background tasks; raise to fail start-up."""

    async def on_stop(self) -> None:
        """Stop taking work, drain or hand back what runs, release resources."""

    async def on_reload(self) -> None:
        """SIGHUP: re-read configuration."""

    # -- logging ------------------------------------------------------------
    def log(self, event: str, **fields) -> None:
        """One journald-friendly line: `kgen-<name>: <event> k=v ...`."""
        parts = [f"{k}={v}" for k, v in fields.items()]
        line = " ".join([f"kgen-{self.name}:", event, *parts])
        try:
            print(line, file=sys.stderr, flush=True)
        except (OSError, ValueError):
            # stderr gone (journald restarted, a closed pipe): losing a log line must never stop shutdown.
            pass

    # -- lifecycle ----------------------------------------------------------
    def request_stop(self, code: int = 0) -> None:
        self.exit_code = code
        if self._stop is not None:
            self._stop.set()

    def _set_state(self, state: str) -> None:
        self.state = state
        self.log("state", state=state)

    async def serve(self) -> int:
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(self._reload()))
        self._set_state("initializing")
        try:
            await self.on_start()
        except BaseException:
            self._set_state("stopping")
            await self._safe_stop()
            self._set_state("stopped")
            raise
        self._set_state("running")
        sd_notify("READY=1\nSTATUS=running")
        watchdog = loop.create_task(self._watchdog())
        started = time.monotonic()
        await self._stop.wait()
        self._set_state("stopping")
        sd_notify("STOPPING=1")
        watchdog.cancel()
        await self._safe_stop()
        self._set_state("stopped")
        self.log("exit", code=self.exit_code, uptime_s=round(time.monotonic() - started, 1))
        return self.exit_code

    async def _safe_stop(self) -> None:
        try:
            await self.on_stop()
        except Exception as exc:  # stopping must finish even if a hook fails
            self.log("stop_error", error=repr(exc))
            self.exit_code = self.exit_code or 1

    async def _reload(self) -> None:
        self.log("reload")
        sd_notify("RELOADING=1")
        try:
            await self.on_reload()
        except Exception as exc:
            self.log("reload_error", error=repr(exc))
        sd_notify("READY=1")

    async def _watchdog(self) -> None:
        interval = _watchdog_interval()
        if interval is None:
            return
        while True:
            sd_notify("WATCHDOG=1")
            await asyncio.sleep(interval)

    def run(self) -> int:
        """Block until stopped; returns the process exit code."""
        return asyncio.run(self.serve())
