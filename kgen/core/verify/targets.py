"""Compile a candidate's real launches for real GPU targets, on a machine with no GPU.

Triton's wheel carries the NVIDIA toolchain (`ptxas`, `cuobjdump`), so a launch seen by the CPU
interpreter can also be compiled for, say, sm_80 and sm_90: a driver object whose current target
is the wanted one makes `JITFunction.run(..., warmup=True)` specialise the real arguments
(dtypes, 16-byte alignment, integer values, constexprs, num_warps/num_stages) exactly as the GPU
launch would, and compile without launching. ptxas then reports registers and spills.

Under TRITON_INTERPRET=1 every `@triton.jit` function (the candidate's and triton.language's own,
e.g. tl.max) is an InterpretedFunction, which the compiler cannot call; `_lang_scope` swaps JIT
twins in for the duration of one compile and puts everything back.

This runs inside the candidate's sandboxed run (child.py), at the first launch of each distinct
kernel specialisation, before the interpreter spends time on it; its seconds are subtracted from
the trial's wall time. Results are cached per (kernel source, specialisation, target).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import subprocess
import sys
import tempfile
import time
import types

_TARGET_RE = re.compile(r"^sm_?(\d{2,3})a?$")
_SPILL_RE = re.compile(r"(\d+) bytes spill stores, (\d+) bytes spill loads")
_REGS_RE = re.compile(r"Used (\d+) registers")


def parse_targets(value) -> list[str]:
    """'sm_80,sm_90' or ['sm_80', 'sm_90'] -> ['sm_80', 'sm_90']; ValueError names the bad one."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    out: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"compile target must be a string like sm_90, got {item!r}")
        name = item.strip().lower()
        if not name:
            continue
        m = _TARGET_RE.match(name)
        if not m or not 50 <= int(m.group(1)) <= 130:
            raise ValueError(f"unknown compile target {item.strip()!r}: expected sm_NN such as sm_80 or sm_90")
        canon = f"sm_{int(m.group(1))}"
        if canon not in out:
            out.append(canon)
    return out


def capability(target: str) -> int:
    return int(target.split("_")[1])


def _nvidia_bin(name: str) -> str:
    import triton.backends.nvidia as nv

    return os.path.join(os.path.dirname(nv.__file__), "bin", name)


def _ptxas(cap: int) -> str:
    """The ptxas triton itself uses for this capability (the wheel ships two)."""
    try:
        from triton.backends.nvidia.compiler import get_ptxas

        return get_ptxas(cap).path
    except Exception:  # noqa: BLE001 - older layouts: the plain binary next to the backend
        return _nvidia_bin("ptxas")


class _TargetDriver:
    """Just enough of a triton driver for a warm-up compile: a target, a device id, a stream.
    The device id is the capability, so each target gets its own binder and kernel cache."""

    def __init__(self, cap: int) -> None:
        from triton.backends.compiler import GPUTarget

        self.target = GPUTarget("cuda", cap, 32)
        self.cap = cap

    def get_current_target(self):
        return self.target

    def get_current_device(self):
        return self.cap

    def get_current_stream(self, device=None):
        return 0

    def set_current_device(self, device) -> None:
        pass


