"""Host escapes: a candidate's data leaving torch for NumPy or plain Python during forward.

The op recorder sees aten ops only. A candidate that reads its inputs out with `x.numpy()`,
`np.asarray(x)` or `x.tolist()`, does the math on the host and brings the result back with
`torch.from_numpy` or `torch.tensor(list)` runs no aten compute op at all; a trivial Triton
copy kernel would then make it look pure. These hooks, installed before the candidate is
imported, count such crossings while forward runs; the verifier rejects them (rules below).

Rules (per trial, during forward; `limits()` is the single source):
- `host:numpy` (Tensor.numpy, Tensor.__array__, torch.from_numpy), `host:tolist`,
  `host:dlpack` (Tensor.__dlpack__, torch.from_dlpack), `host:frombuffer`, `host:serialize`
  (torch.save, pickling a tensor, UntypedStorage._write_file): any use is an escape. Printing a
  tensor's values reads them with tolist(), so it counts too;
- `host:item` (tensor elements read into Python: item(), float(t), storage[i]): more than
  MAX_SCALAR_READS is an escape, a few reads (a size held in a tensor, a flag) are not;
- `host:tensor` (elements entering tensors from Python/NumPy data: torch.tensor, as_tensor,
  `t[i] = v`): more than MAX_HOST_ELEMENTS is an escape, a small constant table is not.
- `host:thread` (a Python thread started), `host:process` (os.fork, os.system, os.popen,
  os.posix_spawn): any, whenever candidate code starts one, at import or construction too (torch's
  dispatch modes are per thread, so a helper thread's ops would go unrecorded; a forked helper's
  recorder is lost with it).
- `host:data_ptr` (Tensor.data_ptr / UntypedStorage.data_ptr called by candidate code outside a
  launch): any. A raw address is how memory gets read and written behind torch's back (ctypes
  found through sys.modules); pass tensors to kernels instead.
Calls made by Triton itself (the interpreter's conversions, its compile threads, its launcher
and descriptors) are exempt. The hooks are removed before GPU timing, so they never slow it.
"""

from __future__ import annotations

import os
import sys
from collections import Counter

MAX_SCALAR_READS = 8
MAX_HOST_ELEMENTS = 64

_TENSOR_HOOKS = (("numpy", "host:numpy"), ("__array__", "host:numpy"), ("tolist", "host:tolist"),
                 ("__dlpack__", "host:dlpack"), ("__reduce_ex__", "host:serialize"))
_TORCH_HOOKS = (("from_numpy", "host:numpy"), ("from_dlpack", "host:dlpack"),
                ("frombuffer", "host:frombuffer"), ("save", "host:serialize"))
_PROCESS_HOOKS = ("fork", "forkpty", "system", "popen", "posix_spawn", "posix_spawnp")


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


_DIRS: tuple[str, str, str] | None = None


def _dirs() -> tuple[str, str, str]:
    """(triton's dir, torch's dir, the standard library's dir), '\0' where unknown."""
    global _DIRS
    if _DIRS is not None:
        return _DIRS
    dirs = (_package_dir("triton") or "\0", _package_dir("torch") or "\0",
            os.path.dirname(os.path.abspath(os.__file__)) + os.sep)
    if "\0" not in dirs:  # both imported: cache (they are, in every run that installs hooks)
        _DIRS = dirs
    return dirs


def from_torch(frame) -> bool:
    """Whether this frame is torch's own code."""
    return frame is not None and frame.f_code.co_filename.startswith(_dirs()[1])


def _passthrough(filename: str, torch_dir: str, stdlib: str) -> bool:
    if filename.startswith(torch_dir):
        return True
    return filename.startswith(stdlib) and "-packages" + os.sep not in filename


def called_from_triton(frame) -> bool:
    """Whether the nearest caller outside torch's and the standard library's code is Triton's
    (a thread Triton starts goes through threading.py; a NumPy conversion through torch)."""
    triton_dir, torch_dir, stdlib = _dirs()
    while frame is not None and _passthrough(frame.f_code.co_filename, torch_dir, stdlib):
        frame = frame.f_back
    return frame is not None and frame.f_code.co_filename.startswith(triton_dir)


class HostGuard:
    """Installs the host-escape hooks; counts into the active recorder's `host` counter."""

    def __init__(self) -> None:
        self.recorder = None
        self.installed: dict[tuple[object, str], object] = {}  # (owner, name) -> our hook
        self.pending: Counter[str] = Counter()  # always-counted escapes seen outside forward
        self.originals: dict[tuple[object, str], tuple[bool, object]] = {}

    def take_pending(self) -> dict[str, int]:
        out, self.pending = dict(self.pending), Counter()
        return out

    def install(self) -> None:
        import _thread
        import threading

        import torch

        # Python 3.13 starts threads through the "joinable" names; _wrap skips absent ones.
        for owner, name in ((_thread, "start_new_thread"), (_thread, "start_joinable_thread"),
                            (threading, "_start_new_thread"), (threading, "_start_joinable_thread")):
            self._wrap(owner, name, "host:thread", always=True)
        for name in _PROCESS_HOOKS:
            self._wrap(os, name, "host:process", always=True)
        for owner in (torch.Tensor, torch.UntypedStorage):
            self._wrap_pointer(owner)

        for name, label in _TENSOR_HOOKS:
            self._wrap(torch.Tensor, name, label)
        for name, label in _TORCH_HOOKS:
            self._wrap(torch, name, label)
        self._wrap(torch.UntypedStorage, "_write_file", "host:serialize")

    def _wrap(self, owner, name: str, label: str, always: bool = False) -> None:
        original = getattr(owner, name, None)
        if original is None:
            return
        guard = self

        def hooked(*args, **kwargs):
            rec = guard.recorder
            if rec is not None:
                if not ((rec.in_launch or always) and called_from_triton(sys._getframe(1))):
                    rec.host[label] += 1
            elif always and not called_from_triton(sys._getframe(1)):
                guard.pending[label] += 1
            return original(*args, **kwargs)

        self._set(owner, name, original, hooked)

    def _wrap_pointer(self, owner) -> None:
        original = owner.data_ptr
        guard = self
        triton_dir, torch_dir, _ = _dirs()

        def data_ptr(*args, **kwargs):
            rec = guard.recorder
            if rec is not None and not rec.in_launch:
                caller = sys._getframe(1).f_code.co_filename
                if not (caller.startswith(triton_dir) or caller.startswith(torch_dir)):
                    rec.host["host:data_ptr"] += 1
            return original(*args, **kwargs)

        self._set(owner, "data_ptr", original, data_ptr)

    def _set(self, owner, name: str, original, hooked) -> None:
        hooked.__name__ = getattr(original, "__name__", name)
        hooked.__doc__ = getattr(original, "__doc__", None)
        self.originals[(owner, name)] = (name in vars(owner), original)
        setattr(owner, name, hooked)
        self.installed[(owner, name)] = hooked

    def uninstall(self) -> None:
        """Put the originals back (before GPU timing: hooks would only add launch overhead)."""
        for (owner, name), (own_attr, original) in self.originals.items():
            if own_attr:
                setattr(owner, name, original)
            else:
                try:
                    delattr(owner, name)
                except AttributeError:
                    pass
        self.installed.clear()
        self.originals.clear()
