"""The node's device pool: devices handed out under leases that expire if their holder vanishes.

A lease is the unit of work placement: the gateway (or a verify call without a lease) takes
one device, runs candidates on it, and gives it back. A holder that dies never releases, so
every lease carries an expiry that each use renews; the sweeper reclaims expired leases unless
a call is still running on the device (a running verification is not abandoned mid-way).

CPU fallback (seed 004): a request asking for more free memory than any device has gets the
CPU fallback slot only when it allows fallback; otherwise it is refused as unsatisfiable
(not retryable), which differs from "all devices busy" (retryable).
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable

from kgen.core.errors import ConfigError, KgenError

DEFAULT_TTL_S = 120.0
MAX_TTL_S = 24 * 3600.0
DEFAULT_CPU_SLOTS = 2


class NoDevice(KgenError):
    """Every suitable device is leased right now; retry later."""

    code = "no_device"


class InsufficientMemory(KgenError):
    """No device could ever satisfy the request's memory need, and CPU fallback was not allowed."""

    code = "insufficient_memory"


class UnknownLease(KgenError):
    code = "unknown_lease"


@dataclass
class Device:
    id: str                     # "cpu:0" | "cuda:0"
    name: str
    total_memory_bytes: int
    free_memory: Callable[[], int]
    fallback_only: bool = False  # the CPU slot of a cuda node: used only by CPU fallback

    @property
    def kind(self) -> str:
        return self.id.split(":", 1)[0]

    @property
    def verify_device(self) -> str:
        """The device string the verifier understands ("cpu" or "cuda:N")."""
        return "cpu" if self.kind == "cpu" else self.id


@dataclass
class Lease:
    lease_id: str
    device: Device
    ttl_s: float
    expires_at: float
    active_calls: int = 0
    acquired_at: float = field(default_factory=time.time)


def _meminfo_bytes(field_name: str) -> int:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 0


def cpu_devices(slots: int | list[int], *, fallback_only: bool = False) -> list[Device]:
    """CPU slots: a count (ids 0..n-1) or the ids themselves."""
    total = _meminfo_bytes("MemTotal")
    ids = list(range(slots)) if isinstance(slots, int) else list(slots)
    return [
        Device(f"cpu:{i}", "cpu (triton interpreter)", total, lambda: _meminfo_bytes("MemAvailable"), fallback_only)
        for i in ids
    ]


MAX_CPU_SLOTS = 256


def parse_ids(spec: str) -> list[int]:
    """'0,1,3' -> [0, 1, 3]: non-negative, distinct integers; ConfigError (one line) otherwise."""
    parts = [p.strip() for p in spec.split(",")]
    if not spec.strip() or any(not p for p in parts):
        raise ConfigError(f"--devices: expected comma-separated device ids such as 0 or 0,1, got {spec!r}")
    ids = []
    for p in parts:
        try:
            value = int(p)
        except ValueError:
            raise ConfigError(f"--devices: device id {p!r} is not an integer (ids look like 0,1)") from None
        if value < 0:
            raise ConfigError(f"--devices: device id {value} is negative")
        if value in ids:
            raise ConfigError(f"--devices: device id {value} is listed twice")
        ids.append(value)
    return ids


def cuda_devices(ids: list[int] | None) -> list[Device]:
    """CUDA devices by id (all visible when None); ConfigError when there are none."""
    import torch  # lazy: a cpu node never pays for CUDA initialisation

    if not torch.cuda.is_available():
        raise ConfigError("backend cuda: no CUDA device is visible (torch.cuda.is_available() is False)")
    count = torch.cuda.device_count()
    ids = list(range(count)) if ids is None else ids
    bad = [i for i in ids if not 0 <= i < count]
    if bad:
        raise ConfigError(f"backend cuda: device id(s) {bad} not visible; {count} device(s) present")
    devices = []
    for i in ids:
        props = torch.cuda.get_device_properties(i)

        def free(i: int = i) -> int:
            try:
                return int(torch.cuda.mem_get_info(i)[0])
            except RuntimeError:
                return 0

        devices.append(Device(f"cuda:{i}", props.name, int(props.total_memory), free))
    return devices


def parse_devices(backend: str, spec: str | None, slots: int | None = None) -> list[Device]:
    """One rule for every backend: --devices is a list of device ids (`0` = the one device 0,
    `0,1` = two). cpu ids name interpreter slots; `slots` (--slots N) is the cpu shorthand for
    ids 0..N-1. cuda without ids: every visible device."""
    spec = (spec or "").strip() if spec is not None else None
    if slots is not None:
        if backend != "cpu":
            raise ConfigError("--slots is the cpu shorthand; for cuda name device ids with --devices")
        if spec:
            raise ConfigError("--slots and --devices both name cpu slots; give one of them")
        if isinstance(slots, bool) or not isinstance(slots, int) or not 1 <= slots <= MAX_CPU_SLOTS:
            raise ConfigError(f"--slots must be 1-{MAX_CPU_SLOTS}, got {slots!r}")
        return cpu_devices(slots)
    if backend == "cpu":
        if spec is None or spec == "":
            return cpu_devices(DEFAULT_CPU_SLOTS)
        ids = parse_ids(spec)
        if len(ids) > MAX_CPU_SLOTS:
            raise ConfigError(f"--devices: at most {MAX_CPU_SLOTS} cpu slots, got {len(ids)}")
        return cpu_devices(ids)
    if backend == "cuda":
        ids = parse_ids(spec) if spec else None
        return cuda_devices(ids) + cpu_devices(1, fallback_only=True)
    raise ConfigError(f"unknown backend {backend!r}; choose cpu or cuda")


