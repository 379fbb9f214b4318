"""The SQLite store shared by local mode and the gateway (docs/ARCHITECTURE.md, "Store").

One file, WAL, busy_timeout, numbered migrations in `schema_migrations`; thread-safe (one
writer lock from BEGIN IMMEDIATE to COMMIT, a reader connection per thread). Every commit is
durable (synchronous=FULL), so a process killed with -9 loses no acknowledged job or event.
"""

from __future__ import annotations

from pathlib import Path

from kgen.core.store.bench import BenchMixin
from kgen.core.store.jobs import JOB_STATUSES, TERMINAL, JobsMixin
from kgen.core.store.tokens import TokensMixin
from kgen.core.store.workers import WorkersMixin

__all__ = ["Store", "JOB_STATUSES", "TERMINAL", "default_store_path"]


class Store(JobsMixin, WorkersMixin, TokensMixin, BenchMixin):
    """Store(path): opens or creates the database file and applies pending migrations."""


def default_store_path() -> Path:
    """Local-mode store: config key store.path ($KGEN_STORE), else <kgen home>/kgen.db."""
    from kgen.core import config

    value, _ = config.resolve("store.path")
    return Path(value).expanduser() if value else config.kgen_home() / "kgen.db"
