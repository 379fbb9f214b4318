"""The Python SDK: talk to a kgen gateway (`Client`) or node (`NodeClient`) over HTTP.

Standard library only (urllib), so scripts and the CLI pay no aiohttp import. Every failure is
a typed kgen error: `Unreachable` (refused, DNS, timeouts), `Unauthorised` (401), `NotFound`
(404), `BadInput` (other 4xx, message from the JSON error body), `ApiError` (429 and 5xx,
with `.status` and `.retry_after`).

    client = Client("http://127.0.0.1:8000", token)
    job = client.submit_job(open("relu.py").read(), op_name="relu", backend="cpu")
    for event in client.events(job["job_id"]):
        print(event["seq"] if "seq" in event else "", event["type"])
"""

from __future__ import annotations

import http.client
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Iterator

from kgen.core.errors import BadInput, KgenError, NotFound, Unauthorised, Unreachable

API_VERSION = "v1"
TERMINAL = ("succeeded", "failed", "cancelled")
_HEX = re.compile(r"^[0-9a-f]+$")
FULL_ID_LEN = 32


class ApiError(KgenError):
    """The server refused for now (429) or failed (5xx)."""

    code = "api_error"

    def __init__(self, message: str, *, status: int, code: str | None = None, retry_after: float | None = None):
        super().__init__(message, code=code)
        self.status = status
        self.retry_after = retry_after


class WaitTimeout(KgenError):
    code = "timeout"


def _error_from_response(status: int, raw: bytes, headers: Any, where: str) -> KgenError:
    code, message = None, ""
    try:
        body = json.loads(raw or b"{}")
        err = body.get("error") if isinstance(body, dict) else None
        if isinstance(err, dict):
            code, message = err.get("code"), str(err.get("message") or "")
    except ValueError:
        message = raw[:200].decode(errors="replace").strip()
    message = message or f"HTTP {status}"
    if status == 401:
        return Unauthorised(f"{where}: {message} (check --token, KGEN_TOKEN or the token file)")
    if status == 403:
        return Unauthorised(f"{where}: {message}", code=code or "forbidden")
    if status == 404:
        return NotFound(message, code=code)
    if 400 <= status < 500 and status != 429:
        return BadInput(message, code=code)
    retry = None
    if headers is not None and headers.get("Retry-After"):
        try:
            retry = float(headers.get("Retry-After"))
        except ValueError:
            retry = None
    return ApiError(f"{where} answered {status}: {message}", status=status, code=code, retry_after=retry)


class _Http:
    """JSON over HTTP with kgen's error mapping."""

    kind = "server"

    def __init__(self, url: str, token: str | None = None, timeout: float = 30.0, *, origin: str | None = None):
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise BadInput(f"{self.kind} URL must start with http:// or https://, got {url!r}")
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.origin = origin  # where the URL came from, for error messages ("env KGEN_GATEWAY_URL")

    def _where(self) -> str:
        return f"{self.kind} at {self.url}" + (f" (from {self.origin})" if self.origin else "")

    def _open(self, method: str, path: str, body: dict | None, timeout: float | None):
        data = None
        headers = {"Accept": "application/json"}
        if body is not None:
            data = json.dumps({"api_version": API_VERSION, **body}).encode()
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            return urllib.request.urlopen(request, timeout=timeout or self.timeout)
        except urllib.error.HTTPError as exc:
            try:
                raw = exc.read()
            except (OSError, http.client.HTTPException):
                raw = b""
            raise _error_from_response(exc.code, raw, exc.headers, self._where()) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            raise Unreachable(f"cannot reach {self._where()}: {reason}") from None

    def request(self, method: str, path: str, body: dict | None = None, *, timeout: float | None = None) -> dict:
        try:
            with self._open(method, path, body, timeout) as resp:
                raw = resp.read()
        except (TimeoutError, OSError, http.client.HTTPException) as exc:
            raise Unreachable(f"cannot reach {self._where()}: {exc or type(exc).__name__}") from None
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            raise ApiError(f"{self._where()} sent a body that is not JSON", status=502) from None
        if not isinstance(data, dict):
            raise ApiError(f"{self._where()} sent an unexpected body", status=502)
        return data


def _quote(value: str) -> str:
    return urllib.parse.quote(str(value), safe="")


