"""Candidate generation and task checks in sandboxed child processes, one per request.

Generators run the user's reference code (torch.export executes Model.forward), so the gateway
never runs them in its own process: a zygote (generation_child.py) that never imports task code
forks one fresh child per request, each inside the kernel sandbox (kgen.core.isolation), and a
generator object in the gateway is a proxy whose methods block on such a child (the evolve
engine calls them through asyncio.to_thread). No process ever serves two requests, so state a
task's code leaves behind (a global mark, a patched generator) never reaches another job. The
task check (does Model run on its own inputs?) runs the same way, so the gateway itself never
imports torch. The llm generator never runs task code (it sends the task's text to the
endpoint), so it runs here, in the gateway, which holds its key: children never see KGEN_LLM_*.

The gateway holds the cluster token and the user's code runs in the child, so nothing from a
child is trusted: replies are JSON lines parsed with json.loads and checked field by field, never
unpickled. A child that hangs past the timeout, dies, or answers out of protocol is killed (its
whole process group and PID namespace) and the call fails with a KgenError that the engine
records. The zygote starts with an allow-listed environment (no secrets), and every line a child
writes to stderr reaches the daemon's log as one `kgen-gateway: child_output` line.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Callable

from kgen.core import errors
from kgen.core.errors import KgenError
from kgen.daemon.gateway.generation_child import GENERATOR_METHODS, encode_generator_args, task_to_dict

# A reply line longer than this is out of protocol (a candidate module is a few hundred KB at most).
MAX_REPLY_BYTES = 64 * 1024 * 1024
STARTUP_TIMEOUT_S = 180.0
EXIT_WAIT_S = 5.0
_POLL_S = 0.25
_EOF = object()
# Generators that never execute task code: run in the gateway (they need its keys).
IN_PROCESS_GENERATORS = ("llm",)


def child_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment the zygote (and so every child) starts with: allow-listed names only, so no
    token, no KGEN_LLM_* key, no KGEN_HOME."""
    from kgen.core.verify.sandbox_child import allowed_env_name

    env = dict(os.environ if env is None else env)
    out = {k: v for k, v in env.items() if allowed_env_name(k)}
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    out["PYTHONPATH"] = root + (os.pathsep + out["PYTHONPATH"] if out.get("PYTHONPATH") else "")
    out["PYTHONDONTWRITEBYTECODE"] = "1"
    return out


_undumpable = False


def _close_gateway_to_children() -> None:
    """Before the first child starts: same-uid processes must not ptrace the gateway or read its
    /proc/PID/environ and memory (the token lives there); a non-dumpable process refuses both."""
    global _undumpable
    if not _undumpable:
        from kgen.core.isolation import set_undumpable  # torch-free

        _undumpable = set_undumpable()


class _ProtocolError(Exception):
    pass


