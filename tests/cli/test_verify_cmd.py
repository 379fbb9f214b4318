"""`kgen verify`: output modes and exit codes (0 correct, 1 other verdict, 2 bad input)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kgen.cli import main

CANDIDATES = Path(__file__).resolve().parents[1] / "core" / "verify" / "candidates"
TASK = str(CANDIDATES / "task_relu_add.py")


def run(capsys, *args):
    with pytest.raises(SystemExit) as exc:
        main(["verify", *args])
    cap = capsys.readouterr()
    return exc.value.code, cap.out, cap.err


def test_correct_candidate_json_exit_0(capsys):
    code, out, _ = run(capsys, TASK, str(CANDIDATES / "good.py"), "--json")
    assert code == 0
    verdict = json.loads(out)
    assert verdict["status"] == "correct" and verdict["kernels_launched"] == 3
    assert verdict["timing"]["kind"] == "interpreter"
    assert verdict["traffic"]["raw"] == verdict["traffic"]["minimum"] == 3600
    assert verdict["cost"]["model"] == "roofline-h100" and verdict["cost"]["est_us"] > 0


def test_incorrect_candidate_human_summary_exit_1(capsys):
    code, out, _ = run(capsys, TASK, str(CANDIDATES / "memoise.py"))
    assert code == 1
    assert out.startswith("incorrect")
    assert "seed" in out and "1000" in out and "speedup" not in out


def test_correct_candidate_human_summary_never_says_speedup(capsys):
    code, out, _ = run(capsys, TASK, str(CANDIDATES / "good.py"))
    assert code == 0 and out.startswith("correct")
    assert "interpreter wall time" in out and "speedup" not in out
    assert "unique/min 1.00x, raw/min 1.00x, 1 launch(es)" in out
    assert "model cost (roofline-h100, a model, not a measurement)" in out


def test_rejected_candidate_and_allow_op(capsys):
    code, out, _ = run(capsys, TASK, str(CANDIDATES / "partial_fallback.py"), "--json")
    assert code == 1 and json.loads(out)["status"] == "rejected"
    code, out, _ = run(capsys, TASK, str(CANDIDATES / "partial_fallback.py"), "--json", "--allow-op", "aten.add.Tensor")
    assert code == 0 and json.loads(out)["pure"] is False


@pytest.mark.parametrize("args, message", [
    (["missing_task.py", str(CANDIDATES / "good.py")], "task file not found"),
    ([TASK, "missing_candidate.py"], "candidate file not found"),
    ([str(CANDIDATES / "good.py"), str(CANDIDATES / "good.py")], "missing Model"),
    ([TASK, str(CANDIDATES / "good.py"), "--device", "tpu:0"], "bad device"),
    ([TASK, str(CANDIDATES / "good.py"), "--timeout", "0"], "--timeout must be > 0"),
])
def test_bad_input_exit_2_one_line(capsys, args, message):
    code, out, err = run(capsys, *args)
    assert code == 2
    assert message in err and "Traceback" not in err
    assert err.count("\n") == 1 and out == ""


def test_cuda_without_gpu_is_bad_input(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    code, _, err = run(capsys, TASK, str(CANDIDATES / "good.py"), "--device", "cuda:0")
    assert code == 2 and "no CUDA GPU" in err


def test_end_to_end_subprocess_bad_task_exit_2(tmp_path):
    bad = tmp_path / "bad_task.py"
    bad.write_text(Path(TASK).read_text().replace("return torch.relu(x) + y", "return x @ y @ y"))
    proc = subprocess.run([sys.executable, "-m", "kgen", "verify", str(bad), str(CANDIDATES / "good.py")],
                          capture_output=True, text=True, timeout=240, env=dict(os.environ))
    assert proc.returncode == 2, proc.stderr
    assert "Model failed on its own inputs" in proc.stderr and "Traceback" not in proc.stderr
