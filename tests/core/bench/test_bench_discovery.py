"""Which tasks a bench runs: folders, categories, the SMALL variant, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from kgen.core.bench.discovery import discover, has_small, small_variant
from kgen.core.errors import BadInput, TaskError
from kgen.core.task import check_task, task_from_source

SUITE = Path(__file__).resolve().parents[3] / "benchmarks" / "suite"

TASK = '''import torch
import torch.nn as nn

n = 1000
SMALL = {"n": 7}


class Model(nn.Module):
    def forward(self, x):
        return x * 2


def get_inputs():
    return [torch.randn(n)]


def get_init_inputs():
    return []
'''


def test_categories_from_folder_or_comment_and_sorted(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "a").mkdir()
    (tmp_path / "b" / "two.py").write_text(TASK)
    (tmp_path / "a" / "one.py").write_text("# kgen: category special\n" + TASK)
    (tmp_path / "a" / "_helper.py").write_text("x = 1\n")  # private files are not tasks
    tasks = discover([tmp_path])
    assert [(t.category, t.name) for t in tasks] == [("b", "two"), ("special", "one")]
    assert not any(t.small for t in tasks)


def test_small_variant_is_a_task_with_the_small_shapes(tmp_path, runner_pool):
    (tmp_path / "t.py").write_text(TASK)
    [t] = discover([tmp_path / "t.py"], small=True)
    assert t.small and t.source != TASK and has_small(TASK)
    info = check_task(task_from_source(t.source, "t"), pool=runner_pool)
    assert info["outputs"][0]["shape"] == [7]
    assert small_variant(TASK.replace("SMALL = ", "BIG = ")) is None


def test_bad_input(tmp_path):
    with pytest.raises(BadInput, match="no such task file"):
        discover([tmp_path / "nope.py"])
    with pytest.raises(BadInput, match="holds no task files"):
        discover([tmp_path])
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    (tmp_path / "x" / "same.py").write_text(TASK)
    (tmp_path / "y" / "same.py").write_text(TASK)
    with pytest.raises(BadInput, match="two tasks are named 'same'"):
        discover([tmp_path])
    (tmp_path / "bad.py").write_text("import torch\n")
    with pytest.raises(TaskError, match="missing Model"):
        discover([tmp_path / "bad.py"])


def test_the_suite_has_80_tasks_in_10_categories_all_with_small_shapes():
    tasks = discover([SUITE], small=True)
    cats = {t.category for t in tasks}
    assert len(tasks) >= 80
    assert {"matmul", "activation", "norm", "pooling", "reduction", "conv", "scan", "loss", "attention",
            "fused"} <= cats
    assert all(t.small for t in tasks)


def test_only_patterns_pick_tasks_by_category_and_name():
    picked = discover([SUITE], only=["conv/conv3d*", "*/relu"])
    assert [t.key for t in picked] == ["activation/relu", "conv/conv3d", "conv/conv3d_strided"]
    with pytest.raises(BadInput, match="no task matches"):
        discover([SUITE], only=["nothing/*"])
