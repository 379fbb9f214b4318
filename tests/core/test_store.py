"""The SQLite store: migrations, job lifecycle and events, candidates, workers, concurrency, durability."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading

import pytest

from kgen.core.errors import BadInput, NotFound
from kgen.core.generate import Candidate
from kgen.core.store import Store, default_store_path
from kgen.core.store import schema
from kgen.core.task import task_from_source
from kgen.core.verify.verdict import Timing, Trial, Verdict

TASK_SRC = textwrap.dedent("""
    import torch
    class Model(torch.nn.Module):
        def forward(self, x):
            return x * 2
    def get_inputs():
        return [torch.randn(8)]
    def get_init_inputs():
        return []
""")


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "kgen.db")
    yield s
    s.close()


@pytest.fixture
def task():
    return task_from_source(TASK_SRC, op_name="double")


def test_fresh_file_is_wal_and_records_every_migration(tmp_path):
    path = tmp_path / "sub" / "k.db"
    with Store(path) as s:
        assert s.journal_mode == "wal"
        assert s.schema_version() == schema.LATEST
    rows = sqlite3.connect(path).execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
    assert [r[0] for r in rows] == [m[0] for m in schema.MIGRATIONS]


def test_reopening_applies_nothing_and_keeps_data(tmp_path, task):
    path = tmp_path / "k.db"
    with Store(path) as s:
        job = s.create_job(task, {"job_type": "single"})
    conn = sqlite3.connect(path, isolation_level=None)
    assert schema.migrate(conn) == []
    conn.close()
    with Store(path) as s:
        assert s.get_job(job["job_id"])["status"] == "queued"


def test_old_database_is_upgraded_one_migration_at_a_time(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    schema.current_version(conn)
    version, name, sql = schema.MIGRATIONS[0]
    conn.execute("BEGIN")
    for stmt in schema._statements(sql):
        conn.execute(stmt)
    conn.execute("INSERT INTO schema_migrations VALUES (?, ?, 0)", (version, name))
    conn.execute("COMMIT")
    conn.close()
    with Store(path) as s:
        assert s.schema_version() == schema.LATEST
        s.upsert_worker("http://127.0.0.1:9001")  # table from migration 2 exists now


def test_not_a_database_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(Exception, match="cannot open store"):
        Store(bad)


def test_job_lifecycle_and_event_sequence(store, task):
    job = store.create_job(task, {"job_type": "evolve", "max_rounds": 2})
    assert job["status"] == "queued" and job["spec"]["max_rounds"] == 2
    assert job["task_id"] == task.id and job["op_name"] == "double"
    assert set(job) >= {"job_id", "task_id", "op_name", "status", "job_type", "spec", "created_at", "updated_at",
                        "started_at", "finished_at", "best_candidate_id", "error"}
    jid = job["job_id"]
    assert store.set_job_status(jid, "running") == 2
    assert store.add_event(jid, "round_started", {"round": 1}) == 3
    assert store.set_job_status(jid, "failed", error="nothing worked") == 4
    done = store.get_job(jid)
    assert done["status"] == "failed" and done["error"] == "nothing worked"
    assert done["started_at"] and done["finished_at"] >= done["started_at"]
    events = store.events(jid)
    assert [(e["seq"], e["type"]) for e in events] == [(1, "queued"), (2, "running"), (3, "round_started"),
                                                       (4, "failed")]
    assert events[2]["round"] == 1 and events[3]["error"] == "nothing worked"
    assert all(e["job_id"] == jid for e in events)
    assert [e["seq"] for e in store.events(jid, after=2)] == [3, 4]
    assert [e["seq"] for e in store.events(jid, after=1, limit=1)] == [2]
    with pytest.raises(BadInput) as info:
        store.set_job_status(jid, "running")
    assert info.value.code == "conflict"
    assert store.get_task(task.id)["source"] == TASK_SRC


def test_event_data_cannot_spoof_seq_or_type(store, task):
    jid = store.create_job(task, {})["job_id"]
    store.add_event(jid, "note", {"seq": 99, "type": "succeeded", "text": "hi"})
    last = store.events(jid)[-1]
    assert (last["seq"], last["type"], last["text"]) == (2, "note", "hi")


def test_requeue_after_crash_keeps_counting(store, task):
    jid = store.create_job(task, {})["job_id"]
    store.set_job_status(jid, "running")
    assert store.set_job_status(jid, "queued") == 3
    assert store.set_job_status(jid, "running") == 4
    assert [j["job_id"] for j in store.jobs_with_status("running")] == [jid]


def test_prefix_lookup_ambiguity_and_missing(store, task):
    ids = [store.create_job(task, {})["job_id"] for _ in range(20)]
    assert store.get_job(ids[0][:10])["job_id"] == ids[0]
    first = {}
    for i in ids:
        first.setdefault(i[0], []).append(i)
    shared = next((p for p, v in first.items() if len(v) > 1), None)
    if shared is not None:  # 20 ids over 16 hex digits: a shared first digit is certain
        with pytest.raises(BadInput, match="ambiguous"):
            store.get_job(shared)
    with pytest.raises(NotFound):
        store.get_job("zzzz")
    with pytest.raises(NotFound):
        store.get_job("%")
    with pytest.raises(BadInput):
        store.get_job("")
    assert len(store.list_jobs(limit=5)) == 5
    assert store.list_jobs(status="running") == []
    with pytest.raises(BadInput):
        store.list_jobs(status="bogus")
    with pytest.raises(BadInput):
        store.list_jobs(limit=-1)


def test_candidates_carry_latest_verdict(store, task):
    jid = store.create_job(task, {})["job_id"]
    c1 = store.add_candidate(jid, 1, 0, Candidate("src-a", params={"block": 64}, origin="builtin", notes="n"))
    c2 = store.add_candidate(jid, 1, 1, Candidate("src-b", origin="llm", parent="abc"))
    store.add_verdict(c1, Verdict(status="crashed", message="first try"), worker_id="w1")
    verdict = Verdict(status="correct", trials=[Trial(seed=1, ok=True, max_abs_err=0.0)],
                      timing=Timing(kind="interpreter", candidate_ms=3.5), kernels_launched=1, pure=True)
    store.add_verdict(c1, verdict, worker_id="w2")
    rows = store.candidates(jid)
    assert [r["candidate_id"] for r in rows] == [c1, c2]
    assert rows[0]["params"] == {"block": 64} and rows[0]["index"] == 0 and rows[0]["worker_id"] == "w2"
    assert Verdict.from_dict(rows[0]["verdict"]) == verdict
    assert rows[1]["verdict"] is None and rows[1]["parent"] == "abc" and rows[1]["sha"] == Candidate("src-b").sha
    store.set_best(jid, c1)
    assert store.get_job(jid)["best_candidate_id"] == c1
    assert store.get_candidate(c2)["source"] == "src-b"
    with pytest.raises(NotFound):
        store.add_verdict("nope", verdict)
    with pytest.raises(sqlite3.IntegrityError):  # (job, round, index) is unique
        store.add_candidate(jid, 1, 0, Candidate("src-c"))


def test_messages_are_kept_in_order(store, task):
    jid = store.create_job(task, {})["job_id"]
    store.add_message(jid, "user", "plan please")
    store.add_message(jid, "assistant", "a plan")
    assert [(m["role"], m["content"]) for m in store.messages(jid)] == [("user", "plan please"),
                                                                        ("assistant", "a plan")]


def test_worker_registry(store):
    w = store.upsert_worker("http://127.0.0.1:9001", "cuda", "h100", 2, info={"devices": 2})
    again = store.upsert_worker("http://127.0.0.1:9001", "cuda", "h100", 4)
    assert again["worker_id"] == w["worker_id"] and again["capacity"] == 4
    other = store.upsert_worker("http://127.0.0.1:9002")
    assert [x["worker_id"] for x in store.list_workers()] == [w["worker_id"], other["worker_id"]]
    before = store.get_worker(other["worker_id"])["last_seen"]
    assert store.touch_worker(other["worker_id"], info={"load": 1})["last_seen"] >= before
    assert store.get_worker(other["worker_id"])["info"] == {"load": 1}
    store.remove_worker(other["worker_id"])
    for fn in (store.get_worker, store.touch_worker, store.remove_worker):
        with pytest.raises(NotFound):
            fn(other["worker_id"])
    with pytest.raises(BadInput):
        store.upsert_worker("http://x", capacity=0)


def test_threads_never_share_or_reuse_a_seq(store, task):
    jid = store.create_job(task, {})["job_id"]
    seen, errors, heard = [], [], []
    store.add_listener(lambda e: heard.append(e["seq"]))

    def writer(n):
        try:
            for i in range(25):
                seen.append(store.add_event(jid, "tick", {"writer": n, "i": i}))
                store.events(jid, after=len(seen) - 1)
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(seen) == list(range(2, 102))
    assert [e["seq"] for e in store.events(jid)] == list(range(1, 102))
    assert heard == list(range(2, 102))   # announced in seq order, never out of turn


def test_listeners_hear_committed_events(store, task):
    heard = []
    store.add_listener(heard.append)
    jid = store.create_job(task, {})["job_id"]
    store.add_event(jid, "x", {"k": 1})
    assert [(e["seq"], e["type"]) for e in heard] == [(1, "queued"), (2, "x")]
    assert store.events(jid)[-1]["k"] == 1


def test_a_failing_listener_is_logged_and_the_write_stands(store, task, caplog):
    def broken(event):
        raise RuntimeError("listener bug")

    heard = []
    store.add_listener(broken)
    store.add_listener(heard.append)
    with caplog.at_level("ERROR", logger="kgen.core.store.db"):
        jid = store.create_job(task, {})["job_id"]
    assert [e["type"] for e in store.events(jid)] == ["queued"] and len(heard) == 1
    record = next(r for r in caplog.records if "listener" in r.getMessage())
    assert "queued" in record.getMessage() and "listener bug" in record.exc_text


def test_two_processes_write_one_file(tmp_path, task):
    path = tmp_path / "k.db"
    with Store(path) as s:
        jid = s.create_job(task, {})["job_id"]
    code = f"from kgen.core.store import Store\ns = Store({str(path)!r})\nfor i in range(30): s.add_event({jid!r}, 'child', {{'i': i}})\n"
    child = subprocess.Popen([sys.executable, "-c", code])
    with Store(path) as s:
        for i in range(30):
            s.add_event(jid, "parent", {"i": i})
        assert child.wait(60) == 0
        assert [e["seq"] for e in s.events(jid)] == list(range(1, 62))


def test_kill_9_loses_no_acknowledged_write(tmp_path, task):
    path = tmp_path / "k.db"
    with Store(path) as s:
        jid = s.create_job(task, {})["job_id"]
    code = (
        "import sys\nfrom kgen.core.store import Store\n"
        f"s = Store({str(path)!r})\n"
        f"s.set_job_status({jid!r}, 'running')\n"
        "i = 0\n"
        "while True:\n"
        f"    seq = s.add_event({jid!r}, 'tick', {{'i': i}})\n"
        "    print(seq, flush=True)\n"
        "    i += 1\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    acked = []
    for line in child.stdout:
        acked.append(int(line))
        if len(acked) >= 40:
            break
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    with Store(path) as s:
        job = s.get_job(jid)
        seqs = [e["seq"] for e in s.events(jid)]
        assert job["status"] == "running"
        assert set(acked) <= set(seqs)
        assert seqs == list(range(1, len(seqs) + 1))
        s.set_job_status(jid, "queued")  # what a restarted gateway does
        assert s.events(jid)[-1]["seq"] == len(seqs) + 1


def test_default_path_follows_config(monkeypatch, tmp_path):
    monkeypatch.setenv("KGEN_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KGEN_STORE", raising=False)
    assert default_store_path() == tmp_path / "home" / "kgen.db"
    monkeypatch.setenv("KGEN_STORE", str(tmp_path / "elsewhere.db"))
    assert default_store_path() == tmp_path / "elsewhere.db"


def test_closed_store_refuses_work(tmp_path, task):
    s = Store(tmp_path / "k.db")
    s.close()
    with pytest.raises(Exception, match="closed"):
        s.create_job(task, {})


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to count open files")
def test_reader_connections_of_finished_threads_are_released(store, task):
    def open_db_files():
        count = 0
        for fd in os.listdir("/proc/self/fd"):
            try:
                count += os.readlink(f"/proc/self/fd/{fd}") == str(store.path)
            except OSError:
                pass
        return count

    jid = store.create_job(task, {})["job_id"]
    store.get_job(jid)
    baseline = open_db_files()
    for _ in range(20):
        t = threading.Thread(target=store.get_job, args=(jid,))
        t.start()
        t.join()
    store.get_job(jid)
    # SQLite may park a closed connection's descriptor for reuse (POSIX lock rules); a leak would be ~20.
    assert open_db_files() <= baseline + 3


# -- tokens, transactional verdicts (migration 3) ------------------------------------------------
def test_tokens_are_stored_hashed_and_checked(tmp_path):
    from kgen.core.store.tokens import hash_secret

    with Store(tmp_path / "t.db") as s:
        row, secret = s.create_token("node", "n1")
        assert row["role"] == "node" and "hash" not in row and row["last_used"] is None
        raw = s.query_one("SELECT hash FROM tokens WHERE name = 'n1'")["hash"]
        assert raw == hash_secret(secret) and secret not in raw
        assert s.check_token(secret)["name"] == "n1"
        assert s.get_token("n1")["last_used"] is not None
        assert s.check_token(secret + "x") is None
        with pytest.raises(BadInput):
            s.create_token("node", "n1")
        with pytest.raises(BadInput):
            s.create_token("root")
        s.bind_token("n1", "w1")
        s.bind_token("n1", "w2")   # first binding wins
        assert s.token_bound_to("w1") == "n1" and s.token_bound_to("w2") is None
        s.revoke_token("n1")
        assert s.check_token(secret) is None
        with pytest.raises(NotFound):
            s.revoke_token("n1")


def test_verdict_event_and_best_are_one_transaction_and_never_after_the_end(tmp_path, task):
    with Store(tmp_path / "v.db") as s:
        job = s.create_job(task, {"job_type": "single"})
        jid = job["job_id"]
        s.set_job_status(jid, "running")
        cid = s.add_candidate(jid, 0, 0, Candidate(source="x = 1\n"))
        ok = s.record_verdict(jid, cid, Verdict(status="correct"), {"candidate_id": cid},
                              best={"candidate_id": cid}, set_best=True)
        assert ok and s.get_job(jid)["best_candidate_id"] == cid
        assert [e["type"] for e in s.events(jid)][-2:] == ["candidate_verified", "best_updated"]
        s.set_job_status(jid, "cancelled")
        before = s.events(jid)
        assert s.record_verdict(jid, cid, Verdict(status="incorrect"), {"candidate_id": cid}) is False
        assert s.add_event(jid, "late", {}, open_only=True) is None
        assert s.events(jid) == before
        assert s.get_candidate(cid)["verdict"]["status"] == "correct"
