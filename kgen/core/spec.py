"""The one table of job-spec and verify-request limits.

Every entry point checks numbers against `LIMITS`: `kgen.core.evolve.validate_spec` (local runs
and the gateway's engine), the gateway's submit schema (kgen.daemon.gateway.schemas) and the
node's verify body check (kgen.daemon.node.app) are generated from it, so a bound changed here
changes everywhere at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Limit:
    """An inclusive range for an int or float field."""

    kind: type          # int or float (a float field accepts ints, never bools)
    lo: float
    hi: float

    def problem(self, value: Any) -> str | None:
        """Why `value` is not acceptable ("must be ..."), or None."""
        if isinstance(value, bool) or not isinstance(value, (int, float) if self.kind is float else int):
            return f"must be {'an integer' if self.kind is int else 'a number'} {self.describe()}"
        if self.kind is float and not math.isfinite(value):
            return f"must be a finite number {self.describe()}"
        if not self.lo <= value <= self.hi:
            return f"must be between {self.describe()}, got {value}"
        return None

    def describe(self) -> str:
        return f"{self.lo:g} and {self.hi:g}" if self.kind is float else f"{int(self.lo)} and {int(self.hi)}"


LIMITS: dict[str, Limit] = {
    "max_rounds": Limit(int, 1, 50),
    "parallel_num": Limit(int, 1, 64),
    "max_repairs": Limit(int, 0, 10),
    "atol": Limit(float, 0.0, 1.0),
    "rtol": Limit(float, 0.0, 1.0),
    "timeout_s": Limit(float, 1.0, 3600.0),
    "trials": Limit(int, 3, 100),
}

# the generators a job may name (kgen.core.generate.get_generator builds them); the CLI and the
# gateway's submit schema accept exactly these
GENERATORS = ("builtin", "llm", "hybrid")

# which limits each entry point applies
JOB_SPEC_LIMITS = ("max_rounds", "parallel_num", "max_repairs", "atol", "rtol", "timeout_s")
VERIFY_LIMITS = ("atol", "rtol", "timeout_s", "trials")


def check(name: str, value: Any) -> str | None:
    """`LIMITS[name].problem(value)`, with None (unset) always fine."""
    return None if value is None else LIMITS[name].problem(value)


__all__ = ["GENERATORS", "LIMITS", "JOB_SPEC_LIMITS", "VERIFY_LIMITS", "Limit", "check"]
