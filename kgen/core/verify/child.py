"""The two roles a forked run can play. Files in, files out; the verifier decides.

- reference: imports the task (never a candidate), builds the init inputs and one input set per
  trial seed, runs Model, and writes inputs, the state_dict and reference outputs. Reference
  outputs are read once by the verifier and deleted; they never sit where a candidate runs.
- candidate: imports the candidate, builds ModelNew under the same seed as Model was built,
  loads the reference state_dict when its keys and shapes match exactly (the rule generated
  modules rely on to hold parameters "the same way the reference does"), then runs ONE
  instance over all trials (fresh seeded inputs each time, so memoising fails), recording Triton
  launches, torch ops and host escapes, and writes the outputs and the post-call inputs. Every
  hook is installed before the candidate is imported; after its import, its construction and
  each forward, tamper.Integrity checks they are still ours (a failed check is "tamper", which
  the verifier turns into `rejected`).

Every outcome is a result.json; an exception escaping here is a crash of the run.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import sys
import time
import traceback

RESULT = "result.json"


def seed_all(seed: int) -> None:
    import torch

    random.seed(seed)
    # Not torch.manual_seed: for every accelerator backend not initialised yet it queues a lazy
    # seeding call with a captured Python stack, milliseconds per call on a CPU-only run.
    torch.random.default_generator.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    try:
        import numpy as np

        np.random.seed(seed % (2**32))
    except ImportError:
        pass


def _write_result(workdir: str, data: dict) -> None:
    tmp = os.path.join(workdir, RESULT + ".tmp")
    with open(tmp, "w") as fh:
        json.dump(data, fh)
    os.replace(tmp, os.path.join(workdir, RESULT))


def _import_file(path: str, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _tb_tail(limit: int = 2000) -> str:
    return traceback.format_exc()[-limit:]


def _is_compile_error(exc: BaseException) -> bool:
    for cls in type(exc).__mro__:
        if cls.__name__ in ("CompilationError", "CompileTimeAssertionFailure", "UnsupportedLanguageConstruct",
                            "TargetCompileError"):
            return True
    return isinstance(exc, (SyntaxError, ImportError))


def _failure(phase: str, exc: BaseException, **extra) -> dict:
    msg = f"{type(exc).__name__}: {exc}".strip()
    if isinstance(exc, MemoryError):
        msg = "MemoryError: out of memory (the run's memory limit was reached)"
    return {"ok": False, "phase": phase, "error_type": type(exc).__name__, "error": msg[:2000],
            "compile": _is_compile_error(exc), "traceback": _tb_tail(), **extra}


def _device(config: dict):
    import torch

    dev = config.get("device", "cpu")
    if dev.startswith("cuda"):
        torch.cuda.set_device(0)  # CUDA_VISIBLE_DEVICES already names the one device we own
        frac = config.get("cuda_memory_fraction")
        if frac:
            torch.cuda.set_per_process_memory_fraction(float(frac), 0)
        return torch.device("cuda", 0)
    return torch.device("cpu")


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def _to_device(values, device):
    import torch

    return [v.to(device) if isinstance(v, torch.Tensor) else v for v in values]


def _snapshot(values) -> list:
    import torch

    return [v.detach().to("cpu").clone() if isinstance(v, torch.Tensor) else None for v in values]


def _flatten_output(out) -> tuple[str, list]:
    """-> (structure, tensors); raises TypeError for anything but a tensor or tuple/list of tensors."""
    import torch

    def plain(t):
        if type(t) not in (torch.Tensor, torch.nn.Parameter):
            raise TypeError(f"output is a {type(t).__name__}, not a plain torch.Tensor")
        return t

    if isinstance(out, torch.Tensor):
        return "tensor", [plain(out)]
    if isinstance(out, (tuple, list)) and out and all(isinstance(o, torch.Tensor) for o in out):
        return type(out).__name__ if type(out) in (tuple, list) else "tuple", [plain(o) for o in out]
    raise TypeError(f"forward returned {type(out).__name__}; expected a tensor or a tuple/list of tensors")


def _out_specs(device, tensors) -> list[dict]:
    return [{"shape": list(t.shape), "dtype": str(t.dtype).replace("torch.", ""), "device": t.device.type}
            for t in tensors]


def _load(path: str):
    import torch

    return torch.load(path, weights_only=True)


def math_settings() -> dict:
    """The float32 math modes in force now: what TF32 may do to matmuls and convolutions."""
    import torch

    return {"cuda_matmul_allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
            "cudnn_allow_tf32": bool(torch.backends.cudnn.allow_tf32),
            "float32_matmul_precision": str(torch.get_float32_matmul_precision())}


def strict_fp32() -> dict:
    """Turn TF32 off for matmul and cuDNN; -> the settings that were in force before.

    PyTorch's defaults let cuDNN convolutions (and, with 'high' precision, matmuls) run in TF32,
    whose ~1e-3 error would make a 1e-4 comparison judge noise: fp32 references are fp32."""
    import torch

    before = math_settings()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    return before


def restore_math(settings: dict) -> None:
    import torch

    torch.backends.cuda.matmul.allow_tf32 = bool(settings["cuda_matmul_allow_tf32"])
    torch.backends.cudnn.allow_tf32 = bool(settings["cudnn_allow_tf32"])
    torch.set_float32_matmul_precision(settings["float32_matmul_precision"])


def run_reference(workdir: str, config: dict) -> dict:
    import torch

    try:
        task = _import_file(os.path.join(workdir, "task.py"), "kgen_task")
    except BaseException as exc:  # noqa: BLE001
        return _failure("import", exc)
    from kgen.core.task import missing_required

    missing = missing_required(task)
    if missing:
        return {"ok": False, "phase": "import", "error": f"task does not define a callable {missing[0]}"}
    try:
        device = _device(config)
        seed_all(int(config["init_seed"]))
        init_inputs = list(task.get_init_inputs())
        fresh = [int(s) for s in config.get("fresh_seeds") or ()]
        if not fresh:  # a fresh-trials run only adds trials to a reference that has these files
            torch.save(init_inputs, os.path.join(workdir, "init.pt"))
        seed_all(int(config["init_seed"]))
        model = task.Model(*init_inputs)
        if not fresh:
            torch.save({k: v.detach().to("cpu") for k, v in model.state_dict().items()},
                       os.path.join(workdir, "state.pt"))
        model = model.to(device)
    except BaseException as exc:  # noqa: BLE001
        return _failure("construct", exc)

    user_math = strict_fp32() if device.type == "cuda" else None
    result: dict = {"ok": True, "trials": [], "device_name": _device_name(device),
                    "precision": "fp32-strict (tf32 off)" if user_math is not None else "default"}
    if fresh:
        return _fresh_trials(task, model, device, workdir, config, fresh, result)
    for seed in config["seeds"]:
        failed, last = _trial(task, model, device, workdir, seed, result, save=True)
        if failed is not None:
            return failed
        dev_inputs, tensors = last

    if config.get("figures") and config["seeds"]:
        # Minimum traffic and flops, from the task alone; after every saved forward, because the
        # flop count runs forward once more (a stateful Model would otherwise drift).
        from kgen.core.verify.traffic import reference_figures

        try:
            seed_all(int(config["seeds"][-1]))
            result["figures"] = reference_figures(model, dev_inputs, tensors)
        except Exception as exc:  # noqa: BLE001 - figures are advisory, never fail the task
            result["figures"] = {"error": f"{type(exc).__name__}: {exc}"[:300]}

    if config.get("profile_gpu") and device.type == "cuda":
        from kgen.core.verify import gpu_timing

        inputs = _to_device(_load(os.path.join(workdir, f"inputs_{config['seeds'][0]}.pt")), device)
        # Baselines run as users run them: with their (PyTorch's default) math modes.
        restore_math(user_math)
        result["gpu"] = gpu_timing.time_reference(model, inputs, repeats=int(config.get("repeats", 20)))
        result["gpu"]["settings"] = math_settings()
    return result


def _trial(task, model, device, workdir: str, seed: int, result: dict, *, save: bool) -> tuple[dict | None, tuple]:
    """One seeded forward of the reference; with `save`, its inputs and outputs become files and
    a trial entry in `result`. Returns (a failure result or None, (device inputs, outputs))."""
    import torch

    try:
        seed_all(int(seed))
        inputs = task.get_inputs()
        if not isinstance(inputs, (list, tuple)):
            raise TypeError(f"get_inputs() returned {type(inputs).__name__}, expected a list")
        inputs = list(inputs)
        if save:
            torch.save(inputs, os.path.join(workdir, f"inputs_{seed}.pt"))
        dev_inputs = _to_device(inputs, device)
        seed_all(int(seed))
        _sync(device)
        t0 = time.perf_counter()
        with torch.no_grad():
            out = model(*dev_inputs)
        _sync(device)
        ms = (time.perf_counter() - t0) * 1000.0
    except BaseException as exc:  # noqa: BLE001
        return _failure("forward", exc, seed=seed), ()
    try:
        structure, tensors = _flatten_output(out)
    except TypeError as exc:
        return _failure("output", exc, seed=seed), ()
    if save:
        torch.save({"outputs": [t.detach().to("cpu").clone() for t in tensors],
                    "inputs_after": _snapshot(dev_inputs)},
                   os.path.join(workdir, f"ref_{seed}.pt"))
        result["structure"] = structure
        result["outputs"] = _out_specs(device, tensors)
        result["trials"].append({"seed": seed, "ms": ms})
    return None, (dev_inputs, tensors)


def _fresh_trials(task, model, device, workdir: str, config: dict, fresh: list[int], result: dict) -> dict:
    """Fresh-seed trials for later verifications, several per run (the fork and task import are
    the bulk of a reference run). A candidate runs the fixed seeds and then ONE fresh seed on
    one instance, so each fresh seed is met by its own copy of the just-built Model after
    replaying the fixed seeds: a forward that keeps state across calls sees the same history."""
    import copy

    try:
        pristine = copy.deepcopy(model) if len(fresh) > 1 else None
    except Exception:  # noqa: BLE001 - not copyable: one fresh trial per run, as before
        pristine, fresh = None, fresh[:1]
    for i, seed in enumerate(fresh):
        instance = model if i == 0 else copy.deepcopy(pristine)
        for fixed in config["seeds"]:
            failed, _ = _trial(task, instance, device, workdir, fixed, result, save=False)
            if failed is not None:
                return failed
        failed, _ = _trial(task, instance, device, workdir, seed, result, save=True)
        if failed is not None:
            return failed
    return result


def _device_name(device) -> str:
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return "cpu (triton interpreter)"


def _tampered(what: str, **extra) -> dict:
    return {"ok": False, "phase": "tamper", "tampered": True,
            "error": f"candidate tampered with the harness instrumentation: {what}"[:2000], **extra}


def _merged(a: dict, b: dict) -> dict:
    return {k: int(a.get(k, 0)) + int(b.get(k, 0)) for k in set(a) | set(b)}


def _instrument(config: dict | None = None):
    """Install every hook before candidate code exists; -> (counter, guard, integrity, meter)."""
    from kgen.core.verify import escapes, instrument, tamper, traffic
    from kgen.core.verify.escapes import HostGuard
    from kgen.core.verify.instrument import LaunchCounter
    from kgen.core.verify.tamper import Integrity

    counter = LaunchCounter()
    counter.install()
    targets = list((config or {}).get("compile_for") or [])
    if targets:
        from kgen.core.verify.targets import Compiler

        counter.compiler = Compiler(targets)
        counter.reject_spills = bool((config or {}).get("reject_spills"))
    guard = HostGuard()
    guard.install()
    meter = None
    if os.environ.get("TRITON_INTERPRET") == "1":  # traffic is measured on the interpreter only
        meter = traffic.TrafficMeter()
        meter.install()
    integrity = Integrity(counter, guard, [sys.modules[__name__], instrument, escapes, tamper, traffic],
                          hooks=meter.installed if meter else None)
    return counter, guard, integrity, meter


def run_candidate(workdir: str, config: dict) -> dict:
    counter, guard, integrity, meter = _instrument(config)
    compiler = counter.compiler  # _candidate drops it from the counter before GPU timing
    result = _candidate(counter, guard, integrity, meter, workdir, config)
    if compiler is not None:
        result["compiled"] = compiler.records
        result["compile_s"] = round(compiler.seconds, 3)
    return result


def _candidate(counter, guard, integrity, meter, workdir: str, config: dict) -> dict:
    import torch

    from kgen.core.verify.instrument import OpRecorder

    try:
        mod = _import_file(os.path.join(workdir, "candidate.py"), "kgen_candidate")
    except BaseException as exc:  # noqa: BLE001
        problem = integrity.check()
        if problem:
            return _tampered(problem)
        res = _failure("import", exc)
        res["compile"] = True
        return res
    problem = integrity.check()
    if problem:
        return _tampered(problem)
    if not callable(getattr(mod, "ModelNew", None)):
        return {"ok": False, "phase": "import", "compile": True,
                "error": "candidate does not define class ModelNew"}
    try:
        device = _device(config)
        init_inputs = _load(os.path.join(workdir, "init.pt"))
        ref_state = _load(os.path.join(workdir, "state.pt"))
        seed_all(int(config["init_seed"]))
        model = mod.ModelNew(*init_inputs)
        own = model.state_dict() if isinstance(model, torch.nn.Module) else {}
        if own and set(own) == set(ref_state) and all(
                tuple(own[k].shape) == tuple(ref_state[k].shape) for k in own):
            model.load_state_dict(ref_state)
        if isinstance(model, torch.nn.Module):
            model = model.to(device)
    except BaseException as exc:  # noqa: BLE001
        return _tampered(integrity.check()) if integrity.check() else _failure("construct", exc)
    problem = integrity.check()
    if problem:
        return _tampered(problem)

    trials = []
    for seed in config["seeds"]:
        try:
            inputs = _to_device(_load(os.path.join(workdir, f"inputs_{seed}.pt")), device)
        except BaseException as exc:  # noqa: BLE001
            return _failure("harness", exc, seed=seed)
        recorder = OpRecorder()
        counter.recorder = guard.recorder = recorder
        launches_before = counter.count
        compile_before = counter.compiler.seconds if counter.compiler is not None else 0.0
        problem = None
        try:
            seed_all(int(seed))
            _sync(device)
            t0 = time.perf_counter()
            with torch.no_grad(), recorder:
                integrity.in_forward = recorder.forward_active = True
                if meter is not None:
                    meter.take()
                    meter.enabled = True
                try:
                    out = model(*inputs)
                    _sync(device)
                    ms = (time.perf_counter() - t0) * 1000.0
                    if counter.compiler is not None:  # compiling for targets is not the kernel's time
                        ms = max(0.0, ms - (counter.compiler.seconds - compile_before) * 1000.0)
                finally:
                    integrity.in_forward = recorder.forward_active = False
                    if meter is not None:
                        meter.enabled = False
                counter.recorder = guard.recorder = None
                problem = integrity.check_recording(recorder)
        except BaseException as exc:  # noqa: BLE001
            problem = problem or integrity.check()
            if problem:
                return _tampered(problem, seed=seed, trials=trials)
            return _failure("forward", exc, seed=seed, trials=trials)
        finally:
            counter.recorder = guard.recorder = None
        if problem:
            return _tampered(problem, seed=seed, trials=trials)
        try:
            structure, tensors = _flatten_output(out)
        except TypeError as exc:
            return _failure("output", exc, seed=seed, trials=trials)
        torch.save({"outputs": [t.detach().to("cpu").clone() for t in tensors],
                    "inputs_after": _snapshot(inputs)},
                   os.path.join(workdir, f"cand_{seed}.pt"))
        trials.append({"seed": seed, "ms": ms, "launches": counter.count - launches_before,
                       "ops": dict(recorder.ops), "host": _merged(recorder.host, guard.take_pending()),
                       "structure": structure,
                       "outputs": _out_specs(device, tensors)})
        if meter is not None:
            trials[-1]["traffic"] = meter.take()

    result: dict = {"ok": True, "trials": trials}
    if config.get("external_timing"):
        _serve_timing(result, model, device, workdir, config)
    if config.get("profile_gpu") and device.type == "cuda":
        from kgen.core.verify import gpu_timing

        guard.uninstall()
        counter.compiler = None  # every specialisation is compiled by now; keep timed launches bare

        inputs = _to_device(_load(os.path.join(workdir, f"inputs_{config['seeds'][0]}.pt")), device)
        try:
            result["gpu"] = gpu_timing.time_candidate(model, inputs, repeats=int(config.get("repeats", 20)))
        except BaseException as exc:  # noqa: BLE001 - a timing failure is reported, not fatal
            result["gpu_error"] = f"{type(exc).__name__}: {exc}"[:500]
        result["peak_cuda_bytes"] = int(torch.cuda.max_memory_allocated())
    return result


def _serve_timing(result: dict, model, device, workdir: str, config: dict) -> None:
    """Let the verifier time calls from outside (kgen.core.verify.timing); record our own figure."""
    import statistics

    import torch

    from kgen.core.verify import gpu_timing, timing

    cuda = device.type == "cuda"
    inputs = _to_device(_load(os.path.join(workdir, f"inputs_{config['seeds'][0]}.pt")), device)
    flush_buf = torch.empty(gpu_timing.L2_FLUSH_BYTES // 4, dtype=torch.int32, device=device) if cuda else None

    def call():
        with torch.no_grad():
            return model(*inputs)

    def flush():
        if flush_buf is not None:
            flush_buf.zero_()
        _sync(device)

    def save(out):
        _, tensors = _flatten_output(out)
        torch.save({"outputs": [t.detach().to("cpu").clone() for t in tensors]}, os.path.join(workdir, timing.OUT))

    try:
        inproc = timing.serve(workdir, call, lambda: _sync(device), flush, save, cuda)
        result["timing_inproc_ms"] = float(statistics.median(inproc)) if inproc else None
        result["timing_inproc_min_ms"] = float(min(inproc)) if inproc else None
    except BaseException as exc:  # noqa: BLE001 - the verifier sees the missing figure
        result["timing_error"] = f"{type(exc).__name__}: {exc}"[:500]
    finally:
        flush_buf = None  # frees the L2-flush buffer before the next phase  # noqa: F841


def main(role: str, workdir: str, config: dict) -> int:
    # The nonce marks result.json as written by this harness, not pre-forged by candidate code
    # that then exits. Candidate code shares this process, so this is a speed bump, not a proof.
    nonce = config.pop("nonce", None)
    runner = {"reference": run_reference, "candidate": run_candidate}[role]
    threads = config.get("torch_threads")
    if isinstance(threads, int) and threads > 0:
        import torch

        torch.set_num_threads(threads)
    if config.get("device", "cpu") == "cpu":
        from kgen.core.verify.instrument import interpreter_compat

        interpreter_compat()
    try:
        result = runner(workdir, config)
    except BaseException as exc:  # noqa: BLE001
        result = _failure("harness", exc)
    sys.stdout.flush()
    sys.stderr.flush()
    result["nonce"] = nonce
    _write_result(workdir, result)
    return 0
