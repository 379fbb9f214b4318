"""Bad input of every kind gets a 4xx with a JSON error body, and the gateway stays live."""

import json

import pytest

from gw_helpers import TASK_SRC, request, submit_body

JOB_ID = "0123456789abcdef0123456789abcdef"


def api(gateway, path):
    return f"{gateway.url}/api/v1{path}"


def test_health_endpoints_need_no_token(gateway):
    assert request(f"{gateway.url}/livez", token=None).json()["status"] == "ok"
    reply = request(f"{gateway.url}/readyz", token=None)
    assert reply.status == 200 and reply.json()["status"] == "ready"


@pytest.mark.parametrize("token", [None, "wrong-token", ""])
def test_api_needs_the_right_token(gateway, token):
    for method, path, body in [("GET", "/jobs", None), ("POST", "/jobs", submit_body()),
                               ("GET", "/workers", None), ("GET", f"/jobs/{JOB_ID}", None)]:
        reply = request(api(gateway, path), method, body, token=token)
        assert reply.status == 401, (path, reply.body)
        assert reply.error_code() == "unauthorised"
    assert request(f"{gateway.url}/metrics", token=token).status == 401


@pytest.mark.parametrize("raw", [b"{not json", b"", b"[1, 2]", b'"text"', b"\xff\xfe", b"null", b"[" * 100000,
                                 b'{"api_version": "v1", "task": ' + b"[" * 50000 + b"]" * 50000 + b"}",
                                 b'{"api_version": "v1", "backend": "cpu", "task": "\\ud800"}'])
def test_malformed_bodies(gateway, raw):
    reply = request(api(gateway, "/jobs"), "POST", raw=raw)
    assert reply.status == 400, reply.body
    assert reply.error_code() in ("malformed_json", "bad_request", "bad_value", "wrong_type")


@pytest.mark.parametrize("path", ["/jobs", "/workers/register"])
@pytest.mark.parametrize("raw", [b"[" * 100000, b'{"api_version": "v1", "task": ' + b"{\"a\": " * 60000 + b"}",
                                 json.dumps(submit_body()).encode("utf-16"), b'{"api_version": "v1", "x": "\xff"}'])
def test_deep_nesting_and_non_utf8_are_malformed_json(gateway, path, raw):
    reply = request(api(gateway, path), "POST", raw=raw)
    assert reply.status == 400 and reply.error_code() == "malformed_json", reply.body


@pytest.mark.parametrize("fields", [
    {"backend": 1}, {"task": 42}, {"max_rounds": "3"}, {"max_rounds": True}, {"parallel_num": 2.5},
    {"atol": "small"}, {"allow_cpu_fallback": "yes"}, {"arch": ["h100"]}, {"job_type": None, "task": None},
])
def test_wrong_types(gateway, fields):
    reply = request(api(gateway, "/jobs"), "POST", submit_body(**fields))
    assert reply.status == 400, reply.body
    assert reply.error_code() in ("wrong_type", "missing_field", "bad_request")


def test_unknown_fields_and_api_version(gateway):
    reply = request(api(gateway, "/jobs"), "POST", submit_body(priority=9))
    assert reply.status == 400 and reply.error_code() == "unknown_field"
    body = submit_body()
    del body["api_version"]
    assert request(api(gateway, "/jobs"), "POST", body).status == 400
    reply = request(api(gateway, "/jobs"), "POST", {**submit_body(), "api_version": "v2"})
    assert reply.status == 400 and "v1" in reply.json()["error"]["message"]
    reply = request(api(gateway, "/workers/register"), "POST",
                    {"api_version": "v1", "url": "http://127.0.0.1:1", "colour": "red"})
    assert reply.status == 400 and reply.error_code() == "unknown_field"


def test_oversized_body_is_413(gateway):
    body = submit_body(task=TASK_SRC + "#" * (3 * 1024 * 1024))
    reply = request(api(gateway, "/jobs"), "POST", body)
    assert reply.status == 413, reply.body[:200]
    assert reply.error_code() == "body_too_large"


