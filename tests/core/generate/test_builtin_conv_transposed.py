"""Strided transposed convolutions split into stride phases: each program loops over the taps that
reach the phase of its rows only (no tap masked by a stride test), checked on the generated
module; correct against torch through the core verifier (1-d, 2-d, with an epilogue) and
in-process across strides, dilations that share a factor with the stride (phases no tap reaches),
paddings, output paddings and groups."""

from __future__ import annotations

import importlib.util

import pytest

from kgen.core.generate.builtin import BuiltinGenerator
from kgen.core.task import task_from_source

TEMPLATE = '''
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.ConvTranspose{d}d({ci}, {co}, {k}, stride={s}, padding={p}, dilation={dl}, groups={g},
                                      output_padding={op}, bias={b})

    def forward(self, x):
        return {body}


def get_inputs():
    return [torch.randn{shape}]


def get_init_inputs():
    return []
'''


def _source(d, ci, co, k, s, shape, p=0, dl=1, g=1, op=0, b=True, body="self.conv(x)"):
    return TEMPLATE.format(d=d, ci=ci, co=co, k=k, s=s, p=p, dl=dl, g=g, op=op, b=b, shape=shape, body=body)


def _kernel(source: str) -> str:
    return source.split("@triton.jit", 1)[1].split("class ModelNew", 1)[0]


def _assert_phased(cand) -> None:
    kernel = _kernel(cand.source)
    assert "for phase in range(" in kernel
    # the unphased gather tests every tap for divisibility by the stride; no such mask is left
    assert "% 2 == 0" not in kernel and "% 3 == 0" not in kernel


VERIFIED = {
    "convt1d": _source(1, 32, 4, 4, 2, (2, 32, 40), p=1),
    "convt2d_tanh": _source(2, 16, 3, 3, 2, (1, 16, 6, 6), p=1, op=1, body="torch.tanh(self.conv(x) + 0.5)"),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(VERIFIED))
def test_strided_transposed_conv_is_phased_and_verifies(name, runner_pool):
    from kgen.core.verify import verify

    task = task_from_source(VERIFIED[name], name)
    cand = BuiltinGenerator().initial(task, 1)[0]
    assert cand.params["kernels"] == 1 and [g["kind"] for g in cand.params["groups"]] == ["conv"]
    _assert_phased(cand)
    verdict = verify(task, cand.source, device="cpu", pool=runner_pool, profile=False, compile_for=["sm_90"])
    assert verdict.status == "correct", f"{verdict.message}\n{verdict.log_tail}"
    assert verdict.pure and verdict.compiled and all(r["ok"] for r in verdict.compiled)
    assert verdict.traffic is not None and verdict.traffic["launches"] == 1


SWEEP = {
    "1d_dilation_shares_stride": _source(1, 24, 4, 4, 2, (1, 24, 11), p=1, dl=2, op=1),
    "1d_stride3_groups": _source(1, 24, 6, 5, 3, (4, 24, 15), p=2, dl=2, g=2),
    "2d_mixed": _source(2, 16, 5, (3, 2), (2, 3), (2, 16, 5, 4), p=(1, 0), dl=(1, 2), op=(1, 2)),
    "3d": _source(3, 8, 4, 3, 2, (1, 8, 4, 5, 3), p=1, op=(1, 0, 1)),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SWEEP))
def test_phases_match_torch(name, tmp_path):
    import torch

    source = SWEEP[name]
    cand = BuiltinGenerator().initial(task_from_source(source, name), 1)[0]
    _assert_phased(cand)
    path = tmp_path / f"cand_{name}.py"   # triton.jit needs its source in a file
    path.write_text(cand.source)
    spec = importlib.util.spec_from_file_location(f"kgen_convt_{name}", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    ref: dict = {"__name__": "kgen_convt_reference"}
    exec(compile(source, "<reference>", "exec"), ref)
    torch.manual_seed(0)
    model = ref["Model"]()
    new = mod.ModelNew()
    new.load_state_dict(model.state_dict())
    x = ref["get_inputs"]()[0]
    torch.testing.assert_close(new(x), model(x), rtol=1e-4, atol=1e-4)


def test_a_problem_of_one_tile_keeps_the_single_pass():
    """Phases only where they issue less work: a tiny transposed conv stays one pass."""
    cand = BuiltinGenerator().initial(task_from_source(_source(1, 2, 2, 3, 2, (1, 2, 5)), "tiny"), 1)[0]
    assert "for phase in range(" not in _kernel(cand.source)
