"""The gateway's generation child: `python -m kgen.daemon.gateway.worker --parent PID`.

It runs generators and task checks for the gateway (generation.py), which it must not be able
to harm: the reference Model code it executes is the user's. Requests arrive on stdin and
replies leave on stdout as JSON, one object per line:

    request  {"id": int, "op": "generate" | "check_task", "generator": str, "options": {},
              "method": "initial" | "mutate" | "repair", "args": [...]}
             check_task: {"id", "op", "args": [task, timeout_s]}
    reply    {"id": int, "ok": true, "result": ..., "messages": [[role, content], ...]}
             {"id": int, "ok": false, "error": {"type", "code", "message"}, "messages": [...]}

JSON, never pickle: whatever the user's code writes to the reply stream, the gateway only ever
parses and validates it. Task, Candidate and Verdict cross as plain dicts (codec below, shared
with the gateway side). At start-up the child moves the protocol to private descriptors and
points fd 0 at /dev/null and fd 1 at stderr, so print() in user code lands in the log instead
of the reply stream. This module must stay torch-free at import: the gateway imports its codec.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import warnings
from typing import Any

GENERATOR_METHODS = ("initial", "mutate", "repair")
CANDIDATE_FIELDS = ("source", "params", "origin", "parent", "notes")


# -- codec: plain-JSON forms of Task, Candidate, Verdict ----------------------------------------
def task_to_dict(task: Any) -> dict[str, Any]:
    return {"id": task.id, "source": task.source, "op_name": task.op_name, "path": task.path}


def task_from_dict(data: dict[str, Any]):
    from kgen.core.task import Task, task_id

    # The id is recomputed: it names reference caches, so it must match the source it came with.
    return Task(id=task_id(data["source"]), source=data["source"], op_name=data["op_name"], path=data.get("path"))


def candidate_to_dict(candidate: Any) -> dict[str, Any]:
    return {name: getattr(candidate, name) for name in CANDIDATE_FIELDS}


def candidate_from_dict(data: dict[str, Any]):
    from kgen.core.generate import Candidate

    return Candidate(**{name: data[name] for name in CANDIDATE_FIELDS if name in data})


def verdict_from_dict(data: dict[str, Any]):
    from kgen.core.verify.verdict import Verdict

    return Verdict.from_dict(data)


def encode_generator_args(method: str, args: tuple) -> list:
    """The gateway's side: a generator method's arguments as plain JSON."""
    if method == "initial":
        task, n = args
        return [task_to_dict(task), int(n)]
    if method == "mutate":
        task, best, n = args
        return [task_to_dict(task), [[candidate_to_dict(c), v.to_dict()] for c, v in best], int(n)]
    if method == "repair":
        task, candidate, verdict = args
        return [task_to_dict(task), candidate_to_dict(candidate), verdict.to_dict()]
    raise ValueError(f"unknown generator method {method!r}")


def decode_generator_args(method: str, args: list) -> tuple:
    if method == "initial":
        return task_from_dict(args[0]), int(args[1])
    if method == "mutate":
        best = [(candidate_from_dict(c), verdict_from_dict(v)) for c, v in args[1]]
        return task_from_dict(args[0]), best, int(args[2])
    if method == "repair":
        return task_from_dict(args[0]), candidate_from_dict(args[1]), verdict_from_dict(args[2])
    raise ValueError(f"unknown generator method {method!r}")


# -- the child -----------------------------------------------------------------------------------
class _Worker:
    def __init__(self) -> None:
        self.generators: dict[str, Any] = {}

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        messages: list[list[str]] = []
        reply: dict[str, Any] = {"id": request.get("id"), "ok": True, "messages": messages}
        try:
            op = request.get("op")
            if op == "generate":
                reply["result"] = self.generate(request, messages)
            elif op == "check_task":
                reply["result"] = self.check_task(request["args"])
            else:
                raise ValueError(f"unknown op {op!r}")
        except BaseException as exc:  # sys.exit() in user code included: it answers, it does not leave
            reply["ok"] = False
            reply.pop("result", None)
            reply["error"] = _error_dict(exc, request.get("op"))
        return reply

    def generate(self, request: dict[str, Any], messages: list) -> Any:
        from kgen.core.generate import get_generator

        name, options, method = request["generator"], dict(request.get("options") or {}), request["method"]
        if method not in GENERATOR_METHODS:
            raise ValueError(f"unknown generator method {method!r}")
        key = json.dumps([name, options], sort_keys=True, default=str)
        generator = self.generators.get(key)
        if generator is None:
            generator = self.generators[key] = get_generator(name, **options)
        args = decode_generator_args(method, request["args"])
        has_sink = hasattr(generator, "message_sink")
        if has_sink:
            generator.message_sink = lambda role, content: messages.append([str(role), str(content)])
        try:
            result = getattr(generator, method)(*args)
        finally:
            if has_sink:
                generator.message_sink = None
        if result is None:
            return None
        if isinstance(result, (list, tuple)):
            return [candidate_to_dict(c) for c in result]
        return candidate_to_dict(result)

    def check_task(self, args: list) -> Any:
        from kgen.core.task import check_task

        task, timeout_s = task_from_dict(args[0]), float(args[1])
        return check_task(task, timeout_s)


def _error_dict(exc: BaseException, op: Any) -> dict[str, str]:
    from kgen.core.errors import KgenError

    if isinstance(exc, KgenError):
        return {"type": type(exc).__name__, "code": exc.code, "message": exc.message}
    text = f"{type(exc).__name__}: {exc}"
    if op == "check_task":
        return {"type": "TaskError", "code": "bad_task", "message": f"task check failed: {text}"}
    return {"type": "KgenError", "code": "generator_error", "message": text}


def _private_streams() -> tuple[Any, int]:
    """Move the protocol off fds 0/1 (user code writes there freely) onto private descriptors."""
    proto_in, proto_out = os.dup(0), os.dup(1)   # dup()ed descriptors are not inherited by exec
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    sys.stdout = open(1, "w", buffering=1, closefd=False)
    return os.fdopen(proto_in, "rb"), proto_out


def _exit_with_parent(parent: int) -> None:
    """A gateway killed with SIGKILL cannot kill its children: each child notices and leaves.

    `parent` comes from the gateway, not os.getppid(): a child still starting when the gateway
    died would otherwise take init for its parent and never leave.
    """
    if os.getppid() != parent:
        os._exit(0)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="kgen-parent-watch", daemon=True).start()


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    # The default format spans two lines (the warning, then the source line that raised it).
    text = " ".join(str(message).split())
    print(f"{category.__name__}: {text} ({os.path.basename(filename)}:{lineno})", file=file or sys.stderr, flush=True)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "--parent" or not argv[1].isdigit():
        print("usage: python -m kgen.daemon.gateway.worker --parent PID", file=sys.stderr)
        return 2
    _exit_with_parent(int(argv[1]))
    requests, replies = _private_streams()
    warnings.showwarning = _warning_line
    worker = _Worker()
    for line in requests:   # EOF: the gateway closed the pool
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("a request must be a JSON object")
        except ValueError as exc:
            print(f"bad request: {exc}", file=sys.stderr, flush=True)
            return 2
        reply = worker.handle(request)
        try:
            data = json.dumps(reply, default=str)
        except (TypeError, ValueError) as exc:   # e.g. a circular params dict from a generator
            data = json.dumps({"id": reply["id"], "ok": False, "messages": [],
                               "error": {"type": "KgenError", "code": "generator_error",
                                         "message": f"the result cannot be sent as JSON: {exc}"}})
        _write_all(replies, data.encode() + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
