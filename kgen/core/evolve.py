"""The one home of "generate -> verify -> keep the best -> next round" (docs/ARCHITECTURE.md).

Used by local mode (`kgen run`) and by the gateway; verification is injected as
`verify(VerifyRequest)` so the same engine drives local device slots or remote nodes.

Restart semantics: `run_job` on a job that was interrupted (status `running`, or re-queued by a
restarted gateway) resumes from what the store holds. Candidates already stored are not
generated again; those with a verdict are not verified again; stored verdicts seed the best so
far; new events are appended after the job's last seq (seqs are never reused). A single job
continues its repair chain from the last stored attempt; an evolve job continues at the first
round that is not complete.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import sqlite3
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from kgen.core.errors import BadInput, KgenError
from kgen.core.generate import Candidate
from kgen.core.perf.cost import fitness_us
from kgen.core.spec import JOB_SPEC_LIMITS, LIMITS
from kgen.core.spec import check as check_limit
from kgen.core.verify.verdict import Verdict

log = logging.getLogger("kgen.core.evolve")


@dataclass(frozen=True)
class VerifyTargets:
    """What a candidate is verified against: the job's backend, arch, tolerances and time limit."""

    backend: str = "cpu"
    arch: str = ""
    atol: float | None = None
    rtol: float | None = None
    timeout_s: float | None = None


@dataclass(frozen=True)
class VerifyRequest:
    """The contract between the engine and its verify callback: one stored candidate to check.

    `attempt` is the candidate's 0-based ordinal in the job (stable across restarts);
    `allow_ops` the torch ops it may leave in forward (a builtin candidate's declared fallbacks,
    empty for anything else); `candidate_id` the stored candidate, so a dispatcher can name it in
    its events without looking it up."""

    source: str
    attempt: int
    candidate_id: str
    allow_ops: tuple[str, ...] = ()
    targets: VerifyTargets = field(default_factory=VerifyTargets)


VerifyFn = Callable[[VerifyRequest], Awaitable[Verdict]]
ConfirmFn = Callable[[VerifyRequest, Verdict], Awaitable[Verdict]]

JOB_TYPES = ("single", "evolve")
BACKENDS = ("cpu", "cuda")
DEFAULTS: dict[str, Any] = {
    "job_type": "single",
    "max_rounds": 3,
    "parallel_num": 4,
    "max_repairs": 2,
    "backend": "cpu",
    "arch": "",
    "generator": "builtin",
    "dsl": "triton",
    "atol": None,
    "rtol": None,
    "timeout_s": None,
    # None = decided by backend: on cpu only correctness ranks (interpreter timings), so the
    # first correct kernel cannot be beaten and later rounds would be wasted work.
    "early_stop": None,
    # GPU targets every candidate's launches are also compiled for (["sm_80", "sm_90"]), on any
    # backend, no GPU needed. An evolve job on cpu then also drops candidates that spill.
    "compile_for": None,
}
SHOW_BEST = 4   # how many of the best (candidate, verdict) pairs a mutate round is shown
# Lower is better among candidates that are not correct: the closer to working, the better a seed.
STATUS_RANK = {"correct": 0, "incorrect": 1, "rejected": 2, "runtime_error": 3, "timeout": 4,
               "compile_error": 5, "crashed": 6}


