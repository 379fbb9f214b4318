"""Output comparison, run in the verifier process (where no candidate code ever ran).

Default tolerances per dtype (atol, rtol), no looser than KernelBench's:
  float32 / complex64: 1e-4, 1e-4      float16 / bfloat16: 1e-2, 1e-2
  float64 / complex128: 1e-7, 1e-7     float8 variants: 1e-1, 1e-1
  integer and bool: exact
An explicit atol/rtol overrides the float defaults (integers stay exact). Besides allclose:
exact shape, dtype and device kind; NaN positions equal; +/-Inf positions and signs equal.
"""

from __future__ import annotations

import contextlib
import math
import threading
from dataclasses import dataclass

_FLOAT_TOLERANCES = {
    "float32": (1e-4, 1e-4), "complex64": (1e-4, 1e-4),
    "float16": (1e-2, 1e-2), "bfloat16": (1e-2, 1e-2),
    "float64": (1e-7, 1e-7), "complex128": (1e-7, 1e-7),
}
_LOOSE = (1e-1, 1e-1)  # fp8 and other exotic float formats


def dtype_name(dtype) -> str:
    return str(dtype).replace("torch.", "")


def tolerance_for(dtype, atol: float | None = None, rtol: float | None = None) -> tuple[float, float]:
    if not (dtype.is_floating_point or dtype.is_complex):
        return 0.0, 0.0
    d_atol, d_rtol = _FLOAT_TOLERANCES.get(dtype_name(dtype), _LOOSE)
    return (d_atol if atol is None else float(atol)), (d_rtol if rtol is None else float(rtol))


@dataclass
class Comparison:
    ok: bool
    max_abs_err: float | None = None
    max_rel_err: float | None = None
    message: str = ""


def _finite(x: float | None) -> float | None:
    if x is None or math.isnan(x) or math.isinf(x):
        return None
    return float(x)


# Below this many elements a comparison runs on one intra-op thread. On a busy machine torch's
# OpenMP pool spin-waits for cores other processes hold (the node's own runs, for one): a
# 4096-element compare measured 96 ms with two threads and 1.3 ms with one on a loaded 2-core box.
SINGLE_THREAD_BELOW = 1 << 22
_threads_lock = threading.Lock()


@contextlib.contextmanager
def _threads_for(numel: int):
    if numel >= SINGLE_THREAD_BELOW:
        yield
        return
    import torch

    # set_num_threads is process-wide: the lock keeps concurrent small compares from restoring
    # each other's setting (large ones never touch it)
    with _threads_lock:
        before = torch.get_num_threads()
        if before != 1:
            torch.set_num_threads(1)
        try:
            yield
        finally:
            if before != 1:
                torch.set_num_threads(before)


def compare_tensor(ref, out, atol: float | None, rtol: float | None, *, label: str = "output") -> Comparison:
    import torch

    if not isinstance(ref, torch.Tensor):
        return _compare_tensor(ref, out, atol, rtol, label)
    with _threads_for(ref.numel()):
        return _compare_tensor(ref, out, atol, rtol, label)


