"""Fresh-seed trials are made a batch at a time by one reference run (harness._fresh_trials) and
handed out one per verification: every verification still gets a seed nobody saw, never one
another verification used, and a Model that keeps state across calls is replayed per fresh seed."""

from __future__ import annotations

import pytest

from kgen.core.task import task_from_source
from kgen.core.verify import RunnerPool, verify
from kgen.core.verify.harness import FRESH_BATCH

# Each forward adds the number of calls made so far: the output depends on the history.
STATEFUL_TASK = '''
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return x + float(self.calls)


def get_inputs():
    return [torch.randn(64)]


def get_init_inputs():
    return []
'''

STATEFUL_CANDIDATE = '''
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def add_scalar_kernel(x_ptr, out_ptr, n, c, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=mask) + c, mask=mask)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        out = torch.empty_like(x)
        add_scalar_kernel[(triton.cdiv(x.numel(), 64),)](x, out, x.numel(), float(self.calls), BLOCK=64)
        return out
'''


@pytest.fixture(scope="module")
def pool():
    with RunnerPool(memory_mb=2048) as p:
        yield p


def test_one_reference_run_serves_a_batch_of_verifications_each_with_its_own_fresh_seed(pool):
    task = task_from_source(STATEFUL_TASK)
    fresh_seeds = []
    for i in range(3):
        v = verify(task, STATEFUL_CANDIDATE, pool=pool, timeout_s=60, profile=False)
        # the reference of every fresh trial met the same history as the candidate: two fixed
        # trials, then the fresh one, on one instance (a shared instance would be off by 2, 4...)
        assert v.status == "correct", v.message
        assert v.trials_run == 3
        fresh_seeds.append(v.trials[-1].seed)
        assert len(pool.fresh) == FRESH_BATCH - 1 - i  # the rest of the first batch, in stock
    assert len(set(fresh_seeds)) == 3


def test_a_wrong_candidate_is_still_caught_on_a_stocked_fresh_trial(pool):
    task = task_from_source(STATEFUL_TASK)
    # off by one on the third call only: right on both fixed trials, wrong on the fresh one
    wrong = STATEFUL_CANDIDATE.replace("float(self.calls)", "float(self.calls + (self.calls == 3))")
    if not len(pool.fresh):
        verify(task, STATEFUL_CANDIDATE, pool=pool, timeout_s=60, profile=False)
    assert len(pool.fresh) > 0
    v = verify(task, wrong, pool=pool, timeout_s=60, profile=False)
    assert v.status == "incorrect", v.message
    assert [t.ok for t in v.trials] == [True, True, False]
