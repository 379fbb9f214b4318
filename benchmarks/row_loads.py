"""How often the builtin generator's kernels read each element of their inputs, counted in the
generated source (no run): for every task, the Triton launches and, over its reduction kernels,
the element loads per row element (`tl.load`s indexed by the row position `ks`; a load inside
the chunk loop runs once per element, so this is the number of sweeps over memory per row).
Row softmax before the register-resident rows: 3 (max, sum, normalise), after: 1.

    python benchmarks/row_loads.py --out benchmarks/results/row_loads_after
    PYTHONPATH=<older checkout> python benchmarks/row_loads.py --tasks tests/core/generate/tasks \\
        --out benchmarks/results/row_loads_before
    python benchmarks/row_loads.py --compare before.json after.json    # markdown table

Static and exact for what it counts; the bytes every launch moves are the traffic report's job.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TASKS = ROOT / "tests" / "core" / "generate" / "tasks"
_KERNEL = re.compile(r"^@triton\.jit\ndef (k\d+_(\w+?))\(", re.M)
_ROW_LOAD = re.compile(r"tl\.load\([^\n]*\bks\b")


def kernels(source: str) -> dict[str, str]:
    """Generated kernel name -> its source text."""
    heads = list(_KERNEL.finditer(source))
    out = {}
    for i, head in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else source.find("\nclass ModelNew")
        out[head.group(1)] = source[head.start():end]
    return out


def count(source: str) -> dict:
    ks = kernels(source)
    red = {name: len(_ROW_LOAD.findall(text)) for name, text in ks.items() if name.endswith("_reduction")}
    return {"kernels": len(ks), "reduction_kernels": len(red), "row_loads": sum(red.values()),
            "row_loads_per_kernel": red}


def measure(tasks: Path) -> list[dict]:
    from kgen.core.generate.builtin import BuiltinGenerator
    from kgen.core.task import load_task

    rows = []
    for path in sorted(tasks.glob("*.py")):
        try:
            cand = BuiltinGenerator().initial(load_task(path), 1)[0]
        except Exception as exc:  # noqa: BLE001 - an older generator may not lower a newer task
            rows.append({"task": path.stem, "error": f"{type(exc).__name__}: {str(exc)[:120]}"})
            continue
        rows.append({"task": path.stem, **count(cand.source), "fallback_ops": cand.params["fallback_ops"]})
    return rows


def compare(before: list[dict], after: list[dict]) -> str:
    old = {r["task"]: r for r in before}
    lines = ["| task | launches before | after | row loads before | after | fallbacks before | after |",
             "|---|---|---|---|---|---|---|"]
    for r in after:
        b = old.get(r["task"], {})

        def cell(row: dict, key: str) -> str:
            if "error" in row:
                return "fails"
            return str(row.get(key, "—")) if row else "—"

        changed = any(cell(b, k) != cell(r, k) for k in ("kernels", "row_loads", "fallback_ops"))
        if changed or r.get("reduction_kernels"):
            fb_b = "fails" if "error" in b else (len(b.get("fallback_ops", [])) if b else "—")
            fb_a = "fails" if "error" in r else len(r.get("fallback_ops", []))
            lines.append(f"| {r['task']} | {cell(b, 'kernels')} | {cell(r, 'kernels')} | {cell(b, 'row_loads')} | "
                         f"{cell(r, 'row_loads')} | {fb_b} | {fb_a} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=Path, default=TASKS)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    args = ap.parse_args()
    if args.compare:
        before, after = (json.loads(p.read_text()) for p in args.compare)
        sys.stdout.write(compare(before, after))
        return 0
    rows = measure(args.tasks)
    text = json.dumps(rows, indent=1)
    if args.out:
        args.out.with_suffix(".json").write_text(text + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
