"""Candidate generation and task checks in child processes.

Generators run the user's reference code (torch.export executes Model.forward), so the gateway
never runs them in its own process: warm children (worker.py) do, and a generator object in the
gateway is a proxy whose methods block on a child (the evolve engine calls them through
asyncio.to_thread). The task check (does Model run on its own inputs?) runs in children of its
own too, so the gateway itself never imports torch: its memory stays small and its exit prompt.

The gateway holds the cluster token and the user's code runs in the child, so nothing from a
child is trusted: replies are JSON lines parsed with json.loads and checked field by field, never
unpickled. A child that hangs past the timeout, dies, or answers out of protocol is killed
(its whole process group) and replaced by a fresh one on the next call; the call fails with a
KgenError and the engine records it. Children start with the secrets scrubbed from their
environment, in their own process group, and every line a child writes to stderr reaches the
daemon's log as one `kgen-gateway: child_output` line.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Callable

from kgen.core import errors
from kgen.core.errors import KgenError
from kgen.daemon.gateway.worker import GENERATOR_METHODS, encode_generator_args, task_to_dict

# A reply line longer than this is out of protocol (a candidate module is a few hundred KB at most).
MAX_REPLY_BYTES = 64 * 1024 * 1024
_SECRET_MARKERS = ("TOKEN", "KEY", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL")
# The llm generator needs its key; it reads KGEN_LLM_* (and the config file) in the child.
_KEPT_SECRETS_PREFIX = "KGEN_LLM_"
_POLL_S = 0.25
_EOF = object()


def child_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a child starts with: no variable that names a secret, except KGEN_LLM_*."""
    env = dict(os.environ if env is None else env)
    return {k: v for k, v in env.items()
            if k.startswith(_KEPT_SECRETS_PREFIX) or not any(m in k.upper() for m in _SECRET_MARKERS)}


_undumpable = False


def _close_gateway_to_children() -> None:
    """Before the first child starts: same-uid children must not ptrace the gateway or read its
    /proc/PID/environ and memory (the token lives there); a non-dumpable process refuses both."""
    global _undumpable
    if not _undumpable:
        from kgen.core.verify.sandbox import make_undumpable  # torch-free

        _undumpable = make_undumpable()


class _ProtocolError(Exception):
    pass


