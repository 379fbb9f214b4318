"""Candidate generation and task checks in child processes.

Generators run the user's reference code (torch.export executes Model.forward), so the gateway
never runs them in its own process: a small spawn-context process pool does, and a generator
object in the gateway is a proxy whose methods block on the pool (the evolve engine calls them
through asyncio.to_thread). The task check (does Model run on its own inputs?) runs in a child
pool of its own too, so the gateway itself never imports torch: its memory stays small and its
exit prompt. A child that hangs past the timeout or dies is killed and the pool is rebuilt; the
call fails with a KgenError and the engine records it.

Children hand back JSON text only (candidates as plain dicts), never pickled library objects,
and every line a child writes to stderr reaches the daemon's log as one `kgen-gateway:` line.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from typing import Any, Callable

from kgen.core import errors
from kgen.core.errors import KgenError

# Environment a child must not see: the cluster token authorises everything.
_SCRUBBED_ENV = ("KGEN_TOKEN",)

_child_generators: dict[tuple, Any] = {}


# -- in the child ------------------------------------------------------------------------------
def _child_init(log_prefix: str, parent: int) -> None:
    for name in _SCRUBBED_ENV:
        os.environ.pop(name, None)
    _exit_with_parent(parent)
    _relay_stderr(log_prefix)
    warnings.showwarning = _warning_line


def _exit_with_parent(parent: int) -> None:
    """A gateway killed with SIGKILL cannot kill its children: each child notices and leaves.

    `parent` comes from the gateway, not os.getppid(): a child still importing when the gateway
    died would otherwise take init for its parent and never leave.
    """
    # Not PR_SET_PDEATHSIG: it fires when the spawning *thread* ends, and pools spawn from worker threads.
    if os.getppid() != parent:
        os._exit(0)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="kgen-parent-watch", daemon=True).start()


def _relay_stderr(log_prefix: str) -> None:
    """Point fd 2 at a pipe and re-emit each line as one log line (catches C-level output too)."""
    real = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    pid = os.getpid()

    def pump() -> None:
        # Keeps draining even when the real stderr is gone: a full pipe would block the child.
        with os.fdopen(read_end, "rb") as src:
            for raw in src:
                text = raw.decode("utf-8", "replace").strip()
                if not text:
                    continue
                try:
                    os.write(real, f"{log_prefix}: child_output pid={pid} text={json.dumps(text)}\n".encode())
                except OSError:
                    pass

    threading.Thread(target=pump, name="kgen-stderr-relay", daemon=True).start()


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    # The default format spans two lines (the warning, then the source line that raised it).
    text = " ".join(str(message).split())
    print(f"{category.__name__}: {text} ({os.path.basename(filename)}:{lineno})", file=file or sys.stderr, flush=True)


def _plain_candidate(candidate: Any) -> dict[str, Any]:
    return {"source": candidate.source, "params": candidate.params, "origin": candidate.origin,
            "parent": candidate.parent, "notes": candidate.notes}


def _child_call(name: str, options: tuple, method: str, args: tuple) -> str:
    """One generator method; returns JSON text {result, messages} (candidates as plain dicts)."""
    from kgen.core.generate import get_generator

    key = (name, options)
    generator = _child_generators.get(key)
    if generator is None:
        generator = _child_generators[key] = get_generator(name, **dict(options))
    messages: list[tuple[str, str]] = []
    if hasattr(generator, "message_sink"):
        generator.message_sink = lambda role, content: messages.append((role, content))
    try:
        result = getattr(generator, method)(*args)
    finally:
        if hasattr(generator, "message_sink"):
            generator.message_sink = None
    if isinstance(result, (list, tuple)):
        plain = [_plain_candidate(c) for c in result]
    else:
        plain = None if result is None else _plain_candidate(result)
    return json.dumps({"result": plain, "messages": messages}, default=str)


def _child_check_task(task: Any, timeout_s: float) -> str:
    """kgen.core.task.check_task; returns JSON text {ok} or {error: {type, code, message}}."""
    from kgen.core.task import check_task

    try:
        check_task(task, timeout_s)
    except KgenError as exc:
        return json.dumps({"error": {"type": type(exc).__name__, "code": exc.code, "message": exc.message}})
    except Exception as exc:
        return json.dumps({"error": {"type": "TaskError", "code": "bad_task",
                                     "message": f"task check failed: {type(exc).__name__}: {exc}"}})
    return json.dumps({"ok": True})


# -- in the gateway ------------------------------------------------------------------------------
def _kill_children(executor: ProcessPoolExecutor) -> None:
    """Kill every child of a pool and let it go; pending calls fail with BrokenProcessPool."""
    processes = getattr(executor, "_processes", None) or {}
    for proc in list(processes.values()):
        try:
            proc.kill()
        except (OSError, AttributeError):
            pass
    executor.shutdown(wait=False, cancel_futures=True)


def _candidate(data: Any):
    from kgen.core.generate import Candidate

    if not isinstance(data, dict) or not isinstance(data.get("source"), str):
        raise KgenError("generator returned a malformed candidate", code="generator_error")
    params = data.get("params")
    return Candidate(source=data["source"], params=params if isinstance(params, dict) else {},
                     origin=str(data.get("origin") or ""), parent=data.get("parent"),
                     notes=str(data.get("notes") or ""))


class ChildPool:
    """Spawned worker processes that run one function call at a time and answer JSON text."""

    def __init__(self, workers: int = 2, timeout_s: float = 600.0, log: Callable[..., None] | None = None,
                 *, log_prefix: str = "kgen-gateway"):
        self.workers = workers
        self.timeout_s = timeout_s
        self.log_prefix = log_prefix
        self._log = log or (lambda *a, **k: None)
        self._executor: ProcessPoolExecutor | None = None
        self._closed = False
        self._lock = threading.Lock()

    def _get(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._closed:
                raise KgenError("the gateway is stopping", code="stopping")
            if self._executor is None:
                self._executor = ProcessPoolExecutor(max_workers=self.workers, mp_context=get_context("spawn"),
                                                     initializer=_child_init, initargs=(self.log_prefix, os.getpid()))
            return self._executor

    def _discard(self, executor: ProcessPoolExecutor, reason: str) -> None:
        """A pool that hung or broke: kill its children; the next call starts a fresh pool."""
        with self._lock:
            if self._executor is executor:
                self._executor = None
            closed = self._closed
        if not closed:  # after close() a broken pool is expected, not news
            self._log("child_pool_reset", reason=reason)
        _kill_children(executor)

    def run(self, fn: Callable[..., str], args: tuple, what: str) -> Any:
        """Blocking: fn(*args) in a child; returns its decoded JSON answer."""
        executor = self._get()
        try:
            answer = executor.submit(fn, *args).result(timeout=self.timeout_s)
        except FutureTimeout:
            self._discard(executor, "timeout")
            raise KgenError(f"{what} took longer than {self.timeout_s:g}s", code="child_timeout") from None
        except BrokenProcessPool:
            self._discard(executor, "child_died")
            if self._closed:
                raise KgenError(f"{what} stopped: the gateway is stopping", code="stopping") from None
            raise KgenError(f"{what} crashed its process", code="child_crashed") from None
        return json.loads(answer)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            _kill_children(executor)


class GeneratorPool(ChildPool):
    def call(self, name: str, options: dict, method: str, args: tuple,
             sink: Callable[[str, str], None] | None = None) -> Any:
        """Blocking: run generator `name`'s `method(*args)` in a child; Candidate objects come back."""
        answer = self.run(_child_call, (name, tuple(sorted(options.items())), method, args),
                          f"generator {name}.{method}")
        if sink is not None:
            for role, content in answer.get("messages") or []:
                sink(role, content)
        result = answer.get("result")
        if result is None:
            return None
        if isinstance(result, list):
            return [_candidate(item) for item in result]
        return _candidate(result)


class TaskCheckPool(ChildPool):
    def check_task(self, task: Any, timeout_s: float) -> None:
        """kgen.core.task.check_task in a child; its TaskError/BadInput re-raised here."""
        answer = self.run(_child_check_task, (task, timeout_s), "task check")
        error = answer.get("error")
        if error:
            cls = getattr(errors, str(error.get("type")), None)
            if not (isinstance(cls, type) and issubclass(cls, KgenError)):
                cls = errors.TaskError
            raise cls(str(error.get("message")), code=str(error.get("code") or cls.code))


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
