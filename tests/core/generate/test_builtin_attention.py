"""scaled_dot_product_attention as one fused kernel (online softmax, no score matrix in memory),
causal and not, across shapes that exercise partial and several key/query blocks, a head dim that
is not a power of two, a value dim that differs, an explicit scale and half precision; run
in-process on the Triton interpreter against torch. Attention with a mask is one kernel as well."""

from __future__ import annotations

import pytest

from kgen.core.generate.builtin import BuiltinGenerator
from kgen.core.task import task_from_source

TEMPLATE = '''
import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def forward(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v{extra})


def get_inputs():
    return [torch.randn({q}, dtype={dtype}), torch.randn({k}, dtype={dtype}), torch.randn({v}, dtype={dtype})]


def get_init_inputs():
    return []
'''

CASES = {
    "plain": ((2, 3, 10, 16), (2, 3, 10, 16), (2, 3, 10, 16), "", "torch.float32"),
    "causal": ((2, 3, 10, 16), (2, 3, 10, 16), (2, 3, 10, 16), ", is_causal=True", "torch.float32"),
    "causal_blocks": ((1, 2, 70, 12), (1, 2, 70, 12), (1, 2, 70, 20), ", is_causal=True", "torch.float32"),
    "long_keys": ((1, 1, 5, 24), (1, 1, 150, 24), (1, 1, 150, 8), ", scale=0.3", "torch.float32"),
    "causal_more_queries": ((2, 9, 8), (2, 4, 8), (2, 4, 8), ", is_causal=True", "torch.float32"),
    "half": ((1, 2, 20, 16), (1, 2, 20, 16), (1, 2, 20, 16), ", is_causal=True", "torch.float16"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_attention_is_one_kernel_and_matches_torch(name):
    import torch

    q, k, v, extra, dtype = CASES[name]
    source = TEMPLATE.format(q=q, k=k, v=v, extra=extra, dtype=dtype)
    cand = BuiltinGenerator().initial(task_from_source(source, name), 1)[0]
    assert cand.params["kernels"] == 1 and cand.params["fallback_ops"] == []
    assert [g["kind"] for g in cand.params["groups"]] == ["attention"]
    assert "tl.dot(qt, kt" in cand.source and "bmm" not in cand.source
    ns: dict = {"__name__": "kgen_attn_candidate"}
    exec(compile(cand.source, "<candidate>", "exec"), ns)
    ref_ns: dict = {"__name__": "kgen_attn_reference"}
    exec(compile(source, "<reference>", "exec"), ref_ns)
    torch.manual_seed(3)
    inputs = ref_ns["get_inputs"]()
    want = ref_ns["Model"]()(*inputs)
    got = ns["ModelNew"]()(*inputs)
    tol = 2e-3 if dtype == "torch.float16" else 1e-4
    assert got.dtype == want.dtype and got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=tol, atol=tol)


def test_attention_with_a_mask_is_one_kernel_too():
    """A boolean mask is read per score tile inside the attention kernel (no decomposition); the
    mask this reference builds in forward is a small kernel of its own."""
    source = TEMPLATE.format(q=(1, 2, 6, 8), k=(1, 2, 6, 8), v=(1, 2, 6, 8), dtype="torch.float32",
                             extra=", attn_mask=torch.ones(6, 6, dtype=torch.bool).tril()")
    cand = BuiltinGenerator().initial(task_from_source(source, "masked"), 1)[0]
    kinds = [g["kind"] for g in cand.params["groups"]]
    assert kinds == ["pointwise", "attention"] and cand.params["kernels"] == 2
    assert cand.params["fallback_ops"] == []
