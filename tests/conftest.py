"""Shared fixtures. Every test runs with KGEN_HOME in a temp dir (never the real home) and with
TRITON_INTERPRET=1 (no GPU in CI: Triton kernels run on CPU tensors in the interpreter)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def kgen_home(tmp_path_factory, monkeypatch) -> Path:
    home = tmp_path_factory.mktemp("kgen-home")
    monkeypatch.setenv("KGEN_HOME", str(home))
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    return home


@pytest.fixture(scope="session")
def runner_pool():
    """One warm CPU runner pool per xdist worker, shared by the verifier tests (startup ~3 s)."""
    from kgen.core.verify import RunnerPool

    pool = RunnerPool(memory_mb=2048)
    yield pool
    pool.close()


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    return REPO_ROOT / "examples"
