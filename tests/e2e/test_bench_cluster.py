"""`kgen bench` against real daemons: generation as gateway jobs (--gateway), and kernels
verified on a node (--node, worker-only), with the same results as local mode."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from e2e_helpers import kgen

ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / "benchmarks" / "suite"
CANDIDATES = ROOT / "tests" / "core" / "verify" / "candidates"
UNSOLVED = ROOT / "tests" / "cli" / "unsolved"   # tasks the generator cannot solve yet


def _slice(dest: Path, names: list[str]) -> Path:
    for name in names:
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        src = UNSOLVED / f"{name}.py"
        shutil.copy(src if src.exists() else SUITE / f"{name}.py", dest / f"{name}.py")
    return dest


@pytest.mark.slow
def test_bench_through_the_gateway_and_on_a_node(cluster, tmp_path):
    tasks = _slice(tmp_path / "tasks", ["activation/relu", "special/lgamma"])
    env = dict(cluster.env, NO_COLOR="1", COLUMNS="200")
    done = kgen("bench", str(tasks), "--small", "--gateway", cluster.gateway.url, "--out", str(tmp_path / "gw"),
                "--json", env=env, timeout=400)
    assert done.returncode == 1, cluster.explain(done)
    by = {t["name"]: t for t in json.loads(done.stdout)["tasks"]}
    assert by["relu"]["status"] == "correct" and by["relu"]["pure"] and by["relu"]["job_id"]
    assert by["lgamma"]["status"] in ("rejected", "error")
    assert cluster.client.get_status(by["relu"]["job_id"])["status"] == "succeeded"

    # worker-only: generated here, verified on a node; and given kernels judged on the node
    node = cluster.nodes[0].url
    done = kgen("bench", str(tasks / "activation"), "--small", "--node", node, "--out", str(tmp_path / "node"),
                "--json", env=env, timeout=400)
    assert done.returncode == 0, cluster.explain(done)
    assert json.loads(done.stdout)["tasks"][0]["status"] == "correct"
    given, cands = tmp_path / "given" / "relu_add", tmp_path / "cands"
    given.mkdir(parents=True)
    cands.mkdir()
    for n in ("good", "memoise"):
        shutil.copy(CANDIDATES / "task_relu_add.py", given / f"{n}.py")
        shutil.copy(CANDIDATES / f"{n}.py", cands / f"{n}.py")
    done = kgen("bench", str(tmp_path / "given"), "--candidates", str(cands), "--node", node,
                "--out", str(tmp_path / "given-out"), "--json", env=env, timeout=400)
    assert done.returncode == 1, cluster.explain(done)
    by = {t["name"]: t for t in json.loads(done.stdout)["tasks"]}
    assert by["good"]["status"] == "correct" and by["memoise"]["status"] == "incorrect"
