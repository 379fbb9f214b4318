"""Local mode: where a candidate gets verified when the job runs on this machine.

The evolve engine runs in-process and the job, candidates and verdicts go to the local store.
Candidates are verified by the core verifier on local device slots (cpu: min(2, cores)
interpreter slots by default; cuda: one slot per visible GPU). Worker-only mode (`--node URL`),
where a remote node verifies, lives in kgen.core.remote and shares `run_to_end` and `job_result`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable

from kgen.core.errors import BadInput

if TYPE_CHECKING:
    from kgen.core.evolve import VerifyRequest

MAX_CPU_SLOTS = 64


def cpu_slot_count() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def resolve_devices(backend: str, device: str | None = None) -> list[str]:
    """Device slots for a backend. cpu: `device` may be a slot count ("3", "cpu:3");
    cuda: `device` may be GPU ids ("1", "0,1", "cuda:1"); default all visible GPUs."""
    device = (device or "").strip()
    if backend == "cpu":
        if device in ("", "cpu"):
            return ["cpu"] * cpu_slot_count()
        count = device.removeprefix("cpu:")
        if not count.isdigit() or not 1 <= int(count) <= MAX_CPU_SLOTS:
            raise BadInput(f"--device for the cpu backend is a slot count 1..{MAX_CPU_SLOTS} (e.g. 2), got {device!r}")
        return ["cpu"] * int(count)
    if backend != "cuda":
        raise BadInput(f"backend must be cpu or cuda, got {backend!r}")
    import torch

    if not torch.cuda.is_available():
        raise BadInput("--backend cuda needs a CUDA GPU, but none is visible here (torch.cuda.is_available() is False)")
    visible = torch.cuda.device_count()
    if not device:
        return [f"cuda:{i}" for i in range(visible)]
    out = []
    for part in device.split(","):
        part = part.strip().removeprefix("cuda:")
        if not part.isdigit() or int(part) >= visible:
            raise BadInput(f"--device {device!r}: GPU ids must be 0..{visible - 1} on this machine")
        if f"cuda:{int(part)}" not in out:
            out.append(f"cuda:{int(part)}")
    return out


class DeviceSlots:
    """A pool of device names; a candidate holds one slot for the whole of its verification."""

    def __init__(self, devices: list[str]):
        if not devices:
            raise BadInput("no device slots")
        self.devices = list(devices)
        self._free: asyncio.Queue | None = None

    def _queue(self) -> asyncio.Queue:
        if self._free is None:  # created lazily, on the loop that uses it
            self._free = asyncio.Queue()
            for d in self.devices:
                self._free.put_nowait(d)
        return self._free

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[str]:
        queue = self._queue()
        device = await queue.get()
        try:
            yield device
        finally:
            queue.put_nowait(device)


async def in_daemon_thread(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """Run a blocking call in a daemon thread: unlike asyncio.to_thread, Ctrl-C does not wait for
    it at interpreter shutdown (a hung candidate would otherwise hold `kgen run` until its timeout)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if not future.done():
            future.set_result(value) if ok else future.set_exception(value)

    def work() -> None:
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:  # handed to the awaiting coroutine
            outcome = (False, exc)
        else:
            outcome = (True, result)
        try:
            loop.call_soon_threadsafe(settle, *outcome)
        except RuntimeError:  # the loop is gone (interrupted); nobody is waiting any more
            pass

    threading.Thread(target=work, name="kgen-verify", daemon=True).start()
    return await future


def compile_options(spec: dict[str, Any]) -> dict[str, Any]:
    """The verify keywords a job spec implies for GPU-target compiles. An evolve job on cpu drops
    candidates that spill too: the interpreter's time goes to kernels that could ship."""
    from kgen.core.verify.targets import parse_targets

    targets = parse_targets(spec.get("compile_for"))
    if not targets:
        return {}
    return {"compile_for": targets,
            "reject_spills": spec.get("job_type") == "evolve" and spec.get("backend") == "cpu"}