class _Child:
    """One worker process: requests on its stdin, JSON replies from its stdout, stderr to the log."""

    def __init__(self, log_prefix: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kgen.daemon.gateway.worker", "--parent", str(os.getpid())],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=child_env(), start_new_session=True, close_fds=True)
        self.pid = self.proc.pid
        self.replies: queue.Queue = queue.Queue()
        threading.Thread(target=self._read_replies, name=f"kgen-child-{self.pid}-replies", daemon=True).start()
        threading.Thread(target=self._relay_stderr, args=(log_prefix,), name=f"kgen-child-{self.pid}-stderr",
                         daemon=True).start()

    def _read_replies(self) -> None:
        stream = self.proc.stdout
        try:
            while True:
                line = stream.readline(MAX_REPLY_BYTES + 1)
                if not line:
                    break
                self.replies.put(line)
        except (OSError, ValueError):
            pass
        finally:
            stream.close()
        self.replies.put(_EOF)

    def _relay_stderr(self, log_prefix: str) -> None:
        # Keeps draining to the end: a child blocked on a full stderr pipe would look hung.
        try:
            for raw in self.proc.stderr:
                text = raw.decode("utf-8", "replace").strip()
                if not text:
                    continue
                try:
                    # One write per line: print() writes the newline separately, so lines could interleave.
                    sys.stderr.write(f"{log_prefix}: child_output pid={self.pid} text={json.dumps(text[:4000])}\n")
                    sys.stderr.flush()
                except (OSError, ValueError):
                    pass
        except (OSError, ValueError):
            pass
        finally:
            self.proc.stderr.close()

    def fresh(self) -> bool:
        """Alive and silent since its last reply (anything unasked for means its code misbehaved)."""
        return self.proc.poll() is None and self.replies.empty()

    def send(self, request: dict[str, Any]) -> None:
        # Written from a thread: a child that stopped reading must not block the caller past its timeout.
        data = json.dumps(request).encode() + b"\n"
        threading.Thread(target=self._write, args=(data,), name=f"kgen-child-{self.pid}-request", daemon=True).start()

    def _write(self, data: bytes) -> None:
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except (OSError, ValueError):
            pass   # a dead child shows up as EOF/exit when the reply is awaited

    def receive(self, timeout_s: float) -> Any:
        """The next reply line, _EOF once the child is gone, or None at the timeout."""
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                return self.replies.get(timeout=min(left, _POLL_S))
            except queue.Empty:
                pass
            # A forked grandchild may hold the reply pipe open after the child died: EOF never comes.
            if self.proc.poll() is not None:
                try:
                    return self.replies.get(timeout=_POLL_S)
                except queue.Empty:
                    return _EOF

    def kill(self) -> None:
        for send in (lambda: os.killpg(self.pid, signal.SIGKILL), self.proc.kill):
            try:
                send()
            except (OSError, ProcessLookupError):
                pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        try:
            self.proc.stdin.close()
        except (OSError, ValueError):
            pass


def _check_reply(line: Any, request_id: int) -> dict[str, Any]:
    if len(line) > MAX_REPLY_BYTES or not line.endswith(b"\n"):
        raise _ProtocolError("an unterminated or over-long reply line")
    try:
        reply = json.loads(line)
    except ValueError:
        raise _ProtocolError("a reply that is not JSON") from None
    if not isinstance(reply, dict) or set(reply) - {"id", "ok", "result", "error", "messages"}:
        raise _ProtocolError("a reply that is not a reply object")
    if reply.get("id") != request_id or type(reply.get("id")) is not int:
        raise _ProtocolError(f"a reply to another request (id {str(reply.get('id'))[:40]})")
    if not isinstance(reply.get("ok"), bool):
        raise _ProtocolError("a reply without a boolean ok")
    messages = reply.get("messages", [])
    if not isinstance(messages, list) or not all(
            isinstance(m, list) and len(m) == 2 and all(isinstance(s, str) for s in m) for m in messages):
        raise _ProtocolError("malformed messages")
    if not reply["ok"]:
        error = reply.get("error")
        if not (isinstance(error, dict) and isinstance(error.get("message"), str) and isinstance(error.get("code"), str)
                and isinstance(error.get("type", ""), str)):
            raise _ProtocolError("a malformed error")
    return reply


def _raise_error(error: dict[str, Any], default: type[KgenError]) -> None:
    cls = getattr(errors, error.get("type") or "", None)
    if not (isinstance(cls, type) and issubclass(cls, KgenError)):
        cls = default
    raise cls(error["message"], code=error["code"] or cls.code)


class ChildPool:
    """Up to `workers` warm children, each running one request at a time."""

    def __init__(self, workers: int = 2, timeout_s: float = 600.0, log: Callable[..., None] | None = None,
                 *, log_prefix: str = "kgen-gateway"):
        self.workers = max(1, int(workers))
        self.timeout_s = timeout_s
        self.log_prefix = log_prefix
        self._log = log or (lambda *a, **k: None)
        self._slots = threading.BoundedSemaphore(self.workers)
        self._idle: list[_Child] = []
        self._children: set[_Child] = set()
        self._ids = itertools.count(1)
        self._closed = False
        self._lock = threading.Lock()

    # -- children ------------------------------------------------------------------------------
    def _take(self) -> _Child:
        with self._lock:
            if self._closed:
                raise KgenError("the gateway is stopping", code="stopping")
            while self._idle:
                child = self._idle.pop()
                if child.fresh():
                    return child
                self._children.discard(child)
                self._log("child_pool_reset", reason="child_misbehaved_while_idle", pid=child.pid)
                threading.Thread(target=child.kill, daemon=True).start()
            _close_gateway_to_children()
            try:
                child = _Child(self.log_prefix)
            except OSError as exc:
                raise KgenError(f"cannot start a generation child: {exc}", code="child_start_failed") from None
            self._children.add(child)
            return child

    def _give_back(self, child: _Child) -> None:
        with self._lock:
            if not self._closed:
                self._idle.append(child)
                return
        child.kill()

    def _discard(self, child: _Child, reason: str) -> None:
        with self._lock:
            self._children.discard(child)
            closed = self._closed
        if not closed:  # after close() a killed child is expected, not news
            self._log("child_pool_reset", reason=reason, pid=child.pid)
        child.kill()

    def _acquire_slot(self) -> None:
        while not self._slots.acquire(timeout=_POLL_S):
            if self._closed:
                raise KgenError("the gateway is stopping", code="stopping")

    # -- calls ---------------------------------------------------------------------------------
    def request(self, request: dict[str, Any], what: str,
                decode: Callable[[dict[str, Any]], Any] = lambda reply: reply) -> Any:
        """Blocking: one request in a child; returns decode(its checked reply {ok, result | error, messages}).

        `decode` raises _ProtocolError for a result of the wrong shape: that child is replaced too.
        """
        self._acquire_slot()
        try:
            child = self._take()
            request = {"id": next(self._ids), **request}
            child.send(request)
            line = child.receive(self.timeout_s)
            if line is None:
                self._discard(child, "timeout")
                raise KgenError(f"{what} took longer than {self.timeout_s:g}s", code="child_timeout")
            if line is _EOF:
                self._discard(child, "child_died")
                if self._closed:
                    raise KgenError(f"{what} stopped: the gateway is stopping", code="stopping")
                code = child.proc.returncode
                how = f"signal {-code}" if code is not None and code < 0 else f"exit {code}"
                raise KgenError(f"{what} crashed its process ({how})", code="child_crashed")
            try:
                reply = _check_reply(line, request["id"])
                value = decode(reply)
            except _ProtocolError as exc:
                self._discard(child, "bad_reply")
                raise KgenError(f"{what}: the child process answered out of protocol ({exc}); it was replaced",
                                code="child_protocol") from None
            self._give_back(child)
            return value
        finally:
            self._slots.release()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            children, self._children, self._idle = list(self._children), set(), []
        for child in children:
            child.kill()


def _candidate(data: Any):
    from kgen.core.generate import Candidate

    if not (isinstance(data, dict) and isinstance(data.get("source"), str)):
        raise _ProtocolError("a malformed candidate")
    params, parent = data.get("params"), data.get("parent")
    return Candidate(source=data["source"], params=params if isinstance(params, dict) else {},
                     origin=str(data.get("origin") or ""), parent=parent if isinstance(parent, str) else None,
                     notes=str(data.get("notes") or ""))


def _candidates(method: str) -> Callable[[dict[str, Any]], Any]:
    def decode(reply: dict[str, Any]) -> Any:
        if not reply["ok"]:
            return reply
        result = reply.get("result")
        if method == "repair":
            return {**reply, "result": None if result is None else _candidate(result)}
        if not isinstance(result, list):
            raise _ProtocolError("a result that is not a list of candidates")
        return {**reply, "result": [_candidate(item) for item in result]}

    return decode


class GeneratorPool(ChildPool):
    def call(self, name: str, options: dict, method: str, args: tuple,
             sink: Callable[[str, str], None] | None = None) -> Any:
        """Blocking: run generator `name`'s `method(*args)` in a child; Candidate objects come back."""
        if method not in GENERATOR_METHODS:
            raise KgenError(f"unknown generator method {method!r}", code="generator_error")
        reply = self.request({"op": "generate", "generator": name, "options": dict(options), "method": method,
                              "args": encode_generator_args(method, args)}, f"generator {name}.{method}",
                             _candidates(method))
        if sink is not None:
            for role, content in reply.get("messages", []):
                sink(role, content)
        if not reply["ok"]:
            _raise_error(reply["error"], KgenError)
        return reply["result"]


def _check_result(reply: dict[str, Any]) -> dict[str, Any]:
    if reply["ok"] and not isinstance(reply.get("result"), dict):
        raise _ProtocolError("a task check result that is not an object")
    return reply


class TaskCheckPool(ChildPool):
    def check_task(self, task: Any, timeout_s: float) -> dict[str, Any]:
        """kgen.core.task.check_task in a child; its TaskError/BadInput re-raised here."""
        reply = self.request({"op": "check_task", "args": [task_to_dict(task), float(timeout_s)]}, "task check",
                             _check_result)
        if not reply["ok"]:
            _raise_error(reply["error"], errors.TaskError)
        return reply["result"]


class PooledGenerator:
    """The Generator protocol, each call run in the pool's child processes."""

    def __init__(self, pool: GeneratorPool, name: str, options: dict | None = None):
        self.pool = pool
        self.name = name
        self.options = dict(options or {})
        self.message_sink: Callable[[str, str], None] | None = None

    def _call(self, method: str, *args: Any) -> Any:
        return self.pool.call(self.name, self.options, method, args, sink=self.message_sink)

    def initial(self, task, n):
        return self._call("initial", task, n)

    def mutate(self, task, best, n):
        return self._call("mutate", task, best, n)

    def repair(self, task, candidate, verdict):
        return self._call("repair", task, candidate, verdict)
