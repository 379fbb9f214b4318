"""Trust, through a real gateway: scoped tokens and roles, 401/403 for every bad credential, node
tokens bound to their worker, per-node call secrets, capacity caps, verdicts bound to dispatches,
the cross-check that catches a lying node, and one gateway per database."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
from urllib.parse import urlsplit

import pytest

from fake_node import FakeNode, _post, wait_for
from gw_helpers import TOKEN, env_for, read_events, request, start_gateway, start_node, submit_body

from kgen.core.client import Client

MAX_CAPACITY = 4


@pytest.fixture(scope="module")
def trust(tmp_path_factory):
    """A gateway, and a real cpu node that registered itself with its own node token."""
    home = tmp_path_factory.mktemp("trust")
    gateway = start_gateway(home, home / "gateway.db", "--max-node-capacity", str(MAX_CAPACITY),
                            "--stream-heartbeat", "0.5")
    admin = Client(gateway.url, TOKEN)
    node_token = admin.create_token("node", "real-node")["secret"]
    token_file = home / "real-node.token"
    token_file.write_text(node_token + "\n")
    node = start_node(home, "--gateway", gateway.url, "--token-file", str(token_file))
    try:
        assert wait_for(lambda: [w for w in admin.list_workers() if w["healthy"]], 60), gateway.lines[-20:]
        [real] = admin.list_workers()
        yield {"gateway": gateway, "node": node, "admin": admin, "real": real, "home": home}
    finally:
        node.stop()
        gateway.stop()


def _api(trust, path):
    return f"{trust['gateway'].url}/api/v1{path}"


def _raw_get(url: str, header: bytes | None) -> tuple[int, dict]:
    """GET with an Authorization header of arbitrary bytes (urllib refuses non-latin-1)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.putrequest("GET", parts.path)
    if header is not None:
        conn.putheader("Authorization", header)
    conn.endheaders()
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, json.loads(body)


@pytest.mark.parametrize("header", [None, b"Bearer wrong", b"Bearer \xff\xfe\xc3(", b"Bearer " + b"a" * 20000,
                                    TOKEN.encode() , b"Basic " + TOKEN.encode(), b"Bearer ", b"Bearer a b"])
def test_every_bad_credential_is_a_json_401_never_a_500(trust, header):
    for path in ("/jobs", "/workers", "/tokens"):
        status, body = _raw_get(_api(trust, path), header)
        assert status == 401, (header[:40] if header else header, body)
        assert body["api_version"] == "v1" and body["error"]["code"] == "unauthorised"
    assert trust["gateway"].proc.poll() is None
    assert not [line for line in trust["gateway"].lines if "Traceback" in line or "internal_error" in line]


def test_roles_are_enforced_per_route(trust):
    admin = trust["admin"]
    client = admin.create_token("client", "a-client")["secret"]
    node = admin.create_token("node", "a-node")["secret"]
    # client: jobs and reads; never tokens, registration or worker removal
    assert request(_api(trust, "/jobs"), token=client).status == 200
    assert request(_api(trust, "/workers"), token=client).status == 200
    for method, path, body in [("GET", "/tokens", None), ("POST", "/tokens", {"api_version": "v1", "role": "admin"}),
                               ("POST", "/workers/register", {"api_version": "v1", "url": "http://127.0.0.1:9",
                                                              "backend": "cpu", "capacity": 1}),
                               ("DELETE", f"/workers/{trust['real']['worker_id']}", None)]:
        reply = request(_api(trust, path), method, body, token=client)
        assert reply.status == 403 and reply.error_code() == "forbidden", (path, reply.body)
    # node: no jobs, no listing, no tokens
    for method, path, body in [("GET", "/jobs", None), ("POST", "/jobs", submit_body()), ("GET", "/workers", None),
                               ("GET", "/tokens", None)]:
        reply = request(_api(trust, path), method, body, token=node)
        assert reply.status == 403, (path, reply.body)
    # admin: tokens are listed without secrets or hashes
    tokens = admin.list_tokens()
    assert {"a-client", "a-node", "real-node"} <= {t["name"] for t in tokens}
    text = json.dumps(tokens)
    assert client not in text and node not in text and "hash" not in text
    assert [t["role"] for t in tokens if t["name"] == "a-client"] == ["client"]
    used = [t for t in tokens if t["name"] == "a-client"][0]
    assert used["last_used"] is not None
    # revoked: 401 at once
    admin.revoke_token("a-client")
    assert request(_api(trust, "/jobs"), token=client).status == 401


