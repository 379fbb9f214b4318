"""Host escapes: a candidate's data leaving torch for NumPy or plain Python during forward.

The op recorder sees aten ops only. A candidate that reads its inputs out with `x.numpy()`,
`np.asarray(x)` or `x.tolist()`, does the math on the host and brings the result back with
`torch.from_numpy` or `torch.tensor(list)` runs no aten compute op at all; a trivial Triton
copy kernel would then make it look pure. These hooks, installed before the candidate is
imported, count such crossings while forward runs; the verifier rejects them (rules below).

Rules (per trial, during forward; `limits()` is the single source):
- `host:numpy` (Tensor.numpy, Tensor.__array__, torch.from_numpy), `host:tolist`,
  `host:dlpack` (Tensor.__dlpack__, torch.from_dlpack), `host:frombuffer`, `host:serialize`
  (torch.save, Tensor.__reduce_ex__): any use is an escape;
- `host:item` (tensor elements read into Python: item(), float(t), storage[i]): more than
  MAX_SCALAR_READS is an escape, a few reads (a size held in a tensor, a flag) are not;
- `host:tensor` (elements entering tensors from Python/NumPy data: torch.tensor, as_tensor,
  `t[i] = v`): more than MAX_HOST_ELEMENTS is an escape, a small constant table is not.
Calls made by Triton itself inside a launch (the interpreter's own conversions) are exempt.
"""

from __future__ import annotations

import os
import sys

MAX_SCALAR_READS = 8
MAX_HOST_ELEMENTS = 64

_TENSOR_HOOKS = (("numpy", "host:numpy"), ("__array__", "host:numpy"), ("tolist", "host:tolist"),
                 ("__dlpack__", "host:dlpack"), ("__reduce_ex__", "host:serialize"))
_TORCH_HOOKS = (("from_numpy", "host:numpy"), ("from_dlpack", "host:dlpack"),
                ("frombuffer", "host:frombuffer"), ("save", "host:serialize"))


def limits() -> dict[str, int]:
    """Escape name -> how many per trial are tolerated (names not listed: none)."""
    return {"host:item": MAX_SCALAR_READS, "host:tensor": MAX_HOST_ELEMENTS}


def escapes(host_counts: dict[str, int]) -> list[str]:
    """The escape names in one trial's counts that break the rules above."""
    lim = limits()
    return sorted(name for name, n in host_counts.items() if int(n) > lim.get(name, 0))


def _package_dir(name: str) -> str | None:
    mod = sys.modules.get(name)
    path = getattr(mod, "__file__", None)
    return os.path.dirname(os.path.abspath(path)) + os.sep if path else None


_TRITON_DIR: str | None = None
_TORCH_DIR: str | None = None


def _dirs() -> tuple[str, str]:
    global _TRITON_DIR, _TORCH_DIR
    if _TRITON_DIR is None:
        _TRITON_DIR, _TORCH_DIR = _package_dir("triton") or "\0", _package_dir("torch") or "\0"
    return _TRITON_DIR, _TORCH_DIR


def from_torch(frame) -> bool:
    """Whether this frame is torch's own code."""
    return frame is not None and frame.f_code.co_filename.startswith(_dirs()[1])


def called_from_triton(frame) -> bool:
    """Whether the nearest caller outside torch's own code is Triton's code."""
    _dirs()
    while frame is not None and frame.f_code.co_filename.startswith(_TORCH_DIR):
        frame = frame.f_back
    return frame is not None and frame.f_code.co_filename.startswith(_TRITON_DIR)


class HostGuard:
    """Installs the host-escape hooks; counts into the active recorder's `host` counter."""

    def __init__(self) -> None:
        self.recorder = None
        self.installed: dict[tuple[object, str], object] = {}  # (owner, name) -> our hook

    def install(self) -> None:
        import torch

        for name, label in _TENSOR_HOOKS:
            self._wrap(torch.Tensor, name, label)
        for name, label in _TORCH_HOOKS:
            self._wrap(torch, name, label)

    def _wrap(self, owner, name: str, label: str) -> None:
        original = getattr(owner, name, None)
        if original is None:
            return
        guard = self

        def hooked(*args, **kwargs):
            rec = guard.recorder
            if rec is not None and not (rec.in_launch and called_from_triton(sys._getframe(1))):
                rec.host[label] += 1
            return original(*args, **kwargs)

        hooked.__name__ = getattr(original, "__name__", name)
        hooked.__doc__ = getattr(original, "__doc__", None)
        setattr(owner, name, hooked)
        self.installed[(owner, name)] = hooked
