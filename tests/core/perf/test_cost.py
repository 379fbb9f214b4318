"""The roofline model's arithmetic, term by term, on hand-built traffic."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from kgen.core.perf import cost

H100 = cost.GPUS["h100"]


def launch(**kw):
    base = {"raw": 0, "unique": 0, "programs": 1, "num_warps": 4, "loads_per_program": 0, "dot_flops": {}}
    return {**base, **kw}


def test_memory_term_charges_first_touch_at_hbm_and_rereads_at_l2():
    t = cost.launch_cost(H100, launch(raw=3_000_000, unique=1_000_000, programs=H100.sms))
    want = 1_000_000 / (3.35e6) + 2_000_000 / (6.7e6)
    assert t["memory_us"] == pytest.approx(want)
    assert t["total_us"] == pytest.approx(H100.launch_us + want)


def test_a_grid_smaller_than_the_gpu_gets_its_share_of_bandwidth_and_peak():
    full = cost.launch_cost(H100, launch(raw=3_350_000, unique=3_350_000, programs=10 * H100.sms))
    quarter = cost.launch_cost(H100, launch(raw=3_350_000, unique=3_350_000, programs=H100.sms // 4))
    assert full["memory_us"] == pytest.approx(1.0)
    assert quarter["memory_us"] == pytest.approx(4.0)
    dot = cost.launch_cost(H100, launch(dot_flops={"fp32": 66.9e6}, programs=H100.sms // 2))
    assert dot["compute_us"] == pytest.approx(2.0)


def test_compute_term_uses_the_peak_of_each_precision():
    flops = {"fp32": 66.9e6, "fp16": 989.4e6}   # one microsecond each
    t = cost.launch_cost(H100, launch(dot_flops=flops, programs=H100.sms))
    assert t["compute_us"] == pytest.approx(2.0)
    assert t["total_us"] == pytest.approx(H100.launch_us + 2.0)


def test_latency_term_counts_waves_and_serial_loads():
    per_wave = H100.sms * cost.resident(H100, 4)          # 132 SMs x 16 programs of 4 warps
    assert cost.resident(H100, 4) == 16 and cost.resident(H100, 1) == 32 and cost.resident(H100, 64) == 1
    one = cost.launch_cost(H100, launch(programs=per_wave, loads_per_program=10))
    two = cost.launch_cost(H100, launch(programs=per_wave + 1, loads_per_program=10))
    assert one["latency_us"] == pytest.approx(10 * H100.mem_latency_us)
    assert two["latency_us"] == pytest.approx(2 * one["latency_us"])


def test_estimate_is_the_sum_of_launches_the_max_of_their_bounds():
    traffic = {"per_launch": [launch(raw=33_500_000, unique=33_500_000, programs=H100.sms),  # 10 us of HBM
                              launch(programs=1, loads_per_program=4)]}        # 2 us of latency
    est = cost.estimate(traffic)
    assert est["model"] == "roofline-h100" and "model" in est["note"]
    assert est["est_us"] == pytest.approx(2 * H100.launch_us + 10.0 + 2.0)

    assert est["bound"] == "memory" and est["launch_us"] == pytest.approx(6.0)


def test_latency_adds_to_the_larger_of_memory_and_compute():
    t = cost.launch_cost(H100, launch(raw=3_350_000, unique=3_350_000, programs=H100.sms, loads_per_program=2,
                                      dot_flops={"fp32": 66.9e6 * 3}, num_stages=1))
    assert t["total_us"] == pytest.approx(H100.launch_us + 2 * H100.mem_latency_us + 3.0)


def test_num_stages_keeps_loads_of_a_dot_loop_in_flight():
    # one program, a K loop of 6 iterations of a 32x32x32 tile: 12 A/B loads, plus 1 bias load
    tile = [32, 32, 32]
    dot = {"fp32": 6 * 2 * 32 ** 3}
    kw = dict(loads_per_program=13, dot_flops=dot, dot_tile=tile, dot_elem=4)
    serial = cost.launch_cost(H100, launch(num_stages=1, **kw))
    three = cost.launch_cost(H100, launch(num_stages=3, **kw))
    four = cost.launch_cost(H100, launch(num_stages=4, **kw))
    assert serial["latency_us"] == pytest.approx(13 * H100.mem_latency_us)
    assert three["latency_us"] == pytest.approx((1 + 2 * 3) * H100.mem_latency_us)
    assert four["latency_us"] == pytest.approx((1 + 2 * 2) * H100.mem_latency_us)
    # Triton's default (3) where the launch does not say
    assert cost.launch_cost(H100, launch(**kw))["latency_us"] == three["latency_us"]
    # a one-iteration loop has nothing to pipeline; a launch without tl.dot is not pipelined
    once = dict(loads_per_program=3, dot_flops={"fp32": 2 * 32 ** 3}, dot_tile=tile, dot_elem=4)
    assert cost.launch_cost(H100, launch(num_stages=4, **once))["latency_us"] == pytest.approx(3 * H100.mem_latency_us)
    plain = cost.launch_cost(H100, launch(loads_per_program=12, num_stages=4))
    assert plain["latency_us"] == pytest.approx(12 * H100.mem_latency_us)


def test_wave_quantisation_charges_the_busiest_sm():
    flops = {"fp16": 989.4e6}                              # 1 us on the whole GPU
    full = cost.launch_cost(H100, launch(dot_flops=flops, programs=H100.sms))
    one_more = cost.launch_cost(H100, launch(dot_flops=flops, programs=H100.sms + 1))
    two_waves = cost.launch_cost(H100, launch(dot_flops=flops, programs=2 * H100.sms))
    assert full["compute_us"] == pytest.approx(1.0)
    assert two_waves["compute_us"] == pytest.approx(1.0)
    # 133 tiles: one SM runs two of them while 131 idle after the first
    assert one_more["compute_us"] == pytest.approx(2 * H100.sms / (H100.sms + 1))


def test_a_lone_program_with_few_warps_leaves_sub_partitions_idle():
    t4 = cost.launch_cost(H100, launch(raw=3_350, unique=3_350, programs=1, num_warps=4))
    t2 = cost.launch_cost(H100, launch(raw=3_350, unique=3_350, programs=1, num_warps=2))
    t1 = cost.launch_cost(H100, launch(raw=3_350, unique=3_350, programs=1, num_warps=1))
    assert t2["memory_us"] == pytest.approx(2 * t4["memory_us"])
    assert t1["memory_us"] == pytest.approx(4 * t4["memory_us"])
    # two resident 2-warp programs per SM fill the four sub-partitions again
    many = 2 * H100.sms
    assert cost.launch_cost(H100, launch(raw=3_350, unique=3_350, programs=many, num_warps=2))["memory_us"] == \
        pytest.approx(cost.launch_cost(H100, launch(raw=3_350, unique=3_350, programs=many, num_warps=4))["memory_us"])


def test_dot_tiles_limit_occupancy_by_shared_memory_and_registers():
    small = launch(num_warps=4, num_stages=3, dot_tile=[64, 64, 32], dot_elem=4)
    assert cost.occupancy(H100, small) == 4                      # 228 KB // 48 KB of operand buffers
    big = launch(num_warps=8, num_stages=4, dot_tile=[128, 128, 64], dot_elem=2)
    assert cost.occupancy(H100, big) == 1                        # 128 KB of fp16 buffers, 8 warps + 16K acc
    assert cost.occupancy(H100, launch(num_warps=4)) == cost.resident(H100, 4)
    # fewer programs per SM -> more waves of serial round trips for the same grid
    grid = 4 * H100.sms + 1
    a = cost.launch_cost(H100, {**small, "programs": grid, "loads_per_program": 4, "dot_flops": {"fp32": 1}})
    b = cost.launch_cost(H100, {**small, "programs": grid - 1, "loads_per_program": 4, "dot_flops": {"fp32": 1}})
    assert a["latency_us"] == pytest.approx(2 * b["latency_us"])


def test_tf32x3_is_modelled_on_tensor_cores_faster_than_ieee():
    n = 2 * 512 ** 3
    ieee = cost.launch_cost(H100, launch(dot_flops={"fp32": n}, programs=H100.sms))
    x3 = cost.launch_cost(H100, launch(dot_flops={"tf32x3": n}, programs=H100.sms))
    assert x3["compute_us"] == pytest.approx(ieee["compute_us"] * 66.9 * 3 / 494.7)


def test_reference_flops_floor_a_kernel_that_avoids_tl_dot():
    traffic = {"per_launch": [launch(raw=1000, unique=1000)]}
    est = cost.estimate(traffic, flops_reference=int(66.9e6 * 50))  # 50 us at the fp32 rate
    assert est["est_us"] == pytest.approx(H100.launch_us + 50.0)
    assert est["flops_reference"] == int(66.9e6 * 50) and est["flops_traced"] == 0
    # a candidate on fp16 tensor cores is floored at that rate, not at the CUDA-core rate
    dotted = {"per_launch": [launch(raw=1000, unique=1000, dot_flops={"fp16": 1000})]}
    est = cost.estimate(dotted, flops_reference=int(989.4e6 * 50))
    assert est["est_us"] == pytest.approx(H100.launch_us + 50.0)


def test_fewer_launches_and_less_traffic_cost_less():
    split = {"per_launch": [launch(raw=8000, unique=8000)] * 3}
    fused = {"per_launch": [launch(raw=8000, unique=8000)]}
    assert cost.estimate(fused)["est_us"] < cost.estimate(split)["est_us"]
    assert cost.estimate({"per_launch": []})["est_us"] == 0


def test_fitness_prefers_measured_gpu_time_over_the_model():
    gpu = SimpleNamespace(timing=SimpleNamespace(kind="gpu", candidate_ms=0.02), cost={"est_us": 999.0})
    cpu = SimpleNamespace(timing=SimpleNamespace(kind="interpreter", candidate_ms=80.0), cost={"est_us": 7.5})
    none = SimpleNamespace(timing=None, cost=None)
    assert cost.fitness_us(gpu) == pytest.approx(20.0)
    assert cost.fitness_us(cpu) == 7.5
    assert cost.fitness_us(none) is None
    assert not math.isnan(cost.fitness_us(cpu))
