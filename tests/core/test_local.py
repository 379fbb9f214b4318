"""Local mode: device slots, the slot-bound verify function, and run_local/job_result glue."""

from __future__ import annotations

import asyncio
import importlib.util
import threading
import time
from pathlib import Path

import pytest

from kgen.core.errors import BadInput
from kgen.core.evolve import VerifyRequest, validate_spec
from kgen.core.local import DeviceSlots, cpu_slot_count, job_result, make_verify_fn, resolve_devices, run_local
from kgen.core.store import Store

_spec = importlib.util.spec_from_file_location("honest_candidates", Path(__file__).with_name("honest_candidates.py"))
hc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hc)


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "kgen.db")
    yield s
    s.close()


@pytest.fixture(autouse=True)
def _home(monkeypatch, tmp_path):
    monkeypatch.setenv("KGEN_HOME", str(tmp_path / "home"))


def test_cpu_slots():
    assert resolve_devices("cpu") == ["cpu"] * cpu_slot_count()
    assert 1 <= cpu_slot_count() <= 2
    assert resolve_devices("cpu", "3") == ["cpu"] * 3
    assert resolve_devices("cpu", "cpu:1") == ["cpu"]
    for bad in ("0", "abc", "65", "cuda:0"):
        with pytest.raises(BadInput, match="slot count"):
            resolve_devices("cpu", bad)
    with pytest.raises(BadInput):
        resolve_devices("tpu")


def test_cuda_slots_follow_visible_gpus():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        with pytest.raises(BadInput, match="needs a CUDA GPU"):
            resolve_devices("cuda")
        return
    count = torch.cuda.device_count()
    assert resolve_devices("cuda") == [f"cuda:{i}" for i in range(count)]
    assert resolve_devices("cuda", "cuda:0,0") == ["cuda:0"]
    with pytest.raises(BadInput, match="GPU ids"):
        resolve_devices("cuda", str(count))


def test_slots_bound_concurrency_and_hand_out_distinct_devices():
    task = hc.make_task()
    active, peak, held = [], [0], set()
    lock = threading.Lock()

    def verify_impl(task, source, *, device, **kw):
        with lock:
            assert device not in held
            held.add(device)
            active.append(device)
            peak[0] = max(peak[0], len(active))
        time.sleep(0.05)
        verdict = hc.in_process_verify(task, source, device=device)
        with lock:
            active.remove(device)
            held.discard(device)
        return verdict

    slots = DeviceSlots(["cuda:0", "cuda:1"])
    verify = make_verify_fn(task, slots, verify_impl=verify_impl)

    async def many():
        return await asyncio.gather(*(verify(VerifyRequest(hc.torch_source(2.0), i, f"c{i}")) for i in range(5)))

    verdicts = asyncio.run(many())
    assert peak[0] == 2 and all(v.correct for v in verdicts)
    assert {v.device for v in verdicts} == {"cuda:0", "cuda:1"}


def test_verify_fn_passes_job_settings_to_the_verifier():
    seen = {}

    def verify_impl(task, source, **kw):
        seen.update(kw)
        return hc.in_process_verify(task, source)

    fn = make_verify_fn(hc.make_task(), DeviceSlots(["cpu"]), timeout_s=7.0, atol=1e-3, rtol=2e-3,
                        verify_impl=verify_impl)
    asyncio.run(fn(VerifyRequest(hc.torch_source(2.0), 0, "c0", allow_ops=("aten.sort",))))
    assert seen == {"device": "cpu", "timeout_s": 7.0, "atol": 1e-3, "rtol": 2e-3, "allow_ops": ["aten.sort"],
                    "pool": None}


def test_evolve_job_with_compile_for_asks_the_verifier_to_drop_spilling_candidates(store):
    from kgen.core.evolve import validate_spec
    from kgen.core.local import compile_options

    seen = []

    def verify_impl(task, source, **kw):
        seen.append({k: kw.get(k) for k in ("compile_for", "reject_spills")})
        return hc.in_process_verify(task, source)

    spec = validate_spec({"job_type": "evolve", "compile_for": "sm_80,sm_90", "max_rounds": 1, "parallel_num": 1})
    fn = make_verify_fn(hc.make_task(), DeviceSlots(["cpu"]), verify_impl=verify_impl, compile=compile_options(spec))
    from kgen.core.evolve import VerifyRequest

    asyncio.run(fn(VerifyRequest(source=hc.torch_source(2.0), attempt=0, candidate_id="c0")))
    assert seen == [{"compile_for": ["sm_80", "sm_90"], "reject_spills": True}]


@pytest.mark.slow
def test_run_local_with_the_real_verifier_writes_the_best_kernel(store, tmp_path):
    task = hc.make_task()
    gen = hc.ScriptedGenerator([hc.triton_source(scale=2.5), hc.triton_source(scale=2.0, block=128)])
    spec = validate_spec({"job_type": "evolve", "max_rounds": 2, "parallel_num": 2, "timeout_s": 120})
    job = run_local(store, task, spec, gen, ["cpu", "cpu"])
    assert job["status"] == "succeeded", job["error"]
    out = tmp_path / "out" / "axpy_kgen.py"
    result = job_result(store, job["job_id"], out)
    assert list(result) == ["job_id", "status", "best", "candidates"] and list(result["best"]) == ["path", "verdict"]
    assert result["best"]["path"] == str(out) and out.read_text() == hc.triton_source(scale=2.0, block=128)
    assert result["best"]["verdict"]["status"] == "correct" and result["best"]["verdict"]["kernels_launched"] >= 1
    assert [c["verdict"]["status"] for c in result["candidates"]] == ["incorrect", "correct"]
    assert gen.calls == [("initial", 2)]   # cpu early stop: the first correct kernel ends the job


def test_failed_job_result_has_no_path_but_the_closest_verdict(store, tmp_path):
    task = hc.make_task()
    gen = hc.ScriptedGenerator([hc.BROKEN_SOURCE, hc.torch_source(3.0)])
    spec = validate_spec({"job_type": "evolve", "max_rounds": 1, "parallel_num": 2})
    job = run_local(store, task, spec, gen, ["cpu"], verify_impl=lambda task, src, **kw: hc.in_process_verify(task, src))
    out = tmp_path / "never.py"
    result = job_result(store, job["job_id"], out)
    assert result["status"] == "failed" and result["best"]["path"] is None and not out.exists()
    assert result["best"]["verdict"]["status"] == "incorrect"
    assert "best was incorrect" in store.get_job(job["job_id"])["error"]


def test_ctrl_c_reports_the_interrupted_job_not_the_newest_in_the_store(store):
    """Another process may add a job to a shared store while ours runs: Ctrl-C names our own."""
    from kgen.core.local import JobInterrupted

    task = hc.make_task()
    other = []

    def verify_impl(task, source, **kw):
        other.append(store.create_job(task, validate_spec({}))["job_id"])   # a newer job, not ours
        raise KeyboardInterrupt

    with pytest.raises(JobInterrupted) as stop:
        run_local(store, task, validate_spec({}), hc.ScriptedGenerator([hc.torch_source(2.0)]), ["cpu"],
                  verify_impl=verify_impl)
    ours = stop.value.job_id
    assert ours != other[0] and store.list_jobs(limit=1)[0]["job_id"] == other[0]
    assert store.get_job(ours)["status"] == "cancelled"
