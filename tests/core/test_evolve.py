"""The evolve/job engine: single jobs with repairs, evolve rounds, ranking, cancellation, resume."""

from __future__ import annotations

import asyncio
import importlib.util
import warnings
from pathlib import Path

import pytest

from kgen.core.errors import BadInput
from kgen.core.evolve import Entry, run_job, summarize_verdict, validate_spec
from kgen.core.generate import Candidate
from kgen.core.store import Store
from kgen.core.verify.verdict import Timing, Trial, Verdict

_spec = importlib.util.spec_from_file_location("honest_candidates", Path(__file__).with_name("honest_candidates.py"))
hc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hc)

GOOD, WRONG, BROKEN = hc.torch_source(2.0), hc.torch_source(3.0), hc.BROKEN_SOURCE


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "kgen.db")
    yield s
    s.close()


@pytest.fixture
def task():
    return hc.make_task()


def honest_verify(task, seen=None):
    async def verify(request):
        if seen is not None:
            seen.append(request.attempt)
        return await asyncio.to_thread(hc.in_process_verify, task, request.source)
    return verify


def run(store, task, spec, gen, verify, **kw):
    job = store.create_job(task, validate_spec(spec))
    return asyncio.run(run_job(store, job["job_id"], task, spec, gen, verify, **kw))


def types(store, job_id):
    return [e["type"] for e in store.events(job_id)]


# -- spec ------------------------------------------------------------------------
def test_spec_defaults_are_explicit():
    spec = validate_spec({"job_type": "evolve"})
    assert spec["max_rounds"] == 3 and spec["parallel_num"] == 4 and spec["max_repairs"] == 2
    assert spec["early_stop"] is True
    assert validate_spec({"job_type": "evolve", "backend": "cuda"})["early_stop"] is False
    single = validate_spec({"job_type": "single", "max_rounds": 9, "parallel_num": 9})
    assert (single["max_rounds"], single["parallel_num"]) == (1, 1)
    assert validate_spec({"atol": 1e-3})["atol"] == 1e-3
    assert validate_spec({})["compile_for"] == []
    assert validate_spec({"compile_for": "sm_80, sm_90a"})["compile_for"] == ["sm_80", "sm_90"]


def test_compile_for_drops_spilling_candidates_only_in_cpu_evolve():
    from kgen.core.local import compile_options

    assert compile_options(validate_spec({})) == {}
    evolve = validate_spec({"job_type": "evolve", "compile_for": ["sm_90"]})
    assert compile_options(evolve) == {"compile_for": ["sm_90"], "reject_spills": True}
    single = validate_spec({"compile_for": ["sm_90"]})
    assert compile_options(single) == {"compile_for": ["sm_90"], "reject_spills": False}


@pytest.mark.parametrize("spec, words", [
    ({"job_type": "evolve", "max_rounds": 0}, "max_rounds"),
    ({"job_type": "evolve", "max_rounds": 51}, "max_rounds"),
    ({"job_type": "evolve", "parallel_num": 65}, "parallel_num"),
    ({"job_type": "evolve", "parallel_num": True}, "parallel_num"),
    ({"job_type": "evolve", "parallel_num": "4"}, "parallel_num"),
    ({"max_repairs": -1}, "max_repairs"),
    ({"job_type": "batch"}, "job_type"),
    ({"backend": "tpu"}, "backend"),
    ({"timeout_s": 0}, "timeout_s"),
    ({"atol": float("nan")}, "atol"),
    ({"rtol": 5}, "rtol"),
    ({"dsl": "cuda"}, "dsl"),
    ({"early_stop": "yes"}, "early_stop"),
    ({"max_round": 3}, "unknown"),
    ({"compile_for": "sm_8"}, "compile_for"),
    ({"compile_for": ["sm_90", 90]}, "compile_for"),
])
def test_absurd_specs_are_rejected(spec, words):
    with pytest.raises(BadInput, match=words):
        validate_spec(spec)


