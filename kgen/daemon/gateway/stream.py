"""Job event streams: NDJSON read from the store, woken when the store commits a job's event.

Events are stored before they are announced, so a stream never shows an event a restart
could lose. The final line `{"type": "end", "status": ...}` follows the job's terminal event;
a stream that closes without it means "reconnect with ?after=<last seq>".
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict

from aiohttp import web

from kgen.daemon.gateway.schemas import TERMINAL

PAGE = 500


class EventHub:
    """Per-job wake-ups for waiting streams; `announce` may be called from any thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self._loop = loop
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)

    def announce(self, event: dict) -> None:
        job_id = event.get("job_id")
        if job_id and job_id in self._waiters:
            try:
                self._loop.call_soon_threadsafe(self._wake, job_id)
            except RuntimeError:  # loop closed during shutdown
                pass

    def _wake(self, job_id: str) -> None:
        for waiter in self._waiters.get(job_id, ()):
            waiter.set()

    def wake_all(self) -> None:
        for waiters in self._waiters.values():
            for waiter in waiters:
                waiter.set()

    def subscribe(self, job_id: str) -> asyncio.Event:
        waiter = asyncio.Event()
        self._waiters[job_id].add(waiter)
        return waiter

    def unsubscribe(self, job_id: str, waiter: asyncio.Event) -> None:
        waiters = self._waiters.get(job_id)
        if waiters is not None:
            waiters.discard(waiter)
            if not waiters:
                del self._waiters[job_id]


def _line(obj: dict) -> bytes:
    return (json.dumps(obj, separators=(",", ":"), default=str) + "\n").encode()


async def stream_events(request: web.Request, store, hub: EventHub, job_id: str, after: int, follow: bool,
                        heartbeat_s: float, closing: asyncio.Event) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson", "Cache-Control": "no-cache"})
    await resp.prepare(request)
    waiter = hub.subscribe(job_id)
    last = after
    try:
        while True:
            waiter.clear()  # before reading, so a commit racing the read still wakes us
            events = store.events(job_id, after=last, limit=PAGE)
            for event in events:
                event.pop("job_id", None)
                await resp.write(_line(event))
                last = event["seq"]
            if len(events) == PAGE:
                continue
            status = store.get_job(job_id)["status"]
            if status in TERMINAL:
                for event in store.events(job_id, after=last):
                    event.pop("job_id", None)
                    await resp.write(_line(event))
                    last = event["seq"]
                await resp.write(_line({"type": "end", "status": status}))
                break
            if not follow or closing.is_set():
                break
            try:
                await asyncio.wait_for(waiter.wait(), timeout=heartbeat_s)
            except asyncio.TimeoutError:
                if closing.is_set():
                    break
                await resp.write(_line({"type": "heartbeat", "ts": time.time()}))
        await resp.write_eof()
    except ConnectionResetError:
        # The reader went away (a closed dashboard tab, a `kgen tail` interrupted): nothing to
        # answer and nothing wrong; without this aiohttp logs a traceback for every such stream.
        return resp
    except asyncio.CancelledError:
        raise
    finally:
        hub.unsubscribe(job_id, waiter)
    return resp
