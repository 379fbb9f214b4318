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
    "matmul": {"BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_K": 32, "GROUP_M": 8, "num_warps": 4, "num_stages": 3},
}

# the values each knob may take; tl.dot needs tiles of at least 16
CHOICES: dict[str, dict[str, list[Any]]] = {
    "pointwise": {"XBLOCK": [128, 256, 512, 1024, 2048, 4096], "num_warps": [1, 2, 4, 8]},
    "reduction": {"RBLOCK": [1, 2, 4, 8, 16, 32], "KBLOCK": [64, 128, 256, 512, 1024, 2048],
                  "max_tile": [4096, 8192, 16384], "num_warps": [1, 2, 4, 8]},
    "matmul": {"BLOCK_M": [16, 32, 64, 128], "BLOCK_N": [16, 32, 64, 128], "BLOCK_K": [16, 32, 64],
               "GROUP_M": [1, 4, 8], "num_warps": [2, 4, 8], "num_stages": [2, 3, 4]},
}


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


def distinct(base: dict, n: int, tried: set[str], seed: int, sections: set[str] | None = None) -> list[dict]:
    """Up to n schedules near `base` not in `tried` (keys), first the base itself if new."""
    rng = random.Random(seed)
    out: list[dict] = []
    seen = set(tried)
    candidates = [normalise(base)]
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
