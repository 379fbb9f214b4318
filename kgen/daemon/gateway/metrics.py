"""Prometheus text exposition for the gateway: counters kept here, gauges read at scrape time."""

from __future__ import annotations

from collections import defaultdict
from typing import Callable, Iterable

_HELP = {
    "kgen_gateway_requests_total": ("counter", "HTTP requests answered, by method, route and status"),
    "kgen_gateway_dispatches_total": ("counter", "candidate dispatches to nodes, by result"),
    "kgen_gateway_dispatch_errors_total": ("counter", "failed node calls, by reason"),
    "kgen_gateway_jobs_submitted_total": ("counter", "jobs accepted"),
    "kgen_gateway_submits_rejected_total": ("counter", "submits refused, by reason"),
    "kgen_gateway_jobs": ("gauge", "jobs in the store, by status"),
    "kgen_gateway_queue_depth": ("gauge", "jobs waiting for a job slot"),
    "kgen_gateway_jobs_running": ("gauge", "jobs being run now"),
    "kgen_gateway_workers": ("gauge", "registered workers, by health"),
    "kgen_gateway_inflight_dispatches": ("gauge", "candidates being verified on nodes now"),
}


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
    return "{" + inner + "}"


class Metrics:
    def __init__(self) -> None:
        self._counters: dict[str, dict[tuple, float]] = defaultdict(lambda: defaultdict(float))
        self._gauges: list[Callable[[], Iterable[tuple[str, dict[str, str], float]]]] = []

    def inc(self, name: str, value: float = 1.0, **labels: str) -> None:
        self._counters[name][tuple(sorted(labels.items()))] += value

    def value(self, name: str, **labels: str) -> float:
        return self._counters[name].get(tuple(sorted(labels.items())), 0.0)

    def add_gauges(self, collect: Callable[[], Iterable[tuple[str, dict[str, str], float]]]) -> None:
        """`collect()` yields (name, labels, value) at scrape time."""
        self._gauges.append(collect)

    def render(self) -> str:
        samples: dict[str, list[str]] = defaultdict(list)
        for name, series in self._counters.items():
            for labels, value in series.items():
                samples[name].append(f"{name}{_labels(dict(labels))} {value:g}")
        for collect in self._gauges:
            for name, labels, value in collect():
                samples[name].append(f"{name}{_labels(labels)} {value:g}")
        lines: list[str] = []
        for name in sorted(samples):
            kind, text = _HELP.get(name, ("untyped", name))
            lines.append(f"# HELP {name} {text}")
            lines.append(f"# TYPE {name} {kind}")
            lines.extend(sorted(samples[name]))
        return "\n".join(lines) + "\n"
