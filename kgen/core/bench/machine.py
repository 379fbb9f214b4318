"""What a bench ran on: recorded in results.json so numbers are never quoted without it."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from typing import Any


def _driver_version() -> str | None:
    try:
        with open("/proc/driver/nvidia/version") as fh:  # Linux, no subprocess needed
            first = fh.readline()
        for word in first.split():
            if word[:1].isdigit() and "." in word:
                return word
    except OSError:
        pass
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run([smi, "--query-gpu=driver_version", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=20)
            line = out.stdout.strip().splitlines()
            return line[0].strip() if out.returncode == 0 and line else None
        except (OSError, subprocess.SubprocessError):
            return None
    return None


def machine_info(backend: str) -> dict[str, Any]:
    """Versions and hardware of this machine. With the cuda backend: GPU names, capability,
    driver, CUDA runtime and the TF32 defaults the eager/torch.compile baselines run with."""
    import torch
    import triton

    from kgen import __version__

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "python_implementation": sys.implementation.name,
        "torch": torch.__version__,
        "triton": triton.__version__,
        "kgen": __version__,
        "cuda_runtime": torch.version.cuda,
        "gpus": [],
        "driver": None,
        "triton_interpret": os.environ.get("TRITON_INTERPRET") == "1",
    }
    if backend == "cuda" and torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            info["gpus"].append({"index": i, "name": props.name, "capability": f"{props.major}.{props.minor}",
                                 "memory_gib": round(props.total_memory / 2**30, 1)})
        info["driver"] = _driver_version()
        info["tf32"] = {"matmul": bool(torch.backends.cuda.matmul.allow_tf32),
                        "cudnn": bool(torch.backends.cudnn.allow_tf32),
                        "float32_matmul_precision": torch.get_float32_matmul_precision()}
    return info
