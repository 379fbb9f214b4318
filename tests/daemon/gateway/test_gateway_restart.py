"""kill -9 of the gateway loses no job and no event, re-queues what was running, keeps seqs."""

from pathlib import Path

from gw_helpers import read_events, request, start_gateway, start_node, submit_body, wait_until


def _events_in_db(db, job_id):
    from kgen.core.store import Store

    with Store(db) as store:
        return store.get_job(job_id)["status"], store.events(job_id)


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            pass
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"   # a zombie has exited; only init has yet to reap it


def test_kill9_and_restart_on_the_same_db(tmp_path):
    db = tmp_path / "gateway.db"
    first = start_gateway(tmp_path, db, "--max-running", "1", "--heartbeat-ttl", "5")
    port = first.port
    node = start_node(tmp_path, "--gateway", first.url)  # keeps beating across the restart
    restarted = None
    try:
        workers = wait_until(lambda: request(f"{first.url}/api/v1/workers").json()["workers"], 60)
        assert workers, "the node did not register"
        worker_id = workers[0]["worker_id"]
        jobs = []
        for i in range(3):
            reply = request(f"{first.url}/api/v1/jobs", "POST", submit_body(op_name=f"op{i}", max_repairs=0))
            assert reply.status == 201, reply.body
            jobs.append(reply.json()["job_id"])
        # Kill as soon as the first job is running: the others are still queued behind it.
        assert wait_until(lambda: any(e["type"] == "running" for e in read_events(first.url, jobs[0])), 60)
        children = _children(first.proc.pid)   # task check and generator children (some still starting)
        assert children or not Path("/proc").is_dir()
        first.kill9()
        # Orphans would hold memory (torch, a warm sandbox runner) for good: they notice and leave.
        assert wait_until(lambda: not any(_alive(pid) for pid in children), 60), children

        before = {job_id: _events_in_db(db, job_id) for job_id in jobs}
        assert all(events[0]["seq"] == 1 and events[0]["type"] == "queued" for _, events in before.values())

        restarted = start_gateway(tmp_path, db, "--port", str(port), "--max-running", "1", "--heartbeat-ttl", "5")
        assert restarted.url == first.url
        # The worker survived the restart in the store (its heartbeat is recent).
        workers = request(f"{restarted.url}/api/v1/workers").json()["workers"]
        assert [w["worker_id"] for w in workers] == [worker_id]
        listed = {j["job_id"] for j in request(f"{restarted.url}/api/v1/jobs").json()["jobs"]}
        assert set(jobs) <= listed

        for job_id in jobs:
            status_at_kill, old = before[job_id]
            lines = read_events(restarted.url, job_id, follow=True, timeout=280)
            assert lines[-1]["type"] == "end"
            events = [e for e in lines if e["type"] not in ("heartbeat", "end")]
            # Nothing lost, nothing renumbered: the old events are a prefix, new ones continue the seq.
            strip = lambda e: {k: v for k, v in e.items() if k != "job_id"}  # noqa: E731
            assert [strip(e) for e in old] == events[:len(old)]
            assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
            if status_at_kill == "running":
                requeue = events[len(old)]
                assert requeue["type"] == "queued" and "restarted" in requeue["reason"]
            assert events[-1]["type"] == lines[-1]["status"]
        # The first job was caught mid-run (its candidate is generated in a child process that
        # takes seconds to start), so the re-queue path above was exercised.
        assert before[jobs[0]][0] == "running"
        final = [request(f"{restarted.url}/api/v1/jobs/{job_id}").json()["job"]["status"] for job_id in jobs]
        assert final == ["succeeded"] * 3, final
    finally:
        node.stop()
        if restarted is not None:
            assert restarted.stop() == 0
        first.stop()