class Compiler:
    """Turns interpreter launches into compile records; one instance per candidate run."""

    def __init__(self, targets: list[str]) -> None:
        self.targets = list(targets)
        self.records: list[dict] = []
        self.seconds = 0.0            # time spent compiling (kept out of the trials' wall time)
        self._jit: dict[object, object] = {}   # python fn -> JITFunction twin
        self._seen: set[tuple] = set()
        self._code_hash: dict[object, str] = {}
        self._prepared = False
        self._snapshot()

    # -- interpreter -> JIT twins ------------------------------------------------------
    def _twin(self, fn):
        from triton.runtime.interpreter import InterpretedFunction
        from triton.runtime.jit import JITFunction

        if fn in self._jit:
            return self._jit[fn]
        glb = dict(fn.__globals__)
        new = types.FunctionType(fn.__code__, glb, fn.__name__, fn.__defaults__, fn.__closure__)
        new.__module__, new.__qualname__ = fn.__module__, fn.__qualname__
        new.__annotations__ = dict(getattr(fn, "__annotations__", {}) or {})
        new.__kwdefaults__ = fn.__kwdefaults__
        twin = JITFunction(new)
        self._jit[fn] = twin
        for name, value in list(glb.items()):
            if isinstance(value, InterpretedFunction):
                glb[name] = self._twin(value.fn)
        return twin

    @staticmethod
    def _lang_owners() -> list:
        """triton.language's modules and classes: what the interpreter patches while it runs."""
        owners = [m for n, m in list(sys.modules.items()) if n.startswith("triton.language") and m is not None]
        classes = []
        for mod in owners:
            classes += [v for v in vars(mod).values()
                        if isinstance(v, type) and getattr(v, "__module__", "").startswith("triton.language")]
        return owners + list({id(c): c for c in classes}.values())

    def _snapshot(self) -> None:
        # Taken before any interpreted launch. The interpreter patches triton.language during a
        # launch and restores it after, except for patches made by nested @jit calls, which stay:
        # a compile must see the pristine language, not the interpreter's stand-ins.
        self._pristine = {id(o): (o, dict(vars(o))) for o in self._lang_owners()}

    @contextlib.contextmanager
    def _lang_scope(self):
        """For one compile: triton.language as it was before any interpretation, with JIT twins
        for its interpreted functions (and the tensor methods that forward to them); then put
        everything back as it was."""
        import triton.language as tl
        from triton.runtime.interpreter import InterpretedFunction

        missing = object()
        saved = []

        def put(owner, name, value):
            saved.append((owner, name, vars(owner).get(name, missing)))
            if value is missing:
                delattr(owner, name)
            else:
                setattr(owner, name, value)

        try:
            for owner, pristine in self._pristine.values():
                now = dict(vars(owner))
                for name in set(now) | set(pristine):
                    if name.startswith("__"):
                        continue
                    want = pristine.get(name, missing)
                    if now.get(name, missing) is not want:
                        put(owner, name, want)
            owners = [m for n, m in list(sys.modules.items()) if n.startswith("triton.language") and m is not None]
            owners.append(tl.core.tensor)
            for owner in owners:
                for name, value in list(vars(owner).items()):
                    if isinstance(value, InterpretedFunction):
                        put(owner, name, self._twin(value.fn))
                    elif isinstance(owner, type) and callable(value) and getattr(value, "__closure__", None):
                        inner = [c.cell_contents for c in value.__closure__
                                 if isinstance(c.cell_contents, InterpretedFunction)]
                        if len(inner) == 1:
                            put(owner, name, self._twin(inner[0].fn))
            yield
        finally:
            for owner, name, value in reversed(saved):
                if value is missing:
                    if name in vars(owner):
                        delattr(owner, name)
                else:
                    setattr(owner, name, value)

    def _prepare(self) -> None:
        if self._prepared:
            return
        self._prepared = True
        # Modules that assert "interpreting or JIT" at import time must be imported while the
        # interpreter knob is still on (triton imports gluon lazily inside the binder).
        with contextlib.suppress(Exception):
            import triton.experimental.gluon  # noqa: F401

    # -- one launch ----------------------------------------------------------------------
    def on_launch(self, kernel, args, kwargs) -> list[dict]:
        """Compile this launch for every target unless its specialisation was seen; -> the new
        records (each ok or not)."""
        from triton.runtime.interpreter import InterpretedFunction

        fn = kernel.fn if isinstance(kernel, InterpretedFunction) else getattr(kernel, "fn", None)
        if fn is None or not self.targets:
            return []
        started = time.perf_counter()
        try:
            self._prepare()
            key = self._launch_key(fn, args, kwargs)
            if key in self._seen:
                return []
            self._seen.add(key)
            new = [self._compile_one(fn, args, kwargs, t) for t in self.targets]
            self.records.extend(new)
            return new
        finally:
            self.seconds += time.perf_counter() - started

    def _launch_key(self, fn, args, kwargs) -> tuple:
        import torch

        def spec(v):
            if isinstance(v, torch.Tensor):
                return ("t", str(v.dtype), v.data_ptr() % 16 == 0)
            if isinstance(v, bool) or not isinstance(v, int):
                return ("v", repr(v)[:200])
            return ("i", v == 1, v % 16 == 0, -2**31 <= v < 2**31)
        src = self._code_hash.get(fn)
        if src is None:
            src = self._code_hash[fn] = hashlib.sha256(fn.__code__.co_code).hexdigest()
        return (src, fn.__qualname__, tuple(spec(a) for a in args),
                tuple(sorted((k, spec(v)) for k, v in kwargs.items() if k != "grid")))

    def _compile_one(self, fn, args, kwargs, target: str) -> dict:
        from triton import knobs
        from triton.runtime.driver import driver

        grid = kwargs.get("grid")
        launch = {k: v for k, v in kwargs.items() if k not in ("grid", "warmup")}
        rec = {"kernel": fn.__name__, "target": target, "ok": False, "error": "", "n_regs": None,
               "n_spills": None, "shared": None, "num_warps": launch.get("num_warps", 4),
               "num_stages": launch.get("num_stages"), "grid": _grid_repr(grid, fn, args, launch)}
        twin = self._twin(fn)
        old_active, old_interp = driver._active, knobs.runtime.interpret
        old_dump = getattr(knobs.nvidia, "dump_ptxas_log", None)
        captured = io.StringIO()
        try:
            driver.set_active(_TargetDriver(capability(target)))
            knobs.runtime.interpret = False
            if old_dump is not None:
                knobs.nvidia.dump_ptxas_log = True  # triton prints ptxas -v: registers and spills
            with self._lang_scope(), contextlib.redirect_stdout(captured):
                compiled = twin.run(*args, grid=(1,), warmup=True, **launch)
        except Exception as exc:  # noqa: BLE001 - the compiler's error is the finding
            rec["error"] = _first_error(exc)
            return rec
        finally:
            driver._active = old_active
            knobs.runtime.interpret = old_interp
            if old_dump is not None:
                knobs.nvidia.dump_ptxas_log = old_dump
        meta = compiled.metadata
        rec["num_warps"] = int(getattr(meta, "num_warps", rec["num_warps"]) or 0)
        rec["num_stages"] = getattr(meta, "num_stages", rec["num_stages"])
        rec["shared"] = int(getattr(meta, "shared", 0) or 0)
        # From the ptxas run triton just made; a kernel served from triton's disk cache printed
        # nothing, so ptxas -v runs once more on its PTX.
        usage = _usage_from_log(captured.getvalue()) or _ptxas_usage(compiled.asm.get("ptx"), target)
        if usage.get("error"):
            rec["error"] = usage["error"]
            return rec
        rec.update(ok=True, n_regs=usage.get("n_regs"), n_spills=usage.get("n_spills"))
        return rec


