"""The second-shape variant of a task, and the second_shape column of the bench reports."""

from __future__ import annotations

import csv
import io

from kgen.core.bench.report import build_document, render_csv, render_markdown
from kgen.core.bench.runner import RESULT_KEYS
from kgen.core.bench.second import has_second, second_variant
from kgen.core.bench.summary import summarize

TASK = '''
import torch
batch_size = 4
SMALL = {"batch_size": 2}
SECOND = {"batch_size": 3}
def get_inputs():
    return [torch.randn(batch_size, 5)]
'''


def test_second_variant_applies_second_after_the_source():
    assert has_second(TASK) and not has_second(TASK.replace('SECOND = {"batch_size": 3}', "SECOND = {}"))
    assert second_variant("x = 1\n") is None
    ns: dict = {}
    exec(compile(second_variant(TASK + "\nglobals().update(SMALL)\n"), "<t>", "exec"), ns)
    assert ns["batch_size"] == 3 and tuple(ns["get_inputs"]()[0].shape) == (3, 5)


def _res(name, second, status="correct"):
    r = {k: None for k in RESULT_KEYS}
    r.update(name=name, category="c", status=status, pure=True, torch_ops=[], flagged=[], message="",
             kernels_launched=1, launches_per_call=1.0, second_shape=second)
    return r


def test_reports_count_and_explain_second_shape_failures():
    results = [_res("a", "pass"), _res("b", "fail: ModelNew was generated for x.shape[0] == 1; got x.shape[0]=3"),
               _res("c", None, status="incorrect")]
    s = summarize(results, gpu=False)["overall"]
    assert (s["second_shape_pass"], s["second_shape_checked"]) == (1, 2)
    run = {"bench_id": "b" * 32, "created_at": 1.0, "settings": {"backend": "cpu", "generator": "builtin",
                                                                  "job_type": "single", "small": True}}
    d = build_document(run, {"platform": "p"}, results, len(results))
    md = render_markdown(d)
    assert "second shape" in md and "| 1/2 |" in md
    assert "## Not passing at the second shape" in md and "c/b: fail: ModelNew was generated for x.shape[0] == 1" in md
    rows = list(csv.DictReader(io.StringIO(render_csv(d))))
    assert [r["second_shape"] for r in rows][:1] == ["pass"]


def test_every_suite_task_has_a_second_shape_with_the_same_constructor_arguments():
    from pathlib import Path

    from kgen.core.bench.discovery import small_variant

    suite = Path(__file__).resolve().parents[3] / "benchmarks" / "suite"
    files = sorted(suite.glob("*/*.py"))
    assert len(files) >= 100
    for f in files:
        small = small_variant(f.read_text())
        assert small is not None and has_second(small), f
        at_small: dict = {}
        exec(compile(small, str(f), "exec"), at_small)
        at_second: dict = {}
        exec(compile(second_variant(small), str(f), "exec"), at_second)
        assert at_second["get_init_inputs"]() == at_small["get_init_inputs"](), f
        changed = {k for k in at_second["SECOND"] if at_second[k] != at_small[k]}
        assert changed, f"{f}: SECOND changes nothing"
