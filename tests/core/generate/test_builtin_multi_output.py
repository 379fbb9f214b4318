"""Ops that return several tensors (values and indices) right after every group kind: the plan
must route their getitems whatever group produced the input (a convolution followed by
`torch.min(x, dim=1)` once failed with `KeyError: getitem`). Each case is generated and run
in-process on the Triton interpreter against the reference."""

from __future__ import annotations

import pytest

from kgen.core.generate.builtin import BuiltinGenerator
from kgen.core.task import task_from_source

# the producer: one group of each kind, ending in a tensor y of shape (2, 4, 5, 5)
PRODUCERS = {
    "pointwise": ("", "y = torch.relu(x) * 1.5"),
    "reduction": ("", "y = torch.softmax(x, dim=3)"),
    "scan": ("", "y = torch.cumsum(x, dim=3)"),
    "matmul": ("self.lin = nn.Linear(5, 5)", "y = self.lin(x)"),
    "conv": ("self.conv = nn.Conv2d(4, 4, 3, padding=1)", "y = self.conv(x)"),
    "pool": ("", "y = F.max_pool2d(x, 3, stride=1, padding=1)"),
    "index": ("", "y = torch.flip(x, [2])"),
}
# the multi-output consumer, returning a tuple
CONSUMERS = {
    "min_dim": "v, i = torch.min(y, dim=1)\n        return v * 2.0, i",
    "max_dim_keepdim": "v, i = torch.max(y, dim=3, keepdim=True)\n        return v - y, i",
    "max_pool_indices": "v, i = F.max_pool2d(y, 2, return_indices=True)\n        return v, i",
    # an offset per position along dim 1 breaks the ties relu/pooling leave (torch's order among
    # tied top-k entries is unspecified; the lowered top-k keeps index order)
    "topk": "v, i = torch.topk(y + torch.arange(4.0).view(1, 4, 1, 1) * 1e-3, 2, dim=1)\n        return v.sum(1), i",
}

TEMPLATE = '''
import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        {init}

    def forward(self, x):
        {produce}
        {consume}


def get_inputs():
    return [torch.randn(2, 4, 5, 5)]


def get_init_inputs():
    return []
'''


def _source(producer: str, consumer: str) -> str:
    init, produce = PRODUCERS[producer]
    return TEMPLATE.format(init=init or "pass", produce=produce, consume=CONSUMERS[consumer])


@pytest.mark.parametrize("consumer", sorted(CONSUMERS))
@pytest.mark.parametrize("producer", sorted(PRODUCERS))
def test_multi_output_op_after_every_group_kind(producer, consumer):
    import torch

    source = _source(producer, consumer)
    cand = BuiltinGenerator().initial(task_from_source(source, f"{producer}_{consumer}"), 1)[0]
    # only the selection op itself may stay in torch
    assert set(cand.params["fallback_ops"]) <= {"aten.topk.default"}, cand.params["fallback_ops"]
    ns: dict = {"__name__": "kgen_multi_candidate"}
    exec(compile(cand.source, "<candidate>", "exec"), ns)
    ref_ns: dict = {"__name__": "kgen_multi_reference"}
    exec(compile(source, "<reference>", "exec"), ref_ns)
    torch.manual_seed(0)
    ref = ref_ns["Model"]()
    new = ns["ModelNew"]()
    new.load_state_dict(ref.state_dict())
    x = torch.randn(2, 4, 5, 5)
    with torch.no_grad():
        want, got = ref(x), new(x)
    assert len(got) == len(want)
    for w, g in zip(want, got):
        assert g.dtype == w.dtype and g.shape == w.shape
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-4)
