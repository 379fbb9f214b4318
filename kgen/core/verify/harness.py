"""verify(): reference run, candidate run, comparison, verdict.

Trust boundary: the reference run imports only the task; the candidate run imports only the
candidate; comparison happens here, in the calling process, where candidate code never ran,
on files loaded with torch.load(weights_only=True).
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import statistics
import time

from kgen.core.errors import BadInput, TaskError
from kgen.core.verify.verdict import Timing, Trial, Verdict

INIT_SEED = 1234
MIN_TRIALS = 3
FRESH_SEED_BASE = 1 << 24
_DEVICE_RE = re.compile(r"^(cpu|cuda)(?::(\d+))?$")


def parse_device(device: str) -> tuple[str, str]:
    """-> (canonical device, runner key). cpu and cpu:N share one warm runner; cuda:N each own one."""
    m = _DEVICE_RE.match(str(device).strip()) if isinstance(device, str) else None
    if not m:
        raise BadInput(f"bad device {device!r}: expected cpu, cpu:N, cuda or cuda:N")
    kind, index = m.group(1), int(m.group(2) or 0)
    if kind == "cpu":
        return (f"cpu:{index}" if m.group(2) else "cpu"), "cpu"
    import torch

    if not torch.cuda.is_available():
        raise BadInput(f"device {device} requested but no CUDA GPU is available here (use --device cpu)")
    count = torch.cuda.device_count()
    if index >= count:
        raise BadInput(f"device {device} does not exist: {count} CUDA device(s) visible")
    return f"cuda:{index}", f"cuda:{index}"


def _physical_gpu(index: int) -> str:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible:
        ids = [v.strip() for v in visible.split(",") if v.strip()]
        if index < len(ids):
            return ids[index]
    return str(index)


def _run_config(key: str, seeds, profile_gpu: bool) -> dict:
    cfg = {"device": "cpu" if key == "cpu" else "cuda", "seeds": list(seeds), "init_seed": INIT_SEED,
           "profile_gpu": profile_gpu, "env": {}, "nonce": secrets.token_hex(16)}
    if key == "cpu":
        cfg["env"]["TRITON_INTERPRET"] = "1"
    else:
        cfg["env"]["CUDA_VISIBLE_DEVICES"] = _physical_gpu(int(key.split(":")[1]))
        cfg["cuda_memory_fraction"] = 0.9
    return cfg


def _read_result(workdir: str, nonce: str | None = None) -> dict | None:
    try:
        with open(os.path.join(workdir, "result.json")) as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    if nonce is not None and data.get("nonce") != nonce:
        raise ValueError("result.json was not written by the harness")
    return data


def _log_tail(workdir: str, limit: int = 4000) -> str:
    try:
        with open(os.path.join(workdir, "log.txt"), "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - limit))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _seeds(trials: int) -> tuple[int, ...]:
    """The fixed seeds (reference outputs cached): all trials but the last, which is fresh."""
    return tuple(1000 + 7919 * i for i in range(max(MIN_TRIALS, int(trials)) - 1))


def _fresh_seed() -> int:
    # Above every fixed seed, so a fresh trial never repeats a cached one.
    return FRESH_SEED_BASE + secrets.randbelow(2**31 - FRESH_SEED_BASE)


def _reference_run(task, key: str, seeds, timeout_s: float, pool, profile_gpu: bool):
    from kgen.core.verify.reference import describe_failure, load_reference

    workdir = pool.new_workdir()
    try:
        with open(os.path.join(workdir, "task.py"), "w") as fh:
            fh.write(task.source)
        outcome = pool.run(key, "reference", workdir, _run_config(key, seeds, profile_gpu), timeout_s)
        result = _read_result(workdir)
        if result is None or not result.get("ok"):
            raise TaskError(f"bad task: {describe_failure(result, outcome, timeout_s)}")
        ref = load_reference(task, key, tuple(seeds), INIT_SEED, workdir, result)
        ref.gpu = result.get("gpu")
        return ref
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise


def _with_fresh_trial(task, key: str, ref, timeout_s: float, pool, workdir: str):
    """Run the reference once more on a seed nobody has seen, copy its inputs into the
    candidate's workdir, and return the cached reference extended by that trial (uncached)."""
    seed = _fresh_seed()
    # the fixed trials are replayed first: the candidate runs every trial on one instance, so a
    # forward that keeps state across calls (an RNN cell's hidden state) must meet the fresh
    # inputs with the same history in the reference
    fresh = _reference_run(task, key, tuple(ref.seeds) + (seed,), timeout_s, pool, False)
    try:
        name = f"inputs_{seed}.pt"
        shutil.copyfile(os.path.join(fresh.files_dir, name), os.path.join(workdir, name))
    finally:
        shutil.rmtree(fresh.files_dir, ignore_errors=True)
    return dataclasses.replace(ref, seeds=ref.seeds + (seed,), trials={**ref.trials, seed: fresh.trials[seed]},
                               eager_ms=ref.eager_ms + fresh.eager_ms[-1:])


