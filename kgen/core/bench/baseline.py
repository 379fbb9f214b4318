"""torch.compile baselines in a mode other than the verifier's default (`--compile-mode`).

The verifier times eager and `torch.compile(model)` (default mode) once per task and GPU; for
another mode (`max-autotune`, `reduce-overhead`, ...) the bench times the reference here, in a
child process (`python -m kgen.core.bench.baseline`, request as JSON on stdin, one JSON line
out), with the verifier's method: warm-up, L2 flush, CUDA events, median.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def compile_baseline(source: str, device: str, mode: str, *, timeout_s: float = 600.0, repeats: int = 20) -> dict[str, Any]:
    """{"compile_ms": float | None, "error": str | None} for the task `source` on `device`."""
    request = json.dumps({"source": source, "device": device, "mode": mode, "repeats": repeats})
    try:
        proc = subprocess.run([sys.executable, "-m", "kgen.core.bench.baseline"], input=request,
                              capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"compile_ms": None, "error": f"torch.compile baseline timed out after {timeout_s:g}s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"compile_ms": None, "error": f"baseline child exited {proc.returncode}: {tail[0][:300]}"}
    data = json.loads(lines[-1])
    return {"compile_ms": data.get("compile_ms"), "error": data.get("error")}


def _main() -> None:
    import random
    import types

    import torch

    from kgen.core.verify.gpu_timing import median_ms

    req = json.loads(sys.stdin.read())
    module = types.ModuleType("kgen_bench_task")
    exec(compile(req["source"], "task.py", "exec"), module.__dict__)  # the user's own reference
    torch.manual_seed(1000)
    random.seed(1000)
    device = torch.device(req["device"])
    model = module.Model(*module.get_init_inputs()).to(device)
    inputs = [x.to(device) if isinstance(x, torch.Tensor) else x for x in module.get_inputs()]
    try:
        compiled = torch.compile(model, mode=None if req["mode"] == "default" else req["mode"])
        ms = median_ms(lambda: compiled(*inputs), int(req["repeats"]))
        print(json.dumps({"compile_ms": ms, "error": None}))
    except Exception as exc:  # noqa: BLE001 - a reference torch.compile cannot handle: eager still stands
        print(json.dumps({"compile_ms": None, "error": f"{type(exc).__name__}: {exc}"[:300]}))


if __name__ == "__main__":
    _main()
