"""Schedule parameters (block sizes, warps, stages, tile shapes, fusion) and their mutation.

A schedule is a plain JSON dict, stored as `Candidate.params["schedule"]`, so an evolve round can
derive new ones from the best candidate's and skip the ones it already tried.
"""

from __future__ import annotations

import copy
import json
import random
from typing import Any

DEFAULT: dict[str, Any] = {
    "fuse": True,
    "row_fusion": True,
    "pointwise": {"XBLOCK": 1024, "num_warps": 4},
    "reduction": {"RBLOCK": 8, "KBLOCK": 512, "max_tile": 8192, "num_warps": 4},
    "matmul": {"BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_K": 32, "GROUP_M": 8, "num_warps": 4, "num_stages": 3,
               "input_precision": "ieee"},
}

# the values each knob may take; tl.dot needs tiles of at least 16
CHOICES: dict[str, dict[str, list[Any]]] = {
    "pointwise": {"XBLOCK": [128, 256, 512, 1024, 2048, 4096], "num_warps": [1, 2, 4, 8]},
    "reduction": {"RBLOCK": [1, 2, 4, 8, 16, 32], "KBLOCK": [64, 128, 256, 512, 1024, 2048],
                  "max_tile": [4096, 8192, 16384], "num_warps": [1, 2, 4, 8]},
    "matmul": {"BLOCK_M": [16, 32, 64, 128], "BLOCK_N": [16, 32, 64, 128], "BLOCK_K": [16, 32, 64],
               "GROUP_M": [1, 4, 8], "num_warps": [2, 4, 8], "num_stages": [2, 3, 4],
               # fp32 operands only (fp16/bf16 always take the tensor cores): exact fp32 FMA, or
               # three tf32 tensor-core passes (hi*hi + hi*lo + lo*hi), which the verifier judges
               # at the task's tolerance like any candidate
               "input_precision": ["ieee", "tf32x3"]},
}

# Per compile target: what one program may use. NVIDIA H100 = sm_90 (vendor figure: at most 227 KB
# of shared memory per block) and a register budget per thread calibrated against `kgen verify
# --compile-for sm_90` (Triton 3.6): fp32 operands (FMA or tf32x3 splitting) keep their tiles in
# registers next to the accumulator, and (BM*BN + BM*BK + BK*BN) / threads above ~112 spilled;
# 16-bit operands feed the tensor cores from shared memory (wgmma, 4 warps or more), so only the
# accumulator counts there (a 2-warp 64x128 fp16 tile spilled under the fp32 rule's limit). A
# matmul/conv config is fitted to them before emission (fit_matmul).
TARGETS: dict[str, dict[str, int]] = {
    "sm_90": {"smem_per_block": 227 * 1024, "fp32_tile_regs_per_thread": 112, "acc_regs_per_thread": 128},
}
DEFAULT_TARGET = "sm_90"


def fit_matmul(knobs: dict, bm: int, bn: int, bk: int, elem_bytes: int, target: str = DEFAULT_TARGET) -> dict:
    """`knobs` (a matmul section) fitted to the target for a BM x BN x BK tile of `elem_bytes`
    operands: num_warps raised (to 8 at most), then BLOCK_K halved (to 16 at least), until the
    per-thread registers fit; then num_stages lowered until the pipelined operand buffers
    (num_stages x (BM*BK + BK*BN) x operand bytes) fit the shared memory. Returns the knobs with
    the fitted num_warps, num_stages and BLOCK_K. The default config fits sm_90 unchanged."""
    limits = TARGETS[target]
    out = dict(knobs)
    warps = int(out["num_warps"])

    def regs(w: int, k: int) -> float:
        # below a warpgroup (4 warps) 16-bit tiles take the register path as well (no wgmma)
        if elem_bytes >= 4 or w < 4:
            return (bm * bn + bm * k + k * bn) / (32 * w) / limits["fp32_tile_regs_per_thread"]
        return bm * bn / (32 * w) / limits["acc_regs_per_thread"]

    while warps < 8 and regs(warps, bk) > 1:
        warps *= 2
    while bk > 16 and regs(warps, bk) > 1:
        bk //= 2
    stages = int(out["num_stages"])
    while stages > 1 and stages * (bm * bk + bk * bn) * elem_bytes > limits["smem_per_block"]:
        stages -= 1
    out["num_stages"], out["num_warps"], out["BLOCK_K"] = stages, warps, bk
    return out


def dot_precision(knobs: dict, operand_dtype: Any) -> str:
    """The `input_precision=` argument of a tl.dot on operands of `operand_dtype` (a torch dtype):
    the schedule's choice for fp32, IEEE for fp64 (no reduced-precision path exists), nothing for
    the others."""
    import torch

    if operand_dtype == torch.float64:
        return ', input_precision="ieee"'
    if operand_dtype != torch.float32:
        return ""
    return f', input_precision="{knobs.get("input_precision", "ieee")}"'


def key(schedule: dict) -> str:
    return json.dumps(schedule, sort_keys=True)


