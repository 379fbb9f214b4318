"""Attention and transposed convolutions before/after the fused attention pattern and the stride
phases: launches per call and traffic ratios (verifier, CPU interpreter) per suite task, and the
interpreter time of the transposed convolutions, before/after in one process on the same inputs.

"Before" kernels come from another checkout of kgen (the commit before this work), generated
there with `--emit`:

    PYTHONPATH=/path/to/old/checkout .venv/bin/python benchmarks/bench_attention_convt.py --emit /tmp/before
    .venv/bin/python benchmarks/bench_attention_convt.py --before /tmp/before

Results: benchmarks/results/attention_convt.{json,md}.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

os.environ["TRITON_INTERPRET"] = "1"

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SUITE = ROOT / "benchmarks" / "suite"
TASKS = sorted(SUITE.glob("attention/*.py")) + sorted(SUITE.glob("conv/conv_transpose*.py")) + [
    SUITE / "fused" / "conv_transpose2d_add_tanh.py"]

# a transposed 3-d convolution a little above the suite's smallest shapes: where masked taps cost
MEDIUM_3D = '''
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.ConvTranspose3d(8, 8, 3, stride=2, padding=1, output_padding=1)

    def forward(self, x):
        return self.conv(x)


def get_inputs():
    return [torch.randn(1, 8, 6, 6, 6)]


def get_init_inputs():
    return []
'''


MEDIUM_2D = '''
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.ConvTranspose2d(16, 8, 4, stride=2, padding=1)

    def forward(self, x):
        return torch.tanh(self.conv(x))


def get_inputs():
    return [torch.randn(2, 16, 12, 12)]


def get_init_inputs():
    return []
'''


def sources() -> dict[str, str]:
    out = {}
    for p in TASKS:
        text = p.read_text()
        out[f"{p.parent.name}/{p.stem}"] = text + ("\nglobals().update(SMALL)\n" if "SMALL =" in text else "")
    out["conv/convt2d_medium"] = MEDIUM_2D
    out["conv/convt3d_medium"] = MEDIUM_3D
    return out


def phased_at_full_shapes(path: Path) -> bool:
    """Whether the kernel generated at the task's own (GPU-sized) shapes uses stride phases."""
    return "for phase in range(" in generate(path.stem, path.read_text())


def generate(name: str, source: str) -> str:
    from kgen.core.generate.builtin import BuiltinGenerator
    from kgen.core.task import task_from_source

    return BuiltinGenerator().initial(task_from_source(source, name.replace("/", "_")), 1)[0].source


def _module(path: Path):
    spec = importlib.util.spec_from_file_location(f"kgen_bench_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def interpreter_ms(reference: str, cand_path: Path, repeats: int) -> float:
    import torch

    ns: dict = {"__name__": "kgen_bench_ref"}
    exec(compile(reference, "<reference>", "exec"), ns)  # the suite's own reference module
    torch.manual_seed(0)
    inputs = ns["get_inputs"]()
    torch.manual_seed(0)
    model = _module(cand_path).ModelNew(*ns["get_init_inputs"]())
    best = float("inf")
    with torch.no_grad():
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(*inputs)
            best = min(best, time.perf_counter() - t0)
    return best * 1e3


def traffic(name: str, source: str, cand: str, pool) -> dict:
    from kgen.core.task import task_from_source
    from kgen.core.verify import verify

    v = verify(task_from_source(source, name.replace("/", "_")), cand, device="cpu", pool=pool, profile=False)
    t = v.traffic or {}
    return {"status": v.status, "launches": t.get("launches"), "unique_ratio": t.get("unique_ratio"),
            "raw_ratio": t.get("raw_ratio")}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--emit", type=Path, help="write this checkout's candidates here and stop")
    ap.add_argument("--before", type=Path, help="candidates of the old checkout (from --emit)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    srcs = sources()
    if args.emit:
        args.emit.mkdir(parents=True, exist_ok=True)
        for name, src in srcs.items():
            (args.emit / (name.replace("/", "__") + ".py")).write_text(generate(name, src))
        return 0
    if not args.before:
        ap.error("--before DIR is required (make it with --emit from the old checkout)")
    from kgen.core.verify import RunnerPool

    work = RESULTS / ".attention_convt_candidates"
    work.mkdir(parents=True, exist_ok=True)
    pool = RunnerPool(memory_mb=2048)
    rows = []
    try:
        for name, src in srcs.items():
            before_path = args.before / (name.replace("/", "__") + ".py")
            after_path = work / (name.replace("/", "__") + ".py")
            after_path.write_text(generate(name, src))
            row: dict = {"task": name}
            for tag, path in (("before", before_path), ("after", after_path)):
                row[tag] = traffic(name, src, path.read_text(), pool) if not name.endswith("_medium") else {}
            if name.startswith(("conv/", "fused/")):
                # alternate, so both see the same machine state
                b = interpreter_ms(src, before_path, args.repeats)
                a = interpreter_ms(src, after_path, args.repeats)
                row["interp_ms_before"], row["interp_ms_after"] = round(b, 1), round(a, 1)
                row["interp_speedup"] = round(b / a, 2)
                row["phased"] = "for phase in range(" in after_path.read_text()
                full = SUITE / (name + ".py")
                row["phased_full_shapes"] = phased_at_full_shapes(full) if full.exists() else None
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        pool.close()
        for p in work.glob("*.py"):
            p.unlink()
        work.rmdir()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "attention_convt.json").write_text(json.dumps(rows, indent=1) + "\n")
    lines = ["# Attention pattern and stride-phase transposed convolutions: before / after", "",
             "CPU, Triton interpreter, suite SMALL shapes (`convt2d_medium`: 2x16x12x12 -> 8 channels, k4 s2,",
             "with tanh; `convt3d_medium`: 1x8x6x6x6 -> 8 channels, k3 s2). `phased`: the kernel uses stride",
             "phases (at SMALL shapes; and as generated at the task's own full shapes). A problem that fits",
             "a tile or two keeps the single pass: phases there would only add loop steps, and its kernel is",
             "the one from before (its time ratio is the machine's noise).",
             "Launches per call and traffic / minimum from the verifier; interpreter time: best of "
             f"{args.repeats} forward calls, before and after in the same process.", "",
             "| task | launches before | after | unique/min before | after | raw/min before | after "
             "| interp ms before | after | speedup | phased (small / full) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]

    def f(x):
        return "" if x is None else (f"{x:.2f}" if isinstance(x, float) else str(x))

    for r in rows:
        b, a = r["before"], r["after"]
        lines.append(f"| {r['task']} | {f(b.get('launches'))} | {f(a.get('launches'))} | {f(b.get('unique_ratio'))} "
                     f"| {f(a.get('unique_ratio'))} | {f(b.get('raw_ratio'))} | {f(a.get('raw_ratio'))} "
                     f"| {f(r.get('interp_ms_before'))} | {f(r.get('interp_ms_after'))} | {f(r.get('interp_speedup'))} "
                     f"| {f(r.get('phased'))} / {f(r.get('phased_full_shapes'))} |")
    (RESULTS / "attention_convt.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