def test_fake_node_with_a_client_token_is_refused(trust):
    client = trust["admin"].create_token("client", "not-a-node")["secret"]
    fake = FakeNode("liar")
    try:
        status, body = fake.register(trust["gateway"].url, client)
        assert status == 403 and body["error"]["code"] == "forbidden", body
        assert fake.url not in {w["url"] for w in trust["admin"].list_workers()}
        assert fake.seen_auth == []          # the gateway never called it, with anything
    finally:
        fake.close()


def test_node_token_is_bound_to_its_worker_and_capacity_is_capped(trust):
    admin, gw = trust["admin"], trust["gateway"].url
    token = admin.create_token("node", "bound-node")["secret"]
    with socket.socket() as hold, socket.socket() as other:   # addresses nobody listens on
        hold.bind(("127.0.0.1", 0))
        other.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{hold.getsockname()[1]}"
        status, reg = _post(f"{gw}/api/v1/workers/register", token,
                            {"url": url, "backend": "cpu", "capacity": 1024})
        assert status == 200, reg
        assert reg["worker"]["capacity"] == MAX_CAPACITY
        assert any("capacity_capped" in line and "reported=1024" in line for line in trust["gateway"].lines)
        worker_id = reg["worker_id"]
        # the token now belongs to that worker: no other URL, no other worker
        status, body = _post(f"{gw}/api/v1/workers/register", token,
                             {"url": f"http://127.0.0.1:{other.getsockname()[1]}", "backend": "cpu", "capacity": 1})
        assert status == 403, body
        status, body = _post(f"{gw}/api/v1/workers/register", token,
                             {"url": trust["real"]["url"], "backend": "cpu", "capacity": 1})
        assert status == 403, body
        real = trust["real"]["worker_id"]
        assert _post(f"{gw}/api/v1/workers/{real}/heartbeat", token, {})[0] == 403
        assert _post(f"{gw}/api/v1/workers/{real}", token, {}, method="DELETE")[0] == 403
        assert real in {w["worker_id"] for w in admin.list_workers()}
        assert [t["worker_id"] for t in admin.list_tokens() if t["name"] == "bound-node"] == [worker_id]
        # its own worker: yes
        assert _post(f"{gw}/api/v1/workers/{worker_id}", token, {}, method="DELETE")[0] == 200


def _run_job(trust, **fields) -> tuple[str, list[dict]]:
    reply = request(_api(trust, "/jobs"), "POST", submit_body(max_repairs=0, **fields))
    assert reply.status == 201, reply.body
    job_id = reply.json()["job_id"]
    return job_id, read_events(trust["gateway"].url, job_id, follow=True, timeout=280)