def normalise(schedule: dict | None) -> dict:
    """DEFAULT overlaid with whatever valid knobs `schedule` carries."""
    out = copy.deepcopy(DEFAULT)
    if not isinstance(schedule, dict):
        return out
    for flag in ("fuse", "row_fusion"):
        if isinstance(schedule.get(flag), bool):
            out[flag] = schedule[flag]
    for section, knobs in CHOICES.items():
        given = schedule.get(section)
        if isinstance(given, dict):
            for name, allowed in knobs.items():
                if given.get(name) in allowed:
                    out[section][name] = given[name]
    return out


def mutate(schedule: dict, rng: random.Random, strength: int = 2, sections: set[str] | None = None) -> dict:
    """Change `strength` knobs to a neighbouring value (or flip a fusion switch, rarely).

    `sections` limits the change to the templates a task actually uses."""
    out = copy.deepcopy(normalise(schedule))
    pool = sorted(set(CHOICES) & sections) if sections else sorted(CHOICES)
    for _ in range(max(1, strength)):
        roll = rng.random()
        if roll < 0.05 or not pool:
            out["fuse"] = not out["fuse"]
            continue
        if roll < 0.12 and (sections is None or "reduction" in sections):
            out["row_fusion"] = not out["row_fusion"]
            continue
        section = rng.choice(pool)
        name = rng.choice(sorted(CHOICES[section]))
        allowed = CHOICES[section][name]
        i = allowed.index(out[section][name])
        step = rng.choice([-1, 1])
        out[section][name] = allowed[min(len(allowed) - 1, max(0, i + step))]
    return out


def hints(traffic: dict | None, sections: set[str] | None = None) -> list[tuple[str, str, int]]:
    """Knob steps (section, knob, +1/-1 in CHOICES order) that the cost model says should pay,
    read off a verdict's per-launch traffic (kgen.core.perf.cost): evolve tries them first.

    - a launch whose grid is smaller than the GPU gets only that share of its bandwidth and
      peak: smaller tiles give more programs (BLOCK_M, BLOCK_N, XBLOCK, RBLOCK down);
    - a tl.dot K loop of several iterations pays a round trip per iteration the pipeliner does not
      hide: fewer, larger K steps and a deeper pipeline (BLOCK_K, num_stages up);
    - fp32 tl.dot on CUDA cores: tf32x3 runs on the tensor cores (input_precision up);
    - a launch without tl.dot that issues several loads per program walks its rows in chunks:
      larger chunks (KBLOCK up)."""
    from kgen.core.perf.cost import DEFAULT_GPU, GPUS

    spec = GPUS[DEFAULT_GPU]
    out: list[tuple[str, str, int]] = []

    def add(section: str, knob: str, step: int) -> None:
        if (sections is None or section in sections) and (section, knob, step) not in out:
            out.append((section, knob, step))

    for launch in (traffic or {}).get("per_launch") or []:
        programs = int(launch.get("programs") or 1)
        flops = launch.get("dot_flops") or {}
        tile = launch.get("dot_tile")
        if flops and tile and len(tile) == 3:
            iters = sum(float(v) for v in flops.values()) / (max(1, programs) * 2.0 * max(1, tile[0] * tile[1] * tile[2]))
            if iters > 1.5:
                add("matmul", "BLOCK_K", +1)
                add("matmul", "num_stages", +1)
            if flops.get("fp32"):
                add("matmul", "input_precision", +1)
        elif int(launch.get("loads_per_program") or 0) > 2:
            add("reduction", "KBLOCK", +1)
        if programs < spec.sms:
            if flops:
                add("matmul", "BLOCK_M", -1)
                add("matmul", "BLOCK_N", -1)
            else:
                add("pointwise", "XBLOCK", -1)
                add("reduction", "RBLOCK", -1)
    return out


def step(schedule: dict, section: str, name: str, direction: int) -> dict:
    """`schedule` with one knob moved one place along its CHOICES (clamped at the ends)."""
    out = copy.deepcopy(normalise(schedule))
    allowed = CHOICES[section][name]
    i = allowed.index(out[section][name])
    out[section][name] = allowed[min(len(allowed) - 1, max(0, i + direction))]
    return out


def distinct(base: dict, n: int, tried: set[str], seed: int, sections: set[str] | None = None,
             guided: list[tuple[str, str, int]] | None = None) -> list[dict]:
    """Up to n schedules near `base` not in `tried` (keys): first the base itself if new, then
    steps along the `guided` knob steps (hints()), then random mutations."""
    rng = random.Random(seed)
    out: list[dict] = []
    seen = set(tried)
    # one step along each hint, then two (a block clipped to the problem repeats its source
    # until a step goes below the clip)
    candidates = ([normalise(base)] + [step(base, *g) for g in guided or []]
                  + [step(step(base, *g), *g) for g in guided or []])
    attempts = 0
    while len(out) < n and attempts < 50 * max(1, n):
        s = candidates.pop(0) if candidates else mutate(base, rng, strength=1 + attempts // 20, sections=sections)
        attempts += 1
        k = key(s)
        if k in seen:
            continue
        seen.add(k)
        out.append(s)
    return out


def safe() -> dict:
    """The most conservative schedule: no fusion, small tiles."""
    s = copy.deepcopy(DEFAULT)
    s["fuse"] = False
    s["row_fusion"] = False
    s["pointwise"]["XBLOCK"] = 256
    s["reduction"].update(RBLOCK=1, KBLOCK=256)
    s["matmul"].update(BLOCK_M=32, BLOCK_N=32, BLOCK_K=16)
    return s
