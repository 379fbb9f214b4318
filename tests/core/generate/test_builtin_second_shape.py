"""Suite kernels that used to refuse their second shape (a scatter read as ints, adaptive pooling
windows unrolled from the traced input size, a pooled length pinned by export) now take it: one
generated ModelNew, verified at SMALL, runs correctly at SMALL+SECOND, with the same launches."""

from __future__ import annotations

import types
from pathlib import Path

import pytest
import torch

from kgen.core.bench.discovery import small_variant
from kgen.core.bench.second import check_second, second_variant
from kgen.core.generate.builtin import BuiltinGenerator
from kgen.core.task import task_from_source
from kgen.core.verify import verify

SUITE = Path(__file__).resolve().parents[3] / "benchmarks" / "suite"


def _candidate(source: str):
    return BuiltinGenerator().initial(task_from_source(source, "t"), 1)[0]


def _model(kernel_source: str, *init):
    mod = types.ModuleType("kgen_generated")
    exec(compile(kernel_source, "<generated>", "exec"), mod.__dict__)  # our own generated module
    return mod.ModelNew(*init)


# (suite file, Triton kernels in the plan)
CASES = [("fused/segment_sum_relu.py", 1)]


@pytest.mark.parametrize("path,kernels", CASES)
def test_suite_kernel_passes_at_its_second_shape(path, kernels):
    source = small_variant((SUITE / path).read_text())
    assert source is not None and second_variant(source) is not None
    cand = _candidate(source)
    assert "Generic in the input sizes" in cand.source
    assert cand.params["kernels"] == kernels and not cand.params["fallback_ops"]
    assert verify(task_from_source(source, path), cand.source, profile=False, trials=1).status == "correct"
    assert check_second(source, cand.source, name=path) == "pass"


SEGMENTS = '''
import torch
import torch.nn as nn


class Model(nn.Module):
    def forward(self, x, index):
        out = torch.zeros(5, x.shape[1], dtype=x.dtype, device=x.device)
        return torch.relu(out.index_add(0, index, x)) * 0.5


def get_inputs():
    return [torch.randn(12, 3), torch.randint(0, 5, (12,))]


def get_init_inputs():
    return []
'''


def test_scatter_with_epilogue_takes_other_row_and_column_counts():
    cand = _candidate(SEGMENTS)
    assert cand.params["kernels"] == 1 and [g["kind"] for g in cand.params["groups"]] == ["scatter"]
    model = _model(cand.source)
    for rows, cols in ((12, 3), (31, 3), (7, 9), (300, 2)):
        x, index = torch.randn(rows, cols), torch.randint(0, 5, (rows,))
        want = torch.relu(torch.zeros(5, cols).index_add(0, index, x)) * 0.5
        torch.testing.assert_close(model(x, index), want)
