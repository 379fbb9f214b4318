"""`kgen bench` runs: one row per run (settings, task list) and one per finished task.

A task's result is committed (synchronous=FULL) the moment it is known, so a bench killed with
-9 resumes with every finished task kept and only the unfinished ones redone.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from kgen.core.errors import NotFound
from kgen.core.store.db import Database, dumps


def _run_dict(row) -> dict[str, Any]:
    run = dict(row)
    run["settings"] = json.loads(run["settings"])
    run["tasks"] = json.loads(run["tasks"])
    return run


class BenchMixin(Database):
    def create_bench_run(self, out_dir: str, settings: dict[str, Any], tasks: list[str]) -> dict[str, Any]:
        bench_id = uuid.uuid4().hex
        now = time.time()
        with self.write() as conn:
            conn.execute(
                "INSERT INTO bench_runs(bench_id, out_dir, settings, tasks, status, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, 'running', ?, ?)",
                (bench_id, out_dir, dumps(settings), dumps(tasks), now, now),
            )
        return self.get_bench_run(bench_id)

    def get_bench_run(self, bench_id: str) -> dict[str, Any]:
        row = self.query_one("SELECT * FROM bench_runs WHERE bench_id = ?", (bench_id,))
        if row is None:
            raise NotFound(f"no bench run {bench_id}")
        return _run_dict(row)

    def latest_bench_run(self, out_dir: str) -> dict[str, Any] | None:
        row = self.query_one("SELECT * FROM bench_runs WHERE out_dir = ? ORDER BY created_at DESC LIMIT 1", (out_dir,))
        return _run_dict(row) if row is not None else None

    def set_bench_status(self, bench_id: str, status: str) -> None:
        with self.write() as conn:
            conn.execute("UPDATE bench_runs SET status = ?, updated_at = ? WHERE bench_id = ?",
                         (status, time.time(), bench_id))

    def add_bench_result(self, bench_id: str, task_key: str, result: dict[str, Any]) -> None:
        now = time.time()
        with self.write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO bench_results(bench_id, task_key, result, created_at) VALUES (?, ?, ?, ?)",
                (bench_id, task_key, dumps(result), now),
            )
            conn.execute("UPDATE bench_runs SET updated_at = ? WHERE bench_id = ?", (now, bench_id))

    def bench_results(self, bench_id: str) -> dict[str, dict[str, Any]]:
        rows = self.query("SELECT task_key, result FROM bench_results WHERE bench_id = ? ORDER BY created_at",
                          (bench_id,))
        return {r["task_key"]: json.loads(r["result"]) for r in rows}