def _compare_tensor(ref, out, atol: float | None, rtol: float | None, label: str) -> Comparison:
    import torch

    if not isinstance(out, torch.Tensor) or type(out) is not torch.Tensor:
        return Comparison(False, message=f"{label} is not a plain tensor")
    if tuple(out.shape) != tuple(ref.shape):
        return Comparison(False, message=f"{label} has shape {tuple(out.shape)}, expected {tuple(ref.shape)}")
    if out.dtype != ref.dtype:
        return Comparison(False, message=f"{label} has dtype {dtype_name(out.dtype)}, expected {dtype_name(ref.dtype)}")
    if ref.numel() == 0:
        return Comparison(True, 0.0, 0.0)
    a_tol, r_tol = tolerance_for(ref.dtype, atol, rtol)
    if not (ref.dtype.is_floating_point or ref.dtype.is_complex):
        diff_count = int((out != ref).sum())
        if diff_count:
            d = (out.to(torch.float64) - ref.to(torch.float64)).abs().max().item() if ref.dtype != torch.bool else 1.0
            return Comparison(False, _finite(d), None, f"{label}: {diff_count} of {ref.numel()} elements differ (exact dtype)")
        return Comparison(True, 0.0, 0.0)
    r = ref.detach()
    o = out.detach()
    if r.is_complex():
        r, o = torch.view_as_real(r), torch.view_as_real(o)
    r = r.to(torch.float64)
    o = o.to(torch.float64)
    nan_r, nan_o = torch.isnan(r), torch.isnan(o)
    if not torch.equal(nan_r, nan_o):
        n = int((nan_r != nan_o).sum())
        return Comparison(False, message=f"{label}: NaN positions differ ({n} elements)")
    inf_r, inf_o = torch.isinf(r), torch.isinf(o)
    if not torch.equal(inf_r, inf_o) or not torch.equal(r[inf_r], o[inf_o]):
        n = int((inf_r != inf_o).sum())
        return Comparison(False, message=f"{label}: Inf positions or signs differ ({n} elements)")
    finite = ~(nan_r | inf_r)
    rf, of = r[finite], o[finite]
    if rf.numel() == 0:
        return Comparison(True, 0.0, 0.0)
    diff = (of - rf).abs()
    max_abs = diff.max().item()
    big = rf.abs() > max(a_tol, 1e-12)
    max_rel = (diff[big] / rf.abs()[big]).max().item() if bool(big.any()) else 0.0
    bad = diff > (a_tol + r_tol * rf.abs())
    n_bad = int(bad.sum())
    if n_bad:
        return Comparison(False, _finite(max_abs), _finite(max_rel),
                          f"{label}: {n_bad} of {rf.numel()} elements outside atol={a_tol:g} rtol={r_tol:g} "
                          f"(max abs err {max_abs:.3g})")
    return Comparison(True, _finite(max_abs), _finite(max_rel))


def same_bits(a, b) -> bool:
    """Bitwise equality (NaN payloads included), for the "inputs not mutated" check."""
    import torch

    if a is None or b is None:
        return a is None and b is None
    if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor):
        return False
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.numel() == 0:
        return True
    return torch.equal(a.contiguous().reshape(-1).view(torch.uint8), b.contiguous().reshape(-1).view(torch.uint8))


def compare_trial(ref: dict, cand: dict, ref_structure: str, cand_structure: str,
                  atol: float | None, rtol: float | None) -> Comparison:
    """ref/cand: {"outputs": [tensors], "inputs_after": [tensor|None]} as loaded from the runs."""
    seq = ("tuple", "list")  # tuple and list are interchangeable containers; tensor vs sequence is not
    if ref_structure != cand_structure and not (ref_structure in seq and cand_structure in seq):
        return Comparison(False, message=f"output is a {cand_structure}, expected a {ref_structure}")
    r_out, c_out = ref["outputs"], cand["outputs"]
    if len(r_out) != len(c_out):
        return Comparison(False, message=f"returned {len(c_out)} outputs, expected {len(r_out)}")
    worst_abs, worst_rel = 0.0, 0.0
    for i, (r, c) in enumerate(zip(r_out, c_out)):
        label = "output" if len(r_out) == 1 else f"output[{i}]"
        cmp = compare_tensor(r, c, atol, rtol, label=label)
        if not cmp.ok:
            return cmp
        worst_abs = max(worst_abs, cmp.max_abs_err or 0.0)
        worst_rel = max(worst_rel, cmp.max_rel_err or 0.0)
    r_in, c_in = ref["inputs_after"], cand["inputs_after"]
    if len(r_in) != len(c_in):
        return Comparison(False, worst_abs, worst_rel, "input list changed length")
    for i, (r, c) in enumerate(zip(r_in, c_in)):
        if not same_bits(r, c):
            return Comparison(False, worst_abs, worst_rel, f"input {i} was modified by the candidate")
    return Comparison(True, worst_abs, worst_rel)
