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

from kgen.core.errors import BadInput, KgenError, TaskError
from kgen.core.verify.verdict import Timing, Trial, Verdict

INIT_SEED = 1234
MIN_TRIALS = 3
FRESH_BATCH = 8             # most fresh-seed trials made per reference run (harness._fresh_batch)
FRESH_BATCH_BYTES = 32 << 20  # ... and at most this much of their outputs held per task
EXTERNAL_REPEATS_CPU = 3     # timed calls driven from the verifier (interpreter: slow calls)
EXTERNAL_REPEATS_GPU = 20
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
        # The interpreter is single-threaded Python; parallelism comes from the node's slots, and
        # a per-run OpenMP pool only spin-waits against the other slots' runs (compare.py).
        cfg["torch_threads"] = 1
    else:
        cfg["env"]["CUDA_VISIBLE_DEVICES"] = _physical_gpu(int(key.split(":")[1]))
        cfg["env"]["TRITON_INTERPRET"] = "0"  # a GPU run compiles, whatever the caller's shell says
        cfg["cuda_memory_fraction"] = 0.9
    return cfg


class MalformedResult(Exception):
    """result.json (written inside the candidate's process) is not what the harness writes: the
    candidate's fault, judged `crashed`. Every other exception while judging is a harness bug and
    propagates as one (HarnessError), never blamed on the candidate."""


class HarnessError(KgenError):
    code = "harness_error"


def _read_result(workdir: str, nonce: str | None = None) -> dict | None:
    try:
        with open(os.path.join(workdir, "result.json")) as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    if nonce is not None and data.get("nonce") != nonce:
        raise MalformedResult("result.json was not written by the harness")
    return data


def _need(cond: bool, what: str) -> None:
    if not cond:
        raise MalformedResult(what)


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _counts(v, what: str) -> dict:
    _need(isinstance(v, dict) and all(isinstance(k, str) and isinstance(n, int) and not isinstance(n, bool)
                                      for k, n in v.items()), f"{what} is not a name -> count map")
    return v


def validate_candidate_result(result: dict | None) -> dict | None:
    """Check every field _judge and _timing read, before they read it (raises MalformedResult)."""
    if result is None:
        return None
    _need(isinstance(result.get("ok"), bool), "ok is not a boolean")
    if not result["ok"]:
        for key in ("phase", "error", "traceback"):
            _need(result.get(key) is None or isinstance(result[key], str), f"{key} is not text")
        _need(result.get("seed") is None or isinstance(result["seed"], int), "seed is not an integer")
        _need(isinstance(result.get("trials", []), list), "trials is not a list")
        return result
    trials = result.get("trials")
    _need(isinstance(trials, list) and all(isinstance(t, dict) for t in trials), "trials is not a list of objects")
    for t in trials:
        _need(isinstance(t.get("seed"), int) and not isinstance(t.get("seed"), bool), "a trial seed is not an integer")
        _need(_is_num(t.get("ms", 0.0)), "a trial time is not a number")
        _need(isinstance(t.get("launches", 0), int), "a launch count is not an integer")
        _counts(t.get("ops") or {}, "ops")
        _counts(t.get("host") or {}, "host")
        _need(isinstance(t.get("structure", ""), str), "structure is not text")
        outs = t.get("outputs") or []
        _need(isinstance(outs, list) and all(isinstance(o, dict) for o in outs), "outputs is not a list of objects")
    gpu = result.get("gpu")
    _need(gpu is None or (isinstance(gpu, dict) and all(_is_num(v) or v is None for k, v in gpu.items()
                                                         if k in ("candidate_ms", "repeats"))), "gpu is malformed")
    _need(result.get("peak_cuda_bytes") is None or isinstance(result["peak_cuda_bytes"], int), "peak bytes malformed")
    return result


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


