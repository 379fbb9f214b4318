"""Summary statistics of a bench run: pure functions of the per-task result dicts.

fast_p (as in KernelBench): the fraction of ALL tasks whose kernel is correct and faster than
the baseline by more than p (speedup = baseline_ms / kernel_ms > p). fast_0 is therefore the
fraction correct that has a timing. Geometric means are over correct tasks with a speedup.

Traffic (interpreter runs): geometric means over correct tasks with a measured minimum of
unique/min (all), raw/min (memory-bound tasks: no matmul/conv flops in the reference) and the
operand re-read factor raw/unique (matmul/conv tasks, whose tiles re-read operands by design).
"""

from __future__ import annotations

import math
from typing import Any, Iterable

P_VALUES = (0.0, 1.0, 1.5, 2.0)
REVIEW_SPEEDUP = 10.0   # a speedup above this is more often a measuring or checking mistake
BASELINES = ("eager", "compile")


def p_key(p: float) -> str:
    return f"{p:g}"


def fast_p(speedups: Iterable[float | None], p: float, total: int | None = None) -> float | None:
    """Fraction of `total` tasks (default: len(speedups)) with a speedup > p; None speedups
    (incorrect or untimed) never count. None when there are no tasks."""
    values = list(speedups)
    total = len(values) if total is None else total
    if total <= 0:
        return None
    return sum(1 for s in values if s is not None and s > p) / total


def geomean(values: Iterable[float | None]) -> float | None:
    """Geometric mean of the positive, finite values; None when there are none."""
    logs = [math.log(v) for v in values if v is not None and v > 0 and math.isfinite(v)]
    return math.exp(sum(logs) / len(logs)) if logs else None


def speedup(result: dict[str, Any], baseline: str) -> float | None:
    """The task's speedup against `baseline` ("eager" | "compile"), only for a correct kernel."""
    if result.get("status") != "correct":
        return None
    value = result.get(f"speedup_{baseline}")
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


def flagged(result: dict[str, Any]) -> list[str]:
    """Baselines against which the task's speedup is over REVIEW_SPEEDUP."""
    return [b for b in BASELINES if (speedup(result, b) or 0.0) > REVIEW_SPEEDUP]


def _group(results: list[dict[str, Any]], gpu: bool) -> dict[str, Any]:
    n = len(results)
    correct = [r for r in results if r.get("status") == "correct"]
    pure = [r for r in correct if r.get("pure")]
    # Triton launches per forward call (a verdict counts them over all its trials)
    launches = [float(r["launches_per_call"]) for r in correct if r.get("launches_per_call") is not None]
    statuses: dict[str, int] = {}
    for r in results:
        statuses[r.get("status") or "unknown"] = statuses.get(r.get("status") or "unknown", 0) + 1
    out: dict[str, Any] = {
        "tasks": n,
        "correct": len(correct),
        "correct_pct": 100.0 * len(correct) / n if n else None,
        "pure": len(pure),
        "pure_pct": 100.0 * len(pure) / n if n else None,
        "launches_mean": sum(launches) / len(launches) if launches else None,
        "statuses": dict(sorted(statuses.items())),
        # the same kernel at the task's SECOND shape: checked (correct kernels of tasks with one), passed
        "second_shape_checked": sum(1 for r in correct if r.get("second_shape")),
        "second_shape_pass": sum(1 for r in correct if r.get("second_shape") == "pass"),
    }
    measured = [r for r in correct if r.get("unique_ratio")]
    out["traffic_tasks"] = len(measured)
    out["geomean_unique_ratio"] = geomean(r["unique_ratio"] for r in measured)
    out["geomean_raw_ratio_memory_bound"] = geomean(r.get("raw_ratio") for r in measured if r.get("memory_bound"))
    out["geomean_operand_reread"] = geomean(r.get("operand_reread") for r in measured if r.get("memory_bound") is False)
    if gpu:
        for b in BASELINES:
            s = [speedup(r, b) for r in results]
            out[f"fast_p_{b}"] = {p_key(p): fast_p(s, p, n) for p in P_VALUES}
            out[f"geomean_speedup_{b}"] = geomean(s)
        out["flagged"] = sum(1 for r in results if flagged(r))
    return out


def summarize(results: list[dict[str, Any]], gpu: bool) -> dict[str, Any]:
    """{"overall": {...}, "categories": {name: {...}}}: counts, correct/pure %, mean launches,
    statuses; with `gpu`, fast_p per baseline and p, geometric-mean speedups and the flagged count."""
    cats: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        cats.setdefault(r.get("category") or "default", []).append(r)
    return {"overall": _group(results, gpu),
            "categories": {c: _group(rs, gpu) for c, rs in sorted(cats.items())}}
