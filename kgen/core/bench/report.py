"""The files a bench writes (results.json, results.md, results.csv) and `--compare`.

results.json is the machine-readable record: `schema_version` changes only when a key changes
meaning or disappears; new keys may be added within a version.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from pathlib import Path
from typing import Any

from kgen.core.bench.runner import RESULT_KEYS
from kgen.core.bench.summary import BASELINES, P_VALUES, REVIEW_SPEEDUP, p_key, summarize
from kgen.core.errors import BadInput

SCHEMA_VERSION = 1
TOP_KEYS = ("schema_version", "kind", "bench_id", "created_at", "finished_at", "complete", "gpu", "settings",
            "machine", "summary", "tasks")


def build_document(bench_run: dict[str, Any], machine: dict[str, Any], results: list[dict[str, Any]],
                   total_tasks: int) -> dict[str, Any]:
    gpu = any(r.get("timing_kind") == "gpu" for r in results) or bench_run["settings"].get("backend") == "cuda"
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "kgen-bench",
        "bench_id": bench_run["bench_id"],
        "created_at": bench_run["created_at"],
        "finished_at": time.time(),
        "complete": len(results) == total_tasks,
        "gpu": gpu,
        "settings": bench_run["settings"],
        "machine": machine,
        "summary": summarize(results, gpu),
        "tasks": [{k: r.get(k) for k in RESULT_KEYS} for r in results],
    }


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f}%"


def _num(v: Any, spec: str = ".3g") -> str:
    return "-" if v is None else format(v, spec)


def summary_rows(doc: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The summary table (header, rows): one row per category and an `all` row."""
    gpu = doc["gpu"]
    head = ["category", "tasks", "correct", "pure", "launches/call", "second shape"]
    traffic = any(s.get("traffic_tasks") for s in doc["summary"]["categories"].values())
    if traffic:
        head += ["unique/min", "raw/min (memory-bound)", "re-read (matmul/conv)"]
    if gpu:
        head += [f"fast_{p_key(p)} {b}" for b in BASELINES for p in P_VALUES]
        head += ["geomean vs eager", "geomean vs compile", ">10x"]
    rows = []
    cats = dict(doc["summary"]["categories"])
    cats["all"] = doc["summary"]["overall"]
    for name, s in cats.items():
        row = [name if name != "all" else "**all**", str(s["tasks"]), _pct(s["correct_pct"]), _pct(s["pure_pct"]),
               _num(s["launches_mean"], ".1f"),
               f"{s.get('second_shape_pass', 0)}/{s.get('second_shape_checked', 0)}" if s.get("second_shape_checked") else "-"]
        if traffic:
            row += [_num(s.get(k), ".3f") for k in ("geomean_unique_ratio", "geomean_raw_ratio_memory_bound",
                                                     "geomean_operand_reread")]
        if gpu:
            row += [_pct(None if s[f"fast_p_{b}"][p_key(p)] is None else 100 * s[f"fast_p_{b}"][p_key(p)])
                    for b in BASELINES for p in P_VALUES]
            row += [_num(s["geomean_speedup_eager"], ".2f") + "x" if s["geomean_speedup_eager"] else "-",
                    _num(s["geomean_speedup_compile"], ".2f") + "x" if s["geomean_speedup_compile"] else "-",
                    str(s["flagged"])]
        rows.append(row)
    return head, rows


