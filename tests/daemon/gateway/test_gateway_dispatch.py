"""Dispatch to real nodes: a node that died is retried elsewhere, and the retry is an event."""

import socket

from gw_helpers import read_events, request, start_gateway, start_node, submit_body, wait_until


def test_candidate_on_a_dead_node_is_retried_on_another(tmp_path):
    gateway = start_gateway(tmp_path, tmp_path / "gw.db", "--heartbeat-ttl", "60", "--stream-heartbeat", "0.5")
    # The doomed node has the most free capacity, so the scheduler tries it first.
    doomed = start_node(tmp_path, "--gateway", gateway.url, "--slots", "4")
    survivor = start_node(tmp_path, "--gateway", gateway.url)
    try:
        def workers():
            listed = request(f"{gateway.url}/api/v1/workers").json()["workers"]
            return {w["url"]: w["worker_id"] for w in listed} if len(listed) == 2 else None

        ids = wait_until(workers, 60)
        assert ids, request(f"{gateway.url}/api/v1/workers").body
        dead, alive = ids[doomed.url], ids[survivor.url]
        doomed.kill9()
        # Hold the dead node's port (bound, never listening) so no daemon of a parallel test can
        # take it over: connections to it are refused, as to any dead node.
        tombstone = socket.socket()
        tombstone.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tombstone.bind(("127.0.0.1", doomed.port))

        reply = request(f"{gateway.url}/api/v1/jobs", "POST", submit_body(max_repairs=0))
        assert reply.status == 201, reply.body
        lines = read_events(gateway.url, reply.json()["job_id"], follow=True, timeout=280)
        retries = [e for e in lines if e["type"] == "candidate_retry"]
        dispatched = [e["worker_id"] for e in lines if e["type"] == "candidate_dispatched"]
        assert retries, (lines, gateway.lines[-20:])
        assert retries[0]["worker_id"] == dead and retries[0]["reason"] == "unreachable", retries
        assert retries[0]["attempt"] == 1 and retries[0]["candidate_id"]
        assert dispatched[:2] == [dead, alive]
        assert lines[-1] == {"type": "end", "status": "succeeded"}, lines[-3:]

        workers = {w["worker_id"]: w for w in request(f"{gateway.url}/api/v1/workers").json()["workers"]}
        assert workers[dead]["healthy"] is False and workers[alive]["healthy"] is True
        metrics = request(f"{gateway.url}/metrics").body.decode()
        assert 'kgen_gateway_dispatch_errors_total{reason="unreachable"} 1' in metrics
        assert 'kgen_gateway_dispatches_total{result="ok"} 1' in metrics
        tombstone.close()
    finally:
        survivor.stop()
        doomed.stop()
        gateway.stop()
