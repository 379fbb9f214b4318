"""A local OpenAI-compatible chat endpoint that replies from a script, for testing the llm
client protocol only (it proves nothing about kernel quality).

Each scripted reply is a str (sent as choices[0].message.content), a (status, body) pair for an
HTTP error, or a callable(request_json) -> str. Requests are recorded for assertions.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Union

Reply = Union[str, tuple, Callable[[dict], str]]


class ScriptedOpenAIServer:
    def __init__(self, replies: list[Reply] | Callable[[dict], Reply], *, api_key: str | None = None):
        self.replies = replies
        self.api_key = api_key
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def _next(self, body: dict) -> Reply:
        with self._lock:
            if callable(self.replies):
                return self.replies(body)
            if not self.replies:
                return (500, {"error": {"message": "script exhausted"}})
            return self.replies.pop(0)

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _send(self, status: int, obj: Any, headers: dict | None = None) -> None:
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    return self._send(400, {"error": {"message": "bad json"}})
                with server._lock:
                    server.requests.append({"path": self.path, "headers": dict(self.headers), "json": body})
                if self.path != "/v1/chat/completions":
                    return self._send(404, {"error": {"message": f"no route {self.path}"}})
                if server.api_key and self.headers.get("Authorization") != f"Bearer {server.api_key}":
                    return self._send(401, {"error": {"message": "invalid api key"}})
                reply = server._next(body)
                if callable(reply):
                    reply = reply(body)
                if isinstance(reply, tuple):
                    status, payload, *rest = reply
                    return self._send(status, payload, rest[0] if rest else None)
                self._send(200, {
                    "id": f"chatcmpl-{len(server.requests)}", "object": "chat.completion", "model": body.get("model"),
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": reply}}],
                })

        return Handler

    def __enter__(self) -> "ScriptedOpenAIServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
