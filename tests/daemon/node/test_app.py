"""The node's HTTP API against a real daemon: contract, auth, leases and hostile input."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from node_helpers import HONEST_SRC, TASK_SRC, TOKEN
from kgen.core.client import ApiError, NodeClient
from kgen.core.errors import BadInput, NotFound, Unauthorised


def raw(url, path, data=None, *, token=TOKEN, method=None, headers=None):
    """(status, decoded JSON) for any request, including deliberately broken ones."""
    hdrs = {"Content-Type": "application/json", **(headers or {})}
    if token:
        hdrs["Authorization"] = f"Bearer {token}"
    body = data if isinstance(data, (bytes, type(None))) else json.dumps(data).encode()
    req = urllib.request.Request(url + path, data=body, headers=hdrs, method=method or ("POST" if body is not None else "GET"))
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_status_follows_the_wire_contract(node):
    status = NodeClient(node.url, TOKEN).status()
    assert status["api_version"] == "v1"
    assert status["backend"] == "cpu" and status["state"] == "running"
    assert status["capacity"] == 2 and status["load"] == 0
    assert [d["id"] for d in status["devices"]] == ["cpu:0", "cpu:1"]
    for device in status["devices"]:
        assert device["leased"] is False and device["total_memory_bytes"] > 0 and device["free_memory_bytes"] > 0
    assert status["arch"] and status["node_id"] and status["version"]


def test_auth_required_except_health(node):
    assert raw(node.url, "/livez", token=None)[0] == 200
    assert raw(node.url, "/readyz", token=None)[0] == 200
    for token in (None, "wrong", TOKEN + "x"):
        status, body = raw(node.url, "/api/v1/status", token=token)
        assert status == 401 and body["api_version"] == "v1" and body["error"]["code"] == "unauthorised"
    with pytest.raises(Unauthorised):
        NodeClient(node.url, "wrong").status()


@pytest.mark.parametrize("body, status, code", [
    (b"{not json", 400, "malformed_json"),
    (b"[1, 2]", 400, "bad_request"),
    ({"ttl_s": 5}, 400, "bad_request"),                                  # no api_version
    ({"api_version": "v2"}, 400, "unsupported_api_version"),
    ({"api_version": "v1", "bogus": 1}, 400, "unknown_field"),
    ({"api_version": "v1", "ttl_s": "long"}, 400, "wrong_type"),
    ({"api_version": "v1", "ttl_s": True}, 400, "wrong_type"),
    ({"api_version": "v1", "ttl_s": -1}, 400, "bad_value"),
    ({"api_version": "v1", "min_free_memory_bytes": 1.5}, 400, "wrong_type"),
])
def test_bad_acquire_bodies_get_json_4xx(node, body, status, code):
    got_status, got = raw(node.url, "/api/v1/acquire_device", body)
    assert got_status == status and got["error"]["code"] == code and got["error"]["message"]


@pytest.mark.parametrize("body, code", [
    ({"api_version": "v1", "task": "x = 1"}, "missing_field"),
    ({"api_version": "v1", "task": 5, "candidate": "x"}, "wrong_type"),
    ({"api_version": "v1", "task": " ", "candidate": "x"}, "bad_value"),
    ({"api_version": "v1", "task": "a", "candidate": "b", "timeout_s": 0}, "bad_value"),
    ({"api_version": "v1", "task": "a", "candidate": "b", "allow_ops": [1]}, "wrong_type"),
    ({"api_version": "v1", "task": "a", "candidate": "b", "trials": 2}, "bad_value"),
    ({"api_version": "v1", "task": "a", "candidate": "b", "trials": 10**6}, "bad_value"),
    ({"api_version": "v1", "task": "a", "candidate": "b", "trials": "3"}, "wrong_type"),
    ({"api_version": "v1", "task": "a", "candidate": "b", "compile_for": "sm_90"}, "wrong_type"),
    ({"api_version": "v1", "task": "a", "candidate": "b", "compile_for": ["sm_9"]}, "bad_value"),
    ({"api_version": "v1", "task": "a", "candidate": "b", "reject_spills": 1}, "wrong_type"),
    ({"api_version": "v1", "task": TASK_SRC, "candidate": "b", "lease_id": "../../etc/passwd"}, "unknown_lease"),
    ({"api_version": "v1", "task": "a", "candidate": "b", "dispatch": "d1"}, "wrong_type"),
    ({"api_version": "v1", "task": "a", "candidate": "b", "dispatch": {"dispatch_id": "d"}}, "bad_value"),
    ({"api_version": "v1", "task": "a", "candidate": "b",
      "dispatch": {"dispatch_id": 1, "task_id": "t", "candidate_sha": "s"}}, "bad_value"),
])
def test_bad_verify_bodies_get_json_4xx(node, body, code):
    status, got = raw(node.url, "/api/v1/verify", body)
    assert 400 <= status < 500 and got["error"]["code"] == code


@pytest.mark.parametrize("body", [
    b"[" * 100000,                                                  # the decoder's recursion limit
    b'{"api_version": "v1", "ttl_s": ' + b"[" * 50000 + b"]" * 50000 + b"}",
    '{"api_version": "v1"}'.encode("utf-16"),                       # valid JSON, but not UTF-8
    b'{"api_version": "v1", "x": "\xff"}',
])
def test_deeply_nested_or_non_utf8_bodies_are_malformed_json(node, body):
    status, got = raw(node.url, "/api/v1/acquire_device", body)
    assert status == 400 and got["error"]["code"] == "malformed_json", got
    assert NodeClient(node.url, TOKEN).status()["state"] == "running"


def test_oversized_body_is_413_and_node_stays_up(node):
    big = {"api_version": "v1", "task": "x" * (3 * 1024 * 1024), "candidate": "y"}
    status, body = raw(node.url, "/api/v1/verify", big)
    assert status == 413 and body["error"]["code"] == "body_too_large"
    assert NodeClient(node.url, TOKEN).status()["state"] == "running"


def test_unknown_routes_and_methods_are_json(node):
    status, body = raw(node.url, "/api/v1/nope")
    assert status == 404 and body["error"]["code"] == "not_found"
    status, body = raw(node.url, "/api/v1/status", {"api_version": "v1"})
    assert status == 405 and body["api_version"] == "v1"


def test_leases_exhaust_then_release(node):
    client = NodeClient(node.url, TOKEN)
    first = client.acquire(ttl_s=30)
    second = client.acquire(ttl_s=30)
    try:
        assert {first["device"], second["device"]} == {"cpu:0", "cpu:1"}
        assert first["expires_at"] > 0 and first["lease_id"] != second["lease_id"]
        assert client.status()["load"] == 2
        with pytest.raises(ApiError) as err:
            client.acquire()
        assert err.value.status == 503 and err.value.code == "no_device" and err.value.retry_after
    finally:
        assert client.release(first["lease_id"])["released"] is True
        client.release(second["lease_id"])
    with pytest.raises(NotFound):
        client.release(first["lease_id"])
    assert client.status()["load"] == 0


def test_bad_task_source_is_400(node):
    with pytest.raises(BadInput):
        NodeClient(node.url, TOKEN).verify("def broken(:\n", "x = 1", timeout_s=30)


def test_verify_echoes_the_dispatch_it_answers(node):
    dispatch = {"dispatch_id": "ab" * 16, "task_id": "t" * 64, "candidate_sha": "c" * 64}
    status, body = raw(node.url, "/api/v1/verify", {"api_version": "v1", "task": TASK_SRC, "candidate": HONEST_SRC,
                                                    "timeout_s": 60, "dispatch": dispatch})
    assert status == 200 and body["dispatch"] == dispatch
    assert body["verdict"]["status"] == "correct" and len(body["verdict"]["candidate_sha"]) == 64


def test_verify_and_profile_on_a_leased_device(node):
    client = NodeClient(node.url, TOKEN)
    lease = client.acquire(ttl_s=60)
    try:
        verdict = client.verify(TASK_SRC, HONEST_SRC, lease_id=lease["lease_id"], timeout_s=60)
        assert verdict["status"] == "correct", verdict["message"]
        assert verdict["kernels_launched"] >= 1 and verdict["trials_run"] >= 3
        profiled = client.profile(TASK_SRC, HONEST_SRC, lease_id=lease["lease_id"], timeout_s=60)
        assert profiled["status"] == "correct"
        assert client.status()["load"] == 1          # the lease is still held by its holder
        wrong = HONEST_SRC.replace("* 2.0", "* 3.0")
        assert client.verify(TASK_SRC, wrong, lease_id=lease["lease_id"], timeout_s=60)["status"] == "incorrect"
    finally:
        client.release(lease["lease_id"])
    assert client.status()["load"] == 0


def test_verify_compiles_for_requested_targets_over_http(node):
    verdict = NodeClient(node.url, TOKEN).verify(TASK_SRC, HONEST_SRC, timeout_s=120, compile_for=["sm_90"])
    assert verdict["status"] == "correct", verdict["message"]
    assert verdict["compile_targets"] == ["sm_90"]
    assert verdict["compiled"] and all(r["ok"] and r["target"] == "sm_90" and r["n_regs"] > 0
                                       for r in verdict["compiled"])


def test_oversized_chunked_body_without_length_is_413(node):
    import http.client
    from urllib.parse import urlparse

    target = urlparse(node.url)
    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
    chunks = (b"x" * 65536 for _ in range(48))      # 3 MiB, no Content-Length
    conn.request("POST", "/api/v1/verify", body=chunks, encode_chunked=True,
                 headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    resp = conn.getresponse()
    body = json.loads(resp.read())
    conn.close()
    assert resp.status == 413 and body["error"]["code"] == "body_too_large"
    assert NodeClient(node.url, TOKEN).status()["state"] == "running"
