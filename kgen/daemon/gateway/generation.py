"""Candidate generation in child processes.

Generators run the user's reference code (torch.export executes Model.forward), so the gateway
never runs them in its own process: a small spawn-context process pool does, and a generator
object in the gateway is a proxy whose methods block on the pool (the evolve engine calls them
through asyncio.to_thread). A child that hangs past the timeout or dies is killed and the pool
is rebuilt; the call fails with a KgenError and the engine records it.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ProcessPoolExecutor, TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from typing import Any, Callable

from kgen.core.errors import KgenError

# Environment a generator child must not see: the cluster token authorises everything.
_SCRUBBED_ENV = ("KGEN_TOKEN",)

_child_generators: dict[tuple, Any] = {}


def _child_init() -> None:
    for name in _SCRUBBED_ENV:
        os.environ.pop(name, None)


def _child_call(name: str, options: tuple, method: str, args: tuple) -> tuple[Any, list[tuple[str, str]]]:
    """Runs in the child: one generator method; returns its result and any llm messages."""
    from kgen.core.generate import get_generator

    key = (name, options)
    generator = _child_generators.get(key)
    if generator is None:
        generator = _child_generators[key] = get_generator(name, **dict(options))
    messages: list[tuple[str, str]] = []
    if hasattr(generator, "message_sink"):
        generator.message_sink = lambda role, content: messages.append((role, content))
    try:
        return getattr(generator, method)(*args), messages
    finally:
        if hasattr(generator, "message_sink"):
            generator.message_sink = None


class GeneratorPool:
    def __init__(self, workers: int = 2, timeout_s: float = 600.0, log: Callable[..., None] | None = None):
        self.workers = workers
        self.timeout_s = timeout_s
        self._log = log or (lambda *a, **k: None)
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _get(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ProcessPoolExecutor(max_workers=self.workers, mp_context=get_context("spawn"),
                                                     initializer=_child_init)
            return self._executor

    def _discard(self, executor: ProcessPoolExecutor, reason: str) -> None:
        """Kill every child of a pool that hung or broke; the next call starts a fresh pool."""
        with self._lock:
            if self._executor is executor:
                self._executor = None
        self._log("generator_pool_reset", reason=reason)
        for proc in list(getattr(executor, "_processes", {}).values() or []):
            try:
                proc.kill()
            except (OSError, AttributeError):
                pass
        executor.shutdown(wait=False, cancel_futures=True)

    def call(self, name: str, options: dict, method: str, args: tuple,
             sink: Callable[[str, str], None] | None = None) -> Any:
        """Blocking: run generator `name`'s `method(*args)` in a child."""
        executor = self._get()
        try:
            future = executor.submit(_child_call, name, tuple(sorted(options.items())), method, args)
            result, messages = future.result(timeout=self.timeout_s)
        except FutureTimeout:
            self._discard(executor, "timeout")
            raise KgenError(f"generator {name}.{method} took longer than {self.timeout_s:g}s",
                            code="generator_timeout") from None
        except BrokenProcessPool:
            self._discard(executor, "child_died")
            raise KgenError(f"generator {name}.{method} crashed its process", code="generator_crashed") from None
        if sink is not None:
            for role, content in messages:
                sink(role, content)
        return result

    def close(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            for proc in list(getattr(executor, "_processes", {}).values() or []):
                try:
                    proc.kill()
                except (OSError, AttributeError):
                    pass
            executor.shutdown(wait=False, cancel_futures=True)


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
