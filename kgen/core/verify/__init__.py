"""The verifier: sandboxed, warm-runner-backed checking of candidates against tasks.

Importing this package stays cheap (no torch): the gateway and the CLI import it; torch is
imported when a verification actually runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kgen.core.verify.verdict import STATUSES, Timing, Trial, Verdict

if TYPE_CHECKING:
    from kgen.core.verify.sandbox import RunnerPool

__all__ = ["STATUSES", "RunnerPool", "Timing", "Trial", "Verdict", "default_pool", "verify", "parse_device"]


def verify(task, candidate_source, *, device="cpu", timeout_s=None, atol=None, rtol=None,
           trials=3, profile=True, pool=None, allow_ops=(), compile_for=(), reject_spills=False) -> Verdict:
    """See kgen.core.verify.harness.verify."""
    from kgen.core.verify.harness import verify as _verify

    return _verify(task, candidate_source, device=device, timeout_s=timeout_s, atol=atol, rtol=rtol,
                   trials=trials, profile=profile, pool=pool, allow_ops=allow_ops, compile_for=compile_for,
                   reject_spills=reject_spills)


def default_pool() -> RunnerPool:
    from kgen.core.verify.sandbox import default_pool as _default_pool

    return _default_pool()


def parse_device(device: str) -> tuple[str, str]:
    from kgen.core.verify.harness import parse_device as _parse

    return _parse(device)


def __getattr__(name: str) -> Any:
    if name == "RunnerPool":
        from kgen.core.verify.sandbox import RunnerPool

        return RunnerPool
    raise AttributeError(name)
