"""Forwards that update buffers (training-mode batch norm): the generated ModelNew must return the
reference's outputs and leave the same running statistics behind, call after call (in-process,
Triton interpreter)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kgen.core.generate.builtin import BuiltinGenerator
from kgen.core.task import load_task

TASKS = Path(__file__).parent / "tasks"


def _pair(name: str):
    import torch

    path = TASKS / name
    cand = BuiltinGenerator().initial(load_task(path), 1)[0]
    assert cand.params["fallback_ops"] == []
    ns: dict = {"__name__": "kgen_buffers_candidate"}
    exec(compile(cand.source, "<candidate>", "exec"), ns)
    ref_ns: dict = {"__name__": "kgen_buffers_reference"}
    exec(compile(path.read_text(), "<reference>", "exec"), ref_ns)
    init = ref_ns["get_init_inputs"]()
    torch.manual_seed(1)
    ref = ref_ns["Model"](*init)
    new = ns["ModelNew"](*init)
    new.load_state_dict(ref.state_dict())
    return ref, new, ref_ns["get_inputs"]


@pytest.mark.parametrize("name", ["norm_batchnorm1d_train.py", "conv2d_batchnorm_train.py"])
def test_running_stats_follow_the_reference_call_after_call(name):
    import torch

    ref, new, get_inputs = _pair(name)
    for call in range(3):
        torch.manual_seed(10 + call)
        inputs = [x * (1 + call) + call for x in get_inputs()]   # stats that differ per call
        with torch.no_grad():
            want, got = ref(*inputs), new(*inputs)
        want = want if isinstance(want, tuple) else (want,)
        got = got if isinstance(got, tuple) else (got,)
        assert type(got) is type(want) and len(got) == len(want)
        for w, g in zip(want, got):
            torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-4)
        ref_state, new_state = ref.state_dict(), new.state_dict()
        assert ref_state.keys() == new_state.keys()
        for key, value in ref_state.items():
            assert new_state[key].dtype == value.dtype, key
            torch.testing.assert_close(new_state[key], value, rtol=1e-5, atol=1e-6, msg=key)
        assert int(new.bn.num_batches_tracked) == call + 1


def test_a_training_mode_lowering_refuses_eval_mode():
    import torch

    _, new, get_inputs = _pair("conv2d_batchnorm_train.py")
    new.eval()
    before = new.bn.running_mean.clone()
    with pytest.raises(ValueError, match="training mode"):
        new(*get_inputs())
    assert torch.equal(new.bn.running_mean, before)


def test_eval_mode_reference_has_no_buffer_updates():
    src = BuiltinGenerator().initial(load_task(TASKS / "pw_batchnorm_eval.py"), 1)[0].source
    assert ".copy_(" not in src and "training mode" not in src


def test_inputs_updated_in_place_match_the_reference():
    import torch

    ref, new, get_inputs = _pair("pw_inplace_input_update.py")
    torch.manual_seed(3)
    inputs = get_inputs()
    mine = [x.clone() for x in inputs]
    before = [x.clone() for x in inputs]
    want, got = ref(*inputs), new(*mine)
    for w, g in zip(want + tuple(inputs), got + tuple(mine)):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-6)
    assert not torch.equal(mine[0], before[0]) and not torch.equal(mine[1], before[1])