@pytest.mark.parametrize("source, words", [
    ("def broken(:\n    pass\n", "syntax error"),
    ("import torch\n\ndef get_inputs():\n    return []\n\ndef get_init_inputs():\n    return []\n", "Model"),
    ("   ", "non-empty"),
    ("class Model: pass\nget_inputs = 1\n", "get_init_inputs"),
])
def test_bad_task_sources(gateway, source, words):
    reply = request(api(gateway, "/jobs"), "POST", submit_body(task=source))
    assert reply.status == 400, reply.body
    assert words in reply.json()["error"]["message"]


@pytest.mark.parametrize("fields", [
    {"job_type": "evolve", "max_rounds": 10**9}, {"job_type": "evolve", "parallel_num": 0},
    {"job_type": "evolve", "parallel_num": 100000}, {"max_repairs": -1}, {"timeout_s": -5},
    {"timeout_s": 1e12}, {"atol": -0.5}, {"rtol": 50}, {"job_type": "forever"}, {"dsl": "cuda-c"},
    {"generator": "oracle"}, {"backend": "tpu"}, {"op_name": "../../etc/passwd"}, {"arch": "h100; rm -rf /"},
    {"early_stop": "yes"}, {"compile_for": "sm_9000"}, {"compile_for": ["sm_90", 3]}, {"compile_for": 90},
])
def test_absurd_parameters(gateway, fields):
    reply = request(api(gateway, "/jobs"), "POST", submit_body(**fields))
    assert reply.status == 400, (fields, reply.body)
    assert reply.json()["error"]["message"]


def test_early_stop_and_compile_for_are_valid_submit_fields(gateway):
    # this gateway has no node: a body that passes the schema is turned away for its backend only
    reply = request(api(gateway, "/jobs"), "POST",
                    submit_body(job_type="evolve", early_stop=False, compile_for="sm_80, sm_90"))
    assert reply.status == 422 and reply.json()["error"]["code"] == "unsupported_backend", reply.body


def test_nan_is_not_a_tolerance(gateway):
    raw = json.dumps(submit_body()).replace('"job_type"', '"atol": NaN, "job_type"').encode()
    reply = request(api(gateway, "/jobs"), "POST", raw=raw)
    assert reply.status == 400, reply.body


def test_backend_nobody_serves_is_rejected_with_the_served_list(gateway):
    reply = request(api(gateway, "/jobs"), "POST", submit_body(backend="cuda", arch="h100"))
    assert reply.status == 422, reply.body
    error = reply.json()["error"]
    assert error["code"] == "unsupported_backend"
    assert isinstance(error["served"], list)


@pytest.mark.parametrize("path", [
    f"/jobs/{JOB_ID}", f"/jobs/{JOB_ID}/result", f"/jobs/{JOB_ID}/events", "/jobs/abc123",
])
def test_unknown_job_ids_are_404(gateway, path):
    reply = request(api(gateway, path))
    assert reply.status == 404, reply.body
    assert reply.error_code() == "not_found"
    assert request(api(gateway, f"/jobs/{JOB_ID}/cancel"), "POST", {"api_version": "v1"}).status == 404


@pytest.mark.parametrize("path", [
    "/api/v1/jobs/..%2f..%2fetc%2fpasswd", "/api/v1/jobs/..%2F..%2Fetc%2Fpasswd/result",
    "/api/v1/jobs/%00", "/api/v1/jobs/ABCDEF", "/api/v1/jobs/abc%20def", "/api/v1/jobs/' OR 1=1 --".replace(" ", "%20"),
    "/api/v1/jobs/" + "a" * 300, "/api/v1/jobs/%25", "/api/v1/jobs/a_b%", "/api/v1/../../etc/passwd",
    "/api/v1/workers/..%2f..%2fx/heartbeat", "/api/v1/nonexistent", "/etc/passwd",
])
def test_hostile_paths_get_json_4xx(gateway, path):
    for method in ("GET", "POST"):
        reply = request(gateway.url + path, method, {"api_version": "v1"} if method == "POST" else None)
        assert 400 <= reply.status < 500, (path, method, reply.status)
        assert reply.json()["error"]["code"], (path, reply.body)