def _reference(task, key: str, seeds, timeout_s: float, pool, profile_gpu: bool):
    def compute():
        return _reference_run(task, key, seeds, timeout_s, pool, profile_gpu)

    return pool.references.get_or_compute((task.id, key, tuple(seeds)), compute)


def reference_specs(task, *, device: str = "cpu", timeout_s: float = 120.0, pool=None) -> dict:
    from kgen.core.verify.sandbox import default_pool

    canonical, key = parse_device(device)
    # The fixed seeds of a default verify(), so this warms the cache entry verify() will use.
    ref = _reference(task, key, _seeds(MIN_TRIALS), timeout_s, pool or default_pool(), False)
    return {"task_id": task.id, "device": canonical, "structure": ref.structure,
            "outputs": [{"shape": o["shape"], "dtype": o["dtype"]} for o in ref.outputs]}


def _gpu_baseline(task, key, seeds, timeout_s, pool, ref) -> dict | None:
    from kgen.core.verify.reference import BaselineCache

    cache = BaselineCache()
    hit = cache.get(task.id, ref.device_name)
    if hit is not None:
        return hit
    gpu = getattr(ref, "gpu", None)
    if gpu is None:  # reference cached from a run without profiling: time it once now
        workdir = pool.new_workdir()
        try:
            with open(os.path.join(workdir, "task.py"), "w") as fh:
                fh.write(task.source)
            pool.run(key, "reference", workdir, _run_config(key, seeds, True), timeout_s)
            gpu = (_read_result(workdir) or {}).get("gpu")
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    if gpu:
        value = {"eager_ms": gpu.get("eager_ms"), "compile_ms": gpu.get("compile_ms")}
        cache.put(task.id, ref.device_name, value)
        return value
    return None


def _failure_status(result: dict) -> str:
    if result.get("tampered"):
        return "rejected"
    if result.get("compile"):
        return "compile_error"
    if result.get("phase") == "output":
        return "incorrect"
    return "runtime_error"


