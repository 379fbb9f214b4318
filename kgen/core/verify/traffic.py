"""Memory traffic of a candidate on the Triton interpreter, per launch, plus the task's minimum.

Measured (candidate process, interpreter only): every `tl.load`/`tl.store` (plain, masked,
descriptor, atomic) reaches `InterpreterBuilder.create_masked_load/store` with a NumPy array of
byte addresses and a mask, so hooks there see exactly the lanes that move data:
- `raw`: bytes of every active lane (what the kernel asks the memory system for);
- `unique`: distinct element addresses x element size, reads and writes counted apart (what a
  cache would absorb: a re-read of a byte already read in the same launch is not counted again);
- `dot_flops`: 2*M*N*K of every `tl.dot` as executed (padded tiles included), by precision;
- `programs` and the most loads one program issued (its serial memory steps), the launch's
  `num_warps`/`num_stages`, and the largest `tl.dot` tile (`dot_tile` [M, N, K], `dot_elem`
  operand bytes), for the cost model (occupancy, pipelining).
Launch boundaries come from `GridExecutor.__call__`, the interpreter's launch.

The hooks run inside the candidate's own process, like the launch counter: the figures are best
effort (tamper.py checks the hooks are still ours after every forward, a speed bump, not a
proof). The minimum is computed where the candidate never runs: `reference_figures` runs in the
reference process, which imports only the task.

Memory stays bounded: element addresses are buffered per launch and folded into a sorted unique
array whenever the buffer passes COMPACT_AT entries, so a launch holds at most its distinct
addresses plus one buffer; past MAX_UNIQUE distinct addresses the launch's unique count stops
growing exactly and is marked `unique_exact: false` (raw stays exact).
"""

from __future__ import annotations

import math
from typing import Any

COMPACT_AT = 1 << 21
MAX_UNIQUE = 1 << 25
PER_LAUNCH_KEPT = 64


class _Addresses:
    """Distinct element addresses of one direction (read or write) of one launch, per element size."""

    def __init__(self) -> None:
        self.pending: dict[int, list] = {}
        self.pending_n = 0
        self.done: dict[int, Any] = {}
        self.exact = True
        self.saturated_bytes = 0

    def add(self, size: int, addrs) -> None:
        self.pending.setdefault(size, []).append(addrs)
        self.pending_n += addrs.size
        if self.pending_n >= COMPACT_AT:
            self.compact()

    def compact(self) -> None:
        import numpy as np

        for size, chunks in self.pending.items():
            if not chunks:
                continue
            old = self.done.get(size)
            parts = chunks if old is None else [old, *chunks]
            merged = np.concatenate([c.ravel() for c in parts])
            # a stable sort (timsort) merges the mostly ascending runs kernels produce in near
            # linear time; np.unique's hash path is several times slower on these arrays
            merged.sort(kind="stable")
            if merged.size > 1:
                keep = np.empty(merged.size, dtype=bool)
                keep[0] = True
                np.not_equal(merged[1:], merged[:-1], out=keep[1:])
                merged = merged[keep]
            if merged.size > MAX_UNIQUE:
                # keep the count exact up to here, then stop tracking this size precisely
                self.exact = False
                self.saturated_bytes += (merged.size - MAX_UNIQUE) * size
                merged = merged[:MAX_UNIQUE]
            self.done[size] = merged
        self.pending = {}
        self.pending_n = 0

    def unique_bytes(self) -> int:
        self.compact()
        return sum(int(a.size) * size for size, a in self.done.items()) + self.saturated_bytes


class _Launch:
    def __init__(self, kernel: str, programs: int, num_warps: int, num_stages: int = 0) -> None:
        self.kernel = kernel
        self.programs = programs
        self.num_warps = num_warps
        self.num_stages = num_stages      # 0: the launch did not say (Triton's default applies)
        self.dot_tile: list[int] | None = None
        self.dot_elem = 0
        self.read = 0
        self.write = 0
        self.reads = _Addresses()
        self.writes = _Addresses()
        self.flops: dict[str, int] = {}
        self.program: object = None
        self.loads_here = 0
        self.max_loads = 0

    def load(self, program: object) -> None:
        if program != self.program:
            self.program, self.loads_here = program, 0
        self.loads_here += 1
        if self.loads_here > self.max_loads:
            self.max_loads = self.loads_here

    def summary(self) -> dict[str, Any]:
        ur, uw = self.reads.unique_bytes(), self.writes.unique_bytes()
        out: dict[str, Any] = {"kernel": self.kernel, "programs": self.programs, "num_warps": self.num_warps,
                               "raw": self.read + self.write, "unique": ur + uw, "read": self.read,
                               "write": self.write, "unique_read": ur, "unique_write": uw,
                               "loads_per_program": self.max_loads, "dot_flops": dict(self.flops)}
        if self.num_stages:
            out["num_stages"] = self.num_stages
        if self.dot_tile:
            out["dot_tile"] = list(self.dot_tile)
            out["dot_elem"] = self.dot_elem
        if not (self.reads.exact and self.writes.exact):
            out["unique_exact"] = False
        return out


