"""HTTP rules shared by the gateway and the node (DESIGN.md section 4, "Security").

Every JSON body carries `api_version: "v1"`; request bodies are size-limited and validated
against a small schema with unknown fields rejected; every route but the open ones
(`/livez`, `/readyz`) needs `Authorization: Bearer <token>`, compared in constant time, whose role
the route admits (any bad credential: 401; a known token of another role: 403); every
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
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

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


MAX_AUTH_HEADER = 4096   # longer Authorization headers are refused (401) before any lookup
# The parser's own limit must sit above MAX_AUTH_HEADER, so an oversized header reaches the
# middleware (a JSON 401) instead of the parser's plain-text 400. Pass to web.AppRunner.
SERVER_LIMITS = {"max_field_size": 65536, "max_line_size": 65536}
ROLES = ("client", "node", "admin")
PRINCIPAL_KEY = "kgen_principal"


@dataclass(frozen=True)
class Principal:
    """Who made a request: a role, a token name and, for node tokens, the worker it is bound to."""

    role: str
    name: str
    worker_id: str | None = None
    url: str | None = None


# secret -> Principal, or None when the secret is not a live token
Authenticator = Callable[[str], "Principal | None"]
# request -> roles allowed on its route
RouteRoles = Callable[[web.Request], Iterable[str]]


def bearer_secret(header: str | None) -> str | None:
    """The secret of an `Authorization: Bearer <secret>` header, or None for anything else.

    Tokens are printable ASCII; a header that is not (non-UTF-8 bytes arrive as surrogates)
    or is oversized is simply not a credential, so it can never reach an encoder and raise.
    """
    if not header or len(header) > MAX_AUTH_HEADER:
        return None
    scheme, _, secret = header.partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret or not all(33 <= ord(c) < 127 for c in secret):
        return None
    return secret


def bearer_ok(header: str | None, token: str) -> bool:
    secret = bearer_secret(header)
    return secret is not None and hmac.compare_digest(secret.encode(), token.encode())


def single_token(token: str, role: str = "admin", name: str = "admin") -> Authenticator:
    """An authenticator that knows one secret (constant-time compare)."""
    expected = token.encode()
    principal = Principal(role=role, name=name)
    return lambda secret: principal if hmac.compare_digest(secret.encode(), expected) else None


MAX_BODY_KEY = web.AppKey("kgen_max_body", int)


def _unauthorised(message: str) -> web.Response:
    return json_error(401, "unauthorised", message, headers={"WWW-Authenticate": "Bearer"})


def _auth_middleware(authenticate: Authenticator, open_paths: Iterable[str], route_roles: RouteRoles | None):
    open_set = frozenset(open_paths)

    @web.middleware
    async def auth(request: web.Request, handler):
        if request.path in open_set:
            return await handler(request)
        header = request.headers.get("Authorization")
        if not header:
            return _unauthorised("missing bearer token")
        secret = bearer_secret(header)
        if secret is None:
            return _unauthorised("malformed Authorization header (expected 'Bearer <token>')")
        try:
            principal = authenticate(secret)
        except Exception:  # a broken token store must not turn into a 500 with the token in it
            log.warning("token lookup failed for %s %s", request.method, request.path)
            principal = None
        if principal is None:
            return _unauthorised("wrong or revoked bearer token")
        if route_roles is not None:
            allowed = tuple(route_roles(request))
            if principal.role not in allowed:
                return json_error(403, "forbidden",
                                  f"a {principal.role} token may not {request.method} {request.path}; "
                                  f"needs role {' or '.join(allowed) or 'none'}", role=principal.role)
        request[PRINCIPAL_KEY] = principal
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


def make_app(auth: str | Authenticator, *, max_body: int = DEFAULT_MAX_BODY, open_paths: Iterable[str] = OPEN_PATHS,
             route_roles: RouteRoles | None = None) -> web.Application:
    """An aiohttp app with the shared middlewares: JSON errors (outermost), body limit, auth.

    `auth` is one token (its holder is admin) or an authenticator; `route_roles` (optional)
    names the roles each route admits: a known token with another role gets 403.
    """
    if not auth:
        raise ValueError("a daemon needs a token")
    authenticate = single_token(auth) if isinstance(auth, str) else auth
    app = web.Application(
        client_max_size=max_body,
        middlewares=[error_middleware, _body_limit_middleware(max_body),
                     _auth_middleware(authenticate, open_paths, route_roles)],
    )
    app[MAX_BODY_KEY] = max_body
    return app


def retry_after(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, int(round(seconds))))}
