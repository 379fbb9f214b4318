"""Running the core verifier for the node: one device per call, each call in its own thread.

`kgen.core.verify.verify` blocks (it drives a sandboxed child process), so every call runs in
a worker thread; a hung candidate therefore occupies only its own device. Each device slot
has its own warm RunnerPool, so two slots never share (or wait on) one runner process.

The verifier enforces the candidate timeout itself; the node adds an outer bound
(timeout + grace) so that even a verifier bug cannot hold an HTTP request forever. If that
bound fires, the device stays marked busy until the thread really returns.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable

from kgen.core.verify.verdict import Verdict
from kgen.daemon.node.pool import Device

OUTER_GRACE_S = 60.0
MAX_TIMEOUT_S = 3600.0


class Runners:
    def __init__(self, *, memory_mb: int | None = None, default_timeout_s: float = 300.0,
                 grace_s: float = OUTER_GRACE_S):
        self.memory_mb = memory_mb
        self.default_timeout_s = default_timeout_s
        self.compile_for: list[str] = []  # the node's default GPU targets (`kgen node start --compile-for`)
        self.grace_s = grace_s
        self._pools: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._device_locks: dict[str, asyncio.Lock] = {}
        self._threads: set[asyncio.Future] = set()

    def _pool_for(self, device: Device):
        from kgen.core.verify import RunnerPool  # lazy: torch is imported by the verifier

        with self._lock:
            pool = self._pools.get(device.id)
            if pool is None:
                pool = RunnerPool(memory_mb=self.memory_mb) if self.memory_mb else RunnerPool()
                self._pools[device.id] = pool
            return pool

    def device_lock(self, device: Device) -> asyncio.Lock:
        lock = self._device_locks.get(device.id)
        if lock is None:
            lock = self._device_locks[device.id] = asyncio.Lock()
        return lock

    def prewarm(self, devices: list[Device]) -> None:
        """Start each device's runner in the background so the first candidate skips the cold start."""
        def warm() -> None:
            for device in devices:
                try:
                    self._pool_for(device).runner(device.verify_device)
                except Exception:  # a failed warm-up is retried by the first real call
                    pass

        threading.Thread(target=warm, name="prewarm-runners", daemon=True).start()

    @property
    def running(self) -> int:
        return len(self._threads)

    def _verify_blocking(self, device: Device, task_source: str, candidate_source: str, options: dict) -> dict:
        from kgen.core.task import task_from_source
        from kgen.core.verify import verify

        task = task_from_source(task_source, options.pop("op_name", None))
        options["allow_ops"] = options.get("allow_ops") or ()
        options["trials"] = options.get("trials") or 3
        options["compile_for"] = options.get("compile_for") or self.compile_for
        verdict = verify(task, candidate_source, device=device.verify_device, pool=self._pool_for(device), **options)
        return verdict.to_dict()

    async def run(self, device: Device, task_source: str, candidate_source: str, *, profile: bool,
                  timeout_s: float | None = None, atol: float | None = None, rtol: float | None = None,
                  op_name: str | None = None, allow_ops: list[str] | None = None, trials: int | None = None,
                  on_thread_done: Callable[[], None] | None = None, compile_for: list[str] | None = None,
                  reject_spills: bool = False) -> dict:
        """The verdict dict for one candidate on `device`. `on_thread_done` runs when the thread ends."""
        timeout = min(float(timeout_s or self.default_timeout_s), MAX_TIMEOUT_S)
        options = {"timeout_s": timeout, "atol": atol, "rtol": rtol, "profile": profile,
                   "op_name": op_name, "allow_ops": allow_ops, "trials": trials,
                   "compile_for": list(compile_for or []), "reject_spills": bool(reject_spills)}
        future = self._start_thread(device, task_source, candidate_source, options)
        self._threads.add(future)

        def finished(fut: asyncio.Future) -> None:
            self._threads.discard(fut)
            if not fut.cancelled():
                fut.exception()  # mark retrieved: a late failure is not an unhandled-exception warning
            if on_thread_done is not None:
                on_thread_done()

        future.add_done_callback(finished)
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout + self.grace_s)
        except asyncio.TimeoutError:
            return Verdict(status="timeout", device=device.verify_device, device_name=device.name,
                           message=f"verifier did not return within {timeout + self.grace_s:.0f}s; "
                                   "device held until it does").to_dict()

    def _start_thread(self, device: Device, task_source: str, candidate_source: str, options: dict) -> asyncio.Future:
        # A thread per call rather than a shared executor: a hung verification must not use up
        # the workers that other devices need.
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()

        def settle(result: Any, error: BaseException | None) -> None:
            if future.done():
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)

        def body() -> None:
            try:
                result, error = self._verify_blocking(device, task_source, candidate_source, options), None
            except BaseException as exc:  # handed to the awaiting coroutine
                result, error = None, exc
            try:
                loop.call_soon_threadsafe(settle, result, error)
            except RuntimeError:  # loop closed during shutdown
                pass

        threading.Thread(target=body, name=f"verify-{device.id}", daemon=True).start()
        return future

    async def wait_idle(self, timeout_s: float) -> bool:
        """Wait for running verifications to end, up to a bound; True if none is left."""
        pending = list(self._threads)
        if not pending:
            return True
        done, still = await asyncio.wait(pending, timeout=timeout_s)
        return not still

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}

        def close_one(pool) -> None:
            try:
                pool.close()
            except Exception:  # closing must not stop the node from exiting
                pass

        # Each pool waits for its runner process to exit; close them side by side.
        threads = [threading.Thread(target=close_one, args=(pool,), daemon=True) for pool in pools]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