class _Zygote:
    """The zygote process and its control socket (see generation_child.py for the protocol)."""

    def __init__(self, log_prefix: str):
        self.root = tempfile.mkdtemp(prefix="kgen-gen-")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.control = ours
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "kgen.daemon.gateway.generation_child", "--parent", str(os.getpid()),
                 "--control", str(theirs.fileno()), "--root", self.root],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                env=child_env(), start_new_session=True, close_fds=True, pass_fds=(theirs.fileno(),))
        finally:
            theirs.close()
        self.pid = self.proc.pid
        self._cond = threading.Condition()
        self._send_lock = threading.Lock()
        self.ready = False
        self.dead = False
        self.sandbox: dict = {}
        self.pids: dict[int, int] = {}
        self.exits: dict[int, dict] = {}
        threading.Thread(target=self._read_control, name=f"kgen-zygote-{self.pid}", daemon=True).start()
        threading.Thread(target=self._relay_stderr, args=(log_prefix,), name=f"kgen-zygote-{self.pid}-stderr",
                         daemon=True).start()
        with self._cond:
            deadline = time.monotonic() + STARTUP_TIMEOUT_S
            while not self.ready and not self.dead and time.monotonic() < deadline:
                self._cond.wait(0.5)
        if not self.ready:
            self.kill()
            raise OSError("the generation zygote did not start")

    def _read_control(self) -> None:
        stream = self.control.makefile("rb")
        try:
            for line in stream:
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                with self._cond:
                    if msg.get("ready"):
                        self.ready = True
                        self.sandbox = msg.get("sandbox") or {}
                    elif "exit" in msg:
                        self.exits[int(msg["id"])] = msg
                    elif "pid" in msg:
                        self.pids[int(msg["id"])] = int(msg["pid"])
                    self._cond.notify_all()
        except (OSError, ValueError):
            pass
        with self._cond:
            self.dead = True
            self._cond.notify_all()

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

    @property
    def alive(self) -> bool:
        return not self.dead and self.proc.poll() is None

    def spawn(self, rid: int, channel: socket.socket) -> int:
        """Fork a child for request `rid` with `channel` as its private socket; -> its pid."""
        with self._send_lock:
            socket.send_fds(self.control, [json.dumps({"id": rid}).encode() + b"\n"], [channel.fileno()])
        with self._cond:
            deadline = time.monotonic() + 30.0
            while rid not in self.pids and not self.dead and time.monotonic() < deadline:
                self._cond.wait(0.5)
            pid = self.pids.pop(rid, None)
        if pid is None:
            raise OSError("the generation zygote did not fork a child")
        return pid

    def exit_of(self, rid: int, wait_s: float) -> dict | None:
        with self._cond:
            deadline = time.monotonic() + wait_s
            while rid not in self.exits and not self.dead and time.monotonic() < deadline:
                self._cond.wait(0.1)
            return self.exits.pop(rid, None)

    def kill_child(self, rid: int) -> None:
        """Kill request rid's child and everything in its group (the zygote does it: it reaps)."""
        try:
            with self._send_lock:
                self.control.sendall(json.dumps({"kill": rid}).encode() + b"\n")
        except OSError:
            pass

    def forget(self, rid: int) -> None:
        with self._cond:
            self.exits.pop(rid, None)

    def kill(self) -> None:
        try:
            self.control.close()   # the zygote kills its children and leaves on EOF
        except OSError:
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            for send in (lambda: os.killpg(self.pid, signal.SIGKILL), self.proc.kill):
                try:
                    send()
                except OSError:
                    pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        shutil.rmtree(self.root, ignore_errors=True)


