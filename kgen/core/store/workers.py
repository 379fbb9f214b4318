"""The gateway's worker registry: nodes that registered, keyed by a stable id per URL."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from kgen.core.errors import BadInput, NotFound
from kgen.core.store.db import Database, dumps


def _worker_dict(row) -> dict[str, Any]:
    worker = dict(row)
    worker["info"] = json.loads(worker["info"])
    return worker


class WorkersMixin(Database):
    def upsert_worker(self, url: str, backend: str = "cpu", arch: str = "", capacity: int = 1, *,
                      worker_id: str | None = None, info: dict[str, Any] | None = None,
                      secret: str | None = None) -> dict[str, Any]:
        """Register (or re-register) the node at `url`.

        A node that registers again under the same URL keeps its worker id, so a node that lost
        its registration (404/410 on heartbeat) comes back as the same worker.
        """
        if not url:
            raise BadInput("worker url is required")
        if int(capacity) < 1:
            raise BadInput("worker capacity must be >= 1")
        now = time.time()
        with self.write() as conn:
            row = conn.execute("SELECT worker_id FROM workers WHERE url = ?", (url,)).fetchone()
            if row is not None:
                worker_id = row["worker_id"]
                conn.execute(
                    "UPDATE workers SET backend = ?, arch = ?, capacity = ?, info = ?, last_seen = ? WHERE worker_id = ?",
                    (backend, arch or "", int(capacity), dumps(info or {}), now, worker_id),
                )
                if secret is not None:
                    conn.execute("UPDATE workers SET secret = ? WHERE worker_id = ?", (secret, worker_id))
            else:
                worker_id = worker_id or uuid.uuid4().hex[:16]
                conn.execute(
                    "INSERT INTO workers(worker_id, url, backend, arch, capacity, info, registered_at, last_seen, secret)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (worker_id, url, backend, arch or "", int(capacity), dumps(info or {}), now, now, secret or ""),
                )
        return self.get_worker(worker_id)

    def worker_id_for_url(self, url: str) -> str | None:
        row = self.query_one("SELECT worker_id FROM workers WHERE url = ?", (url,))
        return row["worker_id"] if row else None

    def set_worker_suspect(self, worker_id: str, reason: str) -> None:
        """Mark a worker suspect (a cross-check disagreed with it); kept across re-registration."""
        with self.write() as conn:
            conn.execute("UPDATE workers SET suspect = ? WHERE worker_id = ?", (reason or "suspect", worker_id))

    def get_worker(self, worker_id: str) -> dict[str, Any]:
        row = self.query_one("SELECT * FROM workers WHERE worker_id = ?", (worker_id,))
        if row is None:
            raise NotFound(f"no worker {worker_id!r}")
        return _worker_dict(row)

    def list_workers(self) -> list[dict[str, Any]]:
        return [_worker_dict(r) for r in self.query("SELECT * FROM workers ORDER BY registered_at, worker_id")]

    def touch_worker(self, worker_id: str, info: dict[str, Any] | None = None) -> dict[str, Any]:
        """Record a heartbeat (optionally with fresh status info); NotFound if unknown."""
        with self.write() as conn:
            if info is None:
                cur = conn.execute("UPDATE workers SET last_seen = ? WHERE worker_id = ?", (time.time(), worker_id))
            else:
                cur = conn.execute("UPDATE workers SET last_seen = ?, info = ? WHERE worker_id = ?",
                                   (time.time(), dumps(info), worker_id))
            if cur.rowcount == 0:
                raise NotFound(f"no worker {worker_id!r}")
        return self.get_worker(worker_id)

    def remove_worker(self, worker_id: str) -> None:
        with self.write() as conn:
            cur = conn.execute("DELETE FROM workers WHERE worker_id = ?", (worker_id,))
            if cur.rowcount == 0:
                raise NotFound(f"no worker {worker_id!r}")
