"""results.json/md/csv rendering and --compare, on constructed documents."""

from __future__ import annotations

import csv
import io
import json

import pytest

from kgen.core.bench.report import (SCHEMA_VERSION, build_document, compare, load_results, render_compare,
                                    render_csv, render_markdown)
from kgen.core.bench.runner import RESULT_KEYS
from kgen.core.errors import BadInput


def res(name, status="correct", se=None, sc=None, pure=True, cat="c"):
    r = {k: None for k in RESULT_KEYS}
    r.update(name=name, category=cat, status=status, pure=pure, speedup_eager=se, speedup_compile=sc,
             torch_ops=[], flagged=["eager"] if (se or 0) > 10 else [], message="", kernels_launched=3,
             launches_per_call=1.0, timing_kind="gpu" if se else "interpreter")
    return r


def doc(results, backend="cuda"):
    run = {"bench_id": "b" * 32, "created_at": 1.0, "settings": {"backend": backend, "generator": "builtin",
                                                                  "job_type": "single", "small": False}}
    return build_document(run, {"gpus": [{"name": "Test GPU"}], "platform": "p"}, results, len(results))


def test_document_keys_and_markdown_csv():
    d = doc([res("a", se=2.0, sc=1.2), res("b", status="incorrect"), res("c", se=20.0, sc=11.0)])
    assert d["schema_version"] == SCHEMA_VERSION and d["gpu"] and d["complete"]
    assert set(d["tasks"][0]) == set(RESULT_KEYS)
    md = render_markdown(d)
    assert "fast_1.5 eager" in md and "Flagged for review" in md and "c/c: vs eager 20.0x" in md
    assert "c/b: incorrect" in md
    rows = list(csv.reader(io.StringIO(render_csv(d))))
    assert rows[0] == list(RESULT_KEYS) and len(rows) == 4
    cpu = doc([res("a"), res("b", status="rejected")], backend="cpu")
    assert not cpu["gpu"] and "fast_" not in render_markdown(cpu) and "not speedups" in render_markdown(cpu)


def test_compare_status_purity_and_speedup_changes():
    old = doc([res("a", se=2.0), res("b", status="incorrect"), res("c", se=1.0), res("d", pure=False), res("gone")])
    new = doc([res("a", se=1.0), res("b", se=1.5), res("c", se=1.05), res("d", pure=True), res("added")])
    diff = compare(old, new)
    assert [e["task"] for e in diff["better"]] == ["c/b", "c/d"]
    assert [e["task"] for e in diff["worse"]] == ["c/a"]
    assert diff["worse"][0]["changes"] == ["vs eager 2.00x -> 1.00x"]
    assert diff["better"][0]["changes"][0] == "incorrect -> correct"
    assert diff["unchanged"] == 1  # c: a 5% speedup change is noise
    assert diff["only_old"] == ["c/gone"] and diff["only_new"] == ["c/added"]
    text = render_compare(diff)
    assert "2 better, 1 worse, 1 unchanged" in text and "worse  c/a" in text


def test_load_results_rejects_other_files(tmp_path):
    with pytest.raises(BadInput, match="no such file"):
        load_results(tmp_path / "none.json")
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(BadInput, match="not a results.json"):
        load_results(tmp_path / "x.json")
    (tmp_path / "y.json").write_text(json.dumps({"tasks": []}))
    with pytest.raises(BadInput, match="not a kgen bench"):
        load_results(tmp_path / "y.json")
    d = doc([res("a")])
    d["schema_version"] = 99
    (tmp_path / "z.json").write_text(json.dumps(d))
    with pytest.raises(BadInput, match="schema_version 99"):
        load_results(tmp_path / "z.json")


def test_gpu_document_writes_all_files_and_a_speedup_plot(tmp_path):
    from kgen.core.bench.report import write_reports

    d = doc([res(f"t{i}", se=0.5 + i, sc=0.3 + i / 2) for i in range(12)] + [res("bad", status="incorrect")])
    written = write_reports(d, tmp_path)
    names = sorted(p.rsplit("/", 1)[-1] for p in written["files"])
    mpimg = pytest.importorskip("matplotlib.image")
    assert names == ["results.csv", "results.json", "results.md", "results.png"] and written["plot_note"] is None
    img = mpimg.imread(str(tmp_path / "results.png"))
    assert img.shape[1] >= 800 and float(img[..., :3].std()) > 0.05
    again = json.loads((tmp_path / "results.json").read_text())
    assert again["summary"]["overall"]["fast_p_eager"]["1"] == pytest.approx(11 / 13)
    assert again["summary"]["overall"]["flagged"] == 2  # t10 (10.5x) and t11 (11.5x) vs eager


def test_traffic_columns_from_the_verdict_reach_json_csv_and_markdown():
    from kgen.core.bench.runner import fill_from_verdict

    verdict = {"status": "correct", "pure": True, "kernels_launched": 3, "trials_run": 3,
               "traffic": {"raw": 3000, "unique": 1500, "minimum": 1000, "launches": 1, "unique_ratio": 1.5,
                           "raw_ratio": 3.0},
               "cost": {"model": "roofline-h100", "est_us": 4.25, "flops_reference": 0}}
    a = fill_from_verdict(res("a"), verdict)
    assert (a["traffic_raw"], a["traffic_unique"], a["traffic_minimum"], a["traffic_launches"]) == (3000, 1500, 1000, 1)
    assert a["unique_ratio"] == 1.5 and a["raw_ratio"] == 3.0 and a["operand_reread"] == 2.0
    assert a["memory_bound"] is True and a["est_us"] == 4.25 and a["cost_model"] == "roofline-h100"
    mm = fill_from_verdict(res("mm"), {**verdict, "cost": {"model": "roofline-h100", "est_us": 9.0, "flops_reference": 10}})
    assert mm["memory_bound"] is False
    untimed = fill_from_verdict(res("b"), {"status": "compile_error"})
    assert untimed["traffic_raw"] is None and untimed["memory_bound"] is None
    d = doc([a, mm, untimed], backend="cpu")
    o = d["summary"]["overall"]
    assert [o[k] for k in ("geomean_unique_ratio", "geomean_raw_ratio_memory_bound", "geomean_operand_reread")] == pytest.approx([1.5, 3.0, 2.0])
    md = render_markdown(d)
    assert "| unique/min | raw/min (memory-bound) | re-read (matmul/conv) |" in md
    assert "| **all** | 3 | 67% | 67% | 1.0 | - | 1.500 | 3.000 | 2.000 |" in md
    assert "| c/a | correct | yes | 1 | - | 1.5 | 3 | 2 | 4.25 |" in md
    rows = list(csv.DictReader(io.StringIO(render_csv(d))))
    assert rows[0]["unique_ratio"] == "1.5" and rows[0]["memory_bound"] == "True" and rows[2]["raw_ratio"] == ""
