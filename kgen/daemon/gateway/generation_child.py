"""The gateway's task-code children: `python -m kgen.daemon.gateway.generation_child --parent PID --control FD --root DIR`.

A task's module-level code is the user's, and the builtin generator and the task check run it, so
it never runs in the gateway, and never in a process shared by two requests: this module is a
zygote that imports torch and the generators (never task code) and forks ONE child per request.
Each child enters the kernel sandbox (kgen.core.isolation: own user/mount/PID/network namespaces,
Landlock limited to its own run dir, seccomp), gets an allow-listed environment (no token, no
KGEN_LLM_*, no KGEN_HOME), answers its one request and exits; whatever the task's code left
behind (a patched generator, a global mark, a daemon process) dies with it. The llm generator
only sends the task's text to the endpoint and never runs it, so it runs in the gateway, which
holds the key (generation.py).

Control socket (the gateway <-> the zygote, SOCK_STREAM, JSON lines): the gateway sends
`{"id": int}` with one descriptor attached (SCM_RIGHTS): the child's private channel. The zygote
answers `{"id", "pid"}` once the child is forked and `{"id", "pid", "exit", "signal"}` once it is
reaped; `{"kill": id}` from the gateway kills that child's process group (if not yet reaped). On the channel (a socketpair end) the gateway writes one request line and the child
writes one reply line:

    request  {"id": int, "op": "generate" | "check_task", "generator": str, "options": {},
              "method": "initial" | "mutate" | "repair", "args": [...]}
             check_task: {"id", "op", "args": [task, timeout_s]}
    reply    {"id": int, "ok": true, "result": ..., "messages": [[role, content], ...]}
             {"id": int, "ok": false, "error": {"type", "code", "message"}, "messages": [...]}

JSON, never pickle: whatever the user's code writes to the channel, the gateway only parses and
validates it. Task, Candidate and Verdict cross as plain dicts (codec below, shared with the
gateway side). The child keeps the channel on a private descriptor and points fd 0 at /dev/null
and fd 1 at stderr (the gateway relays stderr to its log). This module stays torch-free at
import: the gateway imports its codec.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import tempfile
import threading
import time
import warnings
from typing import Any

from kgen.core.isolation import kill_run

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


# -- one request, in a sandboxed child -----------------------------------------------------------
class _Handler:
    def handle(self, request: dict[str, Any], workdir: str) -> dict[str, Any]:
        messages: list[list[str]] = []
        reply: dict[str, Any] = {"id": request.get("id"), "ok": True, "messages": messages}
        try:
            op = request.get("op")
            if op == "generate":
                reply["result"] = self.generate(request, messages)
            elif op == "check_task":
                reply["result"] = self.check_task(request["args"], workdir)
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
        generator = get_generator(name, **options)
        args = decode_generator_args(method, request["args"])
        if hasattr(generator, "message_sink"):
            generator.message_sink = lambda role, content: messages.append([str(role), str(content)])
        result = getattr(generator, method)(*args)
        if result is None:
            return None
        if isinstance(result, (list, tuple)):
            return [candidate_to_dict(c) for c in result]
        return candidate_to_dict(result)

    def check_task(self, args: list, workdir: str) -> Any:
        """Model on its own inputs, right here: this child is already the sandbox."""
        import signal

        from kgen.core.errors import TaskError
        from kgen.core.verify import child, harness
        from kgen.core.verify.reference import describe_failure
        from kgen.core.verify.sandbox import Outcome

        task, timeout_s = task_from_dict(args[0]), float(args[1])
        with open(os.path.join(workdir, "task.py"), "w") as fh:
            fh.write(task.source)
        config = {"device": "cpu", "seeds": list(harness._seeds(harness.MIN_TRIALS)),
                  "init_seed": harness.INIT_SEED, "profile_gpu": False}

        def expired(signum, frame):
            raise _CheckTimeout()

        signal.signal(signal.SIGALRM, expired)
        signal.alarm(max(1, int(timeout_s)))
        try:
            result = child.run_reference(workdir, config)
            outcome = Outcome(exit_code=0)
        except _CheckTimeout:
            result, outcome = None, Outcome(timed_out=True)
        finally:
            signal.alarm(0)
        if result is None or not result.get("ok"):
            raise TaskError(f"bad task: {describe_failure(result, outcome, timeout_s)}")
        return {"task_id": task.id, "device": "cpu", "structure": result.get("structure"),
                "outputs": [{"shape": o["shape"], "dtype": o["dtype"]} for o in result.get("outputs") or []]}


class _CheckTimeout(BaseException):
    pass


def _error_dict(exc: BaseException, op: Any) -> dict[str, str]:
    from kgen.core.errors import KgenError

    if isinstance(exc, KgenError):
        return {"type": type(exc).__name__, "code": exc.code, "message": exc.message}
    text = f"{type(exc).__name__}: {exc}"
    if op == "check_task":
        return {"type": "TaskError", "code": "bad_task", "message": f"task check failed: {text}"}
    return {"type": "KgenError", "code": "generator_error", "message": text}


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    # The default format spans two lines (the warning, then the source line that raised it).
    text = " ".join(str(message).split())
    print(f"{category.__name__}: {text} ({os.path.basename(filename)}:{lineno})", file=file or sys.stderr, flush=True)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _read_line(fd: int, limit: int) -> bytes:
    buf = b""
    while b"\n" not in buf and len(buf) <= limit:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        buf += chunk
    return buf.split(b"\n", 1)[0]


CHANNEL_FD = 3
MAX_REQUEST_BYTES = 256 * 1024 * 1024


def _serve_one(channel: int, root: str, features) -> int:
    """The forked child: sandbox, one request, one reply. Returns the exit code."""
    from kgen.core.verify import sandbox_child

    os.setsid()
    workdir = tempfile.mkdtemp(prefix="gen-", dir=root)
    # fds: 0 = /dev/null, 1 and 2 = the zygote's stderr (relayed to the gateway's log), 3 = channel.
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    os.dup2(channel, CHANNEL_FD)
    os.closerange(CHANNEL_FD + 1, 65536)
    sys.stdout = open(1, "w", buffering=1, closefd=False)
    env = sandbox_child.run_env(dict(os.environ), workdir, {"TRITON_INTERPRET": "1"})
    os.environ.clear()
    os.environ.update(env)
    os.chdir(workdir)
    tempfile.tempdir = None
    from kgen.core import isolation

    try:
        isolation.enter(isolation.Spec(workdir=os.path.realpath(workdir), features=features))
    except isolation.IsolationError as exc:
        print(f"sandbox set-up failed: {exc}", file=sys.stderr, flush=True)
        return 71
    warnings.showwarning = _warning_line
    line = _read_line(CHANNEL_FD, MAX_REQUEST_BYTES)
    try:
        request = json.loads(line)
        if not isinstance(request, dict):
            raise ValueError("a request must be a JSON object")
    except ValueError as exc:
        print(f"bad request: {exc}", file=sys.stderr, flush=True)
        return 2
    reply = _Handler().handle(request, workdir)
    try:
        data = json.dumps(reply, default=str)
    except (TypeError, ValueError) as exc:   # e.g. a circular params dict from a generator
        data = json.dumps({"id": reply["id"], "ok": False, "messages": [],
                           "error": {"type": "KgenError", "code": "generator_error",
                                     "message": f"the result cannot be sent as JSON: {exc}"}})
    _write_all(CHANNEL_FD, data.encode() + b"\n")
    return 0


# -- the zygote ----------------------------------------------------------------------------------
def _warm() -> None:
    """Imports only (no task code, no torch op): what every child would otherwise pay for."""
    import importlib

    for name in ("torch", "triton", "triton.language", "torch.export", "numpy", "kgen.core.generate",
                 "kgen.core.generate.builtin", "kgen.core.task", "kgen.core.verify.child",
                 "kgen.core.verify.harness", "kgen.core.verify.reference", "kgen.core.verify.sandbox",
                 "kgen.core.verify.sandbox_child", "kgen.core.isolation"):
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a missing optional module only costs speed
            pass


def _zygote(control: socket.socket, root: str) -> int:
    from kgen.core import isolation

    isolation.set_undumpable()  # exec reset it; children inherit it
    features = isolation.probe()
    _warm()
    running: dict[int, int] = {}   # pid -> request id
    lock = threading.Lock()
    out_lock = threading.Lock()

    def emit(obj: dict) -> None:
        with out_lock:
            try:
                control.sendall(json.dumps(obj).encode() + b"\n")
            except OSError:
                pass

    def reaper() -> None:
        while True:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                time.sleep(0.05)
                continue
            except InterruptedError:
                continue
            with lock:
                rid = running.pop(pid, None)
            if rid is not None:
                emit({"id": rid, "pid": pid,
                      "exit": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
                      "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None})

    emit({"ready": True, "pid": os.getpid(), "sandbox": features.to_dict()})
    buf = b""
    pending_fds: list[int] = []   # channels received, in order; each "id" line takes the next one
    started_reaper = False
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(control, 65536, 16)
        except OSError:
            data, fds = b"", []
        if not data:  # the gateway went away: take our children with us
            with lock:
                pids = list(running)
            for pid in pids:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except OSError:
                    pass
            return 0
        pending_fds.extend(fds)
        buf += data
        while b"\n" in buf:
            line, _, buf = buf.partition(b"\n")
            try:
                msg = json.loads(line)
                if "kill" in msg:
                    _kill_request(int(msg["kill"]), running, lock)
                    continue
                rid = int(msg["id"])
            except (ValueError, KeyError, TypeError):
                continue
            if not pending_fds:
                emit({"id": rid, "pid": 0})
                emit({"id": rid, "pid": 0, "exit": 70, "signal": None})
                continue
            channel = pending_fds.pop(0)
            # Forking while the reaper thread runs is fine: the child only uses its own thread.
            with lock:
                pid = os.fork()
                if pid == 0:
                    code = 70
                    try:
                        control.close()
                        for fd in pending_fds:
                            os.close(fd)
                        code = _serve_one(channel, root, features)
                    except BaseException:  # noqa: BLE001
                        import traceback

                        traceback.print_exc()
                    finally:
                        os._exit(code)
                running[pid] = rid
            os.close(channel)
            emit({"id": rid, "pid": pid})
            if not started_reaper:
                threading.Thread(target=reaper, name="kgen-reaper", daemon=True).start()
                started_reaper = True


def _kill_request(rid: int, running: dict, lock) -> None:
    """Killed here, where it is reaped: its pid cannot have been reused yet."""
    with lock:
        victims = [pid for pid, owner in running.items() if owner == rid]
    for pid in victims:
        kill_run(pid)


def main(argv: list[str]) -> int:
    usage = "usage: python -m kgen.daemon.gateway.generation_child --parent PID --control FD --root DIR"
    opts = dict(zip(argv[0::2], argv[1::2]))
    if len(argv) != 6 or set(opts) != {"--parent", "--control", "--root"} or not opts["--parent"].isdigit() \
            or not opts["--control"].isdigit():
        print(usage, file=sys.stderr)
        return 2
    if os.getppid() != int(opts["--parent"]):
        return 0  # the gateway died while we started
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    control = socket.socket(fileno=int(opts["--control"]))
    return _zygote(control, opts["--root"])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
