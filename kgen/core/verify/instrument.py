"""Instruments installed in a candidate run: a torch op recorder and a Triton launch counter.

Both run inside the candidate's own process, so they are evidence, not proof: correctness is
decided elsewhere (compare.py, in the verifier), the static screen (screen.py) runs where the
candidate never does, and tamper.py checks after every forward that these are still in place.

Ops are recorded inside Triton launches too: the CPU interpreter moves kernel arguments with
allocations and copies only (never compute ops), so a kernel body that calls torch on CPU is
caught like host code. The launch depth (`in_launch`) only matters for the host-read counters,
which exempt Triton's own frames (see escapes.py).
"""

from __future__ import annotations

import sys
from collections import Counter, deque

from torch.utils._python_dispatch import TorchDispatchMode

from kgen.core.verify.escapes import called_from_triton

_SCALAR_READ = "aten._local_scalar_dense"
_HOST_DATA_IN = "aten.lift_fresh"


class _ExitWatch(deque):
    """TorchDispatchMode.__exit__ pops this deque: a pop while forward runs means candidate code
    exited the recorder (even through the base class, bypassing any override here)."""

    def __init__(self, recorder) -> None:
        super().__init__()
        self.recorder = recorder

    def pop(self):
        if self.recorder.forward_active:
            self.recorder.exits_in_forward += 1
        return super().pop()


class OpRecorder(TorchDispatchMode):
    """Counts every aten op executed while active, plus host escapes:
    - `host["host:item"]`: tensor elements read into Python (item(), float(t), int(t), storage[i]);
    - `host["host:tensor"]`: elements that entered a tensor from Python or NumPy data
      (torch.tensor, as_tensor, from_numpy, `t[i] = 3.0`);
    - other `host:*` names, counted by the hooks in escapes.py."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter[str] = Counter()
        self.host: Counter[str] = Counter()
        self.in_launch = 0
        self.seen = 0
        self.forward_active = False
        self.exits_in_forward = 0
        self.old_dispatch_mode_flags = _ExitWatch(self)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.seen += 1
        name = str(func)
        self.ops[name] += 1
        if name.startswith(_SCALAR_READ) or name.startswith(_HOST_DATA_IN):
            if not (self.in_launch and called_from_triton(sys._getframe(1))):
                if name.startswith(_SCALAR_READ):
                    self.host["host:item"] += 1
                else:
                    self.host["host:tensor"] += int(args[0].numel()) if args else 1
        return func(*args, **(kwargs or {}))


class LaunchCounter:
    """Wraps the JIT launch entry points (compiled and interpreted) at class level."""

    def __init__(self) -> None:
        self.count = 0
        self.recorder: OpRecorder | None = None
        self.installed: dict[type, object] = {}  # class -> our wrapper, for tamper checks
        self.compiler = None   # targets.Compiler when the run compiles launches for GPU targets
        self.reject_spills = False

    def install(self) -> None:
        from triton.runtime import jit

        classes = [jit.JITFunction]
        try:
            from triton.runtime.interpreter import InterpretedFunction

            classes.append(InterpretedFunction)
        except ImportError:
            pass
        for cls in classes:
            self._wrap(cls)

    def _wrap(self, cls) -> None:
        original = cls.run
        counter = self

        def run(fn_self, *args, **kwargs):
            if not kwargs.get("warmup", False):
                counter.count += 1
            rec = counter.recorder
            if rec is not None:
                rec.in_launch += 1
            try:
                if counter.compiler is not None and not kwargs.get("warmup", False):
                    counter.check_compiled(counter.compiler.on_launch(fn_self, args, kwargs))
                return original(fn_self, *args, **kwargs)
            finally:
                if rec is not None:
                    rec.in_launch -= 1

        # No __wrapped__: nothing should point a candidate at the unhooked entry point.
        cls.run = run
        self.installed[cls] = run

    def check_compiled(self, records: list[dict]) -> None:
        """Stop the run at the first launch that does not compile for a wanted target (or spills,
        when spills are refused): the interpreter's time is not spent on a kernel that cannot ship."""
        for r in records:
            if not r.get("ok"):
                raise TargetCompileError(f"kernel {r['kernel']} does not compile for {r['target']}: {r['error']}")
            if self.reject_spills and (r.get("n_spills") or 0) > 0:
                raise TargetCompileError(f"kernel {r['kernel']} spills {r['n_spills']} bytes on {r['target']} "
                                         f"({r['n_regs']} registers, num_warps={r['num_warps']})")


class TargetCompileError(Exception):
    """A launch that failed the compile for a requested GPU target (child.py: compile_error)."""


def interpreter_compat() -> None:
    """Triton <= 3.6's interpreter turns a kernel's int argument into a 1-element array and its
    `__index__` calls int() on it, which NumPy >= 2.4 refuses: a loop over a runtime size
    (`range(0, n, BLOCK)`, what shape-generic kernels emit) then fails. Later Triton squeezes the
    array first; this gives older versions the same `__index__`. A compatibility fix, not a check."""
    try:
        from triton.runtime import interpreter
    except ImportError:
        return
    scope = getattr(interpreter, "_LangPatchScope", None)
    if scope is None or getattr(scope, "_kgen_index_compat", False):
        return
    original = scope.set_attr

    def set_attr(self, obj, name, value):
        if name == "__index__":
            value = _squeezed_index
        return original(self, obj, name, value)

    scope.set_attr = set_attr
    scope._kgen_index_compat = True


def _squeezed_index(self) -> int:
    return int(self.handle.data.squeeze())

