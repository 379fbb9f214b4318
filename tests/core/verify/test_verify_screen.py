"""The static screen and the escape limits as plain functions (no runs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kgen.core.verify.escapes import MAX_HOST_ELEMENTS, MAX_SCALAR_READS, escapes
from kgen.core.verify.screen import escape_imports, harness_references, screen, torch_compiler_uses

CANDIDATES = Path(__file__).parent / "candidates"
GOOD = (CANDIDATES / "good.py").read_text()


def test_honest_sources_pass_the_screen():
    assert screen(GOOD) is None
    assert screen("import math\nimport re\nimport os\nPAT = re.compile('x')\n" + GOOD) is None
    # Generated modules use helper names like these; they are not harness internals.
    assert screen("def _kgen_strides(t, shape):\n    return t.stride()\n" + GOOD) is None


@pytest.mark.parametrize("source, found", [
    ("import numpy as np", ["numpy"]),
    ("from scipy.special import erf", ["scipy"]),
    ("import jax.numpy, tensorflow", ["jax", "tensorflow"]),
    ("m = __import__('ctypes')", ["ctypes"]),
    ("import importlib\nm = importlib.import_module('socket')", ["socket"]),
    ("def f():\n    import multiprocessing", ["multiprocessing"]),
])
def test_escape_imports_are_found(source, found):
    assert escape_imports(source) == found


def test_task_imports_and_allow_ops_permit_a_library():
    assert escape_imports("import numpy as np", task_source="import numpy\n") == []
    assert escape_imports("import numpy as np", allow_ops=("import:numpy",)) == []
    assert escape_imports("import numpy, scipy", allow_ops=("import:numpy",)) == ["scipy"]


def test_harness_references_cover_names_strings_and_imports():
    assert harness_references("getattr(torch._C, '_DisableTorchDispatch')") == ["_DisableTorchDispatch"]
    assert harness_references("from torch.utils._python_dispatch import TorchDispatchMode") == ["_python_dispatch"]
    assert harness_references("f = fn.__closure__[0]") == ["__closure__"]
    assert harness_references("from kgen.core.verify import child") == ["kgen"]


def test_torch_compiler_uses():
    assert torch_compiler_uses("import torch as t\ng = t.compile(f)") == ["torch.compile"]
    assert torch_compiler_uses("import re\nre.compile('x')") == []


def test_escape_limits_per_trial():
    assert escapes({"host:item": MAX_SCALAR_READS, "host:tensor": MAX_HOST_ELEMENTS}) == []
    assert escapes({"host:item": MAX_SCALAR_READS + 1}) == ["host:item"]
    assert escapes({"host:tensor": MAX_HOST_ELEMENTS + 1, "host:numpy": 1}) == ["host:numpy", "host:tensor"]
    assert escapes({"host:numpy": 0}) == []
