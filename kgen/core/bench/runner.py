"""Run a bench: one result per task, committed to the store as soon as it is known.

Where kernels come from (`Settings.source`):
- "generate" locally: the same path as `kgen run` (evolve engine, local device slots);
- "generate" with `node`: worker-only mode, generation here, verification on the node;
- "generate" with `gateway`: the task is submitted as a job and its best kernel taken;
- "candidates": `DIR/<task name>.py`, verified exactly as `kgen verify` does (same verifier,
  same defaults, no admitted fallbacks), locally or on the node.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from kgen.core.bench.discovery import BenchTask
from kgen.core.bench.summary import flagged
from kgen.core.errors import BadInput, TaskError

# Stable per-task keys of results.json / results.csv (append only; readers rely on them).
RESULT_KEYS = ("name", "category", "path", "small", "task_id", "kernel_source", "status", "message", "pure",
               "kernels_launched", "launches_per_call", "torch_ops", "max_abs_err", "timing_kind", "kernel_ms", "eager_ms",
               "compile_ms", "speedup_eager", "speedup_compile", "flagged", "compile_note", "job_id",
               "candidate_sha", "device_name", "wall_s",
               # traffic of one forward on the interpreter (verdict.traffic) and the cost model's estimate
               "traffic_raw", "traffic_unique", "traffic_minimum", "unique_ratio", "raw_ratio", "traffic_launches",
               "operand_reread", "memory_bound", "est_us", "cost_model",
               "second_shape")
EXTRA_STATUSES = ("missing", "error")  # no kernel file in --candidates; the task or its job failed


@dataclass
class Settings:
    paths: list[str]
    backend: str = "cpu"
    generator: str = "builtin"
    job_type: str = "single"
    candidates: str | None = None
    node: str | None = None
    gateway: str | None = None
    small: bool = False
    compile_mode: str = "default"
    timeout_s: float | None = None
    only: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    # what must agree for `--resume` to continue a run
    IDENTITY = ("paths", "backend", "generator", "job_type", "candidates", "node", "gateway", "small", "compile_mode",
                "only")

    def mismatch(self, stored: dict[str, Any]) -> list[str]:
        return [k for k in self.IDENTITY if stored.get(k) != getattr(self, k)]


def _shown_path(path: str) -> str:
    """Relative to the working directory when inside it: results files travel between machines."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return path


def empty_result(bt: BenchTask) -> dict[str, Any]:
    r: dict[str, Any] = {k: None for k in RESULT_KEYS}
    r.update(name=bt.name, category=bt.category, path=_shown_path(bt.path), small=bt.small, torch_ops=[], flagged=[],
             pure=False, kernels_launched=0, message="")
    return r


def fill_from_verdict(result: dict[str, Any], verdict: dict[str, Any] | None) -> dict[str, Any]:
    if not verdict:
        return result
    timing = verdict.get("timing") or {}
    errs = [t.get("max_abs_err") for t in verdict.get("trials") or [] if t.get("max_abs_err") is not None]
    result.update(
        status=verdict.get("status"), message=(verdict.get("message") or "")[:500], pure=bool(verdict.get("pure")),
        kernels_launched=int(verdict.get("kernels_launched") or 0),
        launches_per_call=(int(verdict.get("kernels_launched") or 0) / int(verdict["trials_run"])
                           if verdict.get("trials_run") else None),
        torch_ops=list(verdict.get("torch_ops") or []),
        max_abs_err=max(errs) if errs else None, timing_kind=timing.get("kind"), kernel_ms=timing.get("candidate_ms"),
        eager_ms=timing.get("eager_ms"), compile_ms=timing.get("compile_ms"),
        speedup_eager=timing.get("speedup_eager"), speedup_compile=timing.get("speedup_compile"),
        candidate_sha=verdict.get("candidate_sha"), device_name=verdict.get("device_name"),
        task_id=verdict.get("task_id") or result.get("task_id"))
    fill_traffic(result, verdict)
    if result["status"] != "correct":  # a speedup is only a speedup of a correct kernel
        result.update(speedup_eager=None, speedup_compile=None)
    return result


