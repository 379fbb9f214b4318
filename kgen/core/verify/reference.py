"""Reference results: computed by a run that only ever imports the task, cached per
(task id, device, seeds).

Reference outputs live only in this process's memory: the run's files are loaded and deleted at
once. Input files (not secret) stay on disk, with a SHA-256 each, and every candidate gets its
own copy, checked against the hash, so a candidate that tampers with them hurts nobody else.
GPU baselines (eager, torch.compile) are cached by (task id, device name) in
<kgen home>/cache/baselines.json.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from kgen.core.errors import TaskError

MAX_ENTRIES = 32


class StaleReference(Exception):
    """A cached input file no longer matches its hash (someone wrote to it): recompute."""


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class Reference:
    task_id: str
    device: str
    seeds: tuple[int, ...]
    init_seed: int
    files_dir: str
    file_hashes: dict[str, str]
    trials: dict[int, dict]            # seed -> {"outputs": [...], "inputs_after": [...]}
    structure: str
    outputs: list[dict]                # shape/dtype/device specs
    device_name: str
    eager_ms: list[float] = field(default_factory=list)
    gpu: dict | None = None            # eager/compile timings when the run was profiled
    precision: str = ""                # how outputs were computed (child.reference_precision)
    figures: dict | None = None        # minimum traffic bytes and flops (traffic.reference_figures)

    def copy_inputs_to(self, workdir: str) -> None:
        for name, digest in self.file_hashes.items():
            src = os.path.join(self.files_dir, name)
            dst = os.path.join(workdir, name)
            shutil.copyfile(src, dst)
            if _sha256(dst) != digest:
                raise StaleReference(f"cached reference input {name} was modified on disk")


def describe_failure(result: dict | None, outcome, timeout_s: float) -> str:
    if outcome.timed_out:
        return f"Model did not finish on its own inputs within {timeout_s:g} s"
    if result is None:
        if outcome.signal:
            return f"running Model killed its process (signal {outcome.signal})"
        return f"running Model ended its process without a result (exit code {outcome.exit_code})"
    phase = result.get("phase")
    err = result.get("error", "unknown error")
    if phase == "import":
        return f"task module failed to import: {err}"
    if phase == "construct":
        return f"building Model(*get_init_inputs()) failed: {err}"
    if phase == "output":
        return f"Model returned a non-tensor output: {err}"
    if phase == "forward":
        return f"Model failed on its own inputs: {err}"
    return f"reference run failed: {err}"


class ReferenceCache:
    def __init__(self, root: str):
        self.root = root
        self._entries: OrderedDict[tuple, Reference] = OrderedDict()
        self._lock = threading.Lock()
        self._key_locks: dict[tuple, threading.Lock] = {}

    def invalidate(self, key: tuple) -> None:
        with self._lock:
            old = self._entries.pop(key, None)
        if old is not None:
            shutil.rmtree(old.files_dir, ignore_errors=True)

    def get_or_compute(self, key: tuple, compute) -> Reference:
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
            klock = self._key_locks.setdefault(key, threading.Lock())
        with klock:
            with self._lock:
                if key in self._entries:
                    return self._entries[key]
            ref = compute()
            with self._lock:
                self._entries[key] = ref
                while len(self._entries) > MAX_ENTRIES:
                    _, old = self._entries.popitem(last=False)
                    shutil.rmtree(old.files_dir, ignore_errors=True)
            return ref


@dataclass
class FreshTrial:
    """One reference trial on a seed no candidate has seen, waiting for the verification that
    will use it (and then never again)."""
    seed: int
    trial: dict                        # {"outputs": [...], "inputs_after": [...]}
    eager_ms: float
    inputs_path: str                   # inputs_<seed>.pt, in the pool's own directory


class FreshStock:
    """Fresh-seed trials computed ahead, per (task id, device, fixed seeds).

    One reference run makes several fresh trials (harness._fresh_trial), so the fork and task
    import that dominate a small task's reference run are paid once per batch, not once per
    verification. Each trial is handed out once. They live in this process's memory and in the
    pool's run directories, which no sandboxed run can read; without the sandbox a candidate could
    read them, but then it can read the reference outputs too (README: threat model)."""

    def __init__(self, max_keys: int = 8):
        self.max_keys = max_keys
        self._stock: OrderedDict[tuple, list[FreshTrial]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: tuple) -> FreshTrial | None:
        with self._lock:
            trials = self._stock.get(key)
            if not trials:
                return None
            self._stock.move_to_end(key)
            return trials.pop(0)

    def put(self, key: tuple, trials: list[FreshTrial]) -> None:
        with self._lock:
            self._stock.setdefault(key, []).extend(trials)
            self._stock.move_to_end(key)
            dropped = []
            while len(self._stock) > self.max_keys:
                dropped += self._stock.popitem(last=False)[1]
        _discard(dropped)

    def invalidate(self, key: tuple) -> None:
        with self._lock:
            dropped = self._stock.pop(key, [])
        _discard(dropped)

    def __len__(self) -> int:
        with self._lock:
            return sum(len(v) for v in self._stock.values())


def _discard(trials: list[FreshTrial]) -> None:
    for t in trials:
        try:
            os.unlink(t.inputs_path)
        except OSError:
            pass


def load_fresh(workdir: str, result: dict, keep_dir: str) -> list[FreshTrial]:
    """The fresh trials a fresh-trials run wrote: reference outputs read and deleted at once,
    input files moved to `keep_dir` (the run's directory can then go)."""
    import torch

    os.makedirs(keep_dir, mode=0o700, exist_ok=True)
    fresh = []
    for t in result.get("trials", []):
        seed = int(t["seed"])
        path = os.path.join(workdir, f"ref_{seed}.pt")
        trial = torch.load(path, weights_only=True)
        os.unlink(path)
        inputs = os.path.join(keep_dir, f"inputs_{seed}.pt")
        try:
            os.replace(os.path.join(workdir, f"inputs_{seed}.pt"), inputs)
        except OSError:
            raise TaskError(f"reference run did not produce inputs_{seed}.pt") from None
        fresh.append(FreshTrial(seed=seed, trial=trial, eager_ms=float(t["ms"]), inputs_path=inputs))
    return fresh


def load_reference(task, device: str, seeds: tuple[int, ...], init_seed: int, workdir: str,
                   result: dict) -> Reference:
    """Turn a successful reference run's directory into a cache entry (deleting the outputs)."""
    import torch

    trials = {}
    for seed in seeds:
        path = os.path.join(workdir, f"ref_{seed}.pt")
        trials[seed] = torch.load(path, weights_only=True)
        os.unlink(path)
    names = ["init.pt", "state.pt"] + [f"inputs_{s}.pt" for s in seeds]
    for name in names:
        if not os.path.exists(os.path.join(workdir, name)):
            raise TaskError(f"reference run did not produce {name}")
    return Reference(
        task_id=task.id, device=device, seeds=seeds, init_seed=init_seed, files_dir=workdir,
        file_hashes={n: _sha256(os.path.join(workdir, n)) for n in names}, trials=trials,
        structure=result.get("structure", "tensor"), outputs=result.get("outputs", []),
        device_name=result.get("device_name", device),
        eager_ms=[float(t["ms"]) for t in result.get("trials", [])],
        precision=str(result.get("precision") or ""))


class BaselineCache:
    """GPU eager / torch.compile timings per (task id, device name), as a small JSON file."""

    _lock = threading.Lock()

    def __init__(self, path: str | None = None):
        if path is None:
            from kgen.core.config import kgen_home

            path = str(kgen_home() / "cache" / "baselines.json")
        self.path = path

    def _read(self) -> dict:
        try:
            with open(self.path) as fh:
                data = json.load(fh)
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def get(self, task_id: str, device_name: str) -> dict | None:
        with self._lock:
            return self._read().get(f"{task_id}|{device_name}")

    def put(self, task_id: str, device_name: str, value: dict) -> None:
        with self._lock:
            data = self._read()
            data[f"{task_id}|{device_name}"] = value
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            tmp = f"{self.path}.{os.getpid()}.tmp"
            with open(tmp, "w") as fh:
                json.dump(data, fh, indent=1)
            os.replace(tmp, self.path)
