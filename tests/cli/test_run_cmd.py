"""`kgen run` as a user runs it: a real subprocess, a temp KGEN_HOME, real verifier."""

from __future__ import annotations

import importlib.util
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hc = _load("honest_candidates", ROOT / "tests" / "core" / "honest_candidates.py")
ScriptedOpenAIServer = _load("scripted_openai_server",
                             ROOT / "tests" / "core" / "generate" / "scripted_openai_server.py").ScriptedOpenAIServer


@pytest.fixture
def env(tmp_path):
    e = {k: v for k, v in os.environ.items() if not k.startswith("KGEN_")}
    e.update(KGEN_HOME=str(tmp_path / "home"), NO_COLOR="1", COLUMNS="200")
    return e


@pytest.fixture
def task_file(tmp_path):
    path = tmp_path / "axpy.py"
    path.write_text(hc.TASK_SRC)
    return path


def kgen(args, env, cwd, timeout=240):
    return subprocess.run([sys.executable, "-m", "kgen", *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def one_error_line(proc) -> str:
    lines = [l for l in proc.stderr.splitlines() if l.startswith("kgen: error:")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_bad_task_files_exit_2(tmp_path, env):
    bad = tmp_path / "bad.py"
    bad.write_text("class Model(:\n")
    proc = kgen(["run", str(bad)], env, tmp_path)
    assert proc.returncode == 2 and "syntax error" in one_error_line(proc)
    proc = kgen(["run", str(tmp_path / "missing.py")], env, tmp_path)
    assert proc.returncode == 2 and "not found" in one_error_line(proc)
    nomodel = tmp_path / "nomodel.py"
    nomodel.write_text("def get_inputs():\n    return []\n")
    proc = kgen(["run", str(nomodel)], env, tmp_path)
    assert proc.returncode == 2 and "missing Model" in one_error_line(proc)


def test_model_that_fails_on_its_inputs_exits_2(tmp_path, env):
    broken = tmp_path / "shapes.py"
    broken.write_text(textwrap.dedent("""
        import torch
        class Model(torch.nn.Module):
            def forward(self, x, y):
                return x @ y
        def get_inputs():
            return [torch.randn(3, 4), torch.randn(5, 6)]
        def get_init_inputs():
            return []
    """))
    llm = {**env, "KGEN_LLM_BASE_URL": "http://127.0.0.1:9/v1", "KGEN_LLM_MODEL": "never-called"}
    proc = kgen(["run", str(broken), "--generator", "llm"], llm, tmp_path)
    assert proc.returncode == 2, proc.stderr
    one_error_line(proc)


@pytest.mark.parametrize("args, words", [
    (["--job-type", "evolve", "--max-rounds", "0"], "max_rounds"),
    (["--job-type", "evolve", "--parallel-num", "1000"], "parallel_num"),
    (["--job-type", "sometimes"], "job_type"),
    (["--generator", "magic"], "--generator"),
    (["--generator", "llm"], "llm.base_url and llm.model"),
    (["--device", "lots"], "slot count"),
    (["-o", "."], "is a directory"),
])
def test_bad_options_exit_2(task_file, env, tmp_path, args, words):
    proc = kgen(["run", str(task_file), *args], env, tmp_path)
    assert proc.returncode == 2 and words in one_error_line(proc)


def test_cuda_without_a_gpu_exits_2(task_file, env, tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    proc = kgen(["run", str(task_file), "--backend", "cuda"], env, tmp_path)
    assert proc.returncode == 2 and "needs a CUDA GPU" in one_error_line(proc)


def _llm_env(env, server):
    return {**env, "KGEN_LLM_BASE_URL": server.base_url, "KGEN_LLM_MODEL": "scripted", "KGEN_LLM_API_KEY": "k"}


def fenced(src):
    return f"```python\n{src}```"


@pytest.mark.slow
def test_llm_single_job_repairs_then_writes_the_kernel(task_file, env, tmp_path):
    script = ["PLAN 1: one fused kernel", fenced(hc.triton_source(3.0)), fenced(hc.triton_source(2.0, 128))]
    out = tmp_path / "best" / "kernel.py"
    with ScriptedOpenAIServer(script, api_key="k") as server:
        proc = kgen(["run", str(task_file), "--generator", "llm", "-o", str(out), "--json"],
                    _llm_env(env, server), tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert list(result) == ["job_id", "status", "best", "candidates"]
    assert result["status"] == "succeeded" and result["best"]["path"] == str(out)
    assert out.read_text() == hc.triton_source(2.0, 128).lstrip()
    assert [c["verdict"]["status"] for c in result["candidates"]] == ["incorrect", "correct"]
    assert "candidate" in proc.stderr   # progress lines on stderr
    # round numbers count from 1, indexes within a round from 0; never the float-like "1.0"
    assert "(round 1, #0): incorrect" in proc.stderr and "(round 2, #0): correct" in proc.stderr, proc.stderr
    db = sqlite3.connect(tmp_path / "home" / "kgen.db")
    assert db.execute("SELECT status FROM jobs WHERE job_id = ?", (result["job_id"],)).fetchone()[0] == "succeeded"
    assert db.execute("SELECT COUNT(*) FROM messages WHERE job_id = ?", (result["job_id"],)).fetchone()[0] == 9


@pytest.mark.slow
def test_no_correct_kernel_exits_1_with_a_table(task_file, env, tmp_path):
    with ScriptedOpenAIServer(lambda body: "PLAN 1: x" if "PLAN" in body["messages"][1]["content"]
                              else fenced(hc.torch_source(3.0))) as server:
        proc = kgen(["run", str(task_file), "--generator", "llm", "--max-repairs", "0"], _llm_env(env, server),
                    tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "no correct kernel" in proc.stdout and "status" in proc.stdout
    header = next(line for line in proc.stdout.splitlines() if "candidate" in line and "status" in line)
    assert [cell.strip() for cell in header.strip(" ┃│").split("┃")][:4] == ["candidate", "round", "#", "status"], \
        proc.stdout
    assert "failed" in one_error_line(proc)
    assert not (tmp_path / "axpy_kgen.py").exists()


@pytest.mark.slow
def test_builtin_example_end_to_end(env, tmp_path):
    builtin = ROOT / "kgen" / "core" / "generate" / "builtin" / "__init__.py"
    if not builtin.exists():
        pytest.skip("the builtin generator is not in this tree yet")
    proc = kgen(["run", str(ROOT / "examples" / "elementwise.py")], env, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "elementwise_kgen.py").exists()
    assert "interpreter" in proc.stdout and "correct" in proc.stdout


@pytest.mark.slow
def test_ctrl_c_cancels_the_job_without_waiting_for_a_hung_candidate(task_file, env, tmp_path):
    import signal
    import time

    hang = hc.torch_source(2.0).replace("return x", "import time; time.sleep(120); return x")
    db_path = tmp_path / "home" / "kgen.db"
    with ScriptedOpenAIServer(["PLAN 1: a", fenced(hang)]) as server:
        proc = subprocess.Popen([sys.executable, "-m", "kgen", "run", str(task_file), "--generator", "llm"],
                                env=_llm_env(env, server), cwd=tmp_path, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            time.sleep(0.2)
            try:
                if sqlite3.connect(db_path).execute("SELECT COUNT(*) FROM candidates").fetchone()[0]:
                    break
            except sqlite3.Error:
                pass
        time.sleep(1.0)   # let verification start
        proc.send_signal(signal.SIGINT)
        started = time.monotonic()
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert time.monotonic() - started < 30
    assert "interrupted" in stderr
    assert sqlite3.connect(db_path).execute("SELECT status FROM jobs").fetchall() == [("cancelled",)]