def test_bad_queries(gateway):
    assert request(api(gateway, "/jobs?status=bogus")).status == 400
    assert request(api(gateway, "/jobs?limit=abc")).status == 400
    assert request(api(gateway, "/jobs?limit=-1")).status == 400
    assert request(api(gateway, "/jobs?limit=5&sort=desc")).status == 400
    assert request(api(gateway, "/jobs?limit=5")).status == 200


@pytest.mark.parametrize("url", [
    "file:///etc/passwd", "http://", "http://127.0.0.1:8000/some/path", "ftp://127.0.0.1:21",
    "http://user:pw@127.0.0.1:9001", "http://127.0.0.1:99999", "javascript:alert(1)",
])
def test_register_rejects_bad_urls(gateway, url):
    reply = request(api(gateway, "/workers/register"), "POST", {"api_version": "v1", "url": url})
    assert reply.status == 400, (url, reply.body)


def test_register_without_backend_or_capacity_is_400_and_contacts_nobody(gateway):
    # Registration is the node's own act: the gateway never calls a URL it was merely told about.
    reply = request(api(gateway, "/workers/register"), "POST", {"api_version": "v1", "url": "http://127.0.0.1:9"})
    assert reply.status == 400, reply.body
    assert reply.error_code() == "missing_field"


def test_worker_lifecycle_and_unknown_worker_ids(gateway):
    body = {"api_version": "v1", "url": "http://127.0.0.1:7", "backend": "cpu", "arch": "testarch", "capacity": 2}
    first = request(api(gateway, "/workers/register"), "POST", body).json()
    assert first["heartbeat_ttl_s"] > 0 and first["node_secret"]
    again = request(api(gateway, "/workers/register"), "POST", body).json()
    assert again["worker_id"] == first["worker_id"]  # same URL, same worker
    assert again["node_secret"] != first["node_secret"]  # a fresh secret per registration
    worker_id = first["worker_id"]
    workers = request(api(gateway, "/workers")).json()["workers"]
    mine = [w for w in workers if w["worker_id"] == worker_id]
    assert mine and mine[0]["backend"] == "cpu" and mine[0]["capacity"] == 2 and mine[0]["healthy"]
    assert "secret" not in mine[0] and mine[0]["suspect"] == ""
    hb = request(api(gateway, f"/workers/{worker_id}/heartbeat"), "POST", {"api_version": "v1", "load": 1})
    assert hb.status == 200 and hb.json()["ok"] is True
    bad = request(api(gateway, f"/workers/{worker_id}/heartbeat"), "POST", {"api_version": "v1", "load": -3})
    assert bad.status == 400
    assert request(api(gateway, f"/workers/{worker_id}"), "DELETE").status == 200
    assert request(api(gateway, f"/workers/{worker_id}"), "DELETE").status == 404
    gone = request(api(gateway, f"/workers/{worker_id}/heartbeat"), "POST", {"api_version": "v1"})
    assert gone.status == 404 and gone.error_code() == "not_found"


def test_gateway_is_still_live_and_counts_requests(gateway):
    assert request(f"{gateway.url}/livez", token=None).status == 200
    text = request(f"{gateway.url}/metrics").body.decode()
    assert "kgen_gateway_requests_total" in text
    assert 'kgen_gateway_jobs{status="queued"}' in text
    assert "kgen_gateway_queue_depth" in text
    assert "passwd" not in text  # hostile paths never become label values
    assert gateway.proc.poll() is None
