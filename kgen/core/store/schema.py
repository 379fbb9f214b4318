"""Numbered schema migrations. Append new ones; never edit or renumber an applied one.

Each migration runs in its own `BEGIN IMMEDIATE` transaction together with its row in
`schema_migrations`, so a crash mid-upgrade leaves the database at the previous version.
"""

from __future__ import annotations

import sqlite3
import time

MIGRATIONS: list[tuple[int, str, str]] = [
    (1, "jobs, events, candidates, verdicts, messages", """
        CREATE TABLE tasks (
            task_id    TEXT PRIMARY KEY,
            op_name    TEXT NOT NULL,
            source     TEXT NOT NULL,
            path       TEXT,
            created_at REAL NOT NULL
        );
        CREATE TABLE jobs (
            job_id            TEXT PRIMARY KEY,
            task_id           TEXT NOT NULL REFERENCES tasks(task_id),
            op_name           TEXT NOT NULL,
            status            TEXT NOT NULL,
            job_type          TEXT NOT NULL,
            spec              TEXT NOT NULL,
            created_at        REAL NOT NULL,
            updated_at        REAL NOT NULL,
            started_at        REAL,
            finished_at       REAL,
            best_candidate_id TEXT,
            error             TEXT,
            last_seq          INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX jobs_status ON jobs(status);
        CREATE INDEX jobs_created ON jobs(created_at);
        CREATE TABLE events (
            job_id TEXT NOT NULL REFERENCES jobs(job_id),
            seq    INTEGER NOT NULL,
            type   TEXT NOT NULL,
            ts     REAL NOT NULL,
            data   TEXT NOT NULL,
            PRIMARY KEY (job_id, seq)
        ) WITHOUT ROWID;
        CREATE TABLE candidates (
            candidate_id TEXT PRIMARY KEY,
            job_id       TEXT NOT NULL REFERENCES jobs(job_id),
            round        INTEGER NOT NULL,
            idx          INTEGER NOT NULL,
            source       TEXT NOT NULL,
            sha          TEXT NOT NULL,
            params       TEXT NOT NULL,
            origin       TEXT NOT NULL,
            parent       TEXT,
            notes        TEXT NOT NULL,
            created_at   REAL NOT NULL,
            UNIQUE (job_id, round, idx)
        );
        CREATE TABLE verdicts (
            id           INTEGER PRIMARY KEY AUTOINCREMENT,
            candidate_id TEXT NOT NULL REFERENCES candidates(candidate_id),
            status       TEXT NOT NULL,
            verdict      TEXT NOT NULL,
            worker_id    TEXT,
            created_at   REAL NOT NULL
        );
        CREATE INDEX verdicts_candidate ON verdicts(candidate_id);
        CREATE TABLE messages (
            id      INTEGER PRIMARY KEY AUTOINCREMENT,
            job_id  TEXT NOT NULL REFERENCES jobs(job_id),
            role    TEXT NOT NULL,
            content TEXT NOT NULL,
            ts      REAL NOT NULL
        );
        CREATE INDEX messages_job ON messages(job_id);
    """),
    (2, "worker registry", """
        CREATE TABLE workers (
            worker_id     TEXT PRIMARY KEY,
            url           TEXT NOT NULL UNIQUE,
            backend       TEXT NOT NULL,
            arch          TEXT NOT NULL,
            capacity      INTEGER NOT NULL,
            info          TEXT NOT NULL,
            registered_at REAL NOT NULL,
            last_seen     REAL NOT NULL
        );
    """),
    (3, "scoped tokens, per-node call secrets, suspect workers", """
        CREATE TABLE tokens (
            name       TEXT PRIMARY KEY,
            role       TEXT NOT NULL,
            hash       TEXT NOT NULL UNIQUE,
            created_at REAL NOT NULL,
            last_used  REAL,
            worker_id  TEXT,
            url        TEXT
        );
        ALTER TABLE workers ADD COLUMN secret TEXT NOT NULL DEFAULT '';
        ALTER TABLE workers ADD COLUMN suspect TEXT NOT NULL DEFAULT '';
    """),
    # 4: `kgen bench` runs and their per-task results, so a killed bench resumes where it stopped.
    (4, "bench runs and results", """
        CREATE TABLE bench_runs (
            bench_id   TEXT PRIMARY KEY,
            out_dir    TEXT NOT NULL,
            settings   TEXT NOT NULL,
            tasks      TEXT NOT NULL,
            status     TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE INDEX bench_runs_out ON bench_runs(out_dir, created_at);
        CREATE TABLE bench_results (
            bench_id   TEXT NOT NULL REFERENCES bench_runs(bench_id),
            task_key   TEXT NOT NULL,
            result     TEXT NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (bench_id, task_key)
        ) WITHOUT ROWID;
    """),
]

LATEST = MIGRATIONS[-1][0]


def current_version(conn: sqlite3.Connection) -> int:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
    )
    row = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
    return row[0] or 0


def migrate(conn: sqlite3.Connection) -> list[int]:
    """Apply pending migrations on an autocommit connection; returns the versions applied.

    The version is re-read inside each write transaction, so two processes opening a fresh
    file at once do not both apply the same migration.
    """
    applied = []
    current_version(conn)
    for version, name, sql in MIGRATIONS:
        conn.execute("BEGIN IMMEDIATE")
        try:
            if _applied(conn, version):
                conn.execute("COMMIT")
                continue
            # executescript would COMMIT our transaction first; run statements one by one instead.
            for statement in _statements(sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations(version, name, applied_at) VALUES (?, ?, ?)",
                (version, name, time.time()),
            )
            conn.execute("COMMIT")
            applied.append(version)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return applied


def _applied(conn: sqlite3.Connection, version: int) -> bool:
    # By number, not by MAX(version): migrations from branches merged in another order (a file
    # that got 4 before 3 existed) still get the missing one applied.
    return conn.execute("SELECT 1 FROM schema_migrations WHERE version = ?", (version,)).fetchone() is not None


def _statements(sql: str) -> list[str]:
    parts, buf = [], ""
    for line in sql.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            parts.append(buf.strip())
            buf = ""
    if buf.strip():
        parts.append(buf.strip())
    return parts
