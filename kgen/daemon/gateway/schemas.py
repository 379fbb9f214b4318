"""Strict validation of the gateway's request bodies and path parameters.

Every body is a JSON object carrying `api_version: "v1"`; unknown fields, wrong types and
out-of-range values are rejected with one clear message (BadInput -> 400).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlsplit

from kgen.core.errors import BadInput
from kgen.core.spec import GENERATORS, LIMITS

API_VERSION = "v1"
JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
TERMINAL = ("succeeded", "failed", "cancelled")

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_JOB_ID = re.compile(r"^[0-9a-f]{1,32}$")
_WORKER_ID = re.compile(r"^[0-9a-f]{1,32}$")
MAX_TASK_CHARS = 1_000_000


@dataclass(frozen=True)
class Field:
    types: tuple[type, ...]
    required: bool = False
    check: Callable[[Any], str | None] | None = None


def _one_of(*choices: str) -> Callable[[Any], str | None]:
    return lambda v: None if v in choices else f"must be one of: {', '.join(choices)}"


def _int_range(lo: int, hi: int) -> Callable[[Any], str | None]:
    return lambda v: None if lo <= v <= hi else f"must be between {lo} and {hi}"


def _limit(name: str) -> Field:
    """An optional numeric field checked against the core's one table of limits (kgen.core.spec)."""
    limit = LIMITS[name]
    return Field((int,) if limit.kind is int else _NUM, False, limit.problem)


def _name(v: str) -> str | None:
    return None if _NAME.match(v) else "must be 1-128 characters of letters, digits, '_', '.', '-'"


def _arch(v: str) -> str | None:
    return None if v == "" else _name(v)


def _label(v: str) -> str | None:
    if len(v) > 200 or any(ord(c) < 32 or ord(c) == 127 for c in v):
        return "must be at most 200 printable characters"
    return None


def _task_source(v: str) -> str | None:
    if not v.strip():
        return "must be a non-empty Python source"
    if len(v) > MAX_TASK_CHARS:
        return f"is longer than {MAX_TASK_CHARS} characters"
    if "\x00" in v:
        return "must not contain NUL characters"
    return None


def _targets(v: Any) -> str | None:
    from kgen.core.verify.targets import parse_targets  # stdlib only: no torch or triton

    try:
        parse_targets(v)
    except ValueError as exc:
        return str(exc)
    return None


def _node_url(v: str) -> str | None:
    try:
        parts = urlsplit(v)
        port = parts.port
    except ValueError:
        return "must be an http:// URL with a valid host and port"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http:// or https:// URL with a host"
    if parts.query or parts.fragment or parts.username or parts.password:
        return "must not carry a query, fragment or credentials"
    if parts.path not in ("", "/"):
        return "must be the node's base URL (no path)"
    if port == 0:
        return "must name a non-zero port"
    return None


_NUM = (float,)  # kgen.daemon.http: float accepts ints, never bools

SUBMIT = {
    "api_version": Field((str,), True),
    "task": Field((str,), True, _task_source),
    "op_name": Field((str,), False, _name),
    "backend": Field((str,), True, _one_of("cpu", "cuda")),
    "arch": Field((str,), False, _arch),
    "dsl": Field((str,), False, _one_of("triton")),
    "job_type": Field((str,), False, _one_of("single", "evolve")),
    "max_rounds": _limit("max_rounds"),
    "parallel_num": _limit("parallel_num"),
    "generator": Field((str,), False, _one_of(*GENERATORS)),
    "max_repairs": _limit("max_repairs"),
    "atol": _limit("atol"),
    "rtol": _limit("rtol"),
    "timeout_s": _limit("timeout_s"),
    "allow_cpu_fallback": Field((bool,), False),
    "early_stop": Field((bool,), False),
    "compile_for": Field((str, list), False, _targets),
}

REGISTER = {
    "api_version": Field((str,), True),
    "url": Field((str,), True, _node_url),
    "backend": Field((str,), False, _one_of("cpu", "cuda")),
    "arch": Field((str,), False, _arch),
    "capacity": Field((int,), False, _int_range(1, 1_000_000)),
    "node_id": Field((str,), False, _label),
}

HEARTBEAT = {
    "api_version": Field((str,), True),
    "load": Field((int,), False, _int_range(0, 1_000_000)),
    "state": Field((str,), False, _name),
}

EMPTY = {"api_version": Field((str,), True)}

_TOKEN_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")


def _token_name(v: str) -> str | None:
    return None if _TOKEN_NAME.match(v) else "must be 1-64 characters of letters, digits, '_', '.', '-'"


TOKEN_CREATE = {
    "api_version": Field((str,), True),
    "role": Field((str,), True, _one_of("client", "node", "admin")),
    "name": Field((str,), False, _token_name),
    "url": Field((str,), False, _node_url),
}


def token_name_param(raw: str) -> str:
    if not _TOKEN_NAME.match(raw):
        raise BadInput("token name must be 1-64 characters of letters, digits, '_', '.', '-'", code="bad_token_name")
    return raw


def http_schema(schema: dict[str, Field]) -> dict[str, tuple[Any, bool]]:
    """The (types, required) shape that kgen.daemon.http checks (api_version, unknown fields, types)."""
    return {name: (spec.types, spec.required) for name, spec in schema.items() if name != "api_version"}


def check_values(fields: dict[str, Any], schema: dict[str, Field]) -> dict[str, Any]:
    """Range and format checks on fields whose presence and types were already checked."""
    for name, value in fields.items():
        spec = schema[name]
        if isinstance(value, str) and not _utf8(value):
            raise BadInput(f"field {name!r} is not valid Unicode text (lone surrogate)", code="bad_value")
        problem = spec.check(value) if spec.check else None
        if problem:
            raise BadInput(f"field {name!r} {problem}", code="bad_value")
    return fields


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


async def read_body(request, schema: dict[str, Field]) -> dict[str, Any]:
    """Read a request body: JSON object, api_version v1, no unknown fields, typed, in range."""
    from kgen.daemon.http import read_json

    return check_values(await read_json(request, http_schema(schema)), schema)


def job_id_param(raw: str) -> str:
    """A job id or unique prefix from a URL path: lowercase hex only."""
    if not _JOB_ID.match(raw):
        raise BadInput("job id must be 1-32 lowercase hex characters", code="bad_job_id")
    return raw


def worker_id_param(raw: str) -> str:
    if not _WORKER_ID.match(raw):
        raise BadInput("worker id must be 1-32 lowercase hex characters", code="bad_worker_id")
    return raw


def status_filter(raw: str | None) -> str | None:
    if raw in (None, ""):
        return None
    if raw not in JOB_STATUSES:
        raise BadInput(f"status must be one of: {', '.join(JOB_STATUSES)}", code="bad_request")
    return raw


def int_query(raw: str | None, name: str, default: int, lo: int, hi: int) -> int:
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadInput(f"query parameter {name!r} must be an integer", code="bad_request") from None
    if not lo <= value <= hi:
        raise BadInput(f"query parameter {name!r} must be between {lo} and {hi}", code="bad_request")
    return value