def make_verify_fn(task, slots: DeviceSlots, *, timeout_s: float | None = None, atol: float | None = None,
                   rtol: float | None = None, pool: Any = None, verify_impl: Callable | None = None,
                   compile: dict[str, Any] | None = None):
    """A VerifyFn for run_job that runs the core verifier on a free local slot, off the event loop."""
    if verify_impl is None:
        from kgen.core.verify import verify as verify_impl
    run_verify: Callable = verify_impl

    async def verify_fn(request: VerifyRequest):
        async with slots.slot() as device:
            return await in_daemon_thread(run_verify, task, request.source, device=device, timeout_s=timeout_s,
                                          atol=atol, rtol=rtol, allow_ops=list(request.allow_ops), pool=pool,
                                          **(compile or {}))

    return verify_fn


def run_local(store, task, spec: dict[str, Any], generator, devices: list[str], *,
              verify_impl: Callable | None = None, pool: Any = None) -> dict[str, Any]:
    """Create a job for `task` in `store` and run it to its end on local slots; returns the job dict.

    Ctrl-C cancels the job (status cancelled) before the KeyboardInterrupt propagates.
    """
    from kgen.core.evolve import validate_spec

    spec = validate_spec(spec)
    verify_fn = make_verify_fn(task, DeviceSlots(devices), timeout_s=spec["timeout_s"], atol=spec["atol"],
                               rtol=spec["rtol"], pool=pool, verify_impl=verify_impl, compile=compile_options(spec))
    return run_to_end(store, task, spec, generator, verify_fn)


class JobInterrupted(KeyboardInterrupt):
    """Ctrl-C during `run_to_end`: the job it cancelled travels with it, so the caller reports
    its own job and not whichever job is newest in a store other processes share."""

    def __init__(self, job_id: str):
        super().__init__(job_id)
        self.job_id = job_id


def run_to_end(store, task, spec: dict[str, Any], generator, verify_fn) -> dict[str, Any]:
    """Create a job for `task` and run it to its end in this process (local or worker-only mode).

    Ctrl-C cancels the job (status cancelled) and raises JobInterrupted naming it."""
    from kgen.core.evolve import run_job

    job = store.create_job(task, spec)
    try:
        return asyncio.run(run_job(store, job["job_id"], task, spec, generator, verify_fn))
    except KeyboardInterrupt:
        with contextlib.suppress(Exception):
            store.set_job_status(job["job_id"], "cancelled", error="interrupted")
        raise JobInterrupted(job["job_id"]) from None


def job_result(store, job_id: str, out_path: str | Path | None) -> dict[str, Any]:
    """`kgen run --json` shape: {job_id, status, best: {path, verdict}, candidates}.

    Writes the best correct kernel to `out_path` (when given and the job found one). For a job
    without a correct kernel, best.path is null and best.verdict is the closest candidate's.
    """
    from kgen.core.evolve import Entry
    from kgen.core.generate import Candidate
    from kgen.core.verify.verdict import Verdict

    job = store.get_job(job_id)
    rows = store.candidates(job["job_id"])
    best_row = next((r for r in rows if r["candidate_id"] == job["best_candidate_id"]), None)
    if best_row is None:
        ranked = sorted(
            (Entry(r["candidate_id"], r["round"], r["index"], Candidate(r["source"]), Verdict.from_dict(r["verdict"]))
             for r in rows if r["verdict"]),
            key=Entry.rank,
        )
        best_row = next((r for r in rows if ranked and r["candidate_id"] == ranked[0].candidate_id), None)
    path = None
    if job["status"] == "succeeded" and job["best_candidate_id"] and out_path is not None:
        out = Path(out_path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(best_row["source"])
        path = str(out)
    candidates = [
        {k: r[k] for k in ("candidate_id", "round", "index", "origin", "sha", "parent", "params", "notes", "verdict")}
        for r in rows
    ]
    return {
        "job_id": job["job_id"],
        "status": job["status"],
        "best": {"path": path, "verdict": best_row["verdict"] if best_row else None},
        "candidates": candidates,
    }
