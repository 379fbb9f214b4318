"""Task loading: static checks, identity, and the sandboxed check that Model runs."""

from __future__ import annotations

import hashlib

import pytest

from kgen.core.errors import BadInput, TaskError
from kgen.core.task import Task, check_task, load_task, task_from_source

GOOD = """
import torch
import torch.nn as nn

class Model(nn.Module):
    def __init__(self, scale):
        super().__init__()
        self.scale = scale

    def forward(self, x):
        return x * self.scale, x.sum(dim=1)

def get_inputs():
    return [torch.randn(4, 8)]

def get_init_inputs():
    return [3.0]
"""


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_load_task_identity_is_sha256_of_source(tmp_path):
    t = load_task(write(tmp_path, "scale_sum.py", GOOD))
    assert isinstance(t, Task)
    assert t.id == hashlib.sha256(GOOD.encode()).hexdigest()
    assert t.op_name == "scale_sum" and t.path.endswith("scale_sum.py") and t.source == GOOD
    assert task_from_source(GOOD).id == t.id
    assert task_from_source(GOOD, op_name="x").op_name == "x"


def test_missing_file_is_bad_input(tmp_path):
    with pytest.raises(BadInput, match="not found"):
        load_task(tmp_path / "nope.py")
    with pytest.raises(BadInput, match="not a file"):
        load_task(tmp_path)


def test_syntax_error_names_the_line(tmp_path):
    with pytest.raises(TaskError, match="syntax error at line 3"):
        load_task(write(tmp_path, "bad.py", "import torch\n\nclass Model(:\n    pass\n"))


@pytest.mark.parametrize("drop, missing", [
    ("def get_inputs():\n    return [torch.randn(4, 8)]\n", "get_inputs"),
    ("def get_init_inputs():\n    return [3.0]\n", "get_init_inputs"),
])
def test_missing_names_are_listed(drop, missing):
    with pytest.raises(TaskError, match=f"missing {missing}"):
        task_from_source(GOOD.replace(drop, ""))
    with pytest.raises(TaskError, match="missing Model"):
        task_from_source(GOOD.replace("class Model", "class Other"))


def test_check_task_reports_output_specs(runner_pool):
    specs = check_task(task_from_source(GOOD), pool=runner_pool)
    assert specs["structure"] == "tuple"
    assert specs["outputs"] == [{"shape": [4, 8], "dtype": "float32"}, {"shape": [4], "dtype": "float32"}]


@pytest.mark.parametrize("forward, reason", [
    ("return x @ x", "Model failed on its own inputs"),
    ("return float(x.sum())", "non-tensor output"),
    ("return {'y': x}", "non-tensor output"),
    ("return [x, 3]", "non-tensor output"),
])
def test_model_that_fails_on_its_inputs_is_rejected(runner_pool, forward, reason):
    src = GOOD.replace("return x * self.scale, x.sum(dim=1)", forward)
    with pytest.raises(TaskError, match=reason):
        check_task(task_from_source(src), pool=runner_pool)


def test_task_that_cannot_be_built_is_rejected(runner_pool):
    src = GOOD.replace("return [3.0]", "return [1, 2, 3]")
    with pytest.raises(TaskError, match="building Model"):
        check_task(task_from_source(src), pool=runner_pool)


def test_hanging_task_is_rejected_with_a_timeout(runner_pool):
    src = GOOD.replace("return x * self.scale, x.sum(dim=1)", "while True:\n            pass")
    with pytest.raises(TaskError, match="within 2 s"):
        check_task(task_from_source(src), timeout_s=2, pool=runner_pool)
