"""SQLite plumbing: one writer connection behind a lock, one reader connection per thread.

Why this shape: coroutines or threads interleaving statements on one connection corrupt each
other's transactions. Every write holds `_write_lock` from `BEGIN IMMEDIATE` to `COMMIT`;
reads use a per-thread connection in autocommit mode, which under WAL sees the last commit.
`synchronous=FULL` makes each commit durable before the call returns, so a kill -9 right after
a write loses nothing that was acknowledged.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

from kgen.core.errors import KgenError
from kgen.core.store import schema

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 10_000


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA synchronous = FULL")
    return conn


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), default=str)


class Database:
    def __init__(self, path: str | Path):
        self.path = str(path)
        try:
            Path(self.path).expanduser().parent.mkdir(parents=True, exist_ok=True)
            self._writer = _connect(self.path)
            mode = self._writer.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            schema.migrate(self._writer)
        except (sqlite3.DatabaseError, OSError) as exc:
            raise KgenError(f"cannot open store {self.path}: {exc}", code="store_error") from None
        self.journal_mode = mode
        self._write_lock = threading.RLock()
        self._local = threading.local()
        self._readers: dict[threading.Thread, sqlite3.Connection] = {}
        self._readers_lock = threading.Lock()
        self._listeners: list[Callable[[dict], None]] = []
        self._closed = False

    # -- connections -------------------------------------------------------------
    def _reader(self) -> sqlite3.Connection:
        if self._closed:
            raise KgenError("store is closed", code="store_error")
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path)
            self._local.conn = conn
            with self._readers_lock:
                # Short-lived threads (executors, per-call workers) would otherwise leak connections.
                for thread in [t for t in self._readers if not t.is_alive()]:
                    with contextlib.suppress(sqlite3.Error):
                        self._readers.pop(thread).close()
                self._readers[threading.current_thread()] = conn
        return conn

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: lock held from BEGIN IMMEDIATE to COMMIT (or ROLLBACK)."""
        with self._write_lock:
            if self._closed:
                raise KgenError("store is closed", code="store_error")
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def query(self, sql: str, params: tuple | list = ()) -> list[sqlite3.Row]:
        return self._reader().execute(sql, params).fetchall()

    def query_one(self, sql: str, params: tuple | list = ()) -> sqlite3.Row | None:
        return self._reader().execute(sql, params).fetchone()

    # -- announcements -------------------------------------------------------------
    def add_listener(self, fn: Callable[[dict], None]) -> None:
        """Call fn(event) after each event is committed, from the writing thread, in seq order.

        Listeners run under the writer lock, so they must be quick and must not block on another
        thread that writes (hand off, e.g. with loop.call_soon_threadsafe).
        """
        self._listeners.append(fn)

    def remove_listener(self, fn: Callable[[dict], None]) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(fn)

    def _announce(self, event: dict) -> None:
        for fn in list(self._listeners):
            try:
                fn(dict(event))
            except Exception:  # a broken listener must not undo a committed write, but is reported
                log.exception("store listener %r failed on event %s of job %s", fn, event.get("type"),
                              event.get("job_id"))

    def schema_version(self) -> int:
        row = self.query_one("SELECT MAX(version) FROM schema_migrations")
        return row[0] or 0

    def close(self) -> None:
        with self._write_lock:
            if self._closed:
                return
            self._closed = True
            with self._readers_lock:
                for conn in self._readers.values():
                    with contextlib.suppress(sqlite3.Error):
                        conn.close()
                self._readers.clear()
            self._writer.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
