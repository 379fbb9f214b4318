"""results.png. GPU: every task's speedup (sorted) against eager and against torch.compile on a
log axis, 1x marked, incorrect tasks at the bottom. CPU: correct and pure % per category.
matplotlib is an optional extra (`pip install kgen[plot]`); without it the PNG is skipped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kgen.core.bench.summary import REVIEW_SPEEDUP, speedup


def write_plot(doc: dict[str, Any], path: str | Path) -> tuple[str | None, str | None]:
    """(path written, None) or (None, one-line note why not)."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only, never a display
        import matplotlib.pyplot as plt
    except ImportError:
        return None, "results.png skipped: matplotlib is not installed (pip install 'kgen[plot]')"
    if not doc["tasks"]:
        return None, "results.png skipped: no task results"
    fig = _gpu_figure(plt, doc) if doc["gpu"] else _cpu_figure(plt, doc)
    try:
        fig.savefig(str(path), dpi=110)
    finally:
        plt.close(fig)
    return str(path), None


def _title(doc: dict[str, Any]) -> str:
    m, s = doc["machine"], doc["settings"]
    device = ", ".join(g["name"] for g in m.get("gpus") or []) or (
        "CPU, Triton interpreter" if not doc["gpu"] else "GPU")
    what = "given kernels" if s.get("candidates") else f"{s.get('generator')} generator"
    return (f"kgen bench: {len(doc['tasks'])} tasks, {what}, {device}"
            f"{' (small shapes)' if s.get('small') else ''}")


def _cpu_figure(plt, doc: dict[str, Any]):
    cats = doc["summary"]["categories"]
    names = list(cats)
    correct = [cats[c]["correct_pct"] or 0.0 for c in names]
    pure = [cats[c]["pure_pct"] or 0.0 for c in names]
    fig, ax = plt.subplots(figsize=(max(7.0, 0.8 * len(names) + 2), 4.6))
    x = range(len(names))
    w = 0.38
    ax.bar([i - w / 2 for i in x], correct, w, label="correct", color="#4c72b0")
    ax.bar([i + w / 2 for i in x], pure, w, label="correct and pure (no torch fallback)", color="#55a868")
    for i, c in enumerate(names):
        ax.text(i, 102, f"n={cats[c]['tasks']}", ha="center", fontsize=8)
    ax.set_xticks(list(x))
    ax.set_xticklabels(names, rotation=30, ha="right")
    ax.set_ylim(0, 110)
    ax.set_ylabel("% of tasks")
    o = doc["summary"]["overall"]
    ax.set_title(f"{_title(doc)}\noverall: {o['correct_pct']:.0f}% correct, {o['pure_pct']:.0f}% pure", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def _gpu_figure(plt, doc: dict[str, Any]):
    fig, ax = plt.subplots(figsize=(10, 5))
    n = len(doc["tasks"])
    for baseline, colour in (("eager", "#4c72b0"), ("compile", "#dd8452")):
        values = sorted((speedup(t, baseline) for t in doc["tasks"]), key=lambda v: (v is not None, v or 0.0))
        xs = [i for i, v in enumerate(values) if v is not None]
        ys = [v for v in values if v is not None]
        label = f"vs {'torch.compile' if baseline == 'compile' else 'eager'} ({len(ys)} of {n} timed)"
        ax.plot(xs, ys, marker="o", markersize=3, linewidth=1.2, color=colour, label=label)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.axhline(REVIEW_SPEEDUP, color="red", linewidth=0.6, linestyle="--", label=f"{REVIEW_SPEEDUP:g}x: review")
    ax.set_yscale("log")
    ax.set_xlim(-1, max(n, 2))
    ax.set_xlabel("tasks, sorted by speedup (incorrect or untimed: not drawn, on the left)")
    ax.set_ylabel("speedup (baseline ms / kernel ms)")
    ax.set_title(_title(doc), fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return fig