def fill_traffic(result: dict[str, Any], verdict: dict[str, Any]) -> dict[str, Any]:
    """Traffic columns from the verdict (None where it was not measured: GPU runs, failures).
    memory_bound: the reference has no matmul/conv/attention flops (torch's flop counter), so its
    minimum traffic is reachable; for the others operand_reread (raw / unique bytes: how often a
    touched byte is loaded again, as tiles re-read operands by design) says more than raw/min."""
    tr, cost = verdict.get("traffic") or {}, verdict.get("cost") or {}
    raw, unique = tr.get("raw"), tr.get("unique")
    result.update(traffic_raw=raw, traffic_unique=unique, traffic_minimum=tr.get("minimum"),
                  unique_ratio=tr.get("unique_ratio"), raw_ratio=tr.get("raw_ratio"), traffic_launches=tr.get("launches"),
                  operand_reread=round(raw / unique, 4) if raw and unique else None,
                  memory_bound=(not cost.get("flops_reference")) if cost else None,
                  est_us=cost.get("est_us"), cost_model=cost.get("model"))
    return result


class Runner:
    """Turns one BenchTask into one result dict. Infrastructure failures (unreachable node or
    gateway, refused token) raise, so the bench stops and can be resumed; anything about the
    task or its kernel becomes that task's result."""

    def __init__(self, settings: Settings, store, *, token: str | None = None):
        self.s = settings
        self.store = store
        self.node_client = self.gateway_client = None
        self.devices: list[str] = []
        if settings.node and settings.gateway:
            raise BadInput("--node and --gateway exclude each other")
        if settings.candidates is not None:
            cdir = Path(settings.candidates)
            if not cdir.is_dir():
                raise BadInput(f"--candidates {settings.candidates}: not a folder")
            if settings.gateway:
                raise BadInput("--candidates verifies given kernels locally or on a --node; a gateway only runs jobs")
        if settings.compile_mode != "default" and (settings.node or settings.gateway or settings.backend != "cuda"):
            raise BadInput("--compile-mode other than default times torch.compile here: it needs a local --backend cuda")
        if settings.node:
            from kgen.core.client import NodeClient
            from kgen.core.config import resolve_token
            from kgen.core.remote import check_node

            self.node_client = NodeClient(settings.node, token or resolve_token(None)[0], origin="flag")
            status = check_node(self.node_client)
            if status.get("backend") != settings.backend:
                raise BadInput(f"--backend {settings.backend}: the node at {self.node_client.url} serves {status.get('backend')!r}")
            self.node_capacity = int(status["capacity"])
        elif settings.gateway:
            from kgen.core.client import Client
            from kgen.core.config import resolve_token

            self.gateway_client = Client(settings.gateway, token or resolve_token(None)[0], origin="flag")
            self.gateway_client.health()
        else:
            from kgen.core.local import resolve_devices

            self.devices = resolve_devices(settings.backend)

    def where(self) -> str:
        if self.node_client is not None:
            return f"node {self.node_client.url}"
        if self.gateway_client is not None:
            return f"gateway {self.gateway_client.url}"
        return f"{len(self.devices)} local {self.s.backend} slot(s)"

    def run_task(self, bt: BenchTask) -> dict[str, Any]:
        from kgen.core.task import task_from_source

        started = time.monotonic()
        result = empty_result(bt)
        self._kernel: str | None = None   # the verified kernel's source, for the second shape
        try:
            task = task_from_source(bt.source, bt.name, path=bt.path)
            result["task_id"] = task.id
            if self.s.candidates is not None:
                self._judge_given(task, bt, result)
            elif self.gateway_client is not None:
                self._via_gateway(task, result)
            else:
                self._generate(task, result)
            if result["status"] == "correct" and self.s.compile_mode != "default":
                self._recompile_baseline(task, result)
            if result["status"] == "correct" and self._kernel is not None and self.node_client is None \
                    and self.gateway_client is None:
                self._second_shape(bt, result)
        except TaskError as exc:
            result.update(status="error", message=f"task: {exc.message}"[:500])
        result["flagged"] = flagged(result)
        result["wall_s"] = round(time.monotonic() - started, 3)
        return result

    # -- kernels from a folder ----------------------------------------------------------------
    def _judge_given(self, task, bt: BenchTask, result: dict[str, Any]) -> None:
        path = Path(self.s.candidates) / f"{bt.name}.py"
        result["kernel_source"] = str(path)
        if not path.is_file():
            result.update(status="missing", message=f"no kernel {path}")
            return
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            result.update(status="error", message=f"cannot read {path}: {exc}"[:500])
            return
        timeout = self.s.timeout_s
        if self.node_client is not None:
            from kgen.core.remote import verify_on_node

            verdict = verify_on_node(self.node_client, task, source, profile=True, timeout_s=timeout, acquire=True)
        else:
            from kgen.core.verify import verify

            verdict = verify(task, source, device=self.devices[0], timeout_s=timeout, profile=True)
        self._kernel = source
        fill_from_verdict(result, verdict.to_dict())

    # -- generated kernels --------------------------------------------------------------------
    def _spec(self) -> dict[str, Any]:
        from kgen.core.evolve import validate_spec

        return validate_spec({"job_type": self.s.job_type, "backend": self.s.backend, "generator": self.s.generator,
                              "timeout_s": self.s.timeout_s, **self.s.extra})

    def _generate(self, task, result: dict[str, Any]) -> None:
        from kgen.core.generate import get_generator
        from kgen.core.local import job_result, run_local
        from kgen.core.remote import run_on_node
        from kgen.core.task import check_task

        spec = self._spec()
        check_task(task, device=self.devices[0] if self.devices else "cpu") if self.node_client is None else None
        gen = get_generator(self.s.generator)
        if self.node_client is not None:
            job = run_on_node(self.store, task, spec, gen, self.node_client, self.node_capacity)
        else:
            job = run_local(self.store, task, spec, gen, self.devices)
        out = job_result(self.store, job["job_id"], None)
        result.update(job_id=job["job_id"], kernel_source="generated")
        best = self.store.get_job(job["job_id"]).get("best_candidate_id")
        self._kernel = next((r["source"] for r in self.store.candidates(job["job_id"]) if r["candidate_id"] == best), None)
        if out["best"]["verdict"] is None:
            result.update(status="error", message=f"job {job['status']}: {job.get('error') or 'no candidate verified'}"[:500])
            return
        fill_from_verdict(result, out["best"]["verdict"])

    def _via_gateway(self, task, result: dict[str, Any]) -> None:
        c = self.gateway_client
        spec = self._spec()
        job = c.submit_job(task.source, op_name=task.op_name, backend=spec["backend"], job_type=spec["job_type"],
                           generator=spec["generator"], timeout_s=self.s.timeout_s)
        result.update(job_id=job["job_id"], kernel_source="generated")
        final = c.wait_for_completion(job["job_id"])
        try:
            best = (c.result(job["job_id"]) or {}).get("best") or {}
        except BadInput:  # 409: the job ended without any result
            best = {}
        if not best.get("verdict"):
            result.update(status="error", message=f"job {final.get('status')}: {final.get('error') or 'no kernel'}"[:500])
            return
        fill_from_verdict(result, best["verdict"])

    def _second_shape(self, bt: BenchTask, result: dict[str, Any]) -> None:
        """The same kernel source verified at the task's SECOND shape (kgen.core.bench.second)."""
        from kgen.core.bench.second import check_second

        assert self._kernel is not None
        result["second_shape"] = check_second(bt.source, self._kernel, name=bt.name, device=self.devices[0],
                                              timeout_s=self.s.timeout_s)

    def _recompile_baseline(self, task, result: dict[str, Any]) -> None:
        from kgen.core.bench.baseline import compile_baseline

        base = compile_baseline(task.source, self.devices[0], self.s.compile_mode,
                                timeout_s=max(600.0, float(self.s.timeout_s or 0)))
        ms, kernel = base["compile_ms"], result.get("kernel_ms")
        result["compile_ms"] = ms
        result["speedup_compile"] = ms / kernel if ms and kernel else None
        result["compile_note"] = base["error"] or f"torch.compile mode={self.s.compile_mode}"


