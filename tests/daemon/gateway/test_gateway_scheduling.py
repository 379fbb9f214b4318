"""Placement and expiry rules, in process, over a real store (no HTTP needed for these rules)."""

import time

import pytest

from kgen.core.errors import NotFound
from kgen.core.store import Store
from kgen.daemon.gateway.metrics import Metrics
from kgen.daemon.gateway.registry import Registry
from kgen.daemon.gateway.scheduler import Scheduler


@pytest.fixture
def registry(tmp_path):
    store = Store(tmp_path / "gw.db")
    yield Registry(store, ttl=10.0)
    store.close()


def test_pick_matches_backend_and_arch_and_prefers_free_capacity(registry):
    small = registry.register(url="http://127.0.0.1:1001", backend="cpu", arch="x86_64", capacity=1)
    big = registry.register(url="http://127.0.0.1:1002", backend="cpu", arch="x86_64", capacity=3)
    gpu = registry.register(url="http://127.0.0.1:1003", backend="cuda", arch="h100", capacity=8)
    scheduler = Scheduler(registry, Metrics())
    assert scheduler.pick("cpu", None).worker_id == big.worker_id
    assert scheduler.pick("cuda", None).worker_id == gpu.worker_id
    assert scheduler.pick("cuda", "h100").worker_id == gpu.worker_id
    assert scheduler.pick("cuda", "a100") is None
    assert scheduler.pick("cpu", None, exclude={big.worker_id}).worker_id == small.worker_id
    # In-flight dispatches use up capacity: after 2 on `big`, both have one slot free.
    scheduler._inflight[big.worker_id] = 2
    assert scheduler.pick("cpu", None).worker_id in (big.worker_id, small.worker_id)
    scheduler._inflight[big.worker_id] = 3
    assert scheduler.pick("cpu", None).worker_id == small.worker_id
    scheduler._inflight[small.worker_id] = 1
    assert scheduler.pick("cpu", None) is None
    assert registry.served() == [{"backend": "cpu", "arch": "x86_64"}, {"backend": "cuda", "arch": "h100"}]


def test_unreachable_and_draining_workers_are_not_scheduled(registry):
    a = registry.register(url="http://127.0.0.1:2001", backend="cpu", arch="", capacity=1)
    b = registry.register(url="http://127.0.0.1:2002", backend="cpu", arch="", capacity=1)
    scheduler = Scheduler(registry, Metrics())
    registry.mark_unreachable(a.worker_id)
    registry.heartbeat(b.worker_id, state="draining")
    assert scheduler.pick("cpu", None) is None and not registry.serves("cpu", None)
    registry.heartbeat(a.worker_id, load=0)   # a heartbeat proves it is back
    assert scheduler.pick("cpu", None).worker_id == a.worker_id


def test_expiry_and_reload_from_the_store(registry, tmp_path):
    w = registry.register(url="http://127.0.0.1:3001", backend="cpu", arch="", capacity=2)
    now = time.time()
    assert w.healthy(registry.ttl, now)
    assert not w.healthy(registry.ttl, now + 11)            # one TTL missed: unhealthy
    assert registry.sweep(now + 20) == []                   # kept until 3 TTLs
    reloaded = Registry(registry.store, ttl=10.0)
    reloaded.load()
    assert [x.worker_id for x in reloaded.all()] == [w.worker_id]
    assert reloaded.sweep(now + 31) == [w.worker_id]        # then removed, from the store too
    assert registry.store.list_workers() == []
    with pytest.raises(NotFound):
        reloaded.heartbeat(w.worker_id)


def test_metrics_render_prometheus_text():
    metrics = Metrics()
    metrics.inc("kgen_gateway_requests_total", method="GET", route="/x", status="200")
    metrics.inc("kgen_gateway_requests_total", method="GET", route="/x", status="200")
    metrics.add_gauges(lambda: [("kgen_gateway_queue_depth", {}, 3)])
    text = metrics.render()
    assert '# TYPE kgen_gateway_requests_total counter' in text
    assert 'kgen_gateway_requests_total{method="GET",route="/x",status="200"} 2' in text
    assert "kgen_gateway_queue_depth 3" in text and text.endswith("\n")
