"""HTTP rules shared by the gateway and the node (DESIGN.md section 4, "Security").

Every JSON body carries `api_version: "v1"`; request bodies are size-limited and validated
against a small schema with unknown fields rejected; every route but the open ones
(`/livez`, `/readyz`) needs `Authorization: Bearer <token>`, compared in constant time; every
error is `{"api_version": "v1", "error": {"code", "message", ...}}`. No request may kill a
daemon: anything a handler raises becomes a JSON error response.

Usage:
    app = make_app(token)                    # middlewares installed
    async def handler(request):
        body = await read_json(request, {"url": (str, True), "capacity": (int, False)})
        return json_response({"worker_id": ...})
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any, Iterable, Mapping

from aiohttp import web

from kgen.core.errors import BadInput, KgenError, NotFound, Unauthorised

API_VERSION = "v1"
DEFAULT_MAX_BODY = 2 * 1024 * 1024
OPEN_PATHS = ("/livez", "/readyz")

log = logging.getLogger("kgen.daemon.http")

# A schema maps a field name to (accepted types, required). `float` also accepts ints;
# `int` never accepts bools (JSON true is not a count).
Schema = Mapping[str, tuple[Any, bool]]


class HttpError(Exception):
    """Raise from a handler to answer with a JSON error (extra fields go into the error object)."""

    def __init__(self, status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None, **extra: Any):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.extra = extra


def json_response(data: Mapping[str, Any], status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    body = {"api_version": API_VERSION, **data}
    return web.json_response(body, status=status, headers=headers, dumps=_dumps)


def json_error(status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None, **extra: Any) -> web.Response:
    error = {"code": code, "message": message, **extra}
    return json_response({"error": error}, status=status, headers=headers)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, default=str)


def _type_ok(value: Any, types: Any) -> bool:
    accepted = types if isinstance(types, tuple) else (types,)
    for t in accepted:
        if t is None or t is type(None):
            if value is None:
                return True
        elif t is float:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return True
        elif t is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return True
        elif isinstance(value, t):
            return True
    return False


def _type_names(types: Any) -> str:
    accepted = types if isinstance(types, tuple) else (types,)
    names = {str: "string", int: "integer", float: "number", bool: "boolean", list: "array", dict: "object"}
    return " or ".join("null" if t in (None, type(None)) else names.get(t, t.__name__) for t in accepted)


def validate(data: Any, schema: Schema) -> dict[str, Any]:
    """Strict check of a decoded body: an object with api_version "v1", known fields, right types."""
    if not isinstance(data, dict):
        raise HttpError(400, "bad_request", "request body must be a JSON object")
    version = data.get("api_version")
    if version is None:
        raise HttpError(400, "bad_request", "missing field 'api_version' (expected \"v1\")")
    if version != API_VERSION:
        raise HttpError(400, "unsupported_api_version", f"unsupported api_version {version!r}; this server speaks \"v1\"")
    unknown = sorted(k for k in data if k != "api_version" and k not in schema)
    if unknown:
        raise HttpError(400, "unknown_field", f"unknown field(s): {', '.join(unknown)}", fields=unknown)
    for name, (types, required) in schema.items():
        if name not in data:
            if required:
                raise HttpError(400, "missing_field", f"missing required field {name!r}", field=name)
            continue
        if not _type_ok(data[name], types):
            raise HttpError(400, "wrong_type", f"field {name!r} must be {_type_names(types)}, got {type(data[name]).__name__}", field=name)
    return {k: v for k, v in data.items() if k != "api_version"}


async def read_json(request: web.Request, schema: Schema) -> dict[str, Any]:
    """Read, decode and validate a request body; returns the fields without api_version."""
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise HttpError(413, "body_too_large", f"request body exceeds {request.app[MAX_BODY_KEY]} bytes") from None
    if not raw:
        raise HttpError(400, "bad_request", "empty request body; expected a JSON object")
    try:
        # Decoded here, strictly: json.loads on bytes would also guess UTF-16/32 from a BOM.
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HttpError(400, "malformed_json", f"request body is not valid UTF-8 (byte {exc.start})") from None
    try:
        data = json.loads(text)
    except RecursionError:  # the decoder recurses once per nesting level
        raise HttpError(400, "malformed_json", "request body is nested too deeply") from None
    except ValueError as exc:
        raise HttpError(400, "malformed_json", f"request body is not valid JSON: {exc}") from None
    return validate(data, schema)


def bearer_ok(header: str | None, token: str) -> bool:
    if not header or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[len("Bearer "):].strip().encode(), token.encode())


MAX_BODY_KEY = web.AppKey("kgen_max_body", int)


def _auth_middleware(token: str, open_paths: Iterable[str]):
    open_set = frozenset(open_paths)

    @web.middleware
    async def auth(request: web.Request, handler):
        if request.path not in open_set and not bearer_ok(request.headers.get("Authorization"), token):
            return json_error(401, "unauthorised", "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})
        return await handler(request)

    return auth


def _body_limit_middleware(max_body: int):
    @web.middleware
    async def body_limit(request: web.Request, handler):
        length = request.content_length
        if length is not None and length > max_body:
            return json_error(413, "body_too_large", f"request body of {length} bytes exceeds {max_body} bytes")
        return await handler(request)

    return body_limit


_KGEN_ERROR_STATUS = {NotFound: 404, Unauthorised: 401}


@web.middleware
async def error_middleware(request: web.Request, handler):
    """Turn whatever a handler raises into a JSON error; never let a request take the daemon down."""
    try:
        return await handler(request)
    except HttpError as exc:
        return json_error(exc.status, exc.code, exc.message, headers=exc.headers, **exc.extra)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(exc.status, "http_error")
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
        return json_error(exc.status, code, exc.reason or code, headers=headers)
    except KgenError as exc:
        status = next((s for cls, s in _KGEN_ERROR_STATUS.items() if isinstance(exc, cls)), None)
        if status is None:
            status = 400 if isinstance(exc, BadInput) else 500
        return json_error(status, exc.code, exc.message)
    except ConnectionResetError:  # the client went away; nobody to answer
        raise
    except Exception as exc:  # a bug: answer 500 in JSON, log it, keep serving
        log.exception("unhandled error in %s %s", request.method, request.path)
        return json_error(500, "internal_error", f"{type(exc).__name__}: {exc}")


def make_app(token: str, *, max_body: int = DEFAULT_MAX_BODY, open_paths: Iterable[str] = OPEN_PATHS) -> web.Application:
    """An aiohttp app with the shared middlewares: JSON errors (outermost), body limit, auth."""
    if not token:
        raise ValueError("a daemon needs a token")
    app = web.Application(
        client_max_size=max_body,
        middlewares=[error_middleware, _body_limit_middleware(max_body), _auth_middleware(token, open_paths)],
    )
    app[MAX_BODY_KEY] = max_body
    return app


def retry_after(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, int(round(seconds))))}
