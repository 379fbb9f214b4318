"""One table of limits (kgen.core.spec): the local engine's spec check, the gateway's submit
schema and the node's verify body check accept and refuse exactly the same values."""

from __future__ import annotations

import pytest

from kgen.core.errors import BadInput
from kgen.core.evolve import validate_spec
from kgen.core.spec import JOB_SPEC_LIMITS, LIMITS, VERIFY_LIMITS
from kgen.daemon.gateway.schemas import SUBMIT, check_values
from kgen.daemon.http import HttpError
from kgen.daemon.node.app import VERIFY_SCHEMA, check_verify_body


def probes(name):
    limit = LIMITS[name]
    step = 1 if limit.kind is int else 1e-6
    cast = int if limit.kind is int else float
    return [(cast(limit.lo), True), (cast(limit.hi), True), (cast(limit.lo - step), False),
            (cast(limit.hi + step), False)]


def local_ok(name, value):
    try:
        validate_spec({"job_type": "evolve", name: value})
    except BadInput:
        return False
    return True


def gateway_ok(name, value):
    try:
        check_values({name: value}, SUBMIT)
    except BadInput:
        return False
    return True


def node_ok(name, value):
    try:
        check_verify_body({"task": "x", "candidate": "y", name: value})
    except HttpError:
        return False
    return True


@pytest.mark.parametrize("name", JOB_SPEC_LIMITS)
def test_local_engine_and_gateway_agree_on_every_job_spec_limit(name):
    assert name in SUBMIT
    for value, ok in probes(name):
        assert local_ok(name, value) is ok, (name, value)
        assert gateway_ok(name, value) is ok, (name, value)


@pytest.mark.parametrize("name", VERIFY_LIMITS)
def test_node_verify_body_follows_the_same_table(name):
    assert name in VERIFY_SCHEMA
    for value, ok in probes(name):
        assert node_ok(name, value) is ok, (name, value)
        if name in JOB_SPEC_LIMITS:
            assert local_ok(name, value) is ok and gateway_ok(name, value) is ok, (name, value)


def test_previously_divergent_bounds_are_now_one():
    # max_rounds was 1..100 at the gateway and 1..50 locally; atol > 0 at the gateway, >= 0 elsewhere
    assert not gateway_ok("max_rounds", 100) and not local_ok("max_rounds", 100)
    assert not gateway_ok("max_repairs", 20) and not local_ok("max_repairs", 20)
    assert gateway_ok("atol", 0.0) and local_ok("atol", 0.0) and node_ok("atol", 0.0)


def test_bools_and_non_finite_numbers_are_refused():
    for name in LIMITS:
        assert LIMITS[name].problem(True) is not None
    assert LIMITS["atol"].problem(float("nan")) is not None
    assert LIMITS["timeout_s"].problem(float("inf")) is not None