# -- ranking -----------------------------------------------------------------------
def _entry(i, status, ms=None, kind="gpu", err=None):
    trials = [Trial(seed=0, ok=status == "correct", max_abs_err=err)] if err is not None else []
    timing = Timing(kind=kind, candidate_ms=ms) if ms is not None else None
    return Entry(f"c{i}", 1, i, Candidate(f"s{i}"), Verdict(status=status, timing=timing, trials=trials))


def test_ranking_correct_first_then_gpu_time_then_order():
    ranked = sorted([_entry(0, "incorrect", err=0.5), _entry(1, "correct", ms=2.0), _entry(2, "correct", ms=1.0),
                     _entry(3, "compile_error"), _entry(4, "incorrect", err=0.1)], key=Entry.rank)
    assert [e.candidate_id for e in ranked] == ["c2", "c1", "c4", "c0", "c3"]
    interp = sorted([_entry(0, "correct", ms=9.0, kind="interpreter"), _entry(1, "correct", ms=1.0, kind="interpreter")],
                    key=Entry.rank)
    assert [e.candidate_id for e in interp] == ["c0", "c1"]  # on the interpreter the first correct is kept
    assert summarize_verdict(_entry(5, "incorrect", err=0.25).verdict)["max_abs_err"] == 0.25


# -- single --------------------------------------------------------------------------
def test_single_correct_first_time(store, task):
    gen = hc.ScriptedGenerator([GOOD])
    job = run(store, task, {"job_type": "single"}, gen, honest_verify(task))
    assert job["status"] == "succeeded" and job["error"] is None
    cands = store.candidates(job["job_id"])
    assert len(cands) == 1 and job["best_candidate_id"] == cands[0]["candidate_id"]
    assert types(store, job["job_id"]) == ["queued", "running", "round_started", "candidate_generated",
                                            "candidate_verified", "best_updated", "succeeded"]
    seqs = [e["seq"] for e in store.events(job["job_id"])]
    assert seqs == list(range(1, len(seqs) + 1))
    assert store.events(job["job_id"])[-1]["best_candidate_id"] == job["best_candidate_id"]


def test_single_repairs_until_correct(store, task):
    gen = hc.ScriptedGenerator([BROKEN], repairs=[WRONG, GOOD])
    job = run(store, task, {"job_type": "single", "max_repairs": 2}, gen, honest_verify(task))
    assert job["status"] == "succeeded"
    statuses = [c["verdict"]["status"] for c in store.candidates(job["job_id"])]
    assert statuses == ["compile_error", "incorrect", "correct"]
    assert gen.calls == [("initial", 1), ("repair", "compile_error"), ("repair", "incorrect")]
    cands = store.candidates(job["job_id"])
    assert cands[1]["parent"] == Candidate(BROKEN).sha and [c["round"] for c in cands] == [1, 2, 3]


def test_single_gives_up_after_max_repairs_and_explains(store, task):
    gen = hc.ScriptedGenerator([WRONG], repairs=[WRONG.replace("3.0", "4.0"), BROKEN, GOOD])
    job = run(store, task, {"job_type": "single", "max_repairs": 1}, gen, honest_verify(task))
    assert job["status"] == "failed" and job["best_candidate_id"] is None
    assert len(store.candidates(job["job_id"])) == 2
    assert "no correct kernel in 2 candidate(s); best was incorrect" in job["error"]


def test_single_stops_when_repair_has_no_idea(store, task):
    job = run(store, task, {"job_type": "single"}, hc.ScriptedGenerator([BROKEN]), honest_verify(task))
    assert job["status"] == "failed" and "compile_error" in job["error"]
    assert "repair_gave_up" in types(store, job["job_id"])
    same = run(store, task, {"job_type": "single"}, hc.ScriptedGenerator([WRONG], repairs=[WRONG, GOOD]),
               honest_verify(task))
    assert same["status"] == "failed" and len(store.candidates(same["job_id"])) == 1