def validate_spec(spec: dict[str, Any] | None) -> dict[str, Any]:
    """Check and normalise a job spec; one BadInput naming the first bad key. The gateway calls this too."""
    spec = dict(spec or {})
    unknown = sorted(set(spec) - set(DEFAULTS))
    if unknown:
        raise BadInput(f"unknown job spec key(s): {', '.join(unknown)}; known: {', '.join(DEFAULTS)}")
    out = {**DEFAULTS, **{k: v for k, v in spec.items() if v is not None}}
    if out["job_type"] not in JOB_TYPES:
        raise BadInput(f"job_type must be one of {', '.join(JOB_TYPES)}, got {out['job_type']!r}")
    if out["backend"] not in BACKENDS:
        raise BadInput(f"backend must be one of {', '.join(BACKENDS)}, got {out['backend']!r}")
    if out["dsl"] != "triton":
        raise BadInput(f"dsl must be 'triton', got {out['dsl']!r}")
    if not isinstance(out["generator"], str) or not out["generator"]:
        raise BadInput("generator must be a generator name such as 'builtin' or 'llm'")
    if not isinstance(out["arch"], str):
        raise BadInput(f"arch must be a string, got {out['arch']!r}")
    for key in JOB_SPEC_LIMITS:
        problem = check_limit(key, out[key])
        if problem:
            raise BadInput(f"{key} {problem}")
        if out[key] is not None and LIMITS[key].kind is float:
            out[key] = float(out[key])
    if out["early_stop"] is None:
        out["early_stop"] = out["backend"] == "cpu"
    elif not isinstance(out["early_stop"], bool):
        raise BadInput(f"early_stop must be true or false, got {out['early_stop']!r}")
    from kgen.core.verify.targets import parse_targets

    try:
        out["compile_for"] = parse_targets(out["compile_for"])
    except (ValueError, TypeError) as exc:
        raise BadInput(f"compile_for: {exc}") from None
    if out["job_type"] == "single":
        # A single job is one candidate plus repairs; rounds/parallelism do not apply.
        out["max_rounds"], out["parallel_num"] = 1, 1
    return out


def max_abs_error(verdict: Verdict) -> float | None:
    errs = [t.max_abs_err for t in verdict.trials if t.max_abs_err is not None]
    return max(errs) if errs else None


def summarize_verdict(verdict: Verdict) -> dict[str, Any]:
    """The few fields of a verdict that events and tables show."""
    timing = verdict.timing
    return {
        "status": verdict.status,
        "message": (verdict.message or "")[:500],
        "pure": verdict.pure,
        "kernels_launched": verdict.kernels_launched,
        "max_abs_err": max_abs_error(verdict),
        "timing_kind": timing.kind if timing else None,
        "candidate_ms": timing.candidate_ms if timing else None,
        "speedup_eager": timing.speedup_eager if timing else None,
        "speedup_compile": timing.speedup_compile if timing else None,
        "est_us": verdict.cost.get("est_us") if isinstance(verdict.cost, dict) else None,
        "cost_model": verdict.cost.get("model") if isinstance(verdict.cost, dict) else None,
        "traffic_unique_ratio": verdict.traffic.get("unique_ratio") if isinstance(verdict.traffic, dict) else None,
        "device": verdict.device,
        "wall_s": verdict.wall_s,
    }


@dataclass
class Entry:
    candidate_id: str
    round: int
    index: int
    candidate: Candidate
    verdict: Verdict | None = None

    @property
    def correct(self) -> bool:
        return self.verdict is not None and self.verdict.correct

    def rank(self) -> tuple:
        """Sort key, lower is better: correct first; among correct, lower measured GPU time, else
        lower modelled cost (CPU nodes: kgen.core.perf.cost), else earlier."""
        v = self.verdict
        order = (self.round, self.index)
        if v is None:
            return (len(STATUS_RANK) + 1, 0.0, order)
        if v.correct:
            us = fitness_us(v)
            return (0, us if us is not None else math.inf, order)
        err = max_abs_error(v)
        return (STATUS_RANK.get(v.status, len(STATUS_RANK)), err if err is not None and math.isfinite(err) else math.inf, order)


class _Cancelled(Exception):
    pass


class _Finished(Exception):
    """The job ended elsewhere (cancelled, or another process finished it): stop, write nothing."""


class GeneratorFailed(Exception):
    """The generator raised: kept apart from store and engine errors so a job says which failed."""

    def __init__(self, cause: BaseException):
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.cause = cause


