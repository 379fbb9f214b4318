"""Device pool: leases, expiry of vanished holders, CPU fallback by free memory (seed 004)."""

import threading

import pytest

from kgen.core.errors import ConfigError
from kgen.daemon.node.pool import (Device, DevicePool, InsufficientMemory, NoDevice, UnknownLease, cpu_devices,
                                   parse_devices)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def fake_gpus(*free_bytes):
    # Stand-ins for CUDA devices (no GPU here): the pool only needs ids, names and free memory.
    return [Device(f"cuda:{i}", "test gpu", 16 << 30, (lambda f=f: f)) for i, f in enumerate(free_bytes)]


def test_devices_are_ids_for_every_backend_and_slots_is_the_cpu_shorthand():
    assert [d.id for d in parse_devices("cpu", "")] == ["cpu:0", "cpu:1"]
    assert [d.id for d in parse_devices("cpu", "0")] == ["cpu:0"]          # one slot, id 0
    assert [d.id for d in parse_devices("cpu", "3")] == ["cpu:3"]          # one slot, id 3
    assert [d.id for d in parse_devices("cpu", "0,1")] == ["cpu:0", "cpu:1"]
    assert [d.id for d in parse_devices("cpu", " 2, 5 ")] == ["cpu:2", "cpu:5"]
    assert [d.id for d in parse_devices("cpu", None, slots=3)] == ["cpu:0", "cpu:1", "cpu:2"]


@pytest.mark.parametrize("spec,slots,backend,message", [
    ("abc", None, "cpu", "not an integer"),
    ("0,x", None, "cpu", "not an integer"),
    ("1.5", None, "cpu", "not an integer"),
    ("-1", None, "cpu", "negative"),
    ("0,0", None, "cpu", "listed twice"),
    (",", None, "cpu", "comma-separated device ids"),
    ("0,,1", None, "cpu", "comma-separated device ids"),
    ("", 0, "cpu", "--slots must be 1-256"),
    ("", 257, "cpu", "--slots must be 1-256"),
    ("0", 2, "cpu", "give one of them"),
    ("", 2, "cuda", "cpu shorthand"),
    ("-1", None, "cuda", "negative"),
    ("0,0", None, "cuda", "listed twice"),
])
def test_bad_devices_are_one_line_errors(spec, slots, backend, message):
    with pytest.raises(ConfigError, match=message) as err:
        parse_devices(backend, spec, slots)
    assert "\n" not in str(err.value)


def test_cuda_ids_beyond_the_device_count_are_refused():
    import torch

    if torch.cuda.is_available():
        bad = str(torch.cuda.device_count())
        with pytest.raises(ConfigError, match="not visible"):
            parse_devices("cuda", bad)
    else:
        with pytest.raises(ConfigError, match="no CUDA device"):
            parse_devices("cuda", "7")


def test_acquire_until_exhausted_then_release():
    pool = DevicePool(cpu_devices(2))
    a = pool.acquire()
    b = pool.acquire()
    assert {a.device.id, b.device.id} == {"cpu:0", "cpu:1"}
    assert pool.load == 2
    with pytest.raises(NoDevice):
        pool.acquire()
    assert pool.release(a.lease_id) is True
    assert pool.release(a.lease_id) is False
    c = pool.acquire()
    assert c.device.id == a.device.id
    snap = {d["id"]: d["leased"] for d in pool.snapshot()}
    assert snap == {"cpu:0": True, "cpu:1": True}


def test_lease_of_vanished_holder_expires_and_renew_extends():
    clock = Clock()
    pool = DevicePool(cpu_devices(1), clock=clock)
    lease = pool.acquire(ttl_s=10)
    clock.now += 8
    pool.renew(lease.lease_id)
    clock.now += 8
    assert pool.sweep() == []          # renewed: still alive
    clock.now += 3
    assert pool.sweep() == [lease.lease_id]
    with pytest.raises(UnknownLease):
        pool.renew(lease.lease_id)
    assert pool.acquire().device.id == "cpu:0"


def test_running_call_keeps_lease_past_expiry_and_release_waits_for_it():
    clock = Clock()
    pool = DevicePool(cpu_devices(1), clock=clock)
    lease = pool.acquire(ttl_s=5)
    pool.begin_call(lease.lease_id)
    clock.now += 60
    assert pool.sweep() == []
    assert pool.release(lease.lease_id) is True
    with pytest.raises(NoDevice):       # the call still runs on the device
        pool.acquire()
    pool.end_call(lease.lease_id)
    clock.now += 6
    pool.sweep()
    assert pool.acquire().device.id == "cpu:0"


def test_memory_need_picks_the_device_with_room():
    pool = DevicePool(fake_gpus(2 << 30, 10 << 30) + cpu_devices(1, fallback_only=True))
    lease = pool.acquire(min_free_memory_bytes=4 << 30)
    assert lease.device.id == "cuda:1"
    assert pool.capacity == 2


def test_cpu_fallback_only_when_allowed():
    pool = DevicePool(fake_gpus(1 << 30) + cpu_devices(1, fallback_only=True))
    with pytest.raises(InsufficientMemory) as err:
        pool.acquire(min_free_memory_bytes=8 << 30)
    assert "allow CPU fallback" in err.value.message
    lease = pool.acquire(min_free_memory_bytes=8 << 30, allow_cpu_fallback=True)
    assert lease.device.id == "cpu:0"
    # The fallback slot never serves ordinary work.
    first = pool.acquire()
    assert first.device.id == "cuda:0"
    with pytest.raises(NoDevice):
        pool.acquire()


def test_concurrent_acquires_never_share_a_device():
    pool = DevicePool(cpu_devices(8))
    got, errors = [], []

    def grab():
        try:
            got.append(pool.acquire().device.id)
        except NoDevice:
            errors.append(1)

    threads = [threading.Thread(target=grab) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 8 and len(set(got)) == 8 and len(errors) == 12