class Client(_Http):
    """The gateway API."""

    kind = "gateway"

    # -- jobs -----------------------------------------------------------------
    def submit_job(self, task_source: str, *, op_name: str | None = None, backend: str = "cpu",
                   arch: str | None = None, dsl: str | None = None, job_type: str = "single",
                   max_rounds: int | None = None, parallel_num: int | None = None,
                   generator: str | None = None, max_repairs: int | None = None,
                   atol: float | None = None, rtol: float | None = None, timeout_s: float | None = None,
                   allow_cpu_fallback: bool | None = None, early_stop: bool | None = None,
                   compile_for: list[str] | str | None = None) -> dict:
        """Queue a job; returns {job_id, status}. Raises ApiError(429) when the queue is full."""
        body = {"task": task_source, "op_name": op_name, "backend": backend, "arch": arch, "dsl": dsl,
                "job_type": job_type, "max_rounds": max_rounds, "parallel_num": parallel_num,
                "generator": generator, "max_repairs": max_repairs, "atol": atol, "rtol": rtol,
                "timeout_s": timeout_s, "allow_cpu_fallback": allow_cpu_fallback, "early_stop": early_stop,
                "compile_for": compile_for}
        return self.request("POST", "/api/v1/jobs", {k: v for k, v in body.items() if v is not None})

    def list_jobs(self, status: str | None = None, limit: int | None = None) -> list[dict]:
        query = {k: v for k, v in (("status", status), ("limit", limit)) if v is not None}
        path = "/api/v1/jobs" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        return list(self.request("GET", path).get("jobs") or [])

    def resolve_job_id(self, job_id: str) -> str:
        """A full job id from a unique prefix (ambiguous -> BadInput, none -> NotFound)."""
        job_id = (job_id or "").strip().lower()
        if not job_id or not _HEX.match(job_id) or len(job_id) > FULL_ID_LEN:
            raise BadInput(f"not a job id: {job_id!r} (expected hex characters, a full id or a unique prefix)")
        if len(job_id) == FULL_ID_LEN:
            return job_id
        matches = sorted({j["job_id"] for j in self.list_jobs(limit=1000) if str(j.get("job_id", "")).startswith(job_id)})
        if len(matches) > 1:
            shown = ", ".join(m[:12] for m in matches[:5])
            raise BadInput(f"job id prefix {job_id!r} is ambiguous: matches {shown}{' ...' if len(matches) > 5 else ''}")
        if matches:
            return matches[0]
        # Older than the listing window: let the gateway resolve it.
        job = self.request("GET", f"/api/v1/jobs/{_quote(job_id)}").get("job") or {}
        if not job.get("job_id"):
            raise NotFound(f"no job matches {job_id!r}")
        return job["job_id"]

    def get_status(self, job_id: str) -> dict:
        """The job dict (status, spec, candidates summary, best)."""
        return self.request("GET", f"/api/v1/jobs/{_quote(self.resolve_job_id(job_id))}").get("job") or {}

    def cancel(self, job_id: str) -> dict:
        return self.request("POST", f"/api/v1/jobs/{_quote(self.resolve_job_id(job_id))}/cancel", {})

    def result(self, job_id: str) -> dict:
        """{job_id, status, best: {candidate_id, source, verdict}}; BadInput(409) before a result exists."""
        return self.request("GET", f"/api/v1/jobs/{_quote(self.resolve_job_id(job_id))}/result")

    def wait_for_completion(self, job_id: str, timeout: float | None = None, *, poll_s: float = 0.5) -> dict:
        """Poll until the job ends; returns the final job dict. WaitTimeout after `timeout` seconds."""
        full = self.resolve_job_id(job_id)
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = min(poll_s, 0.2)
        while True:
            job = self.get_status(full)
            if job.get("status") in TERMINAL:
                return job
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeout(f"job {full[:12]} still {job.get('status')} after {timeout:g}s")
            pause = delay if deadline is None else max(0.0, min(delay, deadline - time.monotonic()))
            time.sleep(pause)
            delay = min(delay * 1.5, max(poll_s, 2.0))

    def events(self, job_id: str, after: int = 0, follow: bool = True, *,
               reconnect_timeout: float = 120.0, read_timeout: float = 60.0) -> Iterator[dict]:
        """Event dicts from the NDJSON stream, in seq order, each seq once.

        With follow, a stream that closes without its end line is reopened with ?after=<last seq>
        (backoff, giving up with Unreachable after `reconnect_timeout` seconds without progress);
        the final {"type": "end", "status": ...} line is yielded and ends the iteration.
        Heartbeat lines are not yielded.
        """
        full = self.resolve_job_id(job_id)
        last = int(after or 0)
        backoff = 0.1
        failing_since: float | None = None
        while True:
            query = urllib.parse.urlencode({"after": last, "follow": 1 if follow else 0})
            try:
                resp = self._open("GET", f"/api/v1/jobs/{_quote(full)}/events?{query}", None, read_timeout)
                with resp:
                    for raw in resp:
                        failing_since = None
                        line = raw.strip()
                        if not line:
                            continue
                        try:
                            event = json.loads(line)
                        except ValueError:
                            continue  # a line cut by a dropped connection; the seq resumes it
                        if not isinstance(event, dict):
                            continue
                        kind = event.get("type")
                        if kind == "heartbeat":
                            continue
                        if kind == "end":
                            yield event
                            return
                        seq = event.get("seq")
                        if isinstance(seq, int):
                            if seq <= last:
                                continue
                            last = seq
                        yield event
                if not follow:
                    return
            except (Unreachable, ApiError, OSError, http.client.HTTPException) as exc:
                if isinstance(exc, ApiError) and exc.status < 500 and exc.status != 429:
                    raise
                now = time.monotonic()
                failing_since = failing_since or now
                if not follow or now - failing_since > reconnect_timeout:
                    if isinstance(exc, KgenError):
                        raise
                    raise Unreachable(f"lost the event stream from {self._where()}: {exc}") from None
            time.sleep(backoff)
            backoff = min(backoff * 2, 5.0) if failing_since else 0.1

    # -- workers --------------------------------------------------------------
    def register_worker(self, url: str, backend: str, capacity: int, arch: str | None = None,
                        node_id: str | None = None) -> dict:
        """Self-registration, made by the node itself with its node token:
        {worker_id, heartbeat_ttl_s, node_secret, worker}. The gateway calls the node with node_secret."""
        body = {"url": url, "backend": backend, "arch": arch, "capacity": capacity, "node_id": node_id}
        return self.request("POST", "/api/v1/workers/register", {k: v for k, v in body.items() if v is not None})

    # -- tokens (admin) -----------------------------------------------------------
    def create_token(self, role: str, name: str | None = None, *, url: str | None = None) -> dict:
        """{token: {name, role, created_at, ...}, secret}; the secret is shown this once only.
        `url` binds a node token to the one node URL it may register."""
        body = {"role": role, "name": name, "url": url}
        return self.request("POST", "/api/v1/tokens", {k: v for k, v in body.items() if v is not None})

    def list_tokens(self) -> list[dict]:
        return list(self.request("GET", "/api/v1/tokens").get("tokens") or [])

    def revoke_token(self, name: str) -> dict:
        if not name or not re.match(r"^[A-Za-z0-9_.-]+$", name):
            raise BadInput(f"not a token name: {name!r}")
        return self.request("DELETE", f"/api/v1/tokens/{_quote(name)}")

    def list_workers(self) -> list[dict]:
        return list(self.request("GET", "/api/v1/workers").get("workers") or [])

    def remove_worker(self, worker_id: str) -> dict:
        if not worker_id or not re.match(r"^[A-Za-z0-9_.:-]+$", worker_id):
            raise BadInput(f"not a worker id: {worker_id!r}")
        return self.request("DELETE", f"/api/v1/workers/{_quote(worker_id)}")

    def health(self) -> dict:
        return self.request("GET", "/readyz")


