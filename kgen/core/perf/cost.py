"""A roofline cost model: what a candidate's measured traffic would cost on a named GPU.

It is a MODEL, not a measurement: on a CPU node (Triton interpreter) it is the only speed
figure kgen has, and evolve ranks correct candidates by it; wherever a GPU timed the candidate,
the measured time replaces it. Every output says `model: roofline-<gpu>`.

Per launch l (figures from kgen.core.verify.traffic):

    t_l = launch_us + t_lat + max(t_mem, t_flop)
    t_mem  = (unique_l / hbm_bw + (raw_l - unique_l) / l2_bw) / (used_l * busy_l)   # first touch from HBM, re-reads from L2
    t_flop = (sum over precisions p of dot_flops_l[p] / peak[p]) * quant_l / busy_l   # tl.dot as executed, padded tiles too
    t_lat  = waves_l * serial_l * mem_latency_us                                     # serial round trips to memory
    used_l  = min(1, programs_l / sms)           # a grid smaller than the GPU gets that share of its bandwidth
    quant_l = sms * ceil(programs_l / sms) / programs_l   # wave quantisation: the busiest SM holds
                                                 # ceil(programs/sms) tiles and the others wait for it (= 1/used_l
                                                 # for a grid smaller than the GPU)
    busy_l  = min(1, num_warps_l * min(resident_l, ceil(programs_l / sms)) / 4)   # warps issue on an SM's
                                                 # 4 sub-partitions: a lone 1- or 2-warp program leaves some idle
    waves_l = ceil(programs_l / (sms * resident_l))
    resident_l = programs one SM holds at once: min(32, 64 // num_warps), and for a launch with tl.dot also
                 shared memory // (num_stages * (BM*BK + BK*BN) * operand bytes)   (pipelined operand buffers)
                 and registers // (32 * 32 * num_warps + BM*BN)                    (fp32 accumulator tile)
    serial_l = loads_per_program, less for a launch with tl.dot (Triton software-pipelines its K loop):
               its 2 * iters A/B tile loads become 2 * ceil(iters / (num_stages - 1)) round trips, where
               iters = dot_flops / (programs * 2*BM*BN*BK) (num_stages - 1 iterations in flight)

    est_us = max(sum_l t_l, launches * launch_us + flops_reference / peak_floor)

The serial round trips add to the throughput-bound part (a program waits for its loads before
it can stream), which is what makes small grids latency bound; memory and compute overlap (max).
The floor charges the reference's matmul/conv flops (torch's flop counter) at the fastest rate
among the precisions the candidate's tl.dot calls used, or at the CUDA-core fp32 rate when it
made none, so a kernel that does a matmul without tl.dot is not modelled as free compute.

What the schedule knobs change in the model: block shapes change the measured traffic (a matmul
or conv tile re-reads its operands once per tile of the other operand: raw - unique, charged at
L2 bandwidth), the grid (programs: used, quant, waves) and, through the dot tile, occupancy;
num_warps changes busy and resident; num_stages changes the serial round trips and the shared
memory per program; `input_precision` picks the peak (fp32 `ieee` on CUDA cores, `tf32x3` three
tf32 tensor-core passes). The model is blind to: GROUP_M (the L2 is taken to hold every re-read
operand, whatever the program order: true at the suite's small shapes, optimistic for operands
larger than the L2), bank conflicts, instruction overheads, spills and clocks.

Vendor figures (NVIDIA H100 Tensor Core GPU datasheet / architecture whitepaper, H100 SXM5 80GB,
dense, no sparsity): HBM3 3.35 TB/s; 132 SMs; FP32 66.9 TFLOPS; TF32 tensor 494.7 TFLOPS;
FP16/BF16 tensor 989.4 TFLOPS; FP8 tensor 1978.9 TFLOPS; INT8 tensor 1978.9 TOPS; per SM 4
sub-partitions, 64K 32-bit registers, 228 KB shared memory, at most 64 resident warps and 32 blocks.
Model assumptions (not vendor figures): 3 us per launch (host launch and ramp), L2 bandwidth 2x
HBM, 0.5 us DRAM round trip, 32 registers per thread besides the accumulator, Triton's default
of 3 stages where a launch does not say.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class GPUSpec:
    name: str
    label: str
    hbm_bytes_per_us: float                # bytes per microsecond
    l2_bytes_per_us: float
    flops_per_us: dict[str, float] = field(default_factory=dict)   # precision -> flops per microsecond
    sms: int = 132
    launch_us: float = 3.0
    mem_latency_us: float = 0.5
    max_warps_per_sm: int = 64
    max_programs_per_sm: int = 32
    subpartitions: int = 4                  # warp schedulers per SM
    smem_per_sm: int = 228 * 1024           # bytes
    regs_per_sm: int = 65536                # 32-bit registers
    base_regs_per_thread: int = 32          # model assumption: registers besides the accumulator
    default_stages: int = 3                 # Triton's default num_stages on NVIDIA GPUs


_T = 1e12 / 1e6   # "tera per second" in "per microsecond"

GPUS: dict[str, GPUSpec] = {
    "h100": GPUSpec(
        name="h100", label="NVIDIA H100 SXM5 80GB (vendor figures; model assumptions in kgen.core.perf.cost)",
        hbm_bytes_per_us=3.35 * _T, l2_bytes_per_us=2 * 3.35 * _T,
        flops_per_us={"fp32": 66.9 * _T, "tf32": 494.7 * _T, "tf32x3": 494.7 * _T / 3,
                      "fp16": 989.4 * _T, "fp8": 1978.9 * _T, "int": 1978.9 * _T}),
}
DEFAULT_GPU = "h100"


def resident(spec: GPUSpec, num_warps: int) -> int:
    return max(1, min(spec.max_programs_per_sm, spec.max_warps_per_sm // max(1, int(num_warps))))


def occupancy(spec: GPUSpec, launch: dict[str, Any]) -> int:
    """Programs of this launch one SM holds at once: the warp limit, and for a launch with tl.dot
    the shared memory of its pipelined operand buffers and the registers of its accumulator."""
    warps = max(1, int(launch.get("num_warps") or 4))
    limit = resident(spec, warps)
    tile = launch.get("dot_tile")
    if tile and len(tile) == 3:
        m, n, k = (max(1, int(v)) for v in tile)
        stages = stages_of(spec, launch)
        smem = stages * (m * k + k * n) * max(1, int(launch.get("dot_elem") or 4))
        regs = 32 * warps * spec.base_regs_per_thread + m * n
        limit = min(limit, spec.smem_per_sm // smem, spec.regs_per_sm // regs)
    return max(1, limit)


def stages_of(spec: GPUSpec, launch: dict[str, Any]) -> int:
    return max(1, int(launch.get("num_stages") or spec.default_stages))


def serial_loads(spec: GPUSpec, launch: dict[str, Any], programs: int) -> int:
    """Serial round trips to memory of one program. Without pipelining every load is one. A
    launch with tl.dot runs a K loop of `iters` dot tiles (traced dot flops / (programs x tile
    flops)), each fed by an A and a B tile load issued together; Triton's software pipeliner keeps
    num_stages - 1 iterations of them in flight, so the loop costs 2 * ceil(iters / (num_stages - 1))
    round trips instead of 2 * iters. A one-iteration loop gains nothing."""
    loads = int(launch.get("loads_per_program") or 0)
    tile = launch.get("dot_tile")
    stages = stages_of(spec, launch)
    flops = sum(float(v) for v in (launch.get("dot_flops") or {}).values())
    if not tile or len(tile) != 3 or stages < 2 or not flops:
        return loads
    per_dot = 2.0 * math.prod(max(1, int(v)) for v in tile)
    iters = max(1, round(flops / (programs * per_dot)))
    loop = min(loads, 2 * iters)
    return loads - loop + min(loop, 2 * math.ceil(iters / (stages - 1)))


def launch_cost(spec: GPUSpec, launch: dict[str, Any]) -> dict[str, float]:
    """The model's terms for one launch (microseconds)."""
    raw = float(launch.get("raw") or 0)
    unique = min(raw, float(launch.get("unique") or 0))
    programs = max(1, int(launch.get("programs") or 1))
    warps = max(1, int(launch.get("num_warps") or 4))
    used = min(1.0, programs / spec.sms)
    per_sm = math.ceil(programs / spec.sms)
    quant = spec.sms * per_sm / programs
    res = occupancy(spec, launch)
    busy = min(1.0, warps * min(res, per_sm) / spec.subpartitions)
    t_mem = (unique / spec.hbm_bytes_per_us + (raw - unique) / spec.l2_bytes_per_us) / (used * busy)
    t_flop = 0.0
    for kind, flops in (launch.get("dot_flops") or {}).items():
        peak = spec.flops_per_us.get(str(kind), spec.flops_per_us["fp32"])
        t_flop += float(flops) / peak * quant / busy
    loads = serial_loads(spec, launch, programs)
    waves = math.ceil(programs / (spec.sms * res))
    t_lat = waves * loads * spec.mem_latency_us
    return {"memory_us": t_mem, "compute_us": t_flop, "latency_us": t_lat,
            "total_us": spec.launch_us + t_lat + max(t_mem, t_flop)}


