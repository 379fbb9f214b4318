"""The builtin generator's layers on their own, without the verifier: op lowerings, legality,
the flat-index helper, the emitter registry and the ModelNew assembly's constructor check."""

from __future__ import annotations

import re

import pytest
import torch
from torch.fx import Graph

from kgen.core.generate.builtin import ops
from kgen.core.generate.builtin.emit import EMITTERS, SECTION_OF_KIND
from kgen.core.generate.builtin.graph import flat_to_coords, lowerable_tensor
from kgen.core.generate.builtin.module import parameter_names
from kgen.core.generate.builtin.schedule import DEFAULT


def _binary_node(target, dtype, kwargs=None):
    g = Graph()
    a, b = g.placeholder("a"), g.placeholder("b")
    for p in (a, b):
        p.meta["val"] = torch.zeros(4, dtype=dtype)
    node = g.call_function(target, (a, b), kwargs or {})
    node.meta["val"] = torch.zeros(4, dtype=dtype)
    return node


def _lower(node):
    return ops.POINTWISE[ops.packet(node)](ops.Operands(node, lambda a: (a.name, a.meta["val"].dtype)))


@pytest.mark.parametrize("dtype", [torch.float32, torch.int32])
def test_division_honours_its_rounding_mode(dtype):
    div = torch.ops.aten.div.Tensor_mode
    floor = _lower(_binary_node(div, dtype, {"rounding_mode": "floor"}))
    trunc = _lower(_binary_node(div, dtype, {"rounding_mode": "trunc"}))
    assert floor != trunc
    if dtype.is_floating_point:
        assert floor == "tl.floor(a / b)" and trunc == "_kgen_trunc(a / b)"
    else:
        assert floor == "_kgen_floordiv(a, b)" and trunc == "(a // b)"
    # floor_divide is the floor mode, whatever the dtype
    assert _lower(_binary_node(torch.ops.aten.floor_divide.default, dtype)) == floor
    assert _lower(_binary_node(div, dtype)) == "(a / b)"


def test_every_triton_helper_is_used_by_some_lowering():
    from pathlib import Path

    package = Path(ops.__file__).parent
    lowerings = "\n".join(p.read_text() for p in sorted(package.rglob("*.py"))).replace(ops.HELPERS, "")
    helpers = re.findall(r"^def (_kgen_\w+)\(", ops.HELPERS, flags=re.M)
    assert helpers
    unused = [h for h in helpers if h not in lowerings and
              not any(h in body for other, body in _helper_bodies(ops.HELPERS).items() if other != h)]
    assert unused == []


def _helper_bodies(text):
    parts = re.split(r"^@triton\.jit\n", text, flags=re.M)
    return {re.match(r"def (\w+)", p).group(1): p for p in parts if p.startswith("def ")}


def test_lowerable_tensor_tells_floats_from_ints():
    g = Graph()
    i, f = g.placeholder("i"), g.placeholder("f")
    i.meta["val"] = torch.zeros(2, dtype=torch.int64)
    f.meta["val"] = torch.zeros(2, dtype=torch.float16)
    assert lowerable_tensor(i) and lowerable_tensor(f)
    assert not lowerable_tensor(i, allow_int=False) and lowerable_tensor(f, allow_int=False)


def test_flat_to_coords_unravels_row_major_and_skips_unit_dims():
    lines, counter = [], iter(range(100))

    def fresh(prefix):
        return f"{prefix}{next(counter)}"

    idx = flat_to_coords(lines.append, fresh, "x", [3, 1, 5])
    assert idx == ["i2", None, "i0"]
    assert lines == ["i0 = x % 5", "q1 = x // 5", "i2 = q1"]
    # the unravelled coordinates give back the flat position for every element
    for flat in range(15):
        env = {"x": flat}
        for line in lines:
            name, expr = line.split(" = ")
            env[name] = eval(expr, {}, env)
        assert env["i2"] * 5 + env["i0"] == flat
    named = []
    assert flat_to_coords(named.append, fresh, "r", [2, 1], names=["a", "b"]) == ["a", "b"]
    assert named[0] == "b = r % 1" and named[-1].startswith("a = ")


def test_every_emitter_declares_its_kind_and_a_schedule_section():
    assert set(EMITTERS) == {"pointwise", "reduction", "scan", "sort", "scatter", "matmul", "conv", "pool", "attention",
                             "rowmatmul"}
    for kind, emitter in EMITTERS.items():
        assert emitter.KIND == kind and callable(emitter.emit)
        assert SECTION_OF_KIND[kind] in DEFAULT


def test_constructor_check_names_come_from_the_signature():
    assert parameter_names("self, dim, *shape, eps=1e-5, **kw") == {"self", "dim", "shape", "eps", "kw"}
    assert parameter_names("self, a, /, b, *, c") == {"self", "a", "b", "c"}
    # a substring of a name is not a name (the old `k in text` check took "dim" from "dims")
    assert "dim" not in parameter_names("self, dims")
