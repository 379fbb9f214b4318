"""Acceptance: a real gateway and real cpu nodes on 127.0.0.1, driven through the `kgen` CLI and the SDK."""

from __future__ import annotations

import json
import threading
import time
from urllib.parse import urlparse

import pytest

from e2e_helpers import HANGING_SRC, HONEST_SRC, TASK_SRC, TOKEN, Daemon, daemon_env, kgen, wait_until
from kgen.core.client import NodeClient

pytestmark = pytest.mark.slow

EVOLVE = ("--job-type", "evolve", "--max-rounds", "2", "--parallel-num", "2")


def seq_events(client, job_id):
    return [e for e in client.events(job_id, follow=False) if "seq" in e]


def test_jobs_succeed_and_survive_a_gateway_kill(cluster):
    single = cluster.submit()
    tail = kgen("tail", single[:8], env=cluster.env)          # a unique prefix is enough
    assert tail.returncode == 0, cluster.explain(tail)
    assert "succeeded" in tail.stdout

    done = kgen("submit", str(cluster.task_file()), *EVOLVE, "--wait", "--json", env=cluster.env)
    assert done.returncode == 0, cluster.explain(done)
    evolve = json.loads(done.stdout)
    assert evolve["status"] == "succeeded"

    best = cluster.home / "best.py"
    result = kgen("job", "result", evolve["job_id"], "-o", str(best), env=cluster.env)
    assert result.returncode == 0, result.stderr
    assert "class ModelNew" in best.read_text()

    # A job in flight when the gateway is killed -9 is re-queued by the restarted gateway.
    running = cluster.submit(*EVOLVE)
    cluster.wait_for_event(running, ("round_started",))
    client = cluster.client
    before = {job: seq_events(client, job) for job in (single, evolve["job_id"], running)}
    port = urlparse(cluster.gateway.url).port
    cluster.gateway.proc.kill()
    cluster.gateway.proc.wait(10)
    cluster.gateway = cluster.start_gateway(port)

    client = cluster.client
    assert {single, evolve["job_id"], running} <= {j["job_id"] for j in client.list_jobs()}
    for job in (single, evolve["job_id"]):
        assert seq_events(client, job) == before[job]   # finished jobs: every event, unchanged
    tail = kgen("tail", running, "--jsonl", env=cluster.env)
    assert tail.returncode == 0, cluster.explain(tail)
    after = seq_events(client, running)
    assert after[:len(before[running])] == before[running]
    assert [e["seq"] for e in after] == list(range(1, len(after) + 1))
    assert after[-1]["type"] == "succeeded"


def test_evolve_job_survives_a_node_killed_mid_job(cluster):
    job = cluster.submit(*EVOLVE)
    nodes = {n.url: n for n in cluster.nodes}
    busy: list[Daemon] = []

    def a_node_is_busy():
        for url, node in nodes.items():
            if NodeClient(url, TOKEN, timeout=5).status()["running"] > 0:   # a candidate is verifying
                busy.append(node)
                return True
        return False

    assert wait_until(a_node_is_busy, timeout=120, interval=0.05)
    busy[0].proc.kill()
    busy[0].proc.wait(10)
    assert cluster.client.get_status(job)["status"] == "running"
    tail = kgen("tail", job, "--jsonl", env=cluster.env)
    assert tail.returncode == 0, cluster.explain(tail)
    lines = [json.loads(line) for line in tail.stdout.splitlines()]
    assert lines[-1]["type"] == "succeeded", cluster.explain(tail)
    assert any(e["type"] == "candidate_retry" for e in lines)   # the lost candidate ran elsewhere


def test_node_registers_and_deregisters_on_sigterm(tmp_path):
    from e2e_helpers import Cluster

    cluster = Cluster(tmp_path, nodes=1)
    try:
        listed = kgen("worker", "list", "--json", env=cluster.env)
        workers = json.loads(listed.stdout)["workers"]
        assert [w["url"] for w in workers] == [cluster.nodes[0].url] and workers[0]["capacity"] == 1
        assert cluster.nodes[0].stop() == 0
        assert wait_until(lambda: cluster.client.list_workers() == [], timeout=10)
        assert any("deregistered" in line for line in cluster.nodes[0].lines)
    finally:
        cluster.close()


def test_hung_candidate_does_not_block_the_other_device(tmp_path):
    node = Daemon(["node", "start", "--port", "0", "--slots", "2"], daemon_env(tmp_path), "node")
    try:
        client = NodeClient(node.url, TOKEN)
        finished: list[tuple[str, float, dict]] = []

        def run(name, source, timeout_s):
            verdict = client.verify(TASK_SRC, source, timeout_s=timeout_s)
            finished.append((name, time.monotonic(), verdict))

        hung = threading.Thread(target=run, args=("hung", HANGING_SRC, 10))
        hung.start()
        assert wait_until(lambda: client.status()["load"] == 1, timeout=10)
        run("honest", HONEST_SRC, 40)
        assert [name for name, _, _ in finished] == ["honest"]    # the hung one is still running
        assert finished[0][2]["status"] == "correct"
        assert client.status()["load"] == 1
        hung.join(90)
        assert finished[1][0] == "hung" and finished[1][2]["status"] == "timeout"
        assert client.status()["load"] == 0
    finally:
        node.stop()