def estimate(traffic: dict[str, Any], flops_reference: int | None = None, gpu: str = DEFAULT_GPU) -> dict[str, Any]:
    """The verdict's `cost` dict for one forward call, from its `traffic` dict."""
    spec = GPUS[gpu]
    launches = list(traffic.get("per_launch") or [])
    terms = [launch_cost(spec, x) for x in launches]
    total = sum(t["total_us"] for t in terms)
    kinds = {str(k) for x in launches for k, v in (x.get("dot_flops") or {}).items() if v}
    peak_floor = max([spec.flops_per_us.get(k, spec.flops_per_us["fp32"]) for k in kinds] or [spec.flops_per_us["fp32"]])
    floor = len(launches) * spec.launch_us + float(flops_reference or 0) / peak_floor
    traced = sum(int(v) for x in launches for v in (x.get("dot_flops") or {}).values())
    # the bound that dominates the sum of launch bodies (or the launches themselves)
    sums = {k: sum(t[k] for t in terms) for k in ("memory_us", "compute_us", "latency_us")}
    sums["launch_us"] = len(launches) * spec.launch_us
    bound = max(sums, key=lambda k: sums[k]) if launches else "none"
    return {"model": f"roofline-{spec.name}", "gpu": spec.label, "est_us": round(max(total, floor), 4),
            "launch_us": round(sums["launch_us"], 4), "memory_us": round(sums["memory_us"], 4),
            "compute_us": round(sums["compute_us"], 4), "latency_us": round(sums["latency_us"], 4),
            "bound": bound.removesuffix("_us"), "flops_traced": traced, "flops_reference": flops_reference,
            "note": "a model estimate from interpreter traffic, not a measured time"}


def fitness_us(verdict: Any) -> float | None:
    """What ranks correct candidates, in microseconds per forward call: measured GPU time where a
    GPU timed the candidate, else the model's estimate (CPU nodes), else None."""
    timing = getattr(verdict, "timing", None)
    if timing is not None and getattr(timing, "kind", None) == "gpu" and timing.candidate_ms is not None:
        return float(timing.candidate_ms) * 1000.0
    cost = getattr(verdict, "cost", None)
    if isinstance(cost, dict) and isinstance(cost.get("est_us"), (int, float)):
        return float(cost["est_us"])
    return None