def test_generator_failure_fails_the_job_with_reason(store, task):
    gen = hc.ScriptedGenerator([GOOD], fail_on={"initial"})
    job = run(store, task, {"job_type": "evolve"}, gen, honest_verify(task))
    assert job["status"] == "failed" and "export failed" in job["error"]
    job = run(store, task, {"job_type": "single"}, hc.ScriptedGenerator([]), honest_verify(task))
    assert job["status"] == "failed" and "no candidate" in job["error"]


def test_verifier_exception_is_recorded_not_fatal(store, task):
    async def flaky(request):
        if request.attempt == 0:
            raise ConnectionError("node went away")
        return await asyncio.to_thread(hc.in_process_verify, task, request.source)

    gen = hc.ScriptedGenerator([GOOD], repairs=[GOOD + "\n# again\n"])
    job = run(store, task, {"job_type": "single"}, gen, flaky)
    first, second = store.candidates(job["job_id"])
    assert first["verdict"]["status"] == "crashed" and "node went away" in first["verdict"]["message"]
    assert job["status"] == "succeeded" and job["best_candidate_id"] == second["candidate_id"]


# -- evolve --------------------------------------------------------------------------
def test_evolve_seeds_rounds_with_the_best_and_stops_once_correct_on_cpu(store, task):
    gen = hc.ScriptedGenerator([BROKEN, WRONG, hc.torch_source(5.0)],
                               mutations=[[WRONG.replace("3.0", "2.5"), GOOD, hc.torch_source(2.0) + "#b\n"],
                                          [GOOD + "#never\n"]])
    attempts = []
    job = run(store, task, {"job_type": "evolve", "max_rounds": 4, "parallel_num": 3}, gen,
              honest_verify(task, attempts))
    assert job["status"] == "succeeded"
    cands = store.candidates(job["job_id"])
    assert [(c["round"], c["index"]) for c in cands] == [(1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2)]
    best = next(c for c in cands if c["candidate_id"] == job["best_candidate_id"])
    assert (best["round"], best["index"]) == (2, 1)  # the first correct one, even if (2, 2) finished first
    assert gen.calls[0] == ("initial", 3)
    assert gen.calls[1][0] == "mutate" and gen.calls[1][2][:2] == ["incorrect", "incorrect"]
    assert gen.calls[1][2][-1] == "compile_error" and len(gen.calls) == 2   # early stop: no round 3
    assert sorted(attempts) == list(range(6))
    assert types(store, job["job_id"]).count("round_started") == 2


def test_evolve_without_early_stop_runs_every_round_and_dedupes(store, task):
    gen = hc.ScriptedGenerator([GOOD], mutations=[[GOOD, WRONG], [GOOD, WRONG]])
    job = run(store, task, {"job_type": "evolve", "max_rounds": 3, "parallel_num": 2, "early_stop": False},
              gen, honest_verify(task))
    assert job["status"] == "succeeded"
    cands = store.candidates(job["job_id"])
    assert [c["round"] for c in cands] == [1, 2]   # round 3 proposed nothing new
    assert "converged" in types(store, job["job_id"])
    assert job["best_candidate_id"] == cands[0]["candidate_id"]


def test_evolve_mutate_failure_keeps_the_best_so_far(store, task):
    gen = hc.ScriptedGenerator([GOOD], fail_on={"mutate"})
    job = run(store, task, {"job_type": "evolve", "max_rounds": 3, "parallel_num": 1, "early_stop": False},
              gen, honest_verify(task))
    assert job["status"] == "succeeded"
    assert "generator_error" in types(store, job["job_id"])


def test_round_candidates_are_verified_concurrently(store, task):
    in_flight, peak = 0, 0

    async def verify(request):
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.05)
        in_flight -= 1
        return await asyncio.to_thread(hc.in_process_verify, task, request.source)

    gen = hc.ScriptedGenerator([hc.torch_source(s) for s in (3.0, 4.0, 5.0, 2.0)])
    job = run(store, task, {"job_type": "evolve", "max_rounds": 1, "parallel_num": 4}, gen, verify)
    assert job["status"] == "succeeded" and peak == 4


