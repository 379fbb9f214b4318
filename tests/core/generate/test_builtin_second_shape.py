"""Suite kernels that used to refuse their second shape (a scatter read as ints, adaptive pooling
windows unrolled from the traced input size, a pooled length pinned by export) now take it: one
generated ModelNew, verified at SMALL, runs correctly at SMALL+SECOND, with the same launches."""

from __future__ import annotations

import types
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

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
CASES = [("fused/segment_sum_relu.py", 1), ("pooling/adaptive_avgpool_7x7.py", 1),
         ("pooling/adaptive_maxpool2d.py", 1), ("pooling/maxpool1d.py", 1)]


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
import torch.nn.functional as F
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


ADAPTIVE = '''
import torch
import torch.nn.functional as F
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def forward(self, x, y):
        v, i = F.adaptive_max_pool2d(x, (3, 4), return_indices=True)
        return v, i, F.adaptive_avg_pool1d(y, 5)


def get_inputs():
    return [torch.randn(2, 3, 10, 9), torch.randn(2, 4, 11)]


def get_init_inputs():
    return []
'''


def test_adaptive_windows_follow_the_runtime_input_size():
    """Wider and narrower windows than at generation (and an even split), values and indices:
    the window bounds and the tap loop come from the runtime size, not the traced one."""
    cand = _candidate(ADAPTIVE)
    assert cand.params["kernels"] == 2 and not cand.params["fallback_ops"]
    assert "for t0 in range(0, _d" in cand.source      # taps up to a runtime bound
    model = _model(cand.source)
    for (h, w), n in (((10, 9), 11), ((31, 7), 5), ((4, 4), 23), ((12, 16), 10), ((3, 5), 40)):
        x, y = torch.randn(3, 2, h, w), torch.randn(3, 2, n)
        v, i, a = model(x, y)
        want_v, want_i = F.adaptive_max_pool2d(x, (3, 4), return_indices=True)
        torch.testing.assert_close(v, want_v)
        assert torch.equal(i, want_i)
        torch.testing.assert_close(a, F.adaptive_avg_pool1d(y, 5))


POOL1D = '''
import torch
import torch.nn.functional as F
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def forward(self, x):
        v, i = F.max_pool1d(x, 3, stride=2, padding=1, dilation=2, ceil_mode=True, return_indices=True)
        return v, i, torch.max_pool1d(x, kernel_size=[4], stride=[3])


def get_inputs():
    return [torch.randn(2, 3, 20)]


def get_init_inputs():
    return []
'''


def test_max_pool1d_keeps_its_length_symbolic():
    cand = _candidate(POOL1D)
    assert "Generic in the input sizes" in cand.source and not cand.params["fallback_ops"]
    model = _model(cand.source)
    for n, length in ((2, 20), (3, 22), (2, 9), (4, 57)):
        x = torch.randn(n, 3, length)
        v, i, m = model(x)
        want_v, want_i = F.max_pool1d(x, 3, stride=2, padding=1, dilation=2, ceil_mode=True, return_indices=True)
        torch.testing.assert_close(v, want_v)
        assert torch.equal(i, want_i)
        torch.testing.assert_close(m, torch.max_pool1d(x, kernel_size=[4], stride=[3]))


def test_scatter_epilogue_in_place_stays_correct_where_elements_move():
    """ReLU after a segment sum accumulates into its own output (no scratch buffer); the in-place
    result read transposed and next to a second scatter of the same values stays correct."""
    assert "scratch" not in _candidate(SEGMENTS).source
    moved = SEGMENTS.replace("torch.relu(out.index_add(0, index, x)) * 0.5",
                             "torch.relu(out.index_add(0, index, x)).t() + out.index_add(0, index, x)")
    moved = moved.replace("torch.zeros(5, x.shape[1]", "torch.zeros(5, 5").replace("torch.randn(12, 3)", "torch.randn(12, 5)")
    cand = _candidate(moved)
    model = _model(cand.source)
    for rows in (12, 40):
        x, index = torch.randn(rows, 5), torch.randint(0, 5, (rows,))
        s = torch.zeros(5, 5).index_add(0, index, x)
        torch.testing.assert_close(model(x, index), torch.relu(s).t() + s)
