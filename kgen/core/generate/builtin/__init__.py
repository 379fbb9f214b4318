"""The builtin offline generator: a lowering of the reference's ATen graph to Triton.

Layers, each importing only the ones before it:
sizes (symbolic sizes and their guards) -> ops (op tables) -> graph (typed node helpers;
export.py/rewrite.py capture the graph, shape-generic where export allows) ->
legality (what each group kind can lower) -> schedule (knobs) -> fusion (the plan: groups) ->
indexing, codegen (the kernel writer) -> emit/ (one emitter per group kind, a registry) ->
module (the ModelNew assembly) -> this generator.
Evolve rounds vary the schedule (schedule.py). No table of known problems: every op is lowered
on its own terms, and anything without a lowering stays a declared torch fallback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from kgen.core.generate.builtin import schedule as sched
from kgen.core.generate.candidate import Candidate

if TYPE_CHECKING:
    from kgen.core.task import Task
    from kgen.core.verify.verdict import Verdict


class BuiltinGenerator:
    name = "builtin"
    # Generator protocol: the builtin generator has no conversation to record
    message_sink: Callable[[str, str], None] | None = None

    def __init__(self, seed: int = 0, **options: Any):
        self.seed = int(seed)
        self.options = options
        self._captures: dict[tuple[str, bool], Any] = {}
        # per task id: schedule keys and candidate shas this generator proposed (in this process)
        self._proposed: dict[str, tuple[set[str], set[str]]] = {}

    # --- Generator protocol ------------------------------------------------------------------
    def initial(self, task: Task, n: int) -> list[Candidate]:
        self._proposed.pop(task.id, None)     # a new job starts its own record
        return self._fresh(task, sched.DEFAULT, max(1, n), set(), set(), None)

    def mutate(self, task: Task, best: list[tuple[Candidate, Verdict]], n: int) -> list[Candidate]:
        # what this generator already proposed for the task counts as tried too: evolve shows
        # only the best few, and proposing a worse one again would only waste a slot
        proposed_keys, proposed_shas = self._proposed.get(task.id, (set(), set()))
        tried = {sched.key(sched.normalise(c.params.get("schedule"))) for c, _ in best} | proposed_keys
        seen = {c.sha for c, _ in best} | proposed_shas
        ranked = sorted(best, key=_rank)
        base = ranked[0][0] if ranked else None
        start = sched.normalise(base.params.get("schedule") if base else None)
        # knob steps the cost model of the best verdict says should pay come first
        guided = sched.hints(getattr(ranked[0][1], "traffic", None), self._sections(task)) if ranked else []
        return self._fresh(task, start, n, tried, seen, base.sha if base else None, guided)

    def _fresh(self, task: Task, base: dict, n: int, tried: set[str], seen: set[str],
               parent: str | None, guided: list | None = None) -> list[Candidate]:
        """Up to n candidates from schedules near `base` whose source is new: knobs of templates
        the task does not use, or blocks clipped to the problem size, would only repeat one."""
        sections = self._sections(task)
        out: list[Candidate] = []
        seen = set(seen)
        keys, shas = self._proposed.setdefault(task.id, (set(), set()))
        for s in sched.distinct(base, 8 * n + 4, tried, self.seed + len(tried), sections, guided):
            keys.add(sched.key(s))
            cand = self.generate(task, s, parent=parent)
            if cand.sha in seen:
                continue
            seen.add(cand.sha)
            shas.add(cand.sha)
            out.append(cand)
            if len(out) >= n:
                break
        return out

    def _sections(self, task: Task) -> set[str]:
        from kgen.core.generate.builtin.emit import SECTION_OF_KIND
        from kgen.core.generate.builtin.fusion import build_groups

        groups, _ = build_groups(self._capture(task).graph)
        return {SECTION_OF_KIND[g.kind] for g in groups if g.kind in SECTION_OF_KIND}

    def _capture(self, task: Task, dynamic: bool = True) -> Any:
        """The task's capture, shape-generic (see sizes.py) unless `dynamic` is False; cached
        for the last task, both kinds."""
        from kgen.core.generate.builtin.export import capture

        key = (task.id, dynamic)
        cap = self._captures.get(key)
        if cap is None:
            cap = capture(task.source, seed=self.seed, dynamic=dynamic)
            self._captures = {k: v for k, v in self._captures.items() if k[0] == task.id}
            self._captures[key] = cap
        return cap

    def repair(self, task: Task, candidate: Candidate, verdict: Verdict) -> Candidate | None:
        current = sched.normalise(candidate.params.get("schedule"))
        fallback = sched.safe()
        if sched.key(current) == sched.key(fallback):
            return None
        return self.generate(task, fallback, parent=candidate.sha)

    # --- the lowering ------------------------------------------------------------------------
    def generate(self, task: Task, schedule: dict, parent: str | None = None) -> Candidate:
        from kgen.core.generate.builtin.module import build_module

        cap = self._capture(task)
        schedule = sched.normalise(schedule)
        built = None
        if cap.sources and not cap.tainted and not self.options.get("static_shapes"):
            try:
                built = build_module(task.source, cap, schedule)
            except Exception:  # noqa: BLE001 - an emitter not ready for a symbolic size
                built = None
        if built is None:
            # the kernels specialised on the traced shapes, as before shape-generic capture
            built = build_module(task.source, self._capture(task, dynamic=False) if cap.sources else cap, schedule)
        # plain JSON only: candidates cross process boundaries (as JSON lines) and land in the
        # store as JSON, and must not drag torch objects along
        params = plain({"schedule": schedule, "fallback_ops": built.fallback_ops, "kernels": built.kernels,
                        "groups": [{"kind": g.kind, "ops": g.ops()} for g in built.groups]})
        lowered = sum(1 for g in built.groups if g.kind != "fallback")
        notes = f"{lowered} groups lowered to {built.kernels} Triton kernels"
        if built.fallback_ops:
            notes += f", torch fallback: {', '.join(built.fallback_ops)}"
        return Candidate(source=str(built.source), params=params, origin="builtin",
                         parent=None if parent is None else str(parent), notes=str(notes))


def plain(value: Any) -> Any:
    """`value` as plain JSON data: builtin scalars, lists and string-keyed dicts. Anything else
    (a torch dtype, a Size, a sympy or pytree object) becomes its string form."""
    if value is None or type(value) in (bool, str):
        return value
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return str(value)


def _rank(pair: tuple[Candidate, Verdict]) -> tuple:
    from kgen.core.perf.cost import fitness_us

    cand, verdict = pair
    ok = 0 if verdict.status == "correct" else 1
    # measured GPU time, else the roofline model's estimate (never interpreter wall time)
    us = fitness_us(verdict)
    return (ok, 0 if verdict.pure else 1, us if us is not None else float("inf"))


__all__ = ["BuiltinGenerator"]