def _grid_repr(grid, fn, args, launch) -> list | None:
    try:
        if callable(grid):
            import inspect

            bound = inspect.signature(fn).bind(*args, **{k: v for k, v in launch.items()
                                                         if k in inspect.signature(fn).parameters})
            grid = grid(dict(bound.arguments))
        return [int(g) for g in tuple(grid)]
    except Exception:  # noqa: BLE001 - the grid is evidence only
        return None


def _first_error(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text[-1500:]


def _arch(target: str) -> str:
    cap = capability(target)
    # What triton itself passes: the "a" variants carry sm_90's wgmma/TMA and later features.
    return f"sm_{cap}a" if cap >= 90 else f"sm_{cap}"


def _usage_from_log(log: str) -> dict:
    regs = [int(m) for m in _REGS_RE.findall(log)]
    if not regs:
        return {}
    spills = [int(a) for a, _ in _SPILL_RE.findall(log)]  # bytes spilled (stored to local memory)
    return {"n_regs": max(regs), "n_spills": max(spills) if spills else 0}


def _ptxas_usage(ptx, target: str) -> dict:
    """Registers and spill bytes as ptxas -v reports them for this PTX (the wheel's ptxas)."""
    if not ptx:
        return {}
    ptxas = _ptxas(capability(target))
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "k.ptx")
        with open(src, "w") as fh:
            fh.write(ptx)
        proc = subprocess.run([ptxas, "-v", f"--gpu-name={_arch(target)}", src, "-o", os.path.join(tmp, "k.o")],
                              capture_output=True, text=True, timeout=120)
    log = proc.stdout + proc.stderr
    if proc.returncode != 0:
        return {"error": f"ptxas failed for {target}: {log.strip()[-800:]}"}
    regs = [int(m) for m in _REGS_RE.findall(log)]
    spills = [int(a) for a, _ in _SPILL_RE.findall(log)]  # bytes spilled (stored to local memory)
    return {"n_regs": max(regs) if regs else None, "n_spills": max(spills) if spills else 0}


def summarize(records: list[dict]) -> dict:
    """-> {'failed': [...], 'spilling': [...]} naming kernel@target."""
    failed = [f"{r['kernel']}@{r['target']}" for r in records if not r.get("ok")]
    spilling = [f"{r['kernel']}@{r['target']}" for r in records if r.get("ok") and (r.get("n_spills") or 0) > 0]
    return {"failed": failed, "spilling": spilling}