def run_bench(store, bench_run: dict[str, Any], tasks: list[BenchTask], runner: Runner,
              on_start: Callable[[BenchTask], None] | None = None,
              on_result: Callable[[BenchTask, dict[str, Any]], None] | None = None,
              time_budget_s: float | None = None) -> dict[str, dict[str, Any]]:
    """Run every task of `tasks` that has no result in the store yet; returns all results by key.
    With `time_budget_s`, no task is started once that many seconds have passed (the run stays
    resumable; the caller sees fewer results than tasks)."""
    done = store.bench_results(bench_run["bench_id"])
    started = time.monotonic()
    for bt in tasks:
        if bt.key in done:
            continue
        if time_budget_s is not None and time.monotonic() - started >= time_budget_s:
            return done
        if on_start:
            on_start(bt)
        result = runner.run_task(bt)
        store.add_bench_result(bench_run["bench_id"], bt.key, result)
        done[bt.key] = result
        if on_result:
            on_result(bt, result)
    store.set_bench_status(bench_run["bench_id"], "complete")
    return done


def ordered_results(tasks: list[BenchTask], by_key: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [by_key[bt.key] for bt in tasks if bt.key in by_key]


def default_out_dir() -> str:
    return os.path.join(os.getcwd(), "kgen-bench")
