"""Shape-generic kernels (sizes.py): one generated ModelNew serves other batch sizes and sequence
lengths of the same rank and dtype, and says in one sentence what it cannot take."""

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

ROWS = '''
import torch
import torch.nn as nn

batch_size = 3
dim = 40


class Model(nn.Module):
    def forward(self, x):
        return torch.softmax(x, dim=1) * 2.0


def get_inputs():
    return [torch.randn(batch_size, dim)]


def get_init_inputs():
    return []
'''


def _generate(source: str, **options):
    return BuiltinGenerator(**options).initial(task_from_source(source, "t"), 1)[0].source


def _model(kernel_source: str):
    mod = types.ModuleType("kgen_generated")
    exec(compile(kernel_source, "<generated>", "exec"), mod.__dict__)  # our own generated module
    return mod.ModelNew()


# one task per group kind: pointwise, reduction, matmul epilogue, convolution, scan
@pytest.mark.parametrize("path", ["activation/relu.py", "reduction/sum_dim.py", "matmul/linear_bias.py",
                                  "conv/conv1d.py", "scan/cumsum.py"])
def test_suite_kernel_passes_at_its_second_shape(path):
    source = small_variant((SUITE / path).read_text())
    assert source is not None and second_variant(source) is not None
    kernel = _generate(source)
    assert "Generic in the input sizes" in kernel
    assert verify(task_from_source(source, path), kernel, profile=False, trials=1).status == "correct"
    assert check_second(source, kernel, name=path) == "pass"


def test_generic_kernel_runs_other_rows_and_names_what_it_cannot_take():
    kernel = _generate(ROWS)
    model = _model(kernel)
    for rows, cols in ((3, 40), (7, 40), (5, 200)):
        x = torch.randn(rows, cols)
        torch.testing.assert_close(model(x), torch.softmax(x, dim=1) * 2.0)
    # one block per row was decided at generation: a row longer than that block is refused
    with pytest.raises(ValueError, match=r"ModelNew was generated for x\.shape\[1\] <= \d+; got x\.shape\[1\]=4000"):
        model(torch.randn(2, 4000))
    with pytest.raises(ValueError, match="ModelNew was generated for x of shape"):
        model(torch.randn(2, 3, 40))        # another rank
    with pytest.raises(ValueError, match="ModelNew was generated for x of shape"):
        model(torch.randn(3, 40, dtype=torch.float64))


def test_static_option_keeps_the_specialised_module():
    kernel = _generate(ROWS, static_shapes=True)
    assert "Generic in the input sizes" not in kernel and "_d0" not in kernel
    with pytest.raises(ValueError, match=r"ModelNew was generated for x of shape \(3, 40\)"):
        _model(kernel)(torch.randn(4, 40))
