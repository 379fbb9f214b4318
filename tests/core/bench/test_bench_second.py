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
