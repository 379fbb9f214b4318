"""Rewrites applied while torch.export traces the reference, where an op's own implementation
would pin a symbolic input size to its traced value.

aten.max_pool1d's C++ composite reads the input length as a plain int before it reaches the
symbolic max_pool2d path, so export records `length == traced` and drops the dim from the
shape-generic capture. max_pool1d is, by definition, max_pool2d over a unit height: the mode below
traces it as exactly that (same values, same indices), which keeps every size symbolic.

A TorchFunctionMode sees the reference's own calls (functional and torch.* spellings) during the
non-strict trace only; nothing is patched globally.
"""

from __future__ import annotations

from typing import Any

from torch.overrides import TorchFunctionMode


def _one(v: Any, default: Any) -> int:
    if v is None or (isinstance(v, (list, tuple)) and len(v) == 0):
        v = default
    if isinstance(v, (list, tuple)):
        if len(v) != 1:
            raise ValueError("max_pool1d takes one size per argument")
        v = v[0]
    return v


class SymbolicPoolMode(TorchFunctionMode):
    """max_pool1d as max_pool2d over an unsqueezed unit height (see the module doc)."""

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        import torch
        import torch.nn.functional as F

        kwargs = dict(kwargs or {})
        if func in (torch.max_pool1d, torch.max_pool1d_with_indices, F.max_pool1d, F.max_pool1d_with_indices):
            names = ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")
            bound = dict(zip(names, args))
            bound.update(kwargs)
            x = bound.get("input")
            if isinstance(x, torch.Tensor) and x.dim() in (2, 3) and "kernel_size" in bound:
                try:
                    k = _one(bound["kernel_size"], None)
                    s = _one(bound.get("stride"), k)
                    p = _one(bound.get("padding"), 0)
                    d = _one(bound.get("dilation"), 1)
                except ValueError:
                    return func(*args, **kwargs)
                indices = bool(bound.get("return_indices", False)) or func in (
                    torch.max_pool1d_with_indices, F.max_pool1d_with_indices)
                out = F.max_pool2d(x.unsqueeze(-2), (1, k), (1, s), (0, p), (1, d),
                                   ceil_mode=bool(bound.get("ceil_mode", False)), return_indices=indices)
                if indices:
                    return out[0].squeeze(-2), out[1].squeeze(-2)
                return out.squeeze(-2)
        return func(*args, **kwargs)