def test_verify_requests_carry_candidate_id_fallbacks_and_targets(store, task):
    got = []

    async def verify(request):
        got.append(request)
        return await asyncio.to_thread(hc.in_process_verify, task, request.source)

    spec = {"atol": 0.01, "rtol": 0.0, "timeout_s": 30}
    builtin = run(store, task, spec, hc.ScriptedGenerator([GOOD], origin="builtin",
                                                          params={"fallback_ops": ["aten.sort"]}), verify)
    run(store, task, {}, hc.ScriptedGenerator([GOOD], origin="llm", params={"fallback_ops": ["aten.sort"]}), verify)
    # only the builtin generator's declared fallbacks are allowed; llm output earns none
    assert [r.allow_ops for r in got] == [("aten.sort",), ()]
    assert got[0].candidate_id == store.candidates(builtin["job_id"])[0]["candidate_id"]
    assert got[0].attempt == 0 and got[0].source == GOOD
    assert (got[0].targets.atol, got[0].targets.rtol, got[0].targets.timeout_s) == (0.01, 0.0, 30.0)
    assert got[0].targets.backend == "cpu" and got[1].targets.atol is None


def test_store_errors_are_not_reported_as_generator_failures(store, task):
    import sqlite3

    class BrokenStore:
        """The real store, except that adding a candidate fails as a full disk would."""

        def __getattr__(self, name):
            return getattr(store, name)

        def add_candidate(self, *a, **kw):
            raise sqlite3.OperationalError("database or disk is full")

    job = store.create_job(task, validate_spec({}))
    done = asyncio.run(run_job(BrokenStore(), job["job_id"], task, {}, hc.ScriptedGenerator([GOOD]),
                               honest_verify(task)))
    assert done["status"] == "failed"
    assert done["error"].startswith("store error: OperationalError: database or disk is full")


def test_generator_exceptions_are_reported_as_generator_failures(store, task):
    class Crashing(hc.ScriptedGenerator):
        def initial(self, task, n):
            raise ZeroDivisionError("bug in the generator")

    job = run(store, task, {}, Crashing([GOOD]), honest_verify(task))
    assert job["status"] == "failed"
    assert job["error"] == "generator failed: ZeroDivisionError: bug in the generator"


def test_llm_style_generators_get_a_message_sink(store, task):
    class Chatty(hc.ScriptedGenerator):
        message_sink = None

        def initial(self, task, n):
            self.message_sink("user", "design a kernel")
            self.message_sink("assistant", "here it is")
            return super().initial(task, n)

    gen = Chatty([GOOD])
    job = run(store, task, {}, gen, honest_verify(task))
    assert [m["role"] for m in store.messages(job["job_id"])] == ["user", "assistant"]
    assert gen.message_sink is None


# -- cancellation and resume -----------------------------------------------------------
def test_cancel_event_ends_the_job_as_cancelled(store, task):
    cancel = asyncio.Event()

    async def slow(request):
        cancel.set()
        await asyncio.sleep(30)

    gen = hc.ScriptedGenerator([GOOD, WRONG])
    job = run(store, task, {"job_type": "evolve", "parallel_num": 2}, gen, slow, cancel=cancel)
    assert job["status"] == "cancelled" and job["finished_at"]
    assert types(store, job["job_id"])[-1] == "cancelled"


