"""Shared by the evolve/local tests: a tiny task, hand-written candidates, a scripted generator
and a small in-process verifier that really runs and compares (for engine-logic tests only;
the real verifier is exercised where the tests say so)."""

from __future__ import annotations

import textwrap
import time

from kgen.core.generate import Candidate
from kgen.core.task import task_from_source
from kgen.core.verify.verdict import Timing, Trial, Verdict

TASK_SRC = textwrap.dedent("""
    import torch
    import torch.nn as nn

    class Model(nn.Module):
        def __init__(self):
            super().__init__()

        def forward(self, x, y):
            return x * 2.0 + y

    def get_inputs():
        return [torch.randn(1000), torch.randn(1000)]

    def get_init_inputs():
        return []
""")

TRITON_TEMPLATE = textwrap.dedent("""
    import torch
    import torch.nn as nn
    import triton
    import triton.language as tl

    @triton.jit
    def axpy_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
        pid = tl.program_id(0)
        offs = pid * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n
        x = tl.load(x_ptr + offs, mask=mask)
        y = tl.load(y_ptr + offs, mask=mask)
        tl.store(out_ptr + offs, x * SCALE + y, mask=mask)

    class ModelNew(nn.Module):
        def __init__(self):
            super().__init__()

        def forward(self, x, y):
            x = x.contiguous()
            y = y.contiguous()
            out = torch.empty_like(x)
            n = x.numel()
            axpy_kernel[(triton.cdiv(n, BLOCK_SIZE),)](x, y, out, n, BLOCK=BLOCK_SIZE)
            return out
""")


def triton_source(scale: float = 2.0, block: int = 256) -> str:
    """A real Triton kernel; correct for TASK_SRC only when scale == 2."""
    return TRITON_TEMPLATE.replace("SCALE", repr(float(scale))).replace("BLOCK_SIZE", str(block))


def torch_source(scale: float) -> str:
    """A plain-torch ModelNew for engine-logic tests; correct only when scale == 2."""
    return textwrap.dedent(f"""
        import torch.nn as nn

        class ModelNew(nn.Module):
            def forward(self, x, y):
                return x * {float(scale)!r} + y
    """)


BROKEN_SOURCE = "class ModelNew(:\n    pass\n"


def make_task(op_name: str = "axpy"):
    return task_from_source(TASK_SRC, op_name=op_name)


class ScriptedGenerator:
    """Returns the sources it was given, in order; records what the engine showed it."""

    name = "scripted"

    def __init__(self, initial, mutations=(), repairs=(), origin="scripted", params=None, fail_on=()):
        self.initial_sources = list(initial)
        self.mutation_rounds = [list(r) for r in mutations]
        self.repair_sources = list(repairs)
        self.origin = origin
        self.params = params or {}
        self.fail_on = set(fail_on)
        self.calls: list[tuple] = []

    def _cand(self, src, parent=None):
        return Candidate(source=src, params=dict(self.params), origin=self.origin, parent=parent)

    def initial(self, task, n):
        self.calls.append(("initial", n))
        if "initial" in self.fail_on:
            raise RuntimeError("export failed")
        return [self._cand(s) for s in self.initial_sources[:n]]

    def mutate(self, task, best, n):
        self.calls.append(("mutate", n, [v.status for _, v in best]))
        if "mutate" in self.fail_on:
            raise RuntimeError("mutation blew up")
        if not self.mutation_rounds:
            return []
        return [self._cand(s, best[0][0].sha) for s in self.mutation_rounds.pop(0)[:n]]

    def repair(self, task, candidate, verdict):
        self.calls.append(("repair", verdict.status))
        if not self.repair_sources:
            return None
        return self._cand(self.repair_sources.pop(0), candidate.sha)


def _module(source: str, name: str) -> dict:
    namespace: dict = {"__name__": name}
    exec(compile(source, name, "exec"), namespace)
    return namespace


def in_process_verify(task, source: str, *, device: str = "cpu", trials: int = 3, **_ignored) -> Verdict:
    """Run reference and candidate on fresh inputs and compare; a real check, in-process."""
    import torch

    start = time.perf_counter()
    ref = _module(task.source, "reference")
    try:
        cand = _module(source, "candidate")
        model_new = cand["ModelNew"](*ref["get_init_inputs"]())
    except SyntaxError as exc:
        return Verdict(status="compile_error", message=f"SyntaxError: {exc.msg}", device=device)
    except Exception as exc:
        return Verdict(status="compile_error", message=f"{type(exc).__name__}: {exc}", device=device)
    model = ref["Model"](*ref["get_init_inputs"]())
    results = []
    for seed in range(trials):
        torch.manual_seed(seed)
        inputs = ref["get_inputs"]()
        expected = model(*inputs)
        try:
            got = model_new(*[t.clone() for t in inputs])
        except Exception as exc:
            return Verdict(status="runtime_error", message=f"{type(exc).__name__}: {exc}", device=device)
        err = (got - expected).abs().max().item()
        results.append(Trial(seed=seed, ok=torch.allclose(got, expected, atol=1e-4, rtol=1e-4), max_abs_err=err))
    ok = all(t.ok for t in results)
    return Verdict(status="correct" if ok else "incorrect", message="" if ok else "outputs differ",
                   device=device, trials=results, trials_run=len(results),
                   timing=Timing(kind="interpreter", candidate_ms=1.0), wall_s=time.perf_counter() - start)
