"""`kgen bench` as a user runs it: real subprocesses, a temp KGEN_HOME, the real verifier and
builtin generator on a 10-task slice of benchmarks/suite at its small shapes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kgen.cli import main

ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / "benchmarks" / "suite"
CANDIDATES = ROOT / "tests" / "core" / "verify" / "candidates"
# tasks the generator cannot solve yet (the suite's own are all solved)
UNSOLVED = Path(__file__).resolve().parent / "unsolved"
# Quick at small shapes, every category but attention, and one the generator cannot solve.
SLICE = ["activation/relu", "activation/silu", "norm/softmax", "reduction/sum_dim", "matmul/mm_odd_shapes",
         "pooling/maxpool2d", "scan/cumsum", "special/lgamma", "loss/mse_loss", "conv/conv1d"]


def _env(home: Path) -> dict:
    e = {k: v for k, v in os.environ.items() if not k.startswith("KGEN_")}
    e.update(KGEN_HOME=str(home), NO_COLOR="1", COLUMNS="200", TRITON_INTERPRET="1")
    return e


def kgen(args, home, cwd, timeout=600):
    return subprocess.run([sys.executable, "-m", "kgen", *map(str, args)], env=_env(home), cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def one_error_line(proc) -> str:
    lines = [l for l in proc.stderr.splitlines() if l.startswith("kgen: error:")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def make_slice(dest: Path, names=SLICE) -> Path:
    for name in names:
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        src = UNSOLVED / f"{name}.py"
        shutil.copy(src if src.exists() else SUITE / f"{name}.py", dest / f"{name}.py")
    return dest


@pytest.fixture(scope="module")
def slice_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("bench-slice")
    tasks = make_slice(base / "tasks")
    proc = kgen(["bench", tasks, "--small", "--out", base / "out"], base / "home", base)
    return base, proc


@pytest.mark.slow
def test_slice_writes_four_files_and_exit_1_for_the_unsolved_task(slice_run):
    base, proc = slice_run
    assert proc.returncode == 1, proc.stderr
    assert "1 of 10 task(s) got no correct kernel" in one_error_line(proc)
    assert sorted(p.name for p in (base / "out").iterdir()) == ["results.csv", "results.json", "results.md",
                                                                  "results.png"]
    assert "ETA" in proc.stderr or "special/lgamma: rejected" in proc.stderr
    assert "all" in proc.stdout and "correct" in proc.stdout


@pytest.mark.slow
def test_slice_json_schema(slice_run):
    base, _ = slice_run
    doc = json.loads((base / "out" / "results.json").read_text())
    from kgen.core.bench.report import TOP_KEYS
    from kgen.core.bench.runner import RESULT_KEYS

    assert list(doc) == list(TOP_KEYS)
    assert doc["schema_version"] == 1 and doc["kind"] == "kgen-bench" and doc["complete"] is True
    assert doc["gpu"] is False and isinstance(doc["bench_id"], str) and isinstance(doc["finished_at"], float)
    for key in ("python", "torch", "triton", "kgen", "platform", "cpu_count", "gpus", "driver"):
        assert key in doc["machine"]
    assert isinstance(doc["machine"]["gpus"], list) and doc["settings"]["small"] is True
    overall = doc["summary"]["overall"]
    assert overall["tasks"] == 10 and overall["correct"] == 9 and overall["correct_pct"] == 90.0
    assert isinstance(overall["pure_pct"], float) and isinstance(overall["launches_mean"], float)
    assert set(doc["summary"]["categories"]) == {n.split("/")[0] for n in SLICE}
    types = {"name": str, "category": str, "status": str, "pure": bool, "kernels_launched": int, "small": bool,
             "torch_ops": list, "flagged": list, "task_id": str, "wall_s": float}
    for t in doc["tasks"]:
        assert list(t) == list(RESULT_KEYS)
        for k, ty in types.items():
            assert isinstance(t[k], ty), (t["name"], k, t[k])
        assert t["speedup_eager"] is None and t["speedup_compile"] is None  # never on the CPU
    by = {f"{t['category']}/{t['name']}": t for t in doc["tasks"]}
    assert by["special/lgamma"]["status"] == "rejected" and by["activation/relu"]["pure"] is True
    assert by["activation/relu"]["timing_kind"] == "interpreter"
    md = (base / "out" / "results.md").read_text()
    assert "| **all** | 10 | 90% |" in md
    csv_lines = (base / "out" / "results.csv").read_text().splitlines()
    assert len(csv_lines) == 11 and csv_lines[0].startswith("name,category,path")


@pytest.mark.slow
def test_slice_records_traffic_per_task_and_its_geomeans(slice_run):
    base, _ = slice_run
    doc = json.loads((base / "out" / "results.json").read_text())
    by = {f"{t['category']}/{t['name']}": t for t in doc["tasks"]}
    for key, t in by.items():
        if t["status"] != "correct":  # what its verdict measured (a rejected one: no launch, no bytes)
            assert not t["traffic_raw"] and not t["traffic_launches"], key
            continue
        assert t["traffic_raw"] >= t["traffic_unique"] > 0 and t["traffic_minimum"] > 0, key
        assert t["unique_ratio"] == pytest.approx(t["traffic_unique"] / t["traffic_minimum"], rel=1e-3), key
        assert t["raw_ratio"] == pytest.approx(t["traffic_raw"] / t["traffic_minimum"], rel=1e-3), key
        assert t["traffic_launches"] == t["launches_per_call"] and t["est_us"] > 0, key
        assert t["cost_model"].startswith("roofline-"), key
    # an elementwise op is memory-bound and moves exactly its minimum; a matmul is not memory-bound
    assert by["activation/relu"]["memory_bound"] is True and by["activation/relu"]["raw_ratio"] == 1.0
    assert by["matmul/mm_odd_shapes"]["memory_bound"] is False and by["matmul/mm_odd_shapes"]["operand_reread"] >= 1.0
    overall = doc["summary"]["overall"]
    assert overall["traffic_tasks"] == 9 and overall["geomean_unique_ratio"] >= 1.0
    assert overall["geomean_raw_ratio_memory_bound"] >= 1.0 and overall["geomean_operand_reread"] >= 1.0
    md = (base / "out" / "results.md").read_text()
    assert "unique/min" in md and "raw/min (memory-bound)" in md and "re-read (matmul/conv)" in md
    header = (base / "out" / "results.csv").read_text().splitlines()[0].split(",")
    assert {"traffic_raw", "traffic_unique", "traffic_minimum", "unique_ratio", "raw_ratio", "traffic_launches",
            "est_us"} <= set(header)


@pytest.mark.slow
def test_slice_png_is_a_real_plot(slice_run):
    base, _ = slice_run
    mpimg = pytest.importorskip("matplotlib.image")
    img = mpimg.imread(str(base / "out" / "results.png"))
    height, width = img.shape[:2]
    assert width >= 600 and height >= 300
    assert float(img[..., :3].std()) > 0.05  # bars, text and axes, not a blank canvas
    # some of the bar colours are drawn
    assert ((abs(img[..., 0] - 0x4c / 255) < 0.02) & (abs(img[..., 2] - 0xb0 / 255) < 0.02)).sum() > 500


@pytest.mark.slow
def test_resume_of_a_finished_run_redoes_nothing_and_compare_prints_changes(slice_run):
    base, _ = slice_run
    old = json.loads((base / "out" / "results.json").read_text())
    for t in old["tasks"]:  # pretend an earlier run failed relu and solved lgamma
        if t["name"] == "relu":
            t["status"] = "incorrect"
        if t["name"] == "lgamma":
            t["status"] = "correct"
    (base / "old.json").write_text(json.dumps(old))
    t0 = time.monotonic()
    proc = kgen(["bench", "--resume", "--out", base / "out", "--compare", base / "old.json"], base / "home", base)
    assert proc.returncode == 1
    assert "10 tasks (10 already done)" in proc.stderr
    assert "1 better, 1 worse" in proc.stdout
    assert "better activation/relu: incorrect -> correct" in proc.stdout
    assert "worse  special/lgamma: correct -> rejected" in proc.stdout
    assert time.monotonic() - t0 < 60


def test_candidates_get_the_same_verdicts_as_kgen_verify(tmp_path, capsys):
    """A folder mixing correct, wrong and cheating kernels: bench's verdict for each equals
    `kgen verify`'s on the same pair."""
    names = ["good", "memoise", "wrong_shape", "torch_only", "numpy_math", "partial_fallback", "patch_compare"]
    tasks, cands = tmp_path / "tasks" / "relu_add", tmp_path / "cands"
    tasks.mkdir(parents=True)
    cands.mkdir()
    for n in names:
        shutil.copy(CANDIDATES / "task_relu_add.py", tasks / f"{n}.py")
        shutil.copy(CANDIDATES / f"{n}.py", cands / f"{n}.py")
    shutil.copy(CANDIDATES / "task_relu_add.py", tasks / "no_kernel.py")  # no file in --candidates
    proc = kgen(["bench", tmp_path / "tasks", "--candidates", cands, "--out", tmp_path / "out", "--json"],
                tmp_path / "home", tmp_path)
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    by = {t["name"]: t for t in doc["tasks"]}
    assert by["no_kernel"]["status"] == "missing"
    statuses = set()
    for n in names:  # `kgen verify` in this process (one warm runner pool for all seven)
        with pytest.raises(SystemExit) as exit_:
            main(["verify", str(tasks / f"{n}.py"), str(cands / f"{n}.py"), "--json"])
        verdict = json.loads(capsys.readouterr().out)
        got = by[n]
        assert (got["status"], got["pure"], got["kernels_launched"]) == (
            verdict["status"], verdict["pure"], verdict["kernels_launched"]), n
        assert got["task_id"] == verdict["task_id"] and got["candidate_sha"] == verdict["candidate_sha"]
        assert (exit_.value.code == 0) == (got["status"] == "correct")
        statuses.add(got["status"])
    assert {"correct", "incorrect", "rejected"} <= statuses
    assert by["good"]["status"] == "correct" and by["memoise"]["status"] == "incorrect"
    assert by["torch_only"]["status"] == "rejected" and by["patch_compare"]["status"] != "correct"