def test_lying_node_is_caught_by_the_cross_check(trust):
    admin = trust["admin"]
    token = admin.create_token("node", "liar")["secret"]
    fake = FakeNode("liar")
    try:
        status, reg = fake.register(trust["gateway"].url, token)
        assert status == 200, reg
        # It claims 1024 slots, gets MAX_CAPACITY: still the most free, so it is asked first.
        assert reg["worker"]["capacity"] == MAX_CAPACITY
        job_id, events = _run_job(trust)
        assert fake.verifies >= 1, events
        suspect = [e for e in events if e["type"] == "worker_suspect"]
        assert suspect and suspect[0]["worker_id"] == fake.worker_id, [e for e in events if "seq" in e]
        assert suspect[0]["checked_by"] == trust["real"]["worker_id"]
        assert events[-1] == {"type": "end", "status": "succeeded"}, events[-4:]
        # the candidate's verdict is the honest node's: the cpu it ran on, no invented speedup
        result = admin.result(job_id)["best"]["verdict"]
        assert result["status"] == "correct" and result["device"] == "cpu"
        assert (result["timing"] or {}).get("speedup_eager") is None
        assert "10000" not in json.dumps(admin.get_status(job_id))
        workers = {w["worker_id"]: w for w in admin.list_workers()}
        assert workers[fake.worker_id]["suspect"] and workers[fake.worker_id]["healthy"] is False
        metrics = request(f"{trust['gateway'].url}/metrics").body.decode()
        assert 'kgen_gateway_cross_checks_total{result="disagree"} 1' in metrics
        assert "kgen_gateway_suspect_workers_total 1" in metrics
        assert "kgen_gateway_workers_suspect 1" in metrics
        # the gateway called the fake only with the fake's own secret, never a client or admin token
        assert fake.seen_auth and set(fake.seen_auth) == {f"Bearer {fake.secret}"}
        assert TOKEN not in " ".join(fake.seen_auth)
        # the CLI shows the column too
        env = env_for(trust["home"], KGEN_GATEWAY_URL=trust["gateway"].url)
        listed = subprocess.run([sys.executable, "-m", "kgen", "worker", "list", "--json"], env=env,
                                capture_output=True, text=True, timeout=60)
        rows = {w["worker_id"]: w for w in json.loads(listed.stdout)["workers"]}
        assert rows[fake.worker_id]["suspect"].startswith("cross-check by")
    finally:
        fake.close()
        admin.remove_worker(fake.worker_id) if fake.worker_id else None


def test_a_verdict_for_another_dispatch_is_refused(trust):
    admin = trust["admin"]
    token = admin.create_token("node", "mismatcher")["secret"]
    fake = FakeNode("mismatch")
    try:
        assert fake.register(trust["gateway"].url, token)[0] == 200
        _, events = _run_job(trust, op_name="mismatch")
        refused = [e for e in events if e["type"] == "verdict_refused"]
        assert refused and refused[0]["worker_id"] == fake.worker_id, events
        assert "dispatch_id" in refused[0]["reason"]
        assert events[-1] == {"type": "end", "status": "succeeded"}, events[-4:]
        verified = [e for e in events if e["type"] == "candidate_verified"]
        assert verified and all(e["status"] == "correct" for e in verified)
    finally:
        fake.close()
        admin.remove_worker(fake.worker_id) if fake.worker_id else None


def test_a_late_verdict_for_a_cancelled_job_is_never_recorded(trust):
    admin = trust["admin"]
    token = admin.create_token("node", "slowpoke")["secret"]
    fake = FakeNode("slow", delay_s=4.0)
    try:
        assert fake.register(trust["gateway"].url, token)[0] == 200
        reply = request(_api(trust, "/jobs"), "POST", submit_body(max_repairs=0, op_name="late"))
        job_id = reply.json()["job_id"]
        assert wait_for(lambda: any(e["type"] == "candidate_dispatched" and e["worker_id"] == fake.worker_id
                                    for e in read_events(trust["gateway"].url, job_id)), 240)
        assert request(_api(trust, f"/jobs/{job_id}/cancel"), "POST", {"api_version": "v1"}).status == 200
        assert fake.answered.wait(30)
        events = read_events(trust["gateway"].url, job_id, follow=True, timeout=60)
        types = [e["type"] for e in events if "seq" in e]
        assert types[-1] == "cancelled", types
        assert "candidate_verified" not in types
        assert all(c["status"] is None for c in admin.get_status(job_id)["candidates"])
    finally:
        fake.close()
        admin.remove_worker(fake.worker_id) if fake.worker_id else None


def test_a_second_gateway_on_the_same_database_exits_78(trust, tmp_path):
    db = trust["home"] / "gateway.db"
    done = subprocess.run([sys.executable, "-m", "kgen", "gateway", "start", "--port", "0", "--db", str(db)],
                          env=env_for(tmp_path), capture_output=True, text=True, timeout=120)
    assert done.returncode == 78, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert "in use by another gateway" in last and f"pid {trust['gateway'].proc.pid}" in last
