"""The dashboard's static files at /ui/: public, fixed file set, strict security headers; its read
endpoints (/jobs/{id}/task, /whoami) by role; `--no-ui` turns the page off."""

import json
import subprocess
import sys

from gw_helpers import TASK_SRC, TOKEN, request, start_gateway, submit_body, wait_until

PAGE_FILES = ["index.html", "style.css", "app.js", "api.js", "dom.js", "jobs.js", "job.js", "workers.js",
              "bench.js", "chart.js", "highlight.js"]


def _token(gateway, home, role: str) -> str:
    done = subprocess.run([sys.executable, "-m", "kgen", "token", "create", "--role", role, "--json",
                           "--gateway", gateway.url], env={**_env(home)}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["secret"]


def _env(home):
    from gw_helpers import env_for
    return env_for(home)


def test_page_and_its_files_are_served_without_a_token_with_security_headers(gateway):
    for name in ["", *PAGE_FILES]:
        reply = request(f"{gateway.url}/ui/{name}", token=None)
        assert reply.status == 200, (name, reply.body[:200])
        csp = reply.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert reply.headers["X-Content-Type-Options"] == "nosniff"
        assert reply.headers["Referrer-Policy"] == "no-referrer"
    index = request(f"{gateway.url}/ui/", token=None)
    assert index.headers["Content-Type"].startswith("text/html")
    html = index.body.decode()
    assert "<script" in html and 'type="module" src="app.js"' in html
    assert "http://" not in html and "https://" not in html      # nothing from outside: works offline
    script = request(f"{gateway.url}/ui/app.js", token=None)
    assert script.headers["Content-Type"].startswith("text/javascript")
    # A revalidation by ETag answers 304 with no body.
    etag = script.headers["ETag"]
    import urllib.request
    req = urllib.request.Request(f"{gateway.url}/ui/app.js", headers={"If-None-Match": etag})
    try:
        urllib.request.urlopen(req, timeout=10)
        raise AssertionError("expected 304")
    except urllib.error.HTTPError as exc:
        assert exc.code == 304


def test_no_innerhtml_and_no_inline_code_in_the_page(gateway):
    for name in PAGE_FILES:
        text = request(f"{gateway.url}/ui/{name}", token=None).body.decode()
        for banned in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
                       "localStorage", "document.cookie"):
            assert banned not in text, (name, banned)
    html = request(f"{gateway.url}/ui/", token=None).body.decode()
    assert " on" + "click=" not in html and "style=" not in html and "<script>" not in html


def test_only_shipped_files_are_served_and_paths_do_not_escape(gateway):
    assert request(f"{gateway.url}/ui", token=None).status == 200          # redirected to /ui/
    for path in ["/ui/nope.js", "/ui/..%2Fapp.py", "/ui/%2e%2e/app.py", "/ui/../app.py", "/ui/ui_static.py"]:
        reply = request(f"{gateway.url}{path}", token=None)
        assert reply.status in (401, 404), (path, reply.status)
        assert b"import" not in reply.body
    # With a token, an unknown file is a JSON 404, not a file from elsewhere.
    reply = request(f"{gateway.url}/ui/nope.js")
    assert reply.status == 404 and reply.error_code() == "not_found"
    # The API keeps needing a token: /ui/ opens nothing else.
    assert request(f"{gateway.url}/api/v1/jobs", token=None).status == 401


def test_task_source_and_whoami_endpoints_by_role(gateway, tmp_path):
    # A registered cpu worker (nothing listens there: the job needs only to be accepted and stored).
    request(f"{gateway.url}/api/v1/workers/register", "POST",
            {"api_version": "v1", "url": "http://127.0.0.1:9", "backend": "cpu", "capacity": 1})
    job = request(f"{gateway.url}/api/v1/jobs", "POST", submit_body()).json()
    task = request(f"{gateway.url}/api/v1/jobs/{job['job_id'][:10]}/task")
    assert task.status == 200, task.body
    body = task.json()
    assert body["source"] == TASK_SRC and body["job_id"] == job["job_id"] and body["op_name"]
    assert request(f"{gateway.url}/api/v1/jobs/{'f' * 32}/task").status == 404
    assert request(f"{gateway.url}/api/v1/jobs/{job['job_id']}/task", token="wrong").status == 401

    client = _token(gateway, tmp_path, "client")
    node = _token(gateway, tmp_path, "node")
    assert request(f"{gateway.url}/api/v1/jobs/{job['job_id']}/task", token=client).status == 200
    refused = request(f"{gateway.url}/api/v1/jobs/{job['job_id']}/task", token=node)
    assert refused.status == 403 and refused.error_code() == "forbidden"
    me = request(f"{gateway.url}/api/v1/whoami", token=client).json()
    assert me["role"] == "client" and me["name"].startswith("client") and client not in json.dumps(me)
    assert request(f"{gateway.url}/api/v1/whoami").json()["role"] == "admin"
    assert request(f"{gateway.url}/api/v1/whoami", token=None).status == 401


def test_no_ui_turns_the_page_off(tmp_path):
    gateway = start_gateway(tmp_path, tmp_path / "gw.db", "--no-ui")
    try:
        assert any("ui=off" in line for line in gateway.lines)
        for path in ("/ui/", "/ui/app.js"):
            reply = request(f"{gateway.url}{path}", token=None)
            assert reply.status == 401          # not a public path any more
            assert request(f"{gateway.url}{path}").status == 404
        assert request(f"{gateway.url}/api/v1/jobs").status == 200
    finally:
        gateway.stop()


def test_config_key_turns_the_page_off(tmp_path):
    (tmp_path / "config.toml").write_text("[gateway]\nui = false\n")     # KGEN_HOME is tmp_path
    gateway = start_gateway(tmp_path, tmp_path / "gw.db")
    try:
        assert wait_until(lambda: request(f"{gateway.url}/ui/").status == 404, 5)
    finally:
        gateway.stop()


def test_a_reader_leaving_an_event_stream_logs_no_traceback(gateway):
    """A dashboard tab closed mid-stream: the gateway's next heartbeat write finds the socket gone."""
    import http.client
    import time
    from urllib.parse import urlparse

    request(f"{gateway.url}/api/v1/workers/register", "POST",
            {"api_version": "v1", "url": "http://127.0.0.1:9", "backend": "cpu", "capacity": 1})
    job = request(f"{gateway.url}/api/v1/jobs", "POST", submit_body()).json()["job_id"]
    url = urlparse(gateway.url)
    for _ in range(3):
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
        conn.request("GET", f"/api/v1/jobs/{job}/events?follow=1", headers={"Authorization": f"Bearer {TOKEN}"})
        resp = conn.getresponse()
        assert resp.status == 200
        resp.fp.readline()            # the stream is live
        conn.sock.close()
        conn.close()
    time.sleep(2.0)                   # several stream heartbeats (0.5 s) into closed sockets
    assert request(f"{gateway.url}/livez", token=None).status == 200
    assert not [line for line in gateway.lines if "Traceback" in line or "Error handling request" in line]
