"""Tasks, jobs, their event log, candidates, verdicts and llm messages."""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING, Any

from kgen.core.errors import BadInput, NotFound
from kgen.core.store.db import Database, dumps

if TYPE_CHECKING:
    from kgen.core.generate import Candidate
    from kgen.core.task import Task
    from kgen.core.verify.verdict import Verdict

JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
TERMINAL = ("succeeded", "failed", "cancelled")
# running -> queued is the re-queue of a job whose runner died (gateway restart).
TRANSITIONS = {
    "queued": {"running", "failed", "cancelled"},
    "running": {"succeeded", "failed", "cancelled", "queued"},
}
_JOB_FIELDS = ("best_candidate_id", "error")
_EVENT_KEYS = ("seq", "type", "ts", "job_id")


def _job_dict(row) -> dict[str, Any]:
    job = dict(row)
    job["spec"] = json.loads(job["spec"])
    return job


class JobsMixin(Database):
    # -- tasks -------------------------------------------------------------------
    def put_task(self, task: Task) -> None:
        with self.write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO tasks(task_id, op_name, source, path, created_at) VALUES (?, ?, ?, ?, ?)",
                (task.id, task.op_name, task.source, task.path, time.time()),
            )

    def get_task(self, task_id: str) -> dict[str, Any]:
        row = self.query_one("SELECT * FROM tasks WHERE task_id = ?", (task_id,))
        if row is None:
            raise NotFound(f"no task {task_id}")
        return dict(row)

    # -- jobs --------------------------------------------------------------------
    def create_job(self, task: Task, spec: dict[str, Any]) -> dict[str, Any]:
        """A new job in status queued, with its `queued` event (seq 1), in one transaction."""
        job_id = uuid.uuid4().hex
        now = time.time()
        job_type = spec.get("job_type", "single")
        with self._write_lock:  # held across the announcement too, so listeners hear seqs in order
            with self.write() as conn:
                conn.execute(
                    "INSERT OR IGNORE INTO tasks(task_id, op_name, source, path, created_at) VALUES (?, ?, ?, ?, ?)",
                    (task.id, task.op_name, task.source, task.path, now),
                )
                conn.execute(
                    "INSERT INTO jobs(job_id, task_id, op_name, status, job_type, spec, created_at, updated_at)"
                    " VALUES (?, ?, ?, 'queued', ?, ?, ?, ?)",
                    (job_id, task.id, task.op_name, job_type, dumps(spec), now, now),
                )
                event = self._append_event(conn, job_id, "queued", {"status": "queued"}, now)
            self._announce(event)
        return self.get_job(job_id)

    def get_job(self, job_id: str) -> dict[str, Any]:
        """By full id or unique prefix; NotFound if none, BadInput if the prefix is ambiguous."""
        job_id = (job_id or "").strip()
        if not job_id:
            raise BadInput("empty job id")
        row = self.query_one("SELECT * FROM jobs WHERE job_id = ?", (job_id,))
        if row is not None:
            return _job_dict(row)
        escaped = job_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self.query("SELECT * FROM jobs WHERE job_id LIKE ? ESCAPE '\\' LIMIT 6", (escaped + "%",))
        if not rows:
            raise NotFound(f"no job {job_id!r}")
        if len(rows) > 1:
            ids = ", ".join(r["job_id"][:12] for r in rows[:5])
            raise BadInput(f"job id prefix {job_id!r} is ambiguous: {ids}{', ...' if len(rows) > 5 else ''}",
                           code="ambiguous")
        return _job_dict(rows[0])

    def list_jobs(self, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise BadInput(f"limit must be a positive integer, got {limit!r}")
        if status is not None and status not in JOB_STATUSES:
            raise BadInput(f"unknown job status {status!r}; one of: {', '.join(JOB_STATUSES)}")
        if status is None:
            rows = self.query("SELECT * FROM jobs ORDER BY created_at DESC, job_id LIMIT ?", (int(limit),))
        else:
            rows = self.query("SELECT * FROM jobs WHERE status = ? ORDER BY created_at DESC, job_id LIMIT ?",
                              (status, int(limit)))
        return [_job_dict(r) for r in rows]

    def jobs_with_status(self, *statuses: str) -> list[dict[str, Any]]:
        if not statuses:
            return []
        marks = ",".join("?" * len(statuses))
        rows = self.query(f"SELECT * FROM jobs WHERE status IN ({marks}) ORDER BY created_at, job_id", statuses)
        return [_job_dict(r) for r in rows]

    def set_job_status(self, job_id: str, status: str, **fields: Any) -> int:
        """Move a job along its lifecycle and append the matching event, in one transaction.

        `fields` (best_candidate_id, error, or anything else) go into the event; the known ones
        also update the job row. Illegal transitions (e.g. out of a terminal state) raise
        BadInput with code "conflict".
        """
        if status not in JOB_STATUSES:
            raise BadInput(f"unknown job status {status!r}")
        now = time.time()
        with self._write_lock:
            with self.write() as conn:
                row = conn.execute("SELECT status FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
                if row is None:
                    raise NotFound(f"no job {job_id!r}")
                current = row["status"]
                if status not in TRANSITIONS.get(current, set()):
                    raise BadInput(f"job {job_id[:12]} is {current}; cannot become {status}", code="conflict")
                sets, params = ["status = ?", "updated_at = ?"], [status, now]
                if status == "running":
                    sets.append("started_at = COALESCE(started_at, ?)")
                    params.append(now)
                if status in TERMINAL:
                    sets.append("finished_at = ?")
                    params.append(now)
                for name in _JOB_FIELDS:
                    if name in fields:
                        sets.append(f"{name} = ?")
                        params.append(fields[name])
                conn.execute(f"UPDATE jobs SET {', '.join(sets)} WHERE job_id = ?", (*params, job_id))
                event = self._append_event(conn, job_id, status, {"status": status, **fields}, now)
            self._announce(event)
        return event["seq"]

    # -- events ------------------------------------------------------------------
    def _append_event(self, conn, job_id: str, type_: str, data: dict[str, Any], now: float) -> dict[str, Any]:
        # last_seq lives on the job row so a seq is never reused, even if events were pruned.
        cur = conn.execute("UPDATE jobs SET last_seq = last_seq + 1 WHERE job_id = ? RETURNING last_seq", (job_id,))
        row = cur.fetchone()
        cur.close()
        if row is None:
            raise NotFound(f"no job {job_id!r}")
        seq = row[0]
        clean = {k: v for k, v in data.items() if k not in _EVENT_KEYS}
        conn.execute("INSERT INTO events(job_id, seq, type, ts, data) VALUES (?, ?, ?, ?, ?)",
                     (job_id, seq, type_, now, dumps(clean)))
        return {**clean, "seq": seq, "type": type_, "ts": now, "job_id": job_id}

    def add_event(self, job_id: str, type: str, data: dict[str, Any] | None = None, *,
                  open_only: bool = False) -> int | None:
        """Append an event; with `open_only`, nothing is written for a finished job (returns None)."""
        if not type or not isinstance(type, str):
            raise BadInput("event type must be a non-empty string")
        with self._write_lock:
            with self.write() as conn:
                if open_only and self._finished(conn, job_id):
                    return None
                event = self._append_event(conn, job_id, type, dict(data or {}), time.time())
            self._announce(event)
        return event["seq"]

    @staticmethod
    def _finished(conn, job_id: str) -> bool:
        row = conn.execute("SELECT status FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        if row is None:
            raise NotFound(f"no job {job_id!r}")
        return row["status"] in TERMINAL

    def events(self, job_id: str, after: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        sql = "SELECT seq, type, ts, data FROM events WHERE job_id = ? AND seq > ? ORDER BY seq"
        params: list[Any] = [job_id, int(after)]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        out = []
        for row in self.query(sql, params):
            out.append({**json.loads(row["data"]), "seq": row["seq"], "type": row["type"], "ts": row["ts"],
                        "job_id": job_id})
        return out

    # -- candidates and verdicts -------------------------------------------------
    def add_candidate(self, job_id: str, round: int, index: int, candidate: Candidate) -> str:
        candidate_id = uuid.uuid4().hex
        with self.write() as conn:
            conn.execute(
                "INSERT INTO candidates(candidate_id, job_id, round, idx, source, sha, params, origin, parent, notes,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (candidate_id, job_id, int(round), int(index), candidate.source, candidate.sha,
                 dumps(candidate.params or {}), candidate.origin, candidate.parent, candidate.notes or "",
                 time.time()),
            )
        return candidate_id

    def add_verdict(self, candidate_id: str, verdict: Verdict | dict, worker_id: str | None = None) -> None:
        data = verdict if isinstance(verdict, dict) else verdict.to_dict()
        with self.write() as conn:
            if conn.execute("SELECT 1 FROM candidates WHERE candidate_id = ?", (candidate_id,)).fetchone() is None:
                raise NotFound(f"no candidate {candidate_id!r}")
            conn.execute(
                "INSERT INTO verdicts(candidate_id, status, verdict, worker_id, created_at) VALUES (?, ?, ?, ?, ?)",
                (candidate_id, data.get("status", ""), dumps(data), worker_id, time.time()),
            )

    def record_verdict(self, job_id: str, candidate_id: str, verdict: Verdict | dict,
                       event: dict[str, Any], *, best: dict[str, Any] | None = None,
                       set_best: bool = False, worker_id: str | None = None) -> bool:
        """A verdict, its `candidate_verified` event and the `best` update, in one transaction.

        `best` (when given) becomes a `best_updated` event; `set_best` also points the job row at
        the candidate. Nothing is written for a finished job: returns False (a late verdict).
        """
        data = verdict if isinstance(verdict, dict) else verdict.to_dict()
        now = time.time()
        announced = []
        with self._write_lock:
            with self.write() as conn:
                if self._finished(conn, job_id):
                    return False
                row = conn.execute("SELECT job_id FROM candidates WHERE candidate_id = ?", (candidate_id,)).fetchone()
                if row is None or row["job_id"] != job_id:
                    raise NotFound(f"no candidate {candidate_id!r} in job {job_id[:12]}")
                conn.execute(
                    "INSERT INTO verdicts(candidate_id, status, verdict, worker_id, created_at) VALUES (?, ?, ?, ?, ?)",
                    (candidate_id, data.get("status", ""), dumps(data), worker_id, now),
                )
                announced.append(self._append_event(conn, job_id, "candidate_verified", event, now))
                if set_best:
                    conn.execute("UPDATE jobs SET best_candidate_id = ?, updated_at = ? WHERE job_id = ?",
                                 (candidate_id, now, job_id))
                if best is not None:
                    announced.append(self._append_event(conn, job_id, "best_updated", best, now))
            for item in announced:
                self._announce(item)
        return True

    def candidates(self, job_id: str) -> list[dict[str, Any]]:
        """The job's candidates in (round, index) order, each with its latest verdict (dict or None)."""
        rows = self.query(
            "SELECT c.*, v.verdict AS verdict, v.worker_id AS worker_id FROM candidates c"
            " LEFT JOIN verdicts v ON v.id = (SELECT MAX(id) FROM verdicts WHERE candidate_id = c.candidate_id)"
            " WHERE c.job_id = ? ORDER BY c.round, c.idx",
            (job_id,),
        )
        out = []
        for row in rows:
            item = dict(row)
            item["index"] = item.pop("idx")
            item["params"] = json.loads(item["params"])
            item["verdict"] = json.loads(item["verdict"]) if item["verdict"] else None
            out.append(item)
        return out

    def get_candidate(self, candidate_id: str) -> dict[str, Any]:
        row = self.query_one("SELECT job_id FROM candidates WHERE candidate_id = ?", (candidate_id,))
        if row is None:
            raise NotFound(f"no candidate {candidate_id!r}")
        for item in self.candidates(row["job_id"]):
            if item["candidate_id"] == candidate_id:
                return item
        raise NotFound(f"no candidate {candidate_id!r}")

    def set_best(self, job_id: str, candidate_id: str | None) -> None:
        with self.write() as conn:
            cur = conn.execute("UPDATE jobs SET best_candidate_id = ?, updated_at = ? WHERE job_id = ?",
                               (candidate_id, time.time(), job_id))
            if cur.rowcount == 0:
                raise NotFound(f"no job {job_id!r}")

    # -- llm conversation --------------------------------------------------------
    def add_message(self, job_id: str, role: str, content: str) -> None:
        with self.write() as conn:
            conn.execute("INSERT INTO messages(job_id, role, content, ts) VALUES (?, ?, ?, ?)",
                         (job_id, role, content, time.time()))

    def messages(self, job_id: str) -> list[dict[str, Any]]:
        return [dict(r) for r in self.query(
            "SELECT role, content, ts FROM messages WHERE job_id = ? ORDER BY id", (job_id,))]