def verify(task, candidate_source, *, device="cpu", timeout_s=None, atol=None, rtol=None,
           trials=3, profile=True, pool=None, allow_ops=()) -> Verdict:
    """Verify one candidate against a task on one device. Never raises for a bad candidate;
    raises TaskError for a bad task and BadInput for a bad device or tolerance."""
    from kgen.core.verify.reference import StaleReference
    from kgen.core.verify.sandbox import default_pool

    canonical, key = parse_device(device)
    for name, val in (("atol", atol), ("rtol", rtol)):
        if val is not None and not (isinstance(val, (int, float)) and val >= 0 and val == val):
            raise BadInput(f"{name} must be a non-negative number")
    if timeout_s is None:
        from kgen.core.config import resolve

        timeout_s = float(resolve("verify.timeout_s", None)[0])
    if not timeout_s or timeout_s <= 0:
        raise BadInput("timeout must be > 0 seconds")
    pool = pool or default_pool()
    if not isinstance(candidate_source, str):
        raise BadInput("candidate source must be text")
    started = time.monotonic()
    verdict = Verdict(status="rejected", task_id=task.id, device=canonical,
                      candidate_sha=hashlib.sha256(candidate_source.encode("utf-8", "replace")).hexdigest())
    try:
        ast.parse(candidate_source)
    except (SyntaxError, ValueError) as exc:
        verdict.status = "compile_error"
        verdict.message = f"candidate has a syntax error at line {getattr(exc, 'lineno', '?')}: {getattr(exc, 'msg', exc)}"
        verdict.wall_s = time.monotonic() - started
        return verdict

    seeds = _seeds(trials)
    profile_gpu = bool(profile) and key != "cpu"
    ref = _reference(task, key, seeds, float(timeout_s), pool, profile_gpu)
    verdict.device_name = ref.device_name
    from kgen.core.verify import purity, screen

    reason = screen.screen(candidate_source, task.source, allow_ops)
    if reason:
        verdict.message = reason
        verdict.static_torch_calls = purity.static_torch_calls(candidate_source)
        verdict.wall_s = round(time.monotonic() - started, 4)
        return verdict
    workdir = pool.new_workdir()
    try:
        with open(os.path.join(workdir, "candidate.py"), "w") as fh:
            fh.write(candidate_source)
        try:
            ref.copy_inputs_to(workdir)
        except (StaleReference, OSError):
            pool.references.invalidate((task.id, key, tuple(seeds)))
            ref = _reference(task, key, seeds, float(timeout_s), pool, profile_gpu)
            ref.copy_inputs_to(workdir)
        ref = _with_fresh_trial(task, key, ref, float(timeout_s), pool, workdir)
        run_cfg = _run_config(key, ref.seeds, profile_gpu)
        outcome = pool.run(key, "candidate", workdir, run_cfg, float(timeout_s))
        try:
            _judge(verdict, ref, workdir, outcome, float(timeout_s), atol, rtol, allow_ops, candidate_source,
                   run_cfg["nonce"])
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            # result.json is written inside the candidate's process: a forged one is its fault.
            verdict.status, verdict.trials = "crashed", []
            verdict.message = f"the run left a malformed result ({type(exc).__name__}: {exc})"[:500]
        if profile and verdict.status == "correct":
            try:
                _timing(verdict, task, key, seeds, float(timeout_s), pool, ref, workdir, run_cfg["nonce"])
            except (TypeError, ValueError, KeyError, AttributeError, ZeroDivisionError):
                verdict.timing = None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    verdict.wall_s = round(time.monotonic() - started, 4)
    return verdict