class _Call:
    """One request's channel: the request written from a thread, the reply read from another."""

    def __init__(self, sock: socket.socket, rid: int):
        self.sock = sock
        self.rid = rid
        self.replies: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, name=f"kgen-call-{rid}-reply", daemon=True).start()

    def send(self, request: dict[str, Any]) -> None:
        data = json.dumps(request).encode() + b"\n"

        def write() -> None:
            try:
                self.sock.sendall(data)
            except OSError:
                pass   # a dead child shows up as EOF when the reply is awaited
        threading.Thread(target=write, name=f"kgen-call-{self.rid}-request", daemon=True).start()

    def _read(self) -> None:
        stream = self.sock.makefile("rb")
        try:
            line = stream.readline(MAX_REPLY_BYTES + 1)
            self.replies.put(line if line else _EOF)
        except (OSError, ValueError):
            self.replies.put(_EOF)
        finally:
            stream.close()

    def receive(self, timeout_s: float) -> Any:
        """The reply line, _EOF once the child is gone, or None at the timeout."""
        try:
            return self.replies.get(timeout=timeout_s)
        except queue.Empty:
            return None

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
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
    """Up to `workers` requests at once, each in a fresh sandboxed child forked by one zygote."""

    def __init__(self, workers: int = 2, timeout_s: float = 600.0, log: Callable[..., None] | None = None,
                 *, log_prefix: str = "kgen-gateway"):
        self.workers = max(1, int(workers))
        self.timeout_s = timeout_s
        self.log_prefix = log_prefix
        self._log = log or (lambda *a, **k: None)
        self._slots = threading.BoundedSemaphore(self.workers)
        self._zygote: _Zygote | None = None
        self._ids = itertools.count(1)
        self._closed = False
        self._lock = threading.Lock()
        self.children = 0   # children forked so far (one per request)

    def _live_zygote(self) -> _Zygote:
        with self._lock:
            if self._closed:
                raise KgenError("the gateway is stopping", code="stopping")
            z = self._zygote
            if z is not None and z.alive:
                return z
            if z is not None:
                self._log("child_pool_reset", reason="zygote_died", pid=z.pid)
                threading.Thread(target=z.kill, daemon=True).start()
            _close_gateway_to_children()
            try:
                self._zygote = _Zygote(self.log_prefix)
            except OSError as exc:
                self._zygote = None
                raise KgenError(f"cannot start a generation child: {exc}", code="child_start_failed") from None
            return self._zygote

    @property
    def sandbox_level(self) -> str | None:
        z = self._zygote
        return (z.sandbox or {}).get("level") if z is not None else None

    def _acquire_slot(self) -> None:
        while not self._slots.acquire(timeout=_POLL_S):
            if self._closed:
                raise KgenError("the gateway is stopping", code="stopping")

    # -- calls ---------------------------------------------------------------------------------
    def request(self, request: dict[str, Any], what: str,
                decode: Callable[[dict[str, Any]], Any] = lambda reply: reply) -> Any:
        """Blocking: one request in a fresh child; returns decode(its checked reply {ok, result | error, messages}).

        `decode` raises _ProtocolError for a result of the wrong shape: that is out of protocol too.
        """
        self._acquire_slot()
        try:
            zygote = self._live_zygote()
            rid = next(self._ids)
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                pid = zygote.spawn(rid, theirs)
            except OSError as exc:
                ours.close()
                raise KgenError(f"cannot start a generation child: {exc}", code="child_start_failed") from None
            finally:
                theirs.close()
            self.children += 1
            call = _Call(ours, rid)
            try:
                return self._exchange(zygote, call, pid, {"id": rid, **request}, what, decode)
            finally:
                call.close()
                zygote.forget(rid)
        finally:
            self._slots.release()

    def _exchange(self, zygote: _Zygote, call: _Call, pid: int, request: dict, what: str, decode) -> Any:
        call.send(request)
        line = call.receive(self.timeout_s)
        if line is None:
            zygote.kill_child(call.rid)
            if not self._closed:
                self._log("child_killed", reason="timeout", pid=pid)
            raise KgenError(f"{what} took longer than {self.timeout_s:g}s", code="child_timeout")
        if line is _EOF:
            zygote.kill_child(call.rid)
            if self._closed:
                raise KgenError(f"{what} stopped: the gateway is stopping", code="stopping")
            ended = zygote.exit_of(call.rid, EXIT_WAIT_S) or {}
            if ended.get("signal"):
                how = f"signal {ended['signal']}"
            else:
                how = f"exit {ended.get('exit')}"
            self._log("child_killed", reason="child_died", pid=pid)
            raise KgenError(f"{what} crashed its process ({how})", code="child_crashed")
        # The child has answered; nothing it left running may outlive the request.
        zygote.kill_child(call.rid)
        try:
            reply = _check_reply(line, request["id"])
            return decode(reply)
        except _ProtocolError as exc:
            self._log("child_killed", reason="bad_reply", pid=pid)
            raise KgenError(f"{what}: the child process answered out of protocol ({exc})",
                            code="child_protocol") from None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            z, self._zygote = self._zygote, None
        if z is not None:
            z.kill()


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
        """Blocking: run generator `name`'s `method(*args)` in a fresh child (in the gateway for
        generators that never execute task code); Candidate objects come back."""
        if method not in GENERATOR_METHODS:
            raise KgenError(f"unknown generator method {method!r}", code="generator_error")
        if name in IN_PROCESS_GENERATORS:
            return self._call_here(name, options, method, args, sink)
        reply = self.request({"op": "generate", "generator": name, "options": dict(options), "method": method,
                              "args": encode_generator_args(method, args)}, f"generator {name}.{method}",
                             _candidates(method))
        if sink is not None:
            for role, content in reply.get("messages", []):
                sink(role, content)
        if not reply["ok"]:
            _raise_error(reply["error"], KgenError)
        return reply["result"]


    def _call_here(self, name: str, options: dict, method: str, args: tuple,
                   sink: Callable[[str, str], None] | None) -> Any:
        from kgen.core.generate import get_generator

        if self._closed:
            raise KgenError("the gateway is stopping", code="stopping")
        generator = get_generator(name, **dict(options))
        if sink is not None and hasattr(generator, "message_sink"):
            generator.message_sink = sink
        return getattr(generator, method)(*args)


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