def _md_table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def render_markdown(doc: dict[str, Any]) -> str:
    s, m = doc["settings"], doc["machine"]
    gpus = ", ".join(g["name"] for g in m.get("gpus") or []) or "none"
    where = s.get("node") or s.get("gateway") or "local"
    source = f"kernels from {s['candidates']}" if s.get("candidates") else f"generator {s['generator']} ({s['job_type']})"
    lines = [
        "# kgen bench results", "",
        f"- backend: {s['backend']} ({where}); {source}; small shapes: {'yes' if s.get('small') else 'no'}"
        + (f"; torch.compile mode: {s.get('compile_mode')}" if doc["gpu"] else ""),
        f"- machine: {m.get('platform')}, {m.get('cpu_count')} CPUs; GPU: {gpus}; driver {m.get('driver') or '-'}",
        f"- python {m.get('python')}, torch {m.get('torch')}, triton {m.get('triton')}, kgen {m.get('kgen')}",
        f"- tasks: {len(doc['tasks'])}" + ("" if doc["complete"] else " (incomplete run)"),
    ]
    if not doc["gpu"]:
        lines.append("- CPU (Triton interpreter): correctness and purity only; interpreter times are not speedups")
    head, rows = summary_rows(doc)
    lines += ["", "## Summary", "", _md_table(head, rows), ""]
    if "unique/min" in head:
        lines += ["Traffic (one forward on the interpreter, geometric means over correct tasks): bytes moved against "
                  "the minimum (inputs and parameters read once, outputs written once); unique counts each address "
                  "once per launch, raw every load and store. Memory-bound: no matmul/conv in the reference; for "
                  "matmul/conv the operand re-read factor raw/unique. est us: the roofline model's estimate "
                  "(a model, not a measurement).", ""]
    flagged = [t for t in doc["tasks"] if t.get("flagged")]
    if flagged:
        lines += [f"## Flagged for review (speedup over {REVIEW_SPEEDUP:g}x)", ""]
        lines += [f"- {t['category']}/{t['name']}: vs eager {_num(t['speedup_eager'], '.1f')}x, "
                  f"vs compile {_num(t['speedup_compile'], '.1f')}x" for t in flagged]
        lines.append("")
    lines += ["## Tasks", ""]
    thead = ["task", "status", "pure", "launches/call", "max err", "unique/min", "raw/min", "re-read", "est us", "second shape"]
    thead += ["kernel ms", "eager ms", "compile ms", "vs eager", "vs compile"] if doc["gpu"] else ["interp ms"]
    trows = []
    for t in doc["tasks"]:
        row = [f"{t['category']}/{t['name']}", t["status"] or "-", "yes" if t["pure"] else "no",
               _num(t["launches_per_call"], ".3g"), _num(t["max_abs_err"], ".2g"), _num(t.get("unique_ratio"), ".3g"),
               _num(t.get("raw_ratio"), ".3g"), _num(t.get("operand_reread"), ".3g"), _num(t.get("est_us"), ".3g"),
               (t.get("second_shape") or "-").split(":")[0]]
        if doc["gpu"]:
            row += [_num(t["kernel_ms"], ".4f"), _num(t["eager_ms"], ".4f"), _num(t["compile_ms"], ".4f"),
                    _num(t["speedup_eager"], ".2f"), _num(t["speedup_compile"], ".2f")]
        else:
            row.append(_num(t["kernel_ms"], ".1f"))
        trows.append(row)
    lines += [_md_table(thead, trows), ""]
    second = [t for t in doc["tasks"] if (t.get("second_shape") or "pass") != "pass"]
    if second:
        lines += ["## Not passing at the second shape", ""]
        lines += [f"- {t['category']}/{t['name']}: {t['second_shape'][:200]}" for t in second]
        lines.append("")
    failed = [t for t in doc["tasks"] if t["status"] != "correct"]
    if failed:
        lines += ["## Not correct", ""]
        lines += [f"- {t['category']}/{t['name']}: {t['status']}: {(t['message'] or '').splitlines()[0][:200] if t['message'] else ''}"
                  for t in failed]
        lines.append("")
    return "\n".join(lines)