def test_interrupted_job_resumes_without_redoing_work(store, task):
    gate = {"block_round": 2}

    async def verify(request):
        cands = store.candidates(job_id)
        mine = next(c for c in cands if c["candidate_id"] == request.candidate_id)
        if mine["round"] == gate["block_round"]:
            await asyncio.sleep(30)   # the process "dies" here
        return await asyncio.to_thread(hc.in_process_verify, task, request.source)

    gen = hc.ScriptedGenerator([WRONG, BROKEN], mutations=[[GOOD, hc.torch_source(7.0)]])
    spec = {"job_type": "evolve", "max_rounds": 3, "parallel_num": 2}
    job_id = store.create_job(task, validate_spec(spec))["job_id"]

    async def crash():
        runner = asyncio.ensure_future(run_job(store, job_id, task, spec, gen, verify))
        while not any(e["type"] == "round_started" and e["round"] == 2 for e in store.events(job_id)) or \
                len(store.candidates(job_id)) < 4:
            await asyncio.sleep(0.02)
        runner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runner

    asyncio.run(crash())
    assert store.get_job(job_id)["status"] == "running"
    last_seq = store.events(job_id)[-1]["seq"]
    store.set_job_status(job_id, "queued")          # a restarted gateway re-queues it
    gate["block_round"] = None
    calls_before = list(gen.calls)
    done = asyncio.run(run_job(store, job_id, task, spec, gen, verify))
    assert done["status"] == "succeeded"
    assert gen.calls == calls_before                 # nothing generated again
    cands = store.candidates(job_id)
    assert len(cands) == 4 and all(c["verdict"] for c in cands)
    seqs = [e["seq"] for e in store.events(job_id)]
    assert seqs == list(range(1, len(seqs) + 1)) and seqs[-1] > last_seq + 1
    assert types(store, job_id)[last_seq:last_seq + 3] == ["queued", "running", "round_started"]


def test_finished_job_is_returned_untouched(store, task):
    job = run(store, task, {}, hc.ScriptedGenerator([GOOD]), honest_verify(task))
    n = len(store.events(job["job_id"]))
    again = asyncio.run(run_job(store, job["job_id"], task, {}, hc.ScriptedGenerator([GOOD]), honest_verify(task)))
    assert again["status"] == "succeeded" and len(store.events(job["job_id"])) == n


# -- the real verifier -------------------------------------------------------------------
@pytest.mark.slow
def test_real_triton_candidates_through_the_real_verifier(store, task, monkeypatch, tmp_path):
    monkeypatch.setenv("KGEN_HOME", str(tmp_path / "home"))
    from kgen.core.verify import verify as real_verify

    async def verify(request):
        return await asyncio.to_thread(real_verify, task, request.source, device="cpu", timeout_s=120)

    gen = hc.ScriptedGenerator([hc.triton_source(scale=3.0)], repairs=[hc.triton_source(scale=2.0, block=128)])
    job = run(store, task, {"job_type": "single"}, gen, verify)
    wrong, right = store.candidates(job["job_id"])
    assert wrong["verdict"]["status"] == "incorrect", wrong["verdict"]["message"]
    assert right["verdict"]["status"] == "correct", right["verdict"]["message"]
    assert right["verdict"]["kernels_launched"] >= 1 and right["verdict"]["pure"]
    assert job["status"] == "succeeded" and job["best_candidate_id"] == right["candidate_id"]


def test_cancelled_before_it_starts_generates_nothing(store, task):
    cancel = asyncio.Event()
    cancel.set()
    gen = hc.ScriptedGenerator([GOOD])
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # e.g. a never-awaited coroutine
        job = run(store, task, {"job_type": "evolve"}, gen, honest_verify(task), cancel=cancel)
    assert job["status"] == "cancelled" and gen.calls == [] and store.candidates(job["job_id"]) == []


def test_a_best_to_be_is_confirmed_and_the_confirmed_verdict_counts(store, task):
    """`confirm` (the gateway's cross-check) sees only correct verdicts that would become the best;
    when it disagrees, its verdict is the one stored and ranked."""
    asked = []

    async def lying_verify(request):
        return Verdict(status="correct", task_id=task.id, device="cuda:0",
                       timing=Timing(kind="gpu", candidate_ms=0.001, eager_ms=10.0, speedup_eager=10000.0))

    async def confirm(request, verdict):
        assert request.candidate_id and request.source
        asked.append(verdict.status)
        return Verdict(status="incorrect", task_id=task.id, message="honest node: wrong output")

    job = run(store, task, {"job_type": "single", "max_repairs": 0}, hc.ScriptedGenerator([WRONG]),
              lying_verify, confirm=confirm)
    assert asked == ["correct"]
    assert job["status"] == "failed" and job["best_candidate_id"] is None
    [cand] = store.candidates(job["job_id"])
    assert cand["verdict"]["status"] == "incorrect" and "10000" not in str(cand["verdict"])
