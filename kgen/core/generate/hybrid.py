"""The hybrid generator: the builtin lowering is round 1, LLM rounds try to beat it.

Round 1 is the builtin generator's kernel, so a correct candidate exists before any LLM call
(and a single job whose builtin kernel is correct never calls the LLM). Every later round shows
the LLM the best builtin kernel with its verdict (status, launches, timing; traffic and model
cost when the verifier reports them) plus the best candidates so far, and asks for a faster
module. The engine keeps the best of all rounds (kgen.core.evolve ranks every candidate the same
way), so the builtin kernel is kept unless an LLM candidate beats it.

When the builtin generator cannot lower the task at all, the LLM starts from scratch, as the
llm generator would.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from kgen.core.generate import llm_prompts as prompts
from kgen.core.generate.candidate import Candidate

if TYPE_CHECKING:
    from kgen.core.task import Task
    from kgen.core.verify.verdict import Verdict

BUILTIN = "builtin"


class HybridGenerator:
    name = "hybrid"

    def __init__(self, *, message_sink: Callable[[str, str], None] | None = None, **llm_options: Any):
        from kgen.core.generate.builtin import BuiltinGenerator

        self.builtin = BuiltinGenerator()
        self.builtin_error: str | None = None
        self._llm_options = llm_options
        self._llm: Any = None
        self._sink = message_sink

    @property
    def llm(self) -> Any:
        """The LLM client, made at its first use: round 1 needs no LLM configuration, so a job
        whose builtin kernel is all it gets still succeeds (a missing llm.base_url is reported
        as the later round's generator error)."""
        if self._llm is None:
            from kgen.core.generate.llm import LLMGenerator

            self._llm = LLMGenerator(message_sink=self._sink, **self._llm_options)
        return self._llm

    # the engine sets this on the generator; the conversation is the LLM's
    @property
    def message_sink(self) -> Callable[[str, str], None] | None:
        return self._sink

    @message_sink.setter
    def message_sink(self, sink: Callable[[str, str], None] | None) -> None:
        self._sink = sink
        if self._llm is not None:
            self._llm.message_sink = sink

    def initial(self, task: Task, n: int) -> list[Candidate]:
        try:
            made = self.builtin.initial(task, 1)
        except Exception as exc:  # noqa: BLE001 - any builtin failure leaves the task to the LLM
            # no lowering for this task (or a lowering bug): the LLM starts without a baseline
            self.builtin_error = f"{type(exc).__name__}: {exc}"
            return self.llm.initial(task, n)
        # round 1 is the builtin kernel alone: the LLM first sees it with its verdict (round 2 on)
        return made

    def mutate(self, task: Task, best: list[tuple[Candidate, Verdict]], n: int) -> list[Candidate]:
        if not best:
            return self.initial(task, n)
        return self._beat(task, best, n, "mutate")

    def repair(self, task: Task, candidate: Candidate, verdict: Verdict) -> Candidate | None:
        if candidate.origin == BUILTIN:
            return self.builtin.repair(task, candidate, verdict)
        return self.llm.repair(task, candidate, verdict)

    def _beat(self, task: Task, best: list[tuple[Candidate, Verdict]], n: int, stage: str) -> list[Candidate]:
        """LLM candidates asked to beat the builtin kernel (the first builtin entry of `best`)."""
        baseline = next(((c, v) for c, v in best if c.origin == BUILTIN), None)
        others = [(c, v) for c, v in best if c.origin != BUILTIN and v is not None]
        prompt = beat_prompt(task.source, baseline, others, n)
        plans = prompts.split_plans(self.llm.chat("designer", prompt), n)
        if not plans:
            return []
        base = baseline[0] if baseline else best[0][0]
        made = self.llm.code(task, plans, stage, base)
        for cand in made:
            cand.origin = self.name
            cand.params["baseline"] = base.sha
        return made


BEAT = """Here is the PyTorch reference (KernelBench format):

```python
{task}
```

A compiler lowered it to this Triton module, which is the baseline to beat:

```python
{baseline}
```
{verdict}
{others}
Plan {n} implementation(s) that stay correct and run faster than the baseline: fewer launches, less
memory traffic (read each input once, keep rows in registers, fuse what the baseline splits), better
tiling, block sizes, warps and stages. Say what each plan changes against the baseline. Write each plan
under a heading line `PLAN <number>:` and nothing else."""


def verdict_figures(verdict: Verdict) -> str:
    """The verifier's figures for the baseline: status, launches, timing, and traffic and model cost
    when this verifier reports them (read defensively: older verdicts have neither)."""
    lines = ["", "What the verifier measured for it:", prompts.feedback(verdict)]
    traffic = getattr(verdict, "traffic", None)
    if isinstance(traffic, dict) and traffic:
        raw, unique, minimum = traffic.get("raw"), traffic.get("unique"), traffic.get("minimum")
        text = f"memory traffic: raw {raw} bytes, unique {unique} bytes, minimum {minimum} bytes"
        if traffic.get("launches") is not None:
            text += f", {traffic.get('launches')} launches"
        lines.append(text)
    cost = getattr(verdict, "cost", None)
    if isinstance(cost, dict) and cost:
        pairs = ", ".join(f"{k} {v}" for k, v in cost.items() if isinstance(v, (int, float, str)))
        lines.append(f"cost model (an estimate, not a measurement): {pairs}")
    return "\n".join(lines) + "\n"


def beat_prompt(task_source: str, baseline: tuple[Candidate, Verdict] | None,
                others: list[tuple[Candidate, Verdict]], n: int) -> str:
    if baseline is None:
        return prompts.designer_evolve(task_source, others, n)
    rest = ""
    if others:
        parts = [f"### Candidate {i}\n```python\n{prompts.clip(c.source, 6000)}\n```\n{prompts.feedback(v)}"
                 for i, (c, v) in enumerate(others, 1)]
        rest = "\nEarlier attempts to beat it, best first:\n\n" + "\n\n".join(parts) + "\n"
    return BEAT.format(task=prompts.clip(task_source), baseline=prompts.clip(baseline[0].source),
                       verdict=verdict_figures(baseline[1]), others=rest, n=n)