def _judge(verdict: Verdict, ref, workdir: str, outcome, timeout_s: float, atol, rtol,
           allow_ops, source: str, nonce: str | None = None) -> None:
    from kgen.core.verify import compare, escapes, purity

    verdict.peak_mem_bytes = int(outcome.maxrss or 0)
    result = _read_result(workdir, nonce)
    verdict.log_tail = _log_tail(workdir)[-2000:]
    if outcome.timed_out:
        verdict.status = "timeout"
        verdict.message = f"no result within {timeout_s:g} s; the run was killed"
        return
    if result is None:
        verdict.status = "crashed"
        if outcome.signal:
            try:
                name = signal.Signals(outcome.signal).name
            except ValueError:
                name = str(outcome.signal)
            verdict.message = f"the run was killed by signal {name}"
        elif outcome.runner_died:
            verdict.message = "the warm runner died during the run (it has been replaced)"
        else:
            verdict.message = f"the run exited with code {outcome.exit_code} without a result"
        return
    if not result.get("ok"):
        verdict.status = _failure_status(result)
        where = result.get("phase", "run")
        seed = f" (seed {result['seed']})" if "seed" in result else ""
        verdict.message = (str(result.get("error")) if result.get("tampered")
                           else f"{where}{seed}: {result.get('error', 'failed')}")
        if result.get("traceback"):
            verdict.log_tail = (verdict.log_tail + "\n" + result["traceback"])[-2000:]
        verdict.trials_run = len(result.get("trials") or [])
        return

    import torch

    ran = {int(t.get("seed", -1)): t for t in result.get("trials") or [] if isinstance(t, dict)}
    ops: dict[str, int] = {}
    host: dict[str, int] = {}
    escaped: set[str] = set()
    launches = 0
    failures = []
    for seed in ref.seeds:
        t = ran.get(seed)
        if t is None:
            failures.append(f"seed {seed}: no output")
            verdict.trials.append(Trial(seed=seed, ok=False, message="no output"))
            continue
        launches += int(t.get("launches") or 0)
        for name, count in (t.get("ops") or {}).items():
            ops[str(name)] = ops.get(str(name), 0) + int(count)
        trial_host = {str(k): int(v) for k, v in (t.get("host") or {}).items()}
        escaped.update(escapes.escapes(trial_host))
        for name, count in trial_host.items():
            host[name] = host.get(name, 0) + count
        try:
            cand = torch.load(os.path.join(workdir, f"cand_{seed}.pt"), weights_only=True)
            if not isinstance(cand, dict) or not isinstance(cand.get("outputs"), list) \
                    or not isinstance(cand.get("inputs_after"), list):
                raise ValueError("unexpected layout")
        except Exception as exc:  # noqa: BLE001 - unreadable outputs are the candidate's fault
            cmp = compare.Comparison(False, message=f"outputs could not be read: {type(exc).__name__}")
        else:
            cmp = compare.compare_trial(ref.trials[seed], cand, ref.structure, str(t.get("structure")), atol, rtol)
            if cmp.ok:
                kinds = [o.get("device") for o in t.get("outputs") or []]
                want = [o.get("device") for o in ref.outputs]
                if kinds != want:
                    cmp = compare.Comparison(False, cmp.max_abs_err, cmp.max_rel_err,
                                             f"outputs on device {kinds}, expected {want}")
        verdict.trials.append(Trial(seed=seed, ok=cmp.ok, max_abs_err=cmp.max_abs_err,
                                    max_rel_err=cmp.max_rel_err, message=cmp.message))
        if not cmp.ok:
            failures.append(f"seed {seed}: {cmp.message}")
    verdict.trials_run = len(ran)
    verdict.kernels_launched = launches
    verdict.torch_ops = purity.compute_ops(ops) + sorted(escaped)
    verdict.pure = not verdict.torch_ops
    verdict.static_torch_calls = purity.static_torch_calls(source)
    first = ref.trials[ref.seeds[0]]["outputs"]
    if first:
        verdict.atol, verdict.rtol = compare.tolerance_for(first[0].dtype, atol, rtol)
    bad_ops = purity.disallowed(verdict.torch_ops, allow_ops)
    bad_host = [op for op in bad_ops if op.startswith("host:")]
    mismatch = f"; also {failures[0]}" if failures else ""
    if launches == 0:
        verdict.status = "rejected"
        verdict.message = "no Triton kernel launched" + (
            f" (torch compute ops: {', '.join(verdict.torch_ops)})" if verdict.torch_ops else "") + mismatch
    elif bad_host:
        verdict.status = "rejected"
        counts = ", ".join(f"{op} x{host.get(op, 0)}" for op in bad_host)
        verdict.message = (f"computation escaped the op recorder (to NumPy/Python on the host, or to "
                           f"another thread or process): {counts}{mismatch}")
    elif bad_ops:
        verdict.status = "rejected"
        verdict.message = f"compute done by torch: {', '.join(bad_ops)} (declare fallbacks with allow_ops){mismatch}"
    elif failures:
        verdict.status = "incorrect"
        verdict.message = f"{len(failures)} of {len(ref.seeds)} trials failed; first: {failures[0]}"
    else:
        verdict.status = "correct"
        verdict.message = f"correct on {len(ref.seeds)} trials, {launches} Triton launches" + (
            "" if verdict.pure else f", torch fallbacks: {', '.join(verdict.torch_ops)}")


def _timing(verdict: Verdict, task, key, seeds, timeout_s, pool, ref, workdir, nonce=None) -> None:
    result = _read_result(workdir, nonce) or {}
    if key == "cpu":
        cand = [float(t.get("ms") or 0.0) for t in result.get("trials") or []]
        verdict.timing = Timing(kind="interpreter",
                                candidate_ms=round(statistics.median(cand), 4) if cand else None,
                                eager_ms=round(statistics.median(ref.eager_ms), 4) if ref.eager_ms else None,
                                repeats=len(cand))
        return
    gpu = result.get("gpu") or {}
    if result.get("peak_cuda_bytes"):
        verdict.peak_mem_bytes = int(result["peak_cuda_bytes"])
    base = _gpu_baseline(task, key, seeds, timeout_s, pool, ref) or {}
    cand_ms, eager_ms, compile_ms = gpu.get("candidate_ms"), base.get("eager_ms"), base.get("compile_ms")
    verdict.timing = Timing(
        kind="gpu", candidate_ms=cand_ms, eager_ms=eager_ms, compile_ms=compile_ms,
        speedup_eager=(eager_ms / cand_ms) if cand_ms and eager_ms else None,
        speedup_compile=(compile_ms / cand_ms) if cand_ms and compile_ms else None,
        repeats=int(gpu.get("repeats") or 0))
