"""The formulas behind transcendentals that Triton lacks, run in-process on edge cases torch
defines (signed zeros, infinities, NaN, domain limits, huge and tiny magnitudes) and on dense
sweeps of each domain, against torch at fp32 1e-4."""

from __future__ import annotations

import math

import pytest

from kgen.core.generate.builtin import BuiltinGenerator
from kgen.core.task import load_task

N = 512

UNARY = ["asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh"]

SOURCE = f'''
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x, y):
        return ({", ".join(f"torch.{f}(x)" for f in UNARY)}, torch.atan2(y, x))


def get_inputs():
    return [torch.randn({N}), torch.randn({N})]


def get_init_inputs():
    return []
'''

SHIFT_SOURCE = '''
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, a, s, u, us):
        return a << s, a >> s, u << us, u >> us, a.to(torch.int8) << s.to(torch.int8)


def get_inputs():
    return [torch.randint(-9, 9, (64,)), torch.randint(0, 4, (64,)),
            torch.randint(0, 255, (64,), dtype=torch.uint8), torch.randint(0, 4, (64,), dtype=torch.uint8)]


def get_init_inputs():
    return []
'''


def _build(source: str, tmp_path):
    path = tmp_path / "task.py"
    path.write_text(source)
    task = load_task(path)
    cand = BuiltinGenerator().initial(task, 1)[0]
    assert cand.params["fallback_ops"] == []
    ns: dict = {"__name__": "kgen_math_candidate"}
    exec(compile(cand.source, "<candidate>", "exec"), ns)
    ref: dict = {"__name__": "kgen_math_reference"}
    exec(compile(source, "<reference>", "exec"), ref)
    return ns["ModelNew"](), ref["Model"]()


def _edge_values():
    import torch

    # (not beyond |x| = 88.7: torch's own vectorised sinh/cosh overflow there while its scalar path does not)
    special = [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 1e-30, -1e-30, 1e-7, -1e-7, 0.124, 0.126, 0.49, 0.51,
               0.9999, -0.9999, 1.0001, -1.0001, 2.0, 88.0, -88.0, 1e4, 1.0001e4, 3e19, -3e19,
               float("inf"), float("-inf"), float("nan")]
    sweep = torch.cat([torch.linspace(-1, 1, 161), torch.linspace(-12, 12, 161),
                       torch.logspace(-6, 6, 120) * torch.tensor([1.0, -1.0]).repeat(60)])
    x = torch.cat([torch.tensor(special), sweep])
    return torch.cat([x, torch.zeros(N - len(x))])


@pytest.mark.slow
def test_transcendentals_match_torch_on_edges_and_sweeps(tmp_path):
    import torch

    new, ref = _build(SOURCE, tmp_path)
    x = _edge_values()
    # atan2 over every pairing of signed zeros, infinities and NaN, and all four quadrants
    grid = torch.tensor([0.0, -0.0, 1.0, -1.0, 2.5, -2.5, float("inf"), float("-inf"), float("nan")])
    ys, xs = torch.meshgrid(grid, grid, indexing="ij")
    angles = torch.linspace(-math.pi, math.pi, 200)
    y2 = torch.cat([ys.flatten(), torch.sin(angles) * 3, torch.zeros(N - 81 - 200)])
    x2 = torch.cat([xs.flatten(), torch.cos(angles) * 3, torch.zeros(N - 81 - 200)])
    with torch.no_grad():
        got, want = new(x2, y2), ref(x2, y2)
    torch.testing.assert_close(got[-1], want[-1], rtol=1e-4, atol=1e-5, equal_nan=True)
    real = ~torch.isnan(want[-1])
    bad = (torch.signbit(got[-1]) != torch.signbit(want[-1])) & real
    assert not bad.any(), (y2[bad], x2[bad], got[-1][bad], want[-1][bad])
    with torch.no_grad():
        got, want = new(x, y2), ref(x, y2)
    for name, g, w in zip(UNARY, got, want):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-5, equal_nan=True, msg=lambda m, n=name: f"{n}: {m}")


@pytest.mark.slow
def test_shifts_match_torch_including_out_of_range_amounts(tmp_path):
    import torch

    new, ref = _build(SHIFT_SOURCE, tmp_path)
    a = torch.tensor([5, -8, 7, -1, 123456789, -123456789, 1, -3] * 8)
    s = torch.tensor([0, 1, 3, 31, 63, 64, 70, -1] * 8)
    u = torch.tensor([200, 1, 255, 0, 17, 128, 3, 9] * 8, dtype=torch.uint8)
    us = torch.tensor([0, 1, 7, 8, 9, 200, 3, 2] * 8, dtype=torch.uint8)
    with torch.no_grad():
        got, want = new(a, s, u, us), ref(a, s, u, us)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype
        assert torch.equal(g, w), (g, w)
