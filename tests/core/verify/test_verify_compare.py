"""The comparison rules, on tensors directly (no runs)."""

from __future__ import annotations

import math

import pytest
import torch

from kgen.core.verify.compare import compare_tensor, compare_trial, same_bits, tolerance_for


def test_default_tolerances_per_dtype():
    assert tolerance_for(torch.float32) == (1e-4, 1e-4)
    assert tolerance_for(torch.float16) == (1e-2, 1e-2)
    assert tolerance_for(torch.bfloat16) == (1e-2, 1e-2)
    assert tolerance_for(torch.int64) == (0.0, 0.0)
    assert tolerance_for(torch.int32, atol=1.0) == (0.0, 0.0)  # integers stay exact
    assert tolerance_for(torch.float32, atol=1e-3) == (1e-3, 1e-4)


def test_small_error_passes_and_large_error_fails():
    ref = torch.linspace(-2, 2, 50)
    assert compare_tensor(ref, ref + 5e-5, None, None).ok
    bad = compare_tensor(ref, ref + 1e-3, None, None)
    assert not bad.ok and math.isclose(bad.max_abs_err, 1e-3, rel_tol=1e-3)
    assert compare_tensor(ref, ref + 1e-3, 2e-3, 0.0).ok


def test_a_few_wrong_elements_are_enough_to_fail():
    ref = torch.zeros(10_000)
    out = ref.clone()
    out[7] = 0.5
    res = compare_tensor(ref, out, None, None)
    assert not res.ok and "1 of 10000" in res.message


def test_shape_dtype_exact():
    ref = torch.ones(3)
    assert "shape" in compare_tensor(ref, torch.ones(1, 3), None, None).message
    assert "dtype" in compare_tensor(ref, torch.ones(3, dtype=torch.float64), None, None).message


def test_nan_and_inf_positions_must_match():
    ref = torch.tensor([1.0, float("nan"), float("inf"), -float("inf")])
    assert compare_tensor(ref, ref.clone(), None, None).ok
    assert "NaN" in compare_tensor(ref, torch.tensor([float("nan"), 1.0, float("inf"), -float("inf")]), None, None).message
    assert "Inf" in compare_tensor(ref, torch.tensor([1.0, float("nan"), -float("inf"), -float("inf")]), None, None).message


def test_integer_outputs_are_exact():
    ref = torch.arange(10)
    assert compare_tensor(ref, ref.clone(), None, None).ok
    assert not compare_tensor(ref, ref + (ref == 3).long(), 10.0, 10.0).ok


def test_same_bits_sees_nan_payloads_and_negative_zero():
    a = torch.tensor([0.0, 1.0])
    assert same_bits(a, a.clone())
    assert not same_bits(a, torch.tensor([-0.0, 1.0]))
    assert same_bits(None, None) and not same_bits(a, None)


def test_trial_structure_and_inputs():
    ref = {"outputs": [torch.ones(2), torch.zeros(2)], "inputs_after": [torch.ones(2), None]}
    same = {"outputs": [torch.ones(2), torch.zeros(2)], "inputs_after": [torch.ones(2), None]}
    assert compare_trial(ref, same, "tuple", "list", None, None).ok
    assert not compare_trial(ref, same, "tuple", "tensor", None, None).ok
    short = {"outputs": [torch.ones(2)], "inputs_after": [torch.ones(2), None]}
    assert "outputs" in compare_trial(ref, short, "tuple", "tuple", None, None).message
    mutated = {"outputs": [torch.ones(2), torch.zeros(2)], "inputs_after": [torch.zeros(2), None]}
    assert "input 0 was modified" in compare_trial(ref, mutated, "tuple", "tuple", None, None).message


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_tolerance(dtype):
    ref = torch.linspace(-1, 1, 64).to(dtype)
    assert compare_tensor(ref, (ref.float() + 5e-3).to(dtype), None, None).ok
    assert not compare_tensor(ref, (ref.float() + 5e-2).to(dtype), None, None).ok


def test_small_compare_leaves_the_thread_setting_as_it_was():
    import torch

    from kgen.core.verify.compare import compare_tensor

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        a = torch.randn(64)
        assert compare_tensor(a, a.clone(), None, None).ok
        assert not compare_tensor(a, a + 1, None, None).ok
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