def _reference_run(task, key: str, seeds, timeout_s: float, pool, profile_gpu: bool, figures: bool = True):
    from kgen.core.verify.reference import describe_failure, load_reference

    workdir = pool.new_workdir()
    try:
        with open(os.path.join(workdir, "task.py"), "w") as fh:
            fh.write(task.source)
        config = _run_config(key, seeds, profile_gpu)
        config["figures"] = figures  # minimum traffic and flops (traffic.reference_figures)
        outcome = pool.run(key, "reference", workdir, config, timeout_s)
        result = _read_result(workdir)
        if result is None or not result.get("ok"):
            raise TaskError(f"bad task: {describe_failure(result, outcome, timeout_s)}")
        ref = load_reference(task, key, tuple(seeds), INIT_SEED, workdir, result)
        ref.gpu = result.get("gpu")
        ref.figures = result.get("figures") if isinstance(result.get("figures"), dict) else None
        return ref
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise


def _with_fresh_trial(task, key: str, ref, timeout_s: float, pool, workdir: str):
    """Copy the inputs of a trial on a seed nobody has seen into the candidate's workdir, and
    return the cached reference extended by that trial (uncached). Trials come from the pool's
    stock, made a batch at a time (reference.FreshStock)."""
    stock = pool.fresh
    skey = (task.id, key, tuple(ref.seeds))
    fresh = stock.take(skey)
    if fresh is None:
        batch = _fresh_trials(task, key, ref, timeout_s, pool, _fresh_batch(ref))
        fresh, rest = batch[0], batch[1:]
        if rest:
            stock.put(skey, rest)
    try:
        shutil.copyfile(fresh.inputs_path, os.path.join(workdir, f"inputs_{fresh.seed}.pt"))
    finally:
        try:
            os.unlink(fresh.inputs_path)
        except OSError:
            pass
    return dataclasses.replace(ref, seeds=ref.seeds + (fresh.seed,), trials={**ref.trials, fresh.seed: fresh.trial},
                               eager_ms=ref.eager_ms + [fresh.eager_ms])