def _results(db: Path) -> list[tuple[str, float]]:
    if not db.exists():
        return []
    with sqlite3.connect(db, timeout=10) as conn:
        try:
            return conn.execute("SELECT task_key, created_at FROM bench_results ORDER BY created_at").fetchall()
        except sqlite3.OperationalError:  # not migrated yet
            return []


@pytest.mark.slow
def test_kill_9_mid_run_then_resume_keeps_finished_tasks(tmp_path):
    names = ["activation/relu", "activation/sigmoid", "conv/conv1d", "reduction/mean_dim"]
    tasks = make_slice(tmp_path / "tasks", names)
    home, out = tmp_path / "home", tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "kgen", "bench", str(tasks), "--small", "--out", str(out)],
                            env=_env(home), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    db = home / "kgen.db"
    deadline = time.monotonic() + 300
    try:
        while not _results(db) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the bench and its runner children, as kill -9 of the group
        proc.wait(timeout=60)
    before = dict(_results(db))
    assert 1 <= len(before) < len(names), "the kill came too late to test resuming"
    with sqlite3.connect(db) as conn:
        jobs_before = conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
    done = kgen(["bench", "--resume", "--out", out], home, tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"{len(names)} tasks ({len(before)} already done)" in done.stderr
    after = dict(_results(db))
    assert len(after) == len(names)
    assert all(after[k] == v for k, v in before.items())  # finished results were not redone
    for key in before:
        assert f"{key}:" not in done.stderr
    with sqlite3.connect(db) as conn:
        jobs_after = conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
    assert jobs_after - jobs_before <= len(names) - len(before) + 1  # +1: the one killed mid-job
    doc = json.loads((out / "results.json").read_text())
    assert doc["complete"] and [t["name"] for t in doc["tasks"]] == ["relu", "sigmoid", "conv1d", "mean_dim"]


@pytest.mark.parametrize("args, words", [
    (["nope/"], "no such task file or folder"),
    (["{tasks}", "--backend", "tpu"], "--backend must be cpu or cuda"),
    (["{tasks}", "--generator", "magic"], "--generator must be one of"),
    (["{tasks}", "--job-type", "many"], "--job-type must be single or evolve"),
    (["{tasks}", "--compile-mode", "fastest"], "--compile-mode must be one of"),
    (["{tasks}", "--compile-mode", "max-autotune"], "needs a local --backend cuda"),
    (["{tasks}", "--compare", "{tmp}/missing.json"], "no such file"),
    (["{tasks}", "--candidates", "{tmp}/nodir"], "not a folder"),
    (["{tasks}", "--node", "http://127.0.0.1:1", "--gateway", "http://127.0.0.1:2"], "exclude each other"),
    (["{tasks}", "--token", "t"], "--token only applies"),
    (["{tasks}", "--timeout", "0"], "--timeout must be > 0"),
    (["{tasks}", "--time-budget", "-1"], "--time-budget must be > 0"),
    (["--resume", "--out", "{tmp}/never"], "no bench run wrote to"),
    (["{tmp}/empty"], "holds no task files"),
    (["{tmp}/bad.py"], "missing Model"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, args, words):
    tasks = make_slice(tmp_path / "tasks", ["activation/relu"])
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.py").write_text("import torch\n")
    argv = [a.format(tasks=tasks, tmp=tmp_path) for a in args]
    proc = kgen(["bench", *argv], tmp_path / "home", tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert words in one_error_line(proc)


def test_cuda_without_a_gpu_exits_2(tmp_path):
    tasks = make_slice(tmp_path / "tasks", ["activation/relu"])
    proc = kgen(["bench", tasks, "--backend", "cuda"], tmp_path / "home", tmp_path, timeout=120)
    assert proc.returncode == 2 and "needs a CUDA GPU" in one_error_line(proc)


@pytest.mark.slow
def test_ctrl_c_writes_partial_results_and_resume_finishes(tmp_path):
    names = ["activation/relu", "activation/sigmoid", "reduction/mean_dim"]
    tasks = make_slice(tmp_path / "tasks", names)
    home, out = tmp_path / "home", tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "kgen", "bench", str(tasks), "--small", "--out", str(out)],
                            env=_env(home), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    deadline = time.monotonic() + 300
    while not _results(home / "kgen.db") and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends: the whole foreground group
    try:
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    finished = len(_results(home / "kgen.db"))
    assert finished < len(names), "the interrupt came too late to test it"
    assert proc.returncode == 130, stderr
    assert "continue with: kgen bench --resume" in stderr
    partial = json.loads((out / "results.json").read_text())
    assert partial["complete"] is False and len(partial["tasks"]) == finished
    done = kgen(["bench", "--resume", "--out", out], home, tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "results.json").read_text())["complete"] is True


def test_time_budget_stops_starting_tasks_and_resume_finishes(tmp_path):
    tasks = make_slice(tmp_path / "tasks", ["activation/relu", "activation/sigmoid"])
    home, out = tmp_path / "home", tmp_path / "out"
    first = kgen(["bench", tasks, "--small", "--out", out, "--time-budget", "0.001"], home, tmp_path)
    assert first.returncode == 1
    # the first task starts at once (0 s elapsed); the second would start after the budget
    assert "time budget of 0.001s reached after 1 of 2 tasks" in one_error_line(first)
    doc = json.loads((out / "results.json").read_text())
    assert doc["complete"] is False and [t["name"] for t in doc["tasks"]] == ["relu"]
    done = kgen(["bench", "--resume", "--out", out], home, tmp_path)
    assert done.returncode == 0, done.stderr
    assert [t["status"] for t in json.loads((out / "results.json").read_text())["tasks"]] == ["correct", "correct"]
