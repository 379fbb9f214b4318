"""Second-shape check of every suite task: generate at the SMALL shapes, verify that very kernel
source at SMALL and then at SMALL+SECOND (kgen.core.bench.second). Writes
benchmarks/results/second_shape.md.

    .venv/bin/python benchmarks/second_shape.py [--only NAME ...] [--out PATH]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TRITON_INTERPRET", "1")


def main() -> int:
    from kgen.core.bench.discovery import discover
    from kgen.core.bench.second import check_second
    from kgen.core.generate.builtin import BuiltinGenerator
    from kgen.core.task import task_from_source
    from kgen.core.verify import verify

    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*", default=[])
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/second_shape.md"))
    a = ap.parse_args()
    tasks = discover([ROOT / "benchmarks/suite"], small=True, only=a.only or None)
    rows = []
    started = time.monotonic()
    for bt in tasks:
        t0 = time.monotonic()
        task = task_from_source(bt.source, bt.name)
        try:
            cand = BuiltinGenerator().initial(task, 1)[0]
        except Exception as exc:  # noqa: BLE001 - the generator's failure is this task's row
            rows.append((bt, "rejected", f"generation failed: {type(exc).__name__}: {exc}"[:200], False, time.monotonic() - t0))
            print(bt.name, "rejected", flush=True)
            continue
        first = verify(task, cand.source, profile=False, trials=1)
        generic = "Generic in the input sizes" in cand.source
        if first.status != "correct":
            second = f"not run (kernel {first.status} at SMALL)"
        else:
            second = check_second(bt.source, cand.source, name=bt.name) or "no SECOND"
        rows.append((bt, first.status, second, generic, time.monotonic() - t0))
        print(bt.name, first.status, second, flush=True)
    write(Path(a.out), rows, time.monotonic() - started)
    return 0


def write(path: Path, rows: list, wall: float) -> None:
    per_cat: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for bt, first, second, _, _ in rows:
        c = per_cat[bt.category]
        c[0] += 1
        c[1] += first == "correct"
        c[2] += second == "pass"
    total = [sum(c[i] for c in per_cat.values()) for i in range(3)]
    lines = ["# Second-shape check of the suite (builtin generator, CPU interpreter)", "",
             "Written by `benchmarks/second_shape.py`: each task's kernel is generated at its `SMALL` shapes,",
             "verified there, then the same kernel source is verified against the task at `SMALL` + `SECOND`",
             "(other batch / sequence / spatial sizes, same constructor arguments; see benchmarks/suite/README.md).",
             f"Whole run: {wall:.0f} s.", "",
             f"**{total[2]} of {total[0]} tasks pass at their second shape** ({total[1]} correct at SMALL).", "",
             "| category | tasks | correct at SMALL | pass at SECOND |", "|---|---|---|---|"]
    for cat in sorted(per_cat):
        c = per_cat[cat]
        lines.append(f"| {cat} | {c[0]} | {c[1]} | {c[2]} |")
    lines.append(f"| **all** | {total[0]} | {total[1]} | {total[2]} |")
    lines += ["", "| task | category | at SMALL | shape-generic kernel | second shape |", "|---|---|---|---|---|"]
    for bt, first, second, generic, _ in rows:
        lines.append(f"| {bt.name} | {bt.category} | {first} | {'yes' if generic else 'no'} | {second.replace('|', '/')} |")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
