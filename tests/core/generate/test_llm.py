"""The llm generator's client protocol against a local scripted OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import importlib.util
import textwrap
from pathlib import Path

import pytest

from kgen.core.errors import BadInput, KgenError, Unreachable
from kgen.core.generate import Candidate, get_generator
from kgen.core.generate import llm_prompts as prompts
from kgen.core.generate.llm import LLMGenerator
from kgen.core.task import task_from_source
from kgen.core.verify.verdict import Timing, Trial, Verdict


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ScriptedOpenAIServer = _load("scripted_openai_server",
                             Path(__file__).with_name("scripted_openai_server.py")).ScriptedOpenAIServer
hc = _load("honest_candidates", Path(__file__).parent.parent / "honest_candidates.py")

TASK = hc.make_task()


def fenced(src: str) -> str:
    return f"Here you go.\n```python\n{src}```\nGood luck."


@pytest.fixture(autouse=True)
def _isolated_home(monkeypatch, tmp_path):
    monkeypatch.setenv("KGEN_HOME", str(tmp_path / "home"))
    for var in ("KGEN_LLM_BASE_URL", "KGEN_LLM_MODEL", "KGEN_LLM_API_KEY"):
        monkeypatch.delenv(var, raising=False)


def gen_for(server, **kw):
    kw.setdefault("retry_base_s", 0.01)
    return LLMGenerator(server.base_url, "kernel-coder-1", "sk-test", **kw)


def test_designer_then_one_coder_call_per_plan():
    plans = "PLAN 1: one fused kernel, BLOCK 256\nPLAN 2: BLOCK 1024, num_warps 8\n"
    replies = [plans, fenced(hc.triton_source(2.0, 256)), fenced(hc.triton_source(2.0, 1024))]
    heard = []
    with ScriptedOpenAIServer(replies, api_key="sk-test") as server:
        gen = gen_for(server, message_sink=lambda role, content: heard.append((role, content)))
        cands = gen.initial(TASK, 2)
    assert len(cands) == 2 and all(c.origin == "llm" and "class ModelNew" in c.source for c in cands)
    assert {c.source for c in cands} == {hc.triton_source(2.0, 256).lstrip(), hc.triton_source(2.0, 1024).lstrip()}
    assert {c.params["plan"] for c in cands} == {"one fused kernel, BLOCK 256", "BLOCK 1024, num_warps 8"}
    first = server.requests[0]
    assert first["path"] == "/v1/chat/completions"
    assert first["headers"]["Authorization"] == "Bearer sk-test"
    assert first["json"]["model"] == "kernel-coder-1"
    assert [m["role"] for m in first["json"]["messages"]] == ["system", "user"]
    assert TASK.source.strip() in first["json"]["messages"][1]["content"]
    coder_prompts = [r["json"]["messages"][1]["content"] for r in server.requests[1:]]
    assert any("BLOCK 1024" in p for p in coder_prompts) and any("BLOCK 256" in p for p in coder_prompts)
    roles = [r for r, _ in heard]
    assert roles[:3] == ["designer.system", "designer.user", "designer.assistant"]
    assert roles.count("coder.assistant") == 2 and (("designer.assistant", plans) in heard)


def test_repair_sends_the_verifier_feedback():
    verdict = Verdict(status="incorrect", message="output 0 differs", atol=1e-4, rtol=1e-4,
                      trials=[Trial(seed=7, ok=False, max_abs_err=0.5, max_rel_err=0.25)], kernels_launched=1,
                      timing=Timing(kind="interpreter", candidate_ms=12.5), log_tail="warning: something")
    broken = Candidate(hc.triton_source(3.0), origin="llm")
    with ScriptedOpenAIServer([fenced(hc.triton_source(2.0))]) as server:
        fixed = gen_for(server).repair(TASK, broken, verdict)
    prompt = server.requests[0]["json"]["messages"][1]["content"]
    for needle in ("status: incorrect", "output 0 differs", "seed=7", "0.5", "interpreter", "12.500",
                   "warning: something", hc.triton_source(3.0).strip()):
        assert needle in prompt
    assert fixed.source == hc.triton_source(2.0).lstrip() and fixed.parent == broken.sha


def test_repair_without_code_gives_up():
    with ScriptedOpenAIServer(["I am not sure how to fix that."]) as server:
        assert gen_for(server).repair(TASK, Candidate("x"), Verdict(status="compile_error")) is None


def test_mutate_shows_the_best_candidates_so_far():
    best = [(Candidate(hc.triton_source(2.0, 128), origin="llm"),
             Verdict(status="correct", timing=Timing(kind="gpu", candidate_ms=0.042))),
            (Candidate(hc.triton_source(3.0, 64), origin="llm"), Verdict(status="incorrect", message="mismatch"))]
    with ScriptedOpenAIServer(["PLAN 1: bigger blocks", fenced(hc.triton_source(2.0, 512))]) as server:
        cands = gen_for(server).mutate(TASK, best, 1)
    designer = server.requests[0]["json"]["messages"][1]["content"]
    assert hc.triton_source(2.0, 128).strip() in designer and "0.042" in designer and "mismatch" in designer
    coder = server.requests[1]["json"]["messages"][1]["content"]
    assert hc.triton_source(2.0, 128).strip() in coder   # the coder starts from the best one
    assert cands[0].parent == best[0][0].sha and cands[0].params["stage"] == "mutate"


def test_transient_errors_are_retried_then_reported():
    script = [(503, {"error": {"message": "busy"}}), (429, {"error": {}}, {"Retry-After": "0"}), "PLAN 1: x",
              fenced(hc.torch_source(2.0))]
    with ScriptedOpenAIServer(script) as server:
        assert len(gen_for(server).initial(TASK, 1)) == 1
    with ScriptedOpenAIServer(lambda body: (500, {"error": {"message": "down"}})) as server:
        with pytest.raises(KgenError, match="HTTP 500"):
            gen_for(server, max_retries=1).initial(TASK, 1)
        assert len(server.requests) == 2


def test_bad_key_and_bad_replies_are_clear_errors():
    with ScriptedOpenAIServer(["never sent"], api_key="right") as server:
        with pytest.raises(KgenError, match="refused the API key") as info:
            LLMGenerator(server.base_url, "m", "wrong").initial(TASK, 1)
        assert "wrong" not in info.value.message
    with ScriptedOpenAIServer(lambda body: (200, {"choices": []})) as server:
        with pytest.raises(KgenError, match="without choices"):
            gen_for(server).initial(TASK, 1)
    with ScriptedOpenAIServer(["PLAN 1: a", "no code here, sorry"]) as server:
        with pytest.raises(KgenError, match="code block"):
            gen_for(server).initial(TASK, 1)


def test_unreachable_endpoint():
    with ScriptedOpenAIServer([]) as server:
        url = server.base_url
    with pytest.raises(Unreachable, match="cannot reach llm endpoint"):
        LLMGenerator(url, "m", retry_base_s=0.01, max_retries=1, timeout_s=5).initial(TASK, 1)


def test_configuration_comes_from_env_and_missing_is_bad_input(monkeypatch):
    with pytest.raises(BadInput, match="llm.base_url and llm.model"):
        get_generator("llm")
    monkeypatch.setenv("KGEN_LLM_BASE_URL", "ftp://nope")
    monkeypatch.setenv("KGEN_LLM_MODEL", "m")
    with pytest.raises(BadInput, match="http"):
        get_generator("llm")
    with ScriptedOpenAIServer(["PLAN 1: a", fenced(hc.torch_source(2.0))], api_key="envkey") as server:
        monkeypatch.setenv("KGEN_LLM_BASE_URL", server.base_url + "/")
        monkeypatch.setenv("KGEN_LLM_API_KEY", "envkey")
        assert len(get_generator("llm").initial(TASK, 1)) == 1


def test_prompt_helpers():
    assert prompts.split_plans("no headings, just an idea", 3) == ["no headings, just an idea"]
    assert prompts.split_plans("**Plan 1:** a\n## PLAN 2) b\nPLAN 3: c", 2) == ["a", "b"]
    assert prompts.extract_code("```\nclass ModelNew: pass\n```") == "class ModelNew: pass\n"
    assert prompts.extract_code("```python\nx = 1\n```\n```python\nclass ModelNew: 1\n```") == "class ModelNew: 1\n"
    assert prompts.extract_code("```bash\nclass ModelNew\n```") is None
    assert prompts.extract_code("plain prose") is None


def test_llm_job_end_to_end_stores_every_message(tmp_path):
    from kgen.core.evolve import run_job, validate_spec
    from kgen.core.store import Store

    script = ["PLAN 1: scale by three", fenced(hc.torch_source(3.0)), fenced(hc.torch_source(2.0))]
    store = Store(tmp_path / "k.db")
    with ScriptedOpenAIServer(script) as server:
        gen = gen_for(server)
        spec = validate_spec({"job_type": "single", "generator": "llm"})
        job = store.create_job(TASK, spec)

        async def verify(request):
            return await asyncio.to_thread(hc.in_process_verify, TASK, request.source)

        done = asyncio.run(run_job(store, job["job_id"], TASK, spec, gen, verify))
    assert done["status"] == "succeeded"
    roles = [m["role"] for m in store.messages(job["job_id"])]
    assert roles == ["designer.system", "designer.user", "designer.assistant", "coder.system", "coder.user",
                     "coder.assistant", "repair.system", "repair.user", "repair.assistant"]
    assert "status: incorrect" in store.messages(job["job_id"])[7]["content"]
    store.close()
