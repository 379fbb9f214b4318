"""What every generator produces and provides: the Candidate record and the Generator protocol.

Generators (kgen.core.generate.builtin, kgen.core.generate.llm) import from here, never from the
package, which picks among them (get_generator): that keeps the package above its generators.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Protocol

if TYPE_CHECKING:
    from kgen.core.task import Task
    from kgen.core.verify.verdict import Verdict


@dataclass
class Candidate:
    source: str                                   # a module defining ModelNew
    params: dict[str, Any] = field(default_factory=dict)  # schedule/fusion choices that produced it
    origin: str = "builtin"                       # generator name
    parent: str | None = None                     # sha of the candidate it was derived from
    notes: str = ""                               # e.g. "2 groups lowered, 1 torch fallback: aten.sort"

    @property
    def sha(self) -> str:
        return hashlib.sha256(self.source.encode()).hexdigest()


class Generator(Protocol):
    name: str
    # Where a conversational generator records each message it exchanges (role, content); the
    # engine (kgen.core.evolve.run_job) points it at the job's stored conversation for the length
    # of a run and back to None after. Generators without a conversation ignore it.
    message_sink: Callable[[str, str], None] | None

    def initial(self, task: Task, n: int) -> list[Candidate]:
        """First round: up to n distinct candidates (n=1 for a single job)."""

    def mutate(self, task: Task, best: list[tuple[Candidate, Verdict]], n: int) -> list[Candidate]:
        """Next evolve round: up to n new candidates derived from the best (candidate, verdict) pairs so far."""

    def repair(self, task: Task, candidate: Candidate, verdict: Verdict) -> Candidate | None:
        """A fixed candidate after a failed verdict, or None if the generator has no better idea."""