def _fresh_batch(ref) -> int:
    """How many fresh trials one reference run makes: several when a trial is small (the run's
    fork and task import then dominate), one when holding spare outputs would cost real memory."""
    size = 0
    for trial in ref.trials.values():
        size = max(size, sum(getattr(t, "nbytes", 0) for t in trial.get("outputs", []) + trial.get("inputs_after", [])))
    return max(1, min(FRESH_BATCH, FRESH_BATCH_BYTES // max(size, 1)))


def _fresh_trials(task, key: str, ref, timeout_s: float, pool, count: int):
    """Run the reference on `count` new seeds (each after replaying the fixed ones: the candidate
    runs every trial on one instance, so a forward that keeps state across calls, an RNN cell's
    hidden state, must meet the fresh inputs with the same history in the reference)."""
    from kgen.core.verify.reference import describe_failure, load_fresh

    seeds = []
    while len(seeds) < count:
        s = _fresh_seed()
        if s not in seeds:
            seeds.append(s)
    workdir = pool.new_workdir()
    try:
        with open(os.path.join(workdir, "task.py"), "w") as fh:
            fh.write(task.source)
        config = _run_config(key, ref.seeds, False)
        config["fresh_seeds"] = seeds
        outcome = pool.run(key, "reference", workdir, config, timeout_s)
        result = _read_result(workdir)
        if result is None or not result.get("ok") or not result.get("trials"):
            raise TaskError(f"bad task: {describe_failure(result, outcome, timeout_s)}")
        return load_fresh(workdir, result, os.path.join(pool.root, "cache", "fresh"))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


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
        value = {"eager_ms": gpu.get("eager_ms"), "compile_ms": gpu.get("compile_ms"),
                 "settings": gpu.get("settings") or {}}
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
           trials=3, profile=True, pool=None, allow_ops=(), compile_for=(), reject_spills=False) -> Verdict:
    """Verify one candidate against a task on one device. Never raises for a bad candidate;
    raises TaskError for a bad task and BadInput for a bad device, tolerance or compile target.

    `compile_for` (e.g. ["sm_80", "sm_90"]): also compile every launch for these GPU targets,
    inside the run (targets.py); a launch that fails makes the verdict `compile_error`, and so
    does one that spills when `reject_spills`."""
    from kgen.core.verify.reference import StaleReference
    from kgen.core.verify.sandbox import default_pool
    from kgen.core.verify.targets import parse_targets

    canonical, key = parse_device(device)
    try:
        targets = parse_targets(compile_for)
    except ValueError as exc:
        raise BadInput(str(exc)) from None
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
    verdict = Verdict(status="rejected", task_id=task.id, device=canonical, compile_targets=targets,
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
    verdict.reference_precision = getattr(ref, "precision", "") or ""
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
            pool.fresh.invalidate((task.id, key, tuple(seeds)))
            ref = _reference(task, key, seeds, float(timeout_s), pool, profile_gpu)
            ref.copy_inputs_to(workdir)
        ref = _with_fresh_trial(task, key, ref, float(timeout_s), pool, workdir)
        run_cfg = _run_config(key, ref.seeds, profile_gpu)
        run_cfg["compile_for"], run_cfg["reject_spills"] = targets, bool(reject_spills)
        driver = None
        if profile:
            from kgen.core.verify.timing import Driver

            # Timed from here, where the candidate never ran (see timing.py).
            driver = Driver(workdir, EXTERNAL_REPEATS_GPU if key != "cpu" else EXTERNAL_REPEATS_CPU,
                            float(timeout_s), gpu=key != "cpu")
            run_cfg["external_timing"] = True
            driver.start()
        try:
            outcome = pool.run(key, "candidate", workdir, run_cfg, float(timeout_s))
        finally:
            if driver is not None:
                driver.stop()
        try:
            _judge(verdict, ref, workdir, outcome, float(timeout_s), atol, rtol, allow_ops, candidate_source,
                   run_cfg["nonce"])
            if profile and verdict.status == "correct":
                _timing(verdict, task, key, seeds, float(timeout_s), pool, ref, workdir, run_cfg["nonce"], driver,
                        atol, rtol)
        except MalformedResult as exc:
            # result.json is written inside the candidate's process: a forged one is its fault.
            verdict.status, verdict.trials, verdict.timing = "crashed", [], None
            verdict.message = f"the run left a malformed result ({exc})"[:500]
        except (KgenError, MemoryError, KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:
            # Raised by the verifier's own code on data it validated: a bug here, not the candidate's.
            raise HarnessError(f"verifier error while judging the candidate ({type(exc).__name__}: {exc}); "
                               "this is a kgen bug, not a verdict") from exc
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    verdict.wall_s = round(time.monotonic() - started, 4)
    return verdict


def _judge(verdict: Verdict, ref, workdir: str, outcome, timeout_s: float, atol, rtol,
           allow_ops, source: str, nonce: str | None = None) -> None:
    from kgen.core.verify import compare, escapes, purity

    verdict.peak_mem_bytes = int(outcome.maxrss or 0)
    result = validate_candidate_result(_read_result(workdir, nonce))
    verdict.log_tail = _log_tail(workdir)[-2000:]
    if result is not None and isinstance(result.get("compiled"), list):
        verdict.compiled = [dict(r) for r in result["compiled"] if isinstance(r, dict)][:256]
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
    _traffic(verdict, ref, ran)
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
    elif any(not r.get("ok") for r in verdict.compiled):
        # The run stops at a failed target compile; one that went on anyway swallowed the error.
        bad = next(r for r in verdict.compiled if not r.get("ok"))
        verdict.status = "compile_error"
        verdict.message = f"kernel {bad.get('kernel')} does not compile for {bad.get('target')}: {bad.get('error')}"[:1000]
    elif failures:
        verdict.status = "incorrect"
        verdict.message = f"{len(failures)} of {len(ref.seeds)} trials failed; first: {failures[0]}"
    else:
        verdict.status = "correct"
        verdict.message = f"correct on {len(ref.seeds)} trials, {launches} Triton launches" + (
            "" if verdict.pure else f", torch fallbacks: {', '.join(verdict.torch_ops)}")


def _traffic(verdict: Verdict, ref, ran: dict) -> None:
    """Traffic of one forward (the first trial) against the task's minimum, and its modelled cost.
    Measured in the candidate's process (best effort); the minimum comes from the reference run."""
    from kgen.core.perf import cost
    from kgen.core.verify import traffic

    first = ran.get(ref.seeds[0]) or {}
    launches = first.get("traffic")
    if not isinstance(launches, list):
        return
    figures = getattr(ref, "figures", None) or {}
    minimum = figures.get("minimum_bytes")
    every = [x for x in launches if isinstance(x, dict)]
    flops = figures.get("flops")
    # the model sees every launch; the verdict lists the first few (traffic.PER_LAUNCH_KEPT)
    verdict.cost = cost.estimate({"per_launch": every}, int(flops) if isinstance(flops, int) else None)
    verdict.traffic = traffic.summarize(every, int(minimum) if isinstance(minimum, int) else None)


def _external(verdict: Verdict, ref, workdir: str, result: dict, driver, gpu: bool, atol, rtol) -> float | None:
    """The verifier's own figure for the timed calls, after checking the run's side of it; sets a
    `rejected` verdict (and returns None) when the run broke the channel, returned a wrong output
    from the timed calls, or reported a time its runner could not confirm."""
    import torch

    from kgen.core.verify import compare, timing

    def reject(why: str) -> None:
        verdict.status, verdict.timing = "rejected", None
        verdict.message = f"{why} (the timed calls are measured outside the candidate's process)"

    external = driver.external_ms() if driver is not None else None
    if external is None:
        reject(f"timing could not be measured: {driver.error if driver and driver.error else 'no timed calls answered'}")
        return None
    seed = ref.seeds[0]
    try:
        saved = torch.load(os.path.join(workdir, timing.OUT), weights_only=True)
        outs = saved["outputs"] if isinstance(saved, dict) else None
        if not isinstance(outs, list):
            raise ValueError("unexpected layout")
    except Exception:  # noqa: BLE001 - unreadable output is the run's fault
        reject("the timed calls left no readable output")
        return None
    cmp = compare.compare_trial(ref.trials[seed], {"outputs": outs, "inputs_after": ref.trials[seed]["inputs_after"]},
                                ref.structure, ref.structure, atol, rtol)
    if not cmp.ok:
        reject(f"the timed calls returned a wrong output ({cmp.message})")
        return None
    inproc = result.get("timing_inproc_min_ms")
    if not _is_num(inproc):
        reject("the run reported no time for the timed calls")
        return None
    # Fastest call against fastest call: scheduling delays only ever add time, on either side.
    problem = timing.disagreement(min(driver.samples_ms), float(inproc), gpu)
    if problem:
        reject(problem)
        return None
    return external


def _timing(verdict: Verdict, task, key, seeds, timeout_s, pool, ref, workdir, nonce=None, driver=None,
            atol=None, rtol=None) -> None:
    result = validate_candidate_result(_read_result(workdir, nonce)) or {}
    external = _external(verdict, ref, workdir, result, driver, key != "cpu", atol, rtol)
    if external is None:
        return
    if key == "cpu":
        verdict.timing = Timing(kind="interpreter", candidate_ms=round(external, 4),
                                eager_ms=round(statistics.median(ref.eager_ms), 4) if ref.eager_ms else None,
                                repeats=len(driver.samples_ms))
        return
    gpu = result.get("gpu") or {}
    if result.get("peak_cuda_bytes"):
        verdict.peak_mem_bytes = int(result["peak_cuda_bytes"])
    base = _gpu_baseline(task, key, seeds, timeout_s, pool, ref) or {}
    # The run's CUDA-event median (comparable with the baselines, timed the same way), once the
    # cross-check above bounded the in-process figure by the runner's own clock.
    cand_ms, eager_ms, compile_ms = gpu.get("candidate_ms"), base.get("eager_ms"), base.get("compile_ms")
    if _is_num(cand_ms) and timing_disagrees(external, float(cand_ms)):
        verdict.status, verdict.timing = "rejected", None
        verdict.message = (f"timing disagrees: the runner measured {external:.4g} ms per call, the run's "
                           f"profile reported {float(cand_ms):.4g} ms")
        return
    verdict.baseline_settings = dict(base.get("settings") or {})
    verdict.timing = Timing(
        kind="gpu", candidate_ms=cand_ms, eager_ms=eager_ms, compile_ms=compile_ms,
        speedup_eager=(eager_ms / cand_ms) if cand_ms and eager_ms else None,
        speedup_compile=(compile_ms / cand_ms) if cand_ms and compile_ms else None,
        repeats=int(gpu.get("repeats") or 0), external_ms=round(external, 4))


def timing_disagrees(external: float, inproc: float) -> bool:
    from kgen.core.verify.timing import disagreement

    return disagreement(external, inproc, True) is not None
