"""The job manager: admission (checks, bounded queue), N concurrent job runners, cancel, recovery.

Each job runs kgen.core.evolve.run_job; candidates are generated in child processes
(generation.py) and verified on nodes through the scheduler. All state lives in the store:
after a crash, jobs found `running` go back to `queued` (an event records why) and resume
where the store says they were.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any, Callable

from kgen.core.errors import BadInput, KgenError, TaskError
from kgen.daemon.gateway.generation import GeneratorPool, PooledGenerator, TaskCheckPool
from kgen.daemon.gateway.scheduler import DispatchContext, Scheduler
from kgen.daemon.gateway.schemas import TERMINAL
from kgen.daemon.http import HttpError, retry_after

if TYPE_CHECKING:
    from kgen.core.evolve import VerifyRequest

# Submit fields that belong to the gateway, not to the evolve engine's spec.
GATEWAY_SPEC_KEYS = ("allow_cpu_fallback",)
_ENGINE_SPEC_KEYS = ("job_type", "max_rounds", "parallel_num", "max_repairs", "backend", "arch",
                     "generator", "dsl", "atol", "rtol", "timeout_s", "early_stop", "compile_for")

_CHECK_SLOTS = 2   # task checks run at once (each in its own child)


class JobManager:
    def __init__(self, store, registry, scheduler: Scheduler, metrics, *, max_queue: int = 256,
                 max_running: int = 4, default_timeout_s: float = 300.0, task_check_timeout_s: float = 120.0,
                 generator_workers: int = 2, generator_timeout_s: float = 600.0,
                 log: Callable[..., None] | None = None):
        self.store = store
        self.registry = registry
        self.scheduler = scheduler
        self.metrics = metrics
        self.max_queue = max_queue
        self.max_running = max_running
        self.default_timeout_s = default_timeout_s
        self.task_check_timeout_s = task_check_timeout_s
        self._log = log or (lambda *a, **k: None)
        self.generators = GeneratorPool(generator_workers, generator_timeout_s, log=self._log)
        # The check's own sandbox timeout fires first; this bound only catches a wedged child.
        self.task_checks = TaskCheckPool(_CHECK_SLOTS, task_check_timeout_s + 60.0, log=self._log)
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._runners: list[asyncio.Task] = []
        self._cancels: dict[str, asyncio.Event] = {}
        self._checked: dict[str, asyncio.Future] = {}   # task id -> runtime check (success cached)
        self._check_slots = asyncio.Semaphore(_CHECK_SLOTS)
        self._reserved = 0

    # -- lifecycle ------------------------------------------------------------------
    async def start(self) -> None:
        self.recover()
        loop = asyncio.get_running_loop()
        self._runners = [loop.create_task(self._runner(i)) for i in range(self.max_running)]

    def recover(self) -> list[str]:
        """Re-queue jobs a previous gateway process left running; queue what was queued."""
        requeued = []
        for job in self.store.jobs_with_status("running"):
            self.store.set_job_status(job["job_id"], "queued", reason="gateway restarted; job re-queued")
            requeued.append(job["job_id"])
        for job in self.store.jobs_with_status("queued"):
            self._queue.put_nowait(job["job_id"])
        if requeued:
            self._log("jobs_requeued", count=len(requeued))
        return requeued

    async def stop(self) -> None:
        """Stop the runners; jobs they were running stay `running` in the store and resume on restart."""
        for task in self._runners:
            task.cancel()
        for task in self._runners:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        self._runners = []
        await asyncio.gather(asyncio.to_thread(self.generators.close), asyncio.to_thread(self.task_checks.close))

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    @property
    def running(self) -> int:
        return len(self._cancels)

    # -- admission ----------------------------------------------------------------------
    def build_spec(self, fields: dict[str, Any]) -> dict[str, Any]:
        from kgen.core.evolve import validate_spec

        engine = {k: fields[k] for k in _ENGINE_SPEC_KEYS if k in fields}
        engine.setdefault("timeout_s", self.default_timeout_s)
        spec = validate_spec(engine)
        spec.update({k: fields[k] for k in GATEWAY_SPEC_KEYS if k in fields})
        return spec

    def _check_capacity(self) -> None:
        if self.queue_depth + self._reserved >= self.max_queue:
            self.metrics.inc("kgen_gateway_submits_rejected_total", reason="queue_full")
            raise HttpError(429, "queue_full", f"the job queue is full ({self.max_queue} queued); retry later",
                            headers=retry_after(max(5.0, min(60.0, self.queue_depth))))

    async def submit(self, fields: dict[str, Any]) -> dict[str, Any]:
        from kgen.core.task import task_from_source

        spec = self.build_spec(fields)
        task = task_from_source(fields["task"], fields.get("op_name"))
        backend, arch = spec["backend"], spec["arch"] or None
        if not self.registry.serves(backend, arch):
            served = self.registry.served()
            what = ", ".join(f"{s['backend']}/{s['arch'] or '-'}" for s in served) or "nothing"
            self.metrics.inc("kgen_gateway_submits_rejected_total", reason="unsupported_backend")
            raise HttpError(422, "unsupported_backend",
                            f"no healthy worker serves backend={backend} arch={arch or 'any'}; served: {what}",
                            served=served)
        self._check_capacity()
        await self._check_task(task)
        self._check_capacity()   # the check awaited: others may have filled the queue meanwhile
        # The slot is held from here, with no await in between, until the job is in the queue.
        self._reserved += 1
        # Shielded: a job that reached the store must also reach the queue, even if the client left.
        job = await asyncio.shield(self._create(task, spec))
        self.metrics.inc("kgen_gateway_jobs_submitted_total")
        self._log("job_queued", job_id=job["job_id"], op=task.op_name, type=spec["job_type"], backend=backend)
        return job

    async def _create(self, task, spec: dict[str, Any]) -> dict[str, Any]:
        try:
            job = await asyncio.to_thread(self.store.create_job, task, spec)
            self._queue.put_nowait(job["job_id"])
            return job
        finally:
            self._reserved -= 1

    async def _check_task(self, task) -> None:
        """Does Model run on its own inputs? Once per task id; concurrent submits share one check."""
        future = self._checked.get(task.id)
        if future is None:
            future = asyncio.get_running_loop().create_task(self._run_check(task))
            self._checked[task.id] = future
        try:
            await asyncio.shield(future)
        except KgenError:
            if self._checked.get(task.id) is future:
                del self._checked[task.id]  # failures are not cached: a retry may be on a calmer machine
            raise

    async def _run_check(self, task) -> None:
        async with self._check_slots:
            try:
                await asyncio.to_thread(self.task_checks.check_task, task, self.task_check_timeout_s)
            except KgenError:
                raise
            except Exception as exc:
                raise TaskError(f"task check failed: {type(exc).__name__}: {exc}") from None

    # -- cancel -------------------------------------------------------------------------
    def cancel(self, job_id: str) -> dict[str, Any]:
        job = self.store.get_job(job_id)
        job_id = job["job_id"]
        if job["status"] in TERMINAL:
            raise HttpError(409, "conflict", f"job {job_id[:12]} already ended ({job['status']})")
        event = self._cancels.get(job_id)
        if event is not None:
            event.set()   # the engine ends the job as cancelled, keeping what it found
        elif job["status"] == "queued":
            try:
                self.store.set_job_status(job_id, "cancelled", error="cancelled before it started")
            except BadInput:
                pass  # a runner picked it up in between; its cancel event is now registered
            event = self._cancels.get(job_id)
            if event is not None:
                event.set()
        return self.store.get_job(job_id)

    # -- running ------------------------------------------------------------------------
    async def _runner(self, index: int) -> None:
        while True:
            job_id = await self._queue.get()
            try:
                await self._run(job_id)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one job's failure must not stop the runner
                self._log("job_error", job_id=job_id, error=repr(exc))
                try:
                    job = self.store.get_job(job_id)
                    if job["status"] not in TERMINAL:
                        self.store.set_job_status(job_id, "failed", error=f"gateway error: {type(exc).__name__}: {exc}")
                except KgenError:
                    pass

    async def _run(self, job_id: str) -> None:
        from kgen.core.evolve import run_job
        from kgen.core.task import task_from_source

        job = self.store.get_job(job_id)
        if job["status"] in TERMINAL:
            return
        row = self.store.get_task(job["task_id"])
        task = task_from_source(row["source"], row["op_name"], path=row.get("path"))
        spec = dict(job["spec"])
        gateway_opts = {k: spec.pop(k) for k in GATEWAY_SPEC_KEYS if k in spec}
        cancel = asyncio.Event()
        ctx = DispatchContext(
            job_id=job_id, task_source=task.source, task_id=task.id, op_name=task.op_name, backend=spec.get("backend", "cpu"),
            arch=spec.get("arch") or None, timeout_s=float(spec.get("timeout_s") or self.default_timeout_s),
            atol=spec.get("atol"), rtol=spec.get("rtol"),
            allow_cpu_fallback=bool(gateway_opts.get("allow_cpu_fallback")),
            add_event=lambda type_, data: self.store.add_event(job_id, type_, data, open_only=True),
            finished=lambda: cancel.is_set() or self.store.get_job(job_id)["status"] in TERMINAL,
            cancel=cancel,
        )
        from kgen.core.local import compile_options

        ctx.extra.update(compile_options(spec))

        async def verify(request: VerifyRequest):
            return await self.scheduler.dispatch(ctx, request.source, allow_ops=list(request.allow_ops),
                                                 candidate_id=request.candidate_id)

        async def confirm(request: VerifyRequest, verdict):
            return await self.scheduler.confirm(ctx, request.source, verdict, allow_ops=list(request.allow_ops),
                                                candidate_id=request.candidate_id)

        generator = PooledGenerator(self.generators, spec.get("generator", "builtin"))
        started = time.monotonic()
        # Registered with no await since the status check above, so cancel() sees either a
        # queued job it may end itself or a running one with this event.
        self._cancels[job_id] = cancel
        self._log("job_started", job_id=job_id, type=spec.get("job_type"))
        try:
            final = await run_job(self.store, job_id, task, spec, generator, verify, cancel=cancel, confirm=confirm)
        finally:
            self._cancels.pop(job_id, None)
        self._log("job_finished", job_id=job_id, status=final["status"],
                  seconds=round(time.monotonic() - started, 1))