class _Engine:
    def __init__(self, store, job_id, task, spec, generator, verify, cancel, confirm=None):
        self.store, self.job_id, self.task, self.spec = store, job_id, task, spec
        self.confirm = confirm
        self.generator, self.verify, self.cancel = generator, verify, cancel or asyncio.Event()
        self.targets = VerifyTargets(backend=spec["backend"], arch=spec["arch"], atol=spec["atol"],
                                     rtol=spec["rtol"], timeout_s=spec["timeout_s"])
        self.entries: list[Entry] = []
        self.best: Entry | None = None
        self.generator_error: str | None = None
        for row in store.candidates(job_id):
            cand = Candidate(source=row["source"], params=row["params"], origin=row["origin"],
                             parent=row["parent"], notes=row["notes"])
            verdict = Verdict.from_dict(row["verdict"]) if row["verdict"] else None
            self.entries.append(Entry(row["candidate_id"], row["round"], row["index"], cand, verdict))
        for entry in self.entries:
            if entry.verdict is not None and (self.best is None or entry.rank() < self.best.rank()):
                self.best = entry

    # -- helpers -----------------------------------------------------------------
    def event(self, type_: str, **data: Any) -> None:
        self.store.add_event(self.job_id, type_, data, open_only=True)

    async def race(self, awaitable):
        """Await `awaitable` unless the job is cancelled first (then raise _Cancelled)."""
        if self.cancel.is_set():
            if inspect.iscoroutine(awaitable):
                awaitable.close()
            raise _Cancelled()
        work = asyncio.ensure_future(awaitable)
        # Whoever ends up not awaiting `work` (cancel, shutdown) must not leave its outcome unretrieved.
        work.add_done_callback(lambda f: f.cancelled() or f.exception())
        stop = asyncio.ensure_future(self.cancel.wait())
        try:
            await asyncio.wait({work, stop}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            work.cancel()
            raise
        finally:
            stop.cancel()
        if not work.done():
            work.cancel()
            raise _Cancelled()
        return work.result()

    async def generate(self, fn, *args) -> list[Candidate]:
        """The generator's candidates; its own errors come out as GeneratorFailed (a KgenError it
        raises, such as an unsupported task, passes through with its message)."""
        try:
            result = await self.race(asyncio.to_thread(fn, self.task, *args))
            if result is None:
                return []
            return [result] if isinstance(result, Candidate) else list(result)
        except (_Cancelled, asyncio.CancelledError, KgenError):
            raise
        except Exception as exc:
            raise GeneratorFailed(exc) from exc

    def add(self, round_: int, index: int, cand: Candidate) -> Entry:
        cid = self.store.add_candidate(self.job_id, round_, index, cand)
        entry = Entry(cid, round_, index, cand)
        self.entries.append(entry)
        self.event("candidate_generated", candidate_id=cid, round=round_, index=index, params=cand.params,
                   origin=cand.origin, notes=cand.notes)
        return entry

    async def check(self, entry: Entry) -> None:
        # Only the builtin generator's declared fallbacks are allowed; llm output earns none.
        params = entry.candidate.params if isinstance(entry.candidate.params, dict) else {}
        fallback = params.get("fallback_ops", []) if entry.candidate.origin == "builtin" else []
        request = VerifyRequest(source=entry.candidate.source, attempt=self.entries.index(entry),
                                candidate_id=entry.candidate_id, allow_ops=tuple(str(op) for op in fallback or ()),
                                targets=self.targets)
        try:
            verdict = await self.verify(request)
            if isinstance(verdict, dict):
                verdict = Verdict.from_dict(verdict)
            if not isinstance(verdict, Verdict):
                raise TypeError(f"verify returned {type(verdict).__name__}, not a Verdict")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the verifier itself failed (no node, lost connection): record, go on
            verdict = Verdict(status="crashed", message=f"verification failed: {type(exc).__name__}: {exc}",
                              task_id=self.task.id, candidate_sha=entry.candidate.sha)
        entry.verdict = verdict
        improves = self.best is None or entry.rank() < self.best.rank()
        if improves and verdict.correct and self.confirm is not None:
            # A verdict about to become the job's best is confirmed first (the gateway re-verifies
            # it on a different node); the confirmed verdict is what counts and is stored.
            try:
                confirmed = await self.confirm(request, verdict)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("confirming candidate %s failed: %r", entry.candidate_id[:12], exc)
                confirmed = verdict
            if isinstance(confirmed, Verdict) and confirmed is not verdict:
                entry.verdict = verdict = confirmed
                improves = self.best is None or entry.rank() < self.best.rank()
        best_event = None
        if improves:
            best_event = {"candidate_id": entry.candidate_id, "round": entry.round, "index": entry.index,
                          "status": verdict.status,
                          "candidate_ms": verdict.timing.candidate_ms if verdict.timing else None,
                          "est_us": verdict.cost.get("est_us") if isinstance(verdict.cost, dict) else None}
        # Verdict, its event and the best update land together, and never on a finished job.
        recorded = self.store.record_verdict(
            self.job_id, entry.candidate_id, verdict,
            {"candidate_id": entry.candidate_id, "round": entry.round, "index": entry.index,
             **summarize_verdict(verdict)},
            best=best_event,
            set_best=improves and verdict.correct,  # best_candidate_id names a kernel worth using
        )
        if not recorded:
            log.info("late verdict for finished job %s dropped (candidate %s)", self.job_id[:12],
                     entry.candidate_id[:12])
            raise _Finished()
        if improves:
            self.best = entry

    async def check_all(self, entries: list[Entry]) -> None:
        todo = [e for e in entries if e.verdict is None]
        if not todo:
            return
        tasks = [asyncio.ensure_future(self.check(e)) for e in todo]
        try:
            await self.race(asyncio.gather(*tasks))
        except BaseException:
            for t in tasks:
                t.cancel()
            raise

    def done(self) -> bool:
        return self.best is not None and self.best.correct and self.spec["early_stop"]

    # -- job types -----------------------------------------------------------------
    async def run_single(self) -> None:
        if not self.entries:
            self.event("round_started", round=1)
            cands = await self.generate(self.generator.initial, 1)
            if not cands:
                raise KgenError("the generator produced no candidate for this task", code="no_candidate")
            self.add(1, 0, cands[0])
        while True:
            last = self.entries[-1]
            await self.check_all([last])
            if last.correct or len(self.entries) > self.spec["max_repairs"]:
                return
            round_ = len(self.entries) + 1
            self.event("round_started", round=round_, repair_of=last.candidate_id)
            try:
                fixed = await self.generate(self.generator.repair, last.candidate, last.verdict)
            except (GeneratorFailed, KgenError) as exc:
                self.generator_error = str(exc) if isinstance(exc, GeneratorFailed) else f"{type(exc).__name__}: {exc}"
                self.event("generator_error", round=round_, error=self.generator_error)
                return
            if not fixed or fixed[0].sha in {e.candidate.sha for e in self.entries}:
                # No idea, or the same source again: verifying it twice would only repeat the verdict.
                self.event("repair_gave_up", round=round_, candidate_id=last.candidate_id)
                return
            self.add(round_, 0, fixed[0])

    async def run_evolve(self) -> None:
        n = self.spec["parallel_num"]
        for round_ in range(1, self.spec["max_rounds"] + 1):
            if self.done():
                return
            entries = [e for e in self.entries if e.round == round_]
            if not entries:
                self.event("round_started", round=round_)
                try:
                    if round_ == 1:
                        cands = await self.generate(self.generator.initial, n)
                    else:
                        ranked = sorted((e for e in self.entries if e.verdict is not None), key=Entry.rank)
                        best = [(e.candidate, e.verdict) for e in ranked[:SHOW_BEST]]
                        cands = await self.generate(self.generator.mutate, best, n)
                except (GeneratorFailed, KgenError) as exc:
                    if round_ == 1:
                        raise
                    self.generator_error = str(exc) if isinstance(exc, GeneratorFailed) else f"{type(exc).__name__}: {exc}"
                    self.event("generator_error", round=round_, error=self.generator_error)
                    return
                seen = {e.candidate.sha for e in self.entries}
                fresh: list[Candidate] = []
                for cand in cands:
                    if cand.sha not in seen and len(fresh) < n:
                        seen.add(cand.sha)
                        fresh.append(cand)
                if not fresh:
                    if round_ == 1:
                        raise KgenError("the generator produced no candidate for this task", code="no_candidate")
                    self.event("converged", round=round_, reason="the generator proposed no new candidate")
                    return
                entries = [self.add(round_, i, c) for i, c in enumerate(fresh)]
            elif any(e.verdict is None for e in entries):
                self.event("round_started", round=round_, resumed=True)
            await self.check_all(entries)

    def failure_message(self) -> str:
        count = len(self.entries)
        if self.best is None:
            return f"no candidate was verified ({count} generated)"
        v = self.best.verdict
        if v is None:
            return f"no candidate was verified ({count} generated)"
        text = f"no correct kernel in {count} candidate(s); best was {v.status}"
        if v.message:
            text += f": {v.message.strip().splitlines()[0][:300]}"
        if self.generator_error:
            text += f" (generator error: {self.generator_error[:200]})"
        return text


async def run_job(store, job_id: str, task, spec: dict[str, Any], generator, verify: VerifyFn, *,
                  cancel: asyncio.Event | None = None, confirm: ConfirmFn | None = None) -> dict[str, Any]:
    """Run (or resume) one job to its end state; returns the final job dict.

    `verify(request)` gets one `VerifyRequest` per candidate. If the task running this coroutine
    is cancelled (process shutdown) the job is left `running`, to be re-queued and resumed. The
    generator's `message_sink` (kgen.core.generate.Generator) points at the job's stored
    conversation for the length of the run.
    `confirm(request, verdict)` (optional) is awaited for a correct verdict about to become the
    job's best and returns the verdict that counts (the gateway's cross-check).
    """
    from kgen.core.store import TERMINAL

    spec = validate_spec(spec)
    job = store.get_job(job_id)
    if job["status"] in TERMINAL:
        return job
    if job["status"] == "queued":
        store.set_job_status(job_id, "running")
    else:
        store.add_event(job_id, "resumed", {"status": "running"})
    # Generator.message_sink: where a conversational generator records its exchange
    generator.message_sink = lambda role, content: store.add_message(job_id, role, content)
    engine = _Engine(store, job_id, task, spec, generator, verify, cancel, confirm)
    try:
        if spec["job_type"] == "single":
            await engine.run_single()
        else:
            await engine.run_evolve()
    except _Finished:
        return store.get_job(job_id)
    except _Cancelled:
        best_id = engine.best.candidate_id if engine.best and engine.best.correct else None
        store.set_job_status(job_id, "cancelled", best_candidate_id=best_id, error="cancelled")
        return store.get_job(job_id)
    except KgenError as exc:
        store.set_job_status(job_id, "failed", best_candidate_id=None, error=exc.message)
        return store.get_job(job_id)
    except GeneratorFailed as exc:  # a generator bug must end the job, not the daemon running it
        store.set_job_status(job_id, "failed", best_candidate_id=None, error=f"generator failed: {exc}")
        return store.get_job(job_id)
    except sqlite3.Error as exc:
        # the store failed under the engine: say so (recording it may fail too, and then raises)
        store.set_job_status(job_id, "failed", best_candidate_id=None,
                             error=f"store error: {type(exc).__name__}: {exc}")
        return store.get_job(job_id)
    except Exception as exc:  # a bug in the engine or a callback: end the job, name the error
        store.set_job_status(job_id, "failed", best_candidate_id=None,
                             error=f"internal error: {type(exc).__name__}: {exc}")
        return store.get_job(job_id)
    finally:
        generator.message_sink = None
    best = engine.best
    if best is not None and best.correct:
        store.set_job_status(job_id, "succeeded", best_candidate_id=best.candidate_id, error=None)
    else:
        store.set_job_status(job_id, "failed", best_candidate_id=None, error=engine.failure_message())
    return store.get_job(job_id)
