"""Prompts of the llm generator: a designer plans, a coder writes ModelNew, feedback drives repairs.

Kept apart from the HTTP client so the wording can be tuned without touching the protocol.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kgen.core.verify.verdict import Verdict

MAX_SOURCE_CHARS = 12_000

SYSTEM = """You are an expert GPU kernel engineer. You rewrite PyTorch reference modules as Triton kernels.
Rules for every module you write:
- It is one standalone Python file importing torch, torch.nn as nn, triton and triton.language as tl.
- It defines `class ModelNew(nn.Module)` whose __init__ takes exactly the arguments Model's __init__ takes
  (get_init_inputs() provides them) and whose forward takes the same inputs as Model.forward and returns
  outputs of the same shapes and dtypes.
- All computation runs in @triton.jit kernels. torch may only allocate (torch.empty, empty_like, zeros) and
  reshape/view tensors; calling torch compute ops (matmul, softmax, sum, ...) makes the candidate rejected.
- No computation on the host either: no NumPy or other array libraries, no .numpy()/.tolist()/printing tensor
  values, no threads or subprocesses, no data_ptr(), no torch.compile; at most a few .item() reads. The verifier
  rejects all of these, and any attempt to patch torch or the harness.
- Parameters (weights) must be created like Model creates them (same attribute names and shapes), so the same
  seed gives the same values and the reference's weights can be loaded into ModelNew.
- Handle any input size: use masks, never assume sizes divide the block size.
"""

DESIGNER = """Here is the PyTorch reference (KernelBench format):

```python
{task}
```

Plan {n} distinct Triton implementation(s) of Model.forward. For each plan say which operations are fused
into which kernel, the tiling and block sizes, num_warps/num_stages, and how reductions are split.
Write each plan under a heading line `PLAN <number>:` and nothing else."""

DESIGNER_EVOLVE = """Here is the PyTorch reference (KernelBench format):

```python
{task}
```

These are the best candidates so far, best first, with what the verifier said about them:

{best}

Plan {n} new implementation(s) that fix the failures or should run faster than the best one (different
fusion, tiling, block sizes, warps, stages, reduction splits). Write each plan under a heading line
`PLAN <number>:` and nothing else."""

CODER = """Here is the PyTorch reference (KernelBench format):

```python
{task}
```

Implement this plan:

{plan}
{base}
Reply with the complete module in one ```python code block."""

CODER_BASE = """
Start from this candidate, which the plan improves on:

```python
{source}
```
"""

REPAIR = """Here is the PyTorch reference (KernelBench format):

```python
{task}
```

This candidate failed verification:

```python
{source}
```

Verifier feedback:
{feedback}

Fix the candidate. Reply with the complete corrected module in one ```python code block."""


def clip(text: str, limit: int = MAX_SOURCE_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + "\n# ... (truncated)\n"


def feedback(verdict: Verdict) -> str:
    """What the verifier found, in the words a repair round needs: errors, mismatches, timings."""
    lines = [f"status: {verdict.status}"]
    if verdict.message:
        lines.append(f"message: {verdict.message.strip()[:2000]}")
    for t in verdict.trials:
        if not t.ok:
            lines.append(f"trial seed={t.seed}: max abs err {t.max_abs_err}, max rel err {t.max_rel_err}"
                         + (f" ({t.message})" if t.message else ""))
    if verdict.atol is not None:
        lines.append(f"tolerance: atol={verdict.atol} rtol={verdict.rtol}")
    lines.append(f"triton kernels launched: {verdict.kernels_launched}")
    if verdict.torch_ops:
        lines.append(f"torch compute ops still called (not allowed): {', '.join(verdict.torch_ops)}")
    if verdict.timing and verdict.timing.candidate_ms is not None:
        timing = verdict.timing
        what = "GPU" if timing.kind == "gpu" else "Triton interpreter (not a GPU timing)"
        lines.append(f"{what} time: {timing.candidate_ms:.3f} ms"
                     + (f", eager {timing.eager_ms:.3f} ms" if timing.eager_ms else "")
                     + (f", torch.compile {timing.compile_ms:.3f} ms" if timing.compile_ms else ""))
    if verdict.log_tail:
        lines.append("output tail:\n" + verdict.log_tail.strip()[-3000:])
    return "\n".join(lines)


def designer(task_source: str, n: int) -> str:
    return DESIGNER.format(task=clip(task_source), n=n)


def designer_evolve(task_source: str, best: list, n: int) -> str:
    parts = []
    for i, (cand, verdict) in enumerate(best, 1):
        parts.append(f"### Candidate {i}\n```python\n{clip(cand.source, 6000)}\n```\n{feedback(verdict)}")
    return DESIGNER_EVOLVE.format(task=clip(task_source), best="\n\n".join(parts), n=n)


def coder(task_source: str, plan: str, base_source: str | None = None) -> str:
    base = CODER_BASE.format(source=clip(base_source)) if base_source else ""
    return CODER.format(task=clip(task_source), plan=plan.strip(), base=base)


def repair(task_source: str, source: str, verdict: Verdict) -> str:
    return REPAIR.format(task=clip(task_source), source=clip(source), feedback=feedback(verdict))


_PLAN_HEAD = re.compile(r"(?im)^[ \t>*#_]*plan[ \t]*(\d+)[ \t]*[:.)\-][ \t*_]*")
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n(.*?)```", re.S)


def split_plans(reply: str, n: int) -> list[str]:
    """The designer's plans; a reply without `PLAN k:` headings counts as one plan."""
    heads = list(_PLAN_HEAD.finditer(reply))
    if not heads:
        return [reply.strip()] if reply.strip() else []
    plans = []
    for i, head in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(reply)
        body = reply[head.end():end].strip()
        if body:
            plans.append(body)
    return plans[:n]


def extract_code(reply: str) -> str | None:
    """The module in a coder reply: the last fenced block defining ModelNew, else None."""
    blocks = [(lang.lower(), body) for lang, body in _FENCE.findall(reply)]
    with_model = [body for lang, body in blocks if "class ModelNew" in body and lang in ("", "python", "py", "python3")]
    if with_model:
        return with_model[-1].strip() + "\n"
    if not blocks and "class ModelNew" in reply:
        return reply.strip() + "\n"
    return None
