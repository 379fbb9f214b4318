"""fast_p, geometric means and the per-category summary, on constructed results (pure math)."""

from __future__ import annotations

import math

import pytest

from kgen.core.bench.summary import fast_p, flagged, geomean, speedup, summarize


def r(cat, status="correct", pure=True, se=None, sc=None, launches=1.0):
    return {"category": cat, "status": status, "pure": pure, "speedup_eager": se, "speedup_compile": sc,
            "launches_per_call": launches if status == "correct" else None}


def test_fast_p_counts_strictly_greater_over_all_tasks():
    s = [0.5, 1.0, 1.2, 2.0, 3.0, None]
    assert fast_p(s, 0.0) == pytest.approx(5 / 6)
    assert fast_p(s, 1.0) == pytest.approx(3 / 6)   # 1.0 itself is not faster
    assert fast_p(s, 1.5) == pytest.approx(2 / 6)
    assert fast_p(s, 2.0) == pytest.approx(1 / 6)
    assert fast_p(s, 1.0, total=10) == pytest.approx(0.3)
    assert fast_p([], 1.0) is None


def test_geomean_ignores_missing_and_non_positive():
    assert geomean([2.0, 8.0]) == pytest.approx(4.0)
    assert geomean([1.0, None, 0.0, float("nan"), 4.0]) == pytest.approx(2.0)
    assert geomean([None]) is None
    assert geomean([0.5, 2.0]) == pytest.approx(1.0)


def test_speedup_only_counts_correct_kernels_and_flags_over_10x():
    assert speedup(r("a", se=3.0), "eager") == 3.0
    assert speedup(r("a", status="incorrect", se=3.0), "eager") is None
    assert flagged(r("a", se=12.0, sc=2.0)) == ["eager"]
    assert flagged(r("a", status="incorrect", se=50.0)) == []


def test_summarize_overall_and_per_category_on_gpu():
    results = [r("mm", se=2.0, sc=0.5), r("mm", se=0.5, sc=0.25, pure=False, launches=3.0),
               r("mm", status="incorrect", se=None), r("act", se=16.0, sc=1.6)]
    s = summarize(results, gpu=True)
    o = s["overall"]
    assert (o["tasks"], o["correct"], o["pure"]) == (4, 3, 2)
    assert o["correct_pct"] == 75.0 and o["pure_pct"] == 50.0
    assert o["launches_mean"] == pytest.approx(5 / 3)
    assert o["fast_p_eager"] == {"0": 0.75, "1": 0.5, "1.5": 0.5, "2": 0.25}
    assert o["fast_p_compile"] == {"0": 0.75, "1": 0.25, "1.5": 0.25, "2": 0.0}
    assert o["geomean_speedup_eager"] == pytest.approx(math.exp((math.log(2) + math.log(0.5) + math.log(16)) / 3))
    assert o["flagged"] == 1 and o["statuses"] == {"correct": 3, "incorrect": 1}
    mm = s["categories"]["mm"]
    assert mm["tasks"] == 3 and mm["fast_p_eager"]["1"] == pytest.approx(1 / 3)
    assert mm["geomean_speedup_eager"] == pytest.approx(1.0)
    assert list(s["categories"]) == ["act", "mm"]


def test_summarize_on_cpu_has_no_speedup_keys():
    s = summarize([r("a"), r("a", status="rejected")], gpu=False)
    assert "fast_p_eager" not in s["overall"] and s["overall"]["correct_pct"] == 50.0
    assert summarize([], gpu=False)["overall"]["correct_pct"] is None


def test_summarize_traffic_geomeans_split_memory_bound_from_matmul_conv():
    def t(cat, unique, raw, mem, reread=None, status="correct"):
        return {**r(cat, status=status), "unique_ratio": unique, "raw_ratio": raw, "memory_bound": mem,
                "operand_reread": reread}

    results = [t("norm", 1.0, 2.0, True), t("norm", 1.0, 8.0, True), t("mm", 1.0, 6.0, False, reread=4.0),
               t("mm", 4.0, 9.0, False, reread=1.0), t("norm", 9.0, 9.0, True, status="incorrect"),
               {**r("act"), "unique_ratio": None}]
    o = summarize(results, gpu=False)["overall"]
    assert o["traffic_tasks"] == 4                      # correct ones with a measured ratio
    assert o["geomean_unique_ratio"] == pytest.approx(4 ** 0.25)
    assert o["geomean_raw_ratio_memory_bound"] == pytest.approx(4.0)   # sqrt(2 * 8): matmul raw left out
    assert o["geomean_operand_reread"] == pytest.approx(2.0)
    cats = summarize(results, gpu=False)["categories"]
    assert cats["act"]["geomean_unique_ratio"] is None and cats["mm"]["geomean_raw_ratio_memory_bound"] is None
