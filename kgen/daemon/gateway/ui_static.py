"""The web dashboard's static files (kgen/daemon/gateway/ui/), served at /ui/ on the gateway's port.

The files hold no data, so they are served without a token; every data call the page makes goes
to the REST API with the tab's bearer token. Only the files shipped in the package are served
(read once at start-up into memory: no path from a request ever reaches the file system), each
with a strict Content-Security-Policy: scripts and styles from this origin only, no inline code,
no framing, no referrer.
"""

from __future__ import annotations

import hashlib
from importlib import resources

from aiohttp import web

UI_PREFIX = "/ui/"
CONTENT_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-cache",
}


def load_files() -> dict[str, tuple[bytes, str, str]]:
    """name -> (body, content type, etag) for every shipped file with a known type."""
    files = {}
    root = resources.files("kgen.daemon.gateway") / "ui"
    for entry in root.iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1] if "." in entry.name else ""
        if not entry.is_file() or suffix not in CONTENT_TYPES:
            continue
        body = entry.read_bytes()
        files[entry.name] = (body, CONTENT_TYPES[suffix], '"' + hashlib.sha256(body).hexdigest()[:20] + '"')
    if "index.html" not in files:
        raise RuntimeError("the dashboard's index.html is missing from the kgen package")
    return files


def open_paths(files: dict) -> list[str]:
    """The paths the auth middleware lets through without a token: the page and its files only."""
    return ["/ui", UI_PREFIX, *(UI_PREFIX + name for name in files)]


def add_routes(app: web.Application, files: dict) -> None:
    async def serve(request: web.Request) -> web.StreamResponse:
        name = request.match_info.get("name") or "index.html"
        found = files.get(name)
        if found is None:
            raise web.HTTPNotFound(reason=f"no dashboard file {name!r}")
        body, content_type, etag = found
        headers = {**SECURITY_HEADERS, "ETag": etag}
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers=headers)
        return web.Response(body=body, content_type=content_type, charset="utf-8", headers=headers)

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPMovedPermanently(UI_PREFIX, headers=SECURITY_HEADERS)

    app.router.add_get("/ui", redirect)
    app.router.add_get(UI_PREFIX, serve)
    app.router.add_get(UI_PREFIX + "{name:[A-Za-z0-9_.-]+}", serve)
