"""Traffic and the modelled cost in the verdict, measured on real candidates through verify()."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from kgen.core.task import load_task, task_from_source
from kgen.core.verify import Verdict, verify

CANDIDATES = Path(__file__).parent / "candidates"
N = 300                      # task_relu_add: relu(x) + y on 300 fp32 elements
MINIMUM = 3 * N * 4          # x and y read once, the output written once

HEADER = '''
import torch
import torch.nn as nn
import triton
import triton.language as tl
'''

# Two launches (relu to a temporary, then add), and in the second one x is loaded twice.
SPLIT = HEADER + '''
@triton.jit
def relu_kernel(x_ptr, t_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(t_ptr + offs, tl.maximum(tl.load(x_ptr + offs, mask=mask), 0.0), mask=mask)


@triton.jit
def add_kernel(t_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    a = tl.load(t_ptr + offs, mask=mask)
    b = tl.load(t_ptr + offs, mask=mask)
    tl.store(out_ptr + offs, 0.5 * (a + b) + tl.load(y_ptr + offs, mask=mask), mask=mask)


class ModelNew(nn.Module):
    def forward(self, x, y):
        t = torch.empty_like(x)
        out = torch.empty_like(x)
        n = x.numel()
        relu_kernel[(triton.cdiv(n, 256),)](x, t, n, BLOCK=256)
        add_kernel[(triton.cdiv(n, 64),)](t, y, out, n, BLOCK=64)
        return out
'''

TAMPER = HEADER + '''
from triton.runtime import interpreter as _interp

_orig = _interp.InterpreterBuilder.create_masked_load
_interp.InterpreterBuilder.create_masked_load = lambda *a, **k: _orig(*a, **k)


@triton.jit
def relu_add_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(out_ptr + offs, tl.maximum(tl.load(x_ptr + offs, mask=mask), 0.0)
             + tl.load(y_ptr + offs, mask=mask), mask=mask)


class ModelNew(nn.Module):
    def forward(self, x, y):
        out = torch.empty_like(x)
        relu_add_kernel[(3,)](x, y, out, x.numel(), BLOCK=128)
        return out
'''

MM_TASK = '''
import torch
import torch.nn as nn


class Model(nn.Module):
    def forward(self, a, b):
        return a @ b


def get_inputs():
    return [torch.randn(20, 16), torch.randn(16, 24)]


def get_init_inputs():
    return []
'''

MM = HEADER + '''
@triton.jit
def mm_kernel(a_ptr, b_ptr, c_ptr, M, N, K: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr):
    rm = tl.program_id(0) * BM + tl.arange(0, BM)
    rn = tl.program_id(1) * BN + tl.arange(0, BN)
    rk = tl.arange(0, K)
    a = tl.load(a_ptr + rm[:, None] * K + rk[None, :], mask=rm[:, None] < M, other=0.0)
    b = tl.load(b_ptr + rk[:, None] * N + rn[None, :], mask=rn[None, :] < N, other=0.0)
    c = tl.dot(a, b, input_precision="ieee")
    tl.store(c_ptr + rm[:, None] * N + rn[None, :], c, mask=(rm[:, None] < M) & (rn[None, :] < N))


class ModelNew(nn.Module):
    def forward(self, a, b):
        M, K = a.shape
        N = b.shape[1]
        c = torch.empty(M, N)
        mm_kernel[(triton.cdiv(M, 16), triton.cdiv(N, 16))](a, b, c, M, N, K=K, BM=16, BN=16, num_stages=2)
        return c
'''


@pytest.fixture(scope="module")
def task():
    return load_task(CANDIDATES / "task_relu_add.py")


def test_fused_kernel_moves_exactly_the_minimum(task, runner_pool):
    v = verify(task, (CANDIDATES / "good.py").read_text(), pool=runner_pool, timeout_s=60)
    assert v.status == "correct", v.message
    t = v.traffic
    assert t["minimum"] == MINIMUM and t["raw"] == MINIMUM and t["unique"] == MINIMUM
    assert t["launches"] == 1 and t["unique_ratio"] == 1.0 and t["raw_ratio"] == 1.0
    (one,) = t["per_launch"]
    # 3 programs of 128 lanes; the masked-out 84 lanes of the last one move nothing
    assert one["kernel"] == "relu_add_kernel" and one["programs"] == 3
    assert one["read"] == 2 * N * 4 and one["write"] == N * 4 and one["loads_per_program"] == 2
    assert v.cost["model"] == "roofline-h100" and v.cost["est_us"] > 0 and "model" in v.cost["note"]


def test_split_kernels_and_rereads_show_in_raw_and_unique(task, runner_pool):
    v = verify(task, SPLIT, pool=runner_pool, timeout_s=60)
    assert v.status == "correct", v.message
    t = v.traffic
    relu, add = t["per_launch"]
    assert (relu["raw"], relu["unique"]) == (2 * N * 4, 2 * N * 4)
    # t is loaded twice (raw), but its bytes are distinct once (unique)
    assert add["read"] == 3 * N * 4 and add["unique_read"] == 2 * N * 4 and add["write"] == N * 4
    assert add["programs"] == 5 and add["loads_per_program"] == 3
    assert t["raw"] == 6 * N * 4 and t["unique"] == 5 * N * 4 and t["launches"] == 2
    assert t["unique_ratio"] == pytest.approx(5 / 3, abs=1e-3) and t["raw_ratio"] == pytest.approx(2.0)
    good = verify(task, (CANDIDATES / "good.py").read_text(), pool=runner_pool, timeout_s=60)
    assert good.cost["est_us"] < v.cost["est_us"]


def test_verdict_round_trips_traffic_and_reads_old_verdicts(task, runner_pool):
    v = verify(task, (CANDIDATES / "good.py").read_text(), pool=runner_pool, timeout_s=60)
    back = Verdict.from_dict(v.to_dict())
    assert back.traffic == v.traffic and back.cost == v.cost
    old = v.to_dict()
    del old["traffic"], old["cost"]
    legacy = Verdict.from_dict(old)
    assert legacy.traffic is None and legacy.cost is None and legacy.status == "correct"


def test_replacing_the_traffic_hooks_is_tampering(task, runner_pool):
    v = verify(task, TAMPER, pool=runner_pool, timeout_s=60)
    assert v.status == "rejected"
    assert "create_masked_load" in v.message


def test_dot_flops_are_traced_with_padded_tiles(runner_pool):
    task = task_from_source(textwrap.dedent(MM_TASK), "mm_small")
    v = verify(task, MM, pool=runner_pool, timeout_s=60)
    assert v.status == "correct", v.message
    (one,) = v.traffic["per_launch"]
    # 2 x 2 programs, each a 16x16x16 dot: 20x24 outputs padded to 32x32
    assert one["programs"] == 4 and one["dot_flops"] == {"fp32": 4 * 2 * 16 * 16 * 16}
    # the tile and the launch's pipelining depth, for the model's occupancy and round trips
    assert one["dot_tile"] == [16, 16, 16] and one["dot_elem"] == 4 and one["num_stages"] == 2
    assert v.cost["flops_reference"] == 2 * 20 * 24 * 16 and v.cost["flops_traced"] == 4 * 2 * 16 ** 3
    assert v.traffic["minimum"] == (20 * 16 + 16 * 24 + 20 * 24) * 4


MANY = HEADER + '''
@triton.jit
def relu_add_kernel(x_ptr, y_ptr, out_ptr, start, n, BLOCK: tl.constexpr):
    offs = start + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(out_ptr + offs, tl.maximum(tl.load(x_ptr + offs, mask=mask), 0.0)
             + tl.load(y_ptr + offs, mask=mask), mask=mask)


class ModelNew(nn.Module):
    def forward(self, x, y):
        out = torch.empty_like(x)
        for start in range(0, x.numel(), 4):   # one launch per 4 elements: 75 launches
            relu_add_kernel[(1,)](x, y, out, start, x.numel(), BLOCK=4)
        return out
'''


def test_per_launch_list_is_capped_but_totals_and_cost_cover_every_launch(task, runner_pool):
    from kgen.core.perf import cost
    from kgen.core.verify import traffic

    v = verify(task, MANY, pool=runner_pool, timeout_s=120)
    assert v.status == "correct", v.message
    t = v.traffic
    assert t["launches"] == 75 and t["raw"] == MINIMUM and t["unique"] == MINIMUM
    assert len(t["per_launch"]) == traffic.PER_LAUNCH_KEPT and t["per_launch_omitted"] == 75 - traffic.PER_LAUNCH_KEPT
    assert v.cost["launch_us"] == 75 * cost.GPUS["h100"].launch_us
