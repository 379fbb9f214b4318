"""Attention operands read through one strided view of the projection output, with no copy: an
nn.MultiheadAttention head split goes through a reshape torch cannot do as a view ([L, B, E] ->
[L, B*H, D]) and undoes it later, so the copy torch makes is dropped and the attention kernel
reads q, k and v from the in-projection's output by strides; the kernel stays generic in the
batch and the sequence length (no size guard comes from deciding that)."""

from __future__ import annotations

import types

import pytest
import torch

from kgen.core.generate.builtin import BuiltinGenerator
from kgen.core.task import task_from_source

MHA = '''
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.mha = nn.MultiheadAttention({embed}, {heads}, batch_first={batch_first})

    def forward(self, x):
        return self.mha(x, x, x, need_weights=False)[0]


def get_inputs():
    return [torch.randn({shape})]


def get_init_inputs():
    return []
'''


def _module(source: str):
    mod = types.ModuleType("kgen_generated")
    exec(compile(source, "<generated>", "exec"), mod.__dict__)  # our own generated module
    return mod


@pytest.mark.parametrize("embed,heads,batch_first", [(12, 3, True), (8, 2, False)])
def test_multihead_attention_reads_the_projection_by_strides_at_any_length(embed, heads, batch_first):
    shape = (2, 5, embed) if batch_first else (5, 2, embed)
    source = MHA.format(embed=embed, heads=heads, batch_first=batch_first, shape=shape)
    cand = BuiltinGenerator().initial(task_from_source(source, "mha"), 1)[0]
    kinds = [g["kind"] for g in cand.params["groups"]]
    # in-projection (+bias), attention, out-projection: no kernel copies the heads apart
    assert kinds == ["matmul", "attention", "matmul"] and cand.params["kernels"] == 3
    assert cand.params["fallback_ops"] == []
    assert "torch.as_strided(" in cand.source and "clone" not in cand.source.split("class ModelNew")[1]
    ref = _module(source)
    gen = _module(cand.source)
    torch.manual_seed(0)
    want_model = ref.Model()
    got_model = gen.ModelNew()
    got_model.load_state_dict(want_model.state_dict())
    for batch, seq in ((2, 5), (3, 7), (4, 2), (2, 9)):   # (size 1 is refused, as for any kernel)
        x = torch.randn((batch, seq, embed) if batch_first else (seq, batch, embed))
        torch.testing.assert_close(got_model(x), want_model(x), rtol=1e-4, atol=1e-5)