def _elem_size(handle) -> int:
    bits = int(getattr(handle.get_element_ty(), "primitive_bitwidth", 8))
    return max(1, bits // 8)


def _active(ptrs, mask):
    import numpy as np

    addrs = ptrs.data
    if mask is None:
        return addrs.ravel()
    m = mask.data
    if m.shape != addrs.shape:
        m = np.broadcast_to(m, addrs.shape)
    if m.all():
        return addrs.ravel()
    return addrs[m]


def _dot_kind(a, input_precision) -> str:
    bits = int(getattr(a.dtype, "primitive_bitwidth", 32))
    if bits <= 16:
        return "fp16" if bits == 16 else "fp8"
    if not getattr(a.dtype, "is_floating", lambda: True)():
        return "int"
    text = str(input_precision).lower()
    if "tf32x3" in text:
        return "tf32x3"
    if "tf32" in text:
        return "tf32"
    return "fp32"


class TrafficMeter:
    """Install once, before candidate code exists; `enabled` while a forward runs; `take()` after."""

    def __init__(self) -> None:
        self.enabled = False
        self.current: _Launch | None = None
        self.launches: list[dict[str, Any]] = []
        self.installed: dict[tuple[object, str], object] = {}  # (owner, name) -> our hook
        self.originals: dict[tuple[object, str], object] = {}

    def take(self) -> list[dict[str, Any]]:
        out, self.launches = self.launches, []
        return out

    def install(self) -> None:
        from triton.runtime import interpreter as interp

        builder_cls = interp.InterpreterBuilder
        meter = self
        load_orig = builder_cls.create_masked_load
        store_orig = builder_cls.create_masked_store
        dot_orig = builder_cls.create_dot
        rmw_orig = builder_cls.create_atomic_rmw
        cas_orig = builder_cls.create_atomic_cas
        call_orig = interp.GridExecutor.__call__

        # The trailing cache/eviction/volatile arguments differ across Triton versions (3.6 has
        # cache_modifier and eviction_policy, later ones one cache_policy): pass them through.
        def create_masked_load(builder, ptrs, mask, other, *rest):
            launch = meter.current
            if launch is not None:
                active = _active(ptrs, mask)
                size = _elem_size(ptrs)
                launch.read += int(active.size) * size
                launch.reads.add(size, active)
                launch.load(builder.grid_idx)
            return load_orig(builder, ptrs, mask, other, *rest)

        def create_masked_store(builder, ptrs, value, mask, *rest):
            launch = meter.current
            if launch is not None:
                active = _active(ptrs, mask)
                size = _elem_size(ptrs)
                launch.write += int(active.size) * size
                launch.writes.add(size, active)
            return store_orig(builder, ptrs, value, mask, *rest)

        def create_dot(builder, a, b, d, input_precision, max_num_imprecise_acc):
            launch = meter.current
            if launch is not None:
                sa, sb = a.data.shape, b.data.shape
                flops = 2 * int(a.data.size) * int(sb[-1]) if len(sa) >= 2 and len(sb) >= 2 else 0
                kind = _dot_kind(a, input_precision)
                launch.flops[kind] = launch.flops.get(kind, 0) + flops
                if len(sa) >= 2 and len(sb) >= 2:
                    tile = [int(sa[-2]), int(sb[-1]), int(sa[-1])]
                    if launch.dot_tile is None or tile[0] * tile[1] * tile[2] > math.prod(launch.dot_tile):
                        launch.dot_tile = tile
                        launch.dot_elem = max(1, int(getattr(a.dtype, "primitive_bitwidth", 32)) // 8)
            return dot_orig(builder, a, b, d, input_precision, max_num_imprecise_acc)

        def atomic(orig, has_mask):
            def hooked(builder, *args):
                launch = meter.current
                if launch is not None:
                    ptrs = args[1] if has_mask else args[0]
                    mask = args[3] if has_mask else None
                    active = _active(ptrs, mask)
                    size = _elem_size(ptrs)
                    launch.read += int(active.size) * size
                    launch.write += int(active.size) * size
                    launch.reads.add(size, active)
                    launch.writes.add(size, active)
                    launch.load(builder.grid_idx)
                return orig(builder, *args)

            return hooked

        def call(executor, *args, **kwargs):
            if not meter.enabled or meter.current is not None:
                return call_orig(executor, *args, **kwargs)
            launch = _Launch(getattr(executor.fn, "__name__", "?"), 0, int(kwargs.get("num_warps") or 4),
                             int(kwargs.get("num_stages") or 0))
            meter.current = launch
            try:
                return call_orig(executor, *args, **kwargs)
            finally:
                meter.current = None
                dims = getattr(interp.interpreter_builder, "grid_dim", (1, 1, 1))
                launch.programs = int(dims[0]) * int(dims[1]) * int(dims[2])
                meter.launches.append(launch.summary())

        self.originals = {(builder_cls, "create_masked_load"): load_orig, (builder_cls, "create_masked_store"): store_orig,
                          (builder_cls, "create_dot"): dot_orig, (builder_cls, "create_atomic_rmw"): rmw_orig,
                          (builder_cls, "create_atomic_cas"): cas_orig, (interp.GridExecutor, "__call__"): call_orig}
        for owner, name, hook in ((builder_cls, "create_masked_load", create_masked_load),
                                  (builder_cls, "create_masked_store", create_masked_store),
                                  (builder_cls, "create_dot", create_dot),
                                  (builder_cls, "create_atomic_rmw", atomic(rmw_orig, True)),
                                  (builder_cls, "create_atomic_cas", atomic(cas_orig, False)),
                                  (interp.GridExecutor, "__call__", call)):
            setattr(owner, name, hook)
            self.installed[(owner, name)] = hook


    def uninstall(self) -> None:
        """Put the interpreter's own methods back (benchmarks compare with and without the meter)."""
        for (owner, name), original in self.originals.items():
            setattr(owner, name, original)
        self.installed.clear()
        self.originals = {}


def summarize(launches: list[dict[str, Any]], minimum: int | None = None, keep: int = PER_LAUNCH_KEPT) -> dict[str, Any]:
    """The verdict's `traffic` dict for one forward call. Totals cover every launch; `per_launch`
    lists the first `keep` (a kernel launched per element would otherwise bloat every verdict),
    and `per_launch_omitted` says how many were left out."""
    raw = sum(int(x.get("raw") or 0) for x in launches)
    unique = sum(int(x.get("unique") or 0) for x in launches)
    out: dict[str, Any] = {"raw": raw, "unique": unique, "minimum": minimum, "launches": len(launches),
                           "per_launch": launches[:keep]}
    if len(launches) > keep:
        out["per_launch_omitted"] = len(launches) - keep
    if minimum:
        out["unique_ratio"] = round(unique / minimum, 4)
        out["raw_ratio"] = round(raw / minimum, 4)
    return out


def _tensor_bytes(values) -> int:
    import torch

    total = 0
    seen: set[tuple[int, int]] = set()
    for v in values:
        if isinstance(v, torch.Tensor):
            key = (v.data_ptr(), v.numel())
            if key in seen:  # a tied parameter or an input passed twice is read once
                continue
            seen.add(key)
            total += v.numel() * v.element_size()
    return total


def reference_figures(model, inputs: list, outputs: list) -> dict[str, Any]:
    """Run in the reference process: the minimum traffic (inputs, parameters and buffers read
    once, outputs written once) and the reference's flops as torch's flop counter sees them
    (matmul, convolution, attention; elementwise work is not counted)."""
    import torch

    state = list(model.state_dict().values()) if isinstance(model, torch.nn.Module) else []
    minimum = _tensor_bytes(inputs) + _tensor_bytes(state) + _tensor_bytes(outputs)
    flops = None
    try:
        from torch.utils.flop_counter import FlopCounterMode

        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            model(*inputs)
        flops = int(counter.get_total_flops())
    except Exception:  # noqa: BLE001 - flops are advisory; a model the counter cannot run has none
        flops = None
    return {"minimum_bytes": int(minimum), "flops": flops}
