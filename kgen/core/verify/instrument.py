"""Instruments installed in a candidate run: a torch op recorder and a Triton launch counter.

Both run inside the candidate's own process, so they are evidence, not proof: correctness is
decided elsewhere (compare.py, in the verifier), and a static scan of the source
(purity.static_torch_calls) is the second, tamper-proof signal.
"""

from __future__ import annotations

from collections import Counter

from torch.utils._python_dispatch import TorchDispatchMode


class OpRecorder(TorchDispatchMode):
    """Counts every aten op executed while active, except inside Triton launches (the CPU
    interpreter moves kernel arguments with torch copies of its own)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter[str] = Counter()
        self.suspended = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if not self.suspended:
            self.ops[str(func)] += 1
        return func(*args, **(kwargs or {}))


class LaunchCounter:
    """Wraps the JIT launch entry points (compiled and interpreted) at class level."""

    def __init__(self) -> None:
        self.count = 0
        self.recorder: OpRecorder | None = None

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
                rec.suspended += 1
            try:
                return original(fn_self, *args, **kwargs)
            finally:
                if rec is not None:
                    rec.suspended -= 1

        run.__wrapped__ = original
        cls.run = run
