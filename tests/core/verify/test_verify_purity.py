"""Op classification and the static scan (no runs)."""

from __future__ import annotations

from pathlib import Path

from kgen.core.verify.purity import compute_ops, disallowed, static_torch_calls

CANDIDATES = Path(__file__).parent / "candidates"


def test_allocation_view_copy_ops_are_not_compute():
    recorded = {"aten.empty_like.default": 3, "aten.view.default": 1, "aten.copy_.default": 2,
                "aten._to_copy.default": 1, "aten.add.Tensor": 1, "aten.softmax.int": 1}
    assert compute_ops(recorded) == ["aten.add.Tensor", "aten.softmax.int"]


def test_allow_ops_by_overload_or_packet():
    ops = ["aten.add.Tensor", "aten.sort.default"]
    assert disallowed(ops, ()) == ops
    assert disallowed(ops, ("aten.sort.default",)) == ["aten.add.Tensor"]
    assert disallowed(ops, ("aten.add", "aten.sort")) == []


def test_static_scan_ignores_kernels_and_finds_host_math():
    assert static_torch_calls((CANDIDATES / "good.py").read_text()) == []
    found = static_torch_calls((CANDIDATES / "copy_around_torch.py").read_text())
    assert "torch.relu" in found
    src = ("import torch.nn.functional as F\nfrom torch import matmul\n"
           "def f(a, b):\n    return F.softmax(a, -1) + matmul(a, b) + (a @ b).sum()\n")
    assert set(static_torch_calls(src)) == {"F.softmax", "matmul", "@", ".sum()"}
