"""The shipped examples: every task runs, and both hand-written candidates verify as correct."""

from __future__ import annotations

import pytest

from kgen.core.task import check_task, load_task
from kgen.core.verify import verify

TASKS = ["elementwise", "softmax", "layernorm", "reduction", "matmul", "linear_relu"]


@pytest.mark.parametrize("name", TASKS)
def test_example_task_is_valid(examples_dir, runner_pool, name):
    specs = check_task(load_task(examples_dir / f"{name}.py"), pool=runner_pool)
    assert specs["outputs"] and all(o["dtype"] == "float32" for o in specs["outputs"])


@pytest.mark.parametrize("name", ["elementwise", "softmax"])
def test_hand_written_candidate_is_correct(examples_dir, runner_pool, name):
    task = load_task(examples_dir / f"{name}.py")
    v = verify(task, (examples_dir / f"{name}_triton.py").read_text(), pool=runner_pool)
    assert v.status == "correct", v.message
    assert v.pure and v.kernels_launched >= 3


def test_candidate_holding_parameters_like_the_reference_gets_its_weights(examples_dir, runner_pool, tmp_path):
    """ModelNew with the same state_dict layout as Model receives the reference's parameters."""
    task = load_task(examples_dir / "linear_relu.py")
    candidate = '''
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def linear_relu_kernel(x_ptr, w_ptr, b_ptr, out_ptr, M, N, K: tl.constexpr, BN: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BN)
    ks = tl.arange(0, K)
    cmask = cols < N
    x = tl.load(x_ptr + row * K + ks)
    w = tl.load(w_ptr + cols[:, None] * K + ks[None, :], mask=cmask[:, None], other=0.0)
    acc = tl.sum(w * x[None, :], axis=1) + tl.load(b_ptr + cols, mask=cmask, other=0.0)
    tl.store(out_ptr + row * N + cols, tl.maximum(acc, 0.0), mask=cmask)


class ModelNew(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, x):
        x = x.contiguous()
        M, K = x.shape
        N = self.linear.out_features
        out = torch.empty(M, N, dtype=x.dtype)
        linear_relu_kernel[(M,)](x, self.linear.weight, self.linear.bias, out, M, N, K=K,
                                 BN=triton.next_power_of_2(N))
        return out
'''
    v = verify(task, candidate, pool=runner_pool)
    assert v.status == "correct", v.message
