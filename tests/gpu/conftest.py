"""The gpu tests run Triton for real: undo the suite-wide TRITON_INTERPRET=1 (tests/conftest.py)."""

import pytest


@pytest.fixture(autouse=True)
def compiled_triton(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