def render_csv(doc: dict[str, Any]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(RESULT_KEYS)
    for t in doc["tasks"]:
        writer.writerow([";".join(map(str, v)) if isinstance(v, list) else ("" if v is None else v)
                         for v in (t.get(k) for k in RESULT_KEYS)])
    return buf.getvalue()


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_reports(doc: dict[str, Any], out_dir: str | Path) -> dict[str, Any]:
    """Write results.{json,md,csv} and, when matplotlib is installed, results.png.
    Returns {"files": [paths], "plot_note": str | None}."""
    from kgen.core.bench.plot import write_plot

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for name, text in (("results.json", json.dumps(doc, indent=2, sort_keys=False) + "\n"),
                       ("results.md", render_markdown(doc)), ("results.csv", render_csv(doc))):
        _atomic_write(out / name, text)
        files.append(str(out / name))
    png, note = write_plot(doc, out / "results.png")
    if png:
        files.append(png)
    return {"files": files, "plot_note": note}


# -- --compare ---------------------------------------------------------------------------------

_RANK = {"correct": 3, "incorrect": 1, "rejected": 1, "compile_error": 0, "runtime_error": 0, "timeout": 0,
         "crashed": 0, "missing": 0, "error": 0}
SPEEDUP_CHANGE = 0.10   # relative change in a speedup worth reporting (timing noise is below it)


def load_results(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(f"--compare {path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInput(f"--compare {path}: not a results.json ({exc})") from None
    if not isinstance(doc, dict) or doc.get("kind") != "kgen-bench" or not isinstance(doc.get("tasks"), list):
        raise BadInput(f"--compare {path}: not a kgen bench results.json")
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise BadInput(f"--compare {path}: schema_version {doc.get('schema_version')!r}, this kgen reads {SCHEMA_VERSION}")
    return doc


def compare(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """What changed from `old` to `new` (results.json documents), by task key (category/name):
    status changes (better/worse), purity changes, speedup changes over SPEEDUP_CHANGE, tasks
    only in one of them."""
    key = lambda t: f"{t['category']}/{t['name']}"  # noqa: E731
    a = {key(t): t for t in old["tasks"]}
    b = {key(t): t for t in new["tasks"]}
    better, worse, same = [], [], 0
    for k in sorted(set(a) & set(b)):
        o, n = a[k], b[k]
        changes = []
        ro, rn = _RANK.get(o["status"], 0), _RANK.get(n["status"], 0)
        if o["status"] != n["status"]:
            changes.append((rn - ro, f"{o['status']} -> {n['status']}"))
        elif n["status"] == "correct" and bool(o.get("pure")) != bool(n.get("pure")):
            changes.append((1 if n.get("pure") else -1, f"pure {'no -> yes' if n.get('pure') else 'yes -> no'}"))
        for b_name in ("eager", "compile"):
            so, sn = o.get(f"speedup_{b_name}"), n.get(f"speedup_{b_name}")
            if so and sn and abs(sn - so) / so > SPEEDUP_CHANGE:
                changes.append((1 if sn > so else -1, f"vs {b_name} {so:.2f}x -> {sn:.2f}x"))
        if not changes:
            same += 1
            continue
        entry = {"task": k, "old": o["status"], "new": n["status"], "changes": [c for _, c in changes]}
        # a status change decides the direction; otherwise the sum of the speedup/purity moves
        first = changes[0][0] if o["status"] != n["status"] else sum(d for d, _ in changes)
        (better if first > 0 else worse).append(entry)
    return {"better": better, "worse": worse, "unchanged": same,
            "only_old": sorted(set(a) - set(b)), "only_new": sorted(set(b) - set(a)),
            "correct_pct": [old["summary"]["overall"]["correct_pct"], new["summary"]["overall"]["correct_pct"]],
            "pure_pct": [old["summary"]["overall"]["pure_pct"], new["summary"]["overall"]["pure_pct"]]}


def render_compare(diff: dict[str, Any]) -> str:
    co, cn = diff["correct_pct"]
    po, pn = diff["pure_pct"]
    lines = [f"compare: correct {_pct(co)} -> {_pct(cn)}, pure {_pct(po)} -> {_pct(pn)}; "
             f"{len(diff['better'])} better, {len(diff['worse'])} worse, {diff['unchanged']} unchanged"]
    for word in ("better", "worse"):
        for e in diff[word]:
            lines.append(f"  {word:6} {e['task']}: {'; '.join(e['changes'])}")
    if diff["only_new"]:
        lines.append(f"  new    {', '.join(diff['only_new'])}")
    if diff["only_old"]:
        lines.append(f"  gone   {', '.join(diff['only_old'])}")
    return "\n".join(lines)