class DevicePool:
    """Thread-safe lease bookkeeping; no I/O, so it can be driven from the loop and from threads."""

    def __init__(self, devices: list[Device], *, clock: Callable[[], float] = time.time):
        if not [d for d in devices if not d.fallback_only]:
            raise ConfigError("a node needs at least one device")
        self.devices = devices
        self._clock = clock
        self._lock = threading.Lock()
        self._leases: dict[str, Lease] = {}

    @property
    def capacity(self) -> int:
        return sum(1 for d in self.devices if not d.fallback_only)

    def _leased_ids(self) -> set[str]:
        return {lease.device.id for lease in self._leases.values()}

    def acquire(self, *, ttl_s: float = DEFAULT_TTL_S, min_free_memory_bytes: int | None = None,
                allow_cpu_fallback: bool = False) -> Lease:
        ttl_s = min(max(float(ttl_s), 1.0), MAX_TTL_S)
        need = int(min_free_memory_bytes or 0)
        with self._lock:
            self._sweep_locked()
            regular = [d for d in self.devices if not d.fallback_only]
            fits = [d for d in regular if need <= 0 or d.free_memory() >= need]
            candidates = fits
            if not fits:
                fallback = [d for d in self.devices if d.fallback_only]
                if not allow_cpu_fallback or not fallback:
                    most = max((d.free_memory() for d in regular), default=0)
                    hint = "" if allow_cpu_fallback else "; allow CPU fallback to run it on the CPU"
                    raise InsufficientMemory(
                        f"no device has {need} bytes free (most free: {most}){hint}")
                candidates = fallback
            leased = self._leased_ids()
            free = [d for d in candidates if d.id not in leased]
            if not free:
                raise NoDevice(f"all {len(candidates)} suitable device(s) are leased")
            # Most free memory first, so large work lands where it fits best.
            device = max(free, key=lambda d: d.free_memory()) if need > 0 else free[0]
            now = self._clock()
            lease = Lease(uuid.uuid4().hex, device, ttl_s, now + ttl_s)
            self._leases[lease.lease_id] = lease
            return lease

    def get(self, lease_id: str) -> Lease:
        with self._lock:
            self._sweep_locked()
            lease = self._leases.get(lease_id)
        if lease is None:
            raise UnknownLease(f"unknown or expired lease {lease_id!r}")
        return lease

    def renew(self, lease_id: str) -> Lease:
        with self._lock:
            lease = self._leases.get(lease_id)
            if lease is None or (lease.expires_at <= self._clock() and lease.active_calls == 0):
                self._leases.pop(lease_id, None)
                raise UnknownLease(f"unknown or expired lease {lease_id!r}")
            lease.expires_at = self._clock() + lease.ttl_s
            return lease

    def begin_call(self, lease_id: str) -> Lease:
        """Mark a call running on the lease (it cannot expire under the call) and renew it."""
        with self._lock:
            lease = self._leases.get(lease_id)
            if lease is None or (lease.expires_at <= self._clock() and lease.active_calls == 0):
                self._leases.pop(lease_id, None)
                raise UnknownLease(f"unknown or expired lease {lease_id!r}")
            lease.active_calls += 1
            lease.expires_at = self._clock() + lease.ttl_s
            return lease

    def end_call(self, lease_id: str) -> None:
        with self._lock:
            lease = self._leases.get(lease_id)
            if lease is not None:
                lease.active_calls = max(0, lease.active_calls - 1)
                lease.expires_at = self._clock() + lease.ttl_s

    def release(self, lease_id: str) -> bool:
        """Give a device back; a lease with a call still running is released when the call ends."""
        with self._lock:
            lease = self._leases.get(lease_id)
            if lease is None:
                return False
            if lease.active_calls:
                lease.expires_at = self._clock()  # swept as soon as the call ends
            else:
                del self._leases[lease_id]
            return True

    def sweep(self) -> list[str]:
        with self._lock:
            return self._sweep_locked()

    def _sweep_locked(self) -> list[str]:
        now = self._clock()
        expired = [lid for lid, lease in self._leases.items() if lease.expires_at <= now and lease.active_calls == 0]
        for lid in expired:
            del self._leases[lid]
        return expired

    @property
    def load(self) -> int:
        with self._lock:
            return len(self._leases)

    @property
    def running_calls(self) -> int:
        with self._lock:
            return sum(lease.active_calls for lease in self._leases.values())

    def snapshot(self) -> list[dict]:
        with self._lock:
            leased = self._leased_ids()
        return [
            {"id": d.id, "name": d.name, "total_memory_bytes": d.total_memory_bytes,
             "free_memory_bytes": d.free_memory(), "leased": d.id in leased,
             **({"fallback_only": True} if d.fallback_only else {})}
            for d in self.devices
        ]
