"""Overhead of the traffic meter (kgen.core.verify.traffic) on the Triton interpreter.

Runs three kernels in one process, alternately without the meter and with it installed and
enabled (as in a verification), and reports the slowdown as a ratio against the plain run. Results:
benchmarks/results/traffic_overhead.{json,md}.

    .venv/bin/python benchmarks/bench_traffic.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ["TRITON_INTERPRET"] = "1"

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def kernels():
    import torch
    import triton
    import triton.language as tl

    @triton.jit
    def add_kernel(x_ptr, y_ptr, o_ptr, n, XBLOCK: tl.constexpr):
        i = tl.program_id(0) * XBLOCK + tl.arange(0, XBLOCK)
        m = i < n
        tl.store(o_ptr + i, tl.load(x_ptr + i, mask=m) + tl.load(y_ptr + i, mask=m), mask=m)

    @triton.jit
    def softmax_kernel(x_ptr, o_ptr, K, KBLOCK: tl.constexpr):
        row = tl.program_id(0)
        ks = tl.arange(0, KBLOCK)
        m = ks < K
        x = tl.load(x_ptr + row * K + ks, mask=m, other=-float("inf"))
        e = tl.exp(x - tl.max(x, 0))
        tl.store(o_ptr + row * K + ks, e / tl.sum(e, 0), mask=m)

    @triton.jit
    def mm_kernel(a_ptr, b_ptr, c_ptr, M, N, K, BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr):
        rm = tl.program_id(0) * BM + tl.arange(0, BM)
        rn = tl.program_id(1) * BN + tl.arange(0, BN)
        acc = tl.zeros([BM, BN], tl.float32)
        for k0 in range(0, K, BK):
            rk = k0 + tl.arange(0, BK)
            a = tl.load(a_ptr + rm[:, None] * K + rk[None, :])
            b = tl.load(b_ptr + rk[:, None] * N + rn[None, :])
            acc += tl.dot(a, b, input_precision="ieee")
        tl.store(c_ptr + rm[:, None] * N + rn[None, :], acc)

    n = 1 << 20
    x, y, o = torch.randn(n), torch.randn(n), torch.empty(n)
    r = torch.randn(256, 1000)
    ro = torch.empty_like(r)
    a, b, c = torch.randn(128, 128), torch.randn(128, 128), torch.empty(128, 128)
    return {
        "pointwise 1M fp32 (1024 programs)": lambda: add_kernel[(n // 1024,)](x, y, o, n, XBLOCK=1024),
        "row softmax 256x1000 (256 programs)": lambda: softmax_kernel[(256,)](r, ro, 1000, KBLOCK=1024),
        "matmul 128^3 (16 programs, 4 k-steps)": lambda: mm_kernel[(4, 4)](a, b, c, 128, 128, 128, BM=32, BN=32, BK=32),
    }


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000.0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from kgen.core.verify.traffic import TrafficMeter

    cases = kernels()
    meter = TrafficMeter()
    plain: dict[str, list[float]] = {name: [] for name in cases}
    metered: dict[str, list[float]] = {name: [] for name in cases}
    for name, fn in cases.items():
        fn()  # warm-up (the interpreter rewrites the kernel once)
        for _ in range(args.repeats):  # alternate, so load from other processes hits both alike
            plain[name].append(timed(fn))
            meter.install()
            meter.enabled = True
            metered[name].append(timed(fn))
            meter.uninstall()
    sample = meter.take()
    plain = {k: statistics.median(v) for k, v in plain.items()}  # type: ignore[misc]
    metered = {k: statistics.median(v) for k, v in metered.items()}  # type: ignore[misc]
    rows = [{"case": name, "plain_ms": round(plain[name], 2), "metered_ms": round(metered[name], 2),
             "ratio": round(metered[name] / plain[name], 3)} for name in cases]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "traffic_overhead.json").write_text(json.dumps({"repeats": args.repeats, "rows": rows,
                                                               "last_launches": sample[-3:]}, indent=1) + "\n")
    lines = ["# Traffic meter overhead on the Triton interpreter (median wall ms per launch, same process)", "",
             "| case | plain ms | metered ms | metered / plain |", "|---|---|---|---|"]
    lines += [f"| {r['case']} | {r['plain_ms']} | {r['metered_ms']} | {r['ratio']}x |" for r in rows]
    (RESULTS / "traffic_overhead.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