class NodeClient(_Http):
    """A node's API: status, device leases, verify/profile."""

    kind = "node"

    def status(self) -> dict:
        return self.request("GET", "/api/v1/status")

    def acquire(self, *, ttl_s: float | None = None, min_free_memory_bytes: int | None = None,
                allow_cpu_fallback: bool | None = None) -> dict:
        body = {"ttl_s": ttl_s, "min_free_memory_bytes": min_free_memory_bytes, "allow_cpu_fallback": allow_cpu_fallback}
        return self.request("POST", "/api/v1/acquire_device", {k: v for k, v in body.items() if v is not None})

    def release(self, lease_id: str) -> dict:
        return self.request("POST", "/api/v1/release_device", {"lease_id": lease_id})

    def _run(self, path: str, task: str, candidate: str, options: dict) -> dict:
        body = {"task": task, "candidate": candidate, **{k: v for k, v in options.items() if v is not None}}
        budget = float(options.get("timeout_s") or 300.0) + 120.0  # the node's own bound plus slack
        return self.request("POST", path, body, timeout=max(self.timeout, budget)).get("verdict") or {}

    def verify(self, task: str, candidate: str, *, lease_id: str | None = None, timeout_s: float | None = None,
               atol: float | None = None, rtol: float | None = None, op_name: str | None = None,
               allow_ops: list[str] | None = None, trials: int | None = None,
               compile_for: list[str] | None = None, reject_spills: bool | None = None) -> dict:
        """The verdict dict for one candidate (kgen.core.verify.verdict.Verdict.from_dict reads it)."""
        return self._run("/api/v1/verify", task, candidate, {"lease_id": lease_id, "timeout_s": timeout_s, "atol": atol,
                                                            "rtol": rtol, "op_name": op_name, "allow_ops": allow_ops,
                                                            "trials": trials, "compile_for": compile_for,
                                                            "reject_spills": reject_spills})

    def profile(self, task: str, candidate: str, *, lease_id: str | None = None, timeout_s: float | None = None,
                atol: float | None = None, rtol: float | None = None, op_name: str | None = None,
                allow_ops: list[str] | None = None, trials: int | None = None,
                compile_for: list[str] | None = None, reject_spills: bool | None = None) -> dict:
        return self._run("/api/v1/profile", task, candidate, {"lease_id": lease_id, "timeout_s": timeout_s, "atol": atol,
                                                             "rtol": rtol, "op_name": op_name, "allow_ops": allow_ops,
                                                             "trials": trials, "compile_for": compile_for,
                                                             "reject_spills": reject_spills})


def node_status(url: str, token: str | None = None, timeout: float = 10.0) -> dict:
    return NodeClient(url, token, timeout).status()


def node_verify(url: str, token: str | None, task: str, candidate: str, **options: Any) -> dict:
    return NodeClient(url, token).verify(task, candidate, **options)
