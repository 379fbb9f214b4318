"""Schedules, mutation, repair and the generated module's guards (no verifier: in-process only)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from kgen.core.generate import Candidate, get_generator
from kgen.core.generate.builtin import BuiltinGenerator
from kgen.core.generate.builtin import schedule as sched
from kgen.core.task import load_task, task_from_source
from kgen.core.verify.verdict import Timing, Verdict

TASKS = Path(__file__).parent / "tasks"


def _load(source: str) -> dict:
    ns: dict = {"__name__": "kgen_candidate_test"}
    exec(compile(source, "<candidate>", "exec"), ns)
    return ns


def test_initial_returns_distinct_schedules_first_the_default():
    task = load_task(TASKS / "red_mean_epilogue.py")
    cands = BuiltinGenerator().initial(task, 4)
    keys = [sched.key(c.params["schedule"]) for c in cands]
    assert len(cands) == 4 and len(set(keys)) == 4
    assert keys[0] == sched.key(sched.DEFAULT)
    assert all(c.origin == "builtin" and c.notes for c in cands)


def test_mutate_derives_from_best_and_skips_tried():
    task = load_task(TASKS / "pw_chain_broadcast.py")
    gen = get_generator("builtin")
    first = gen.initial(task, 2)
    fast = Verdict(status="correct", pure=True, timing=Timing(kind="gpu", candidate_ms=1.0))
    slow = Verdict(status="correct", pure=True, timing=Timing(kind="gpu", candidate_ms=5.0))
    best = [(first[0], slow), (first[1], fast)]
    new = gen.mutate(task, best, 3)
    tried = {sched.key(c.params["schedule"]) for c, _ in best}
    assert 1 <= len(new) <= 3
    assert all(sched.key(c.params["schedule"]) not in tried for c in new)
    assert all(c.parent == first[1].sha for c in new)


def test_mutation_stays_inside_the_choices():
    rng = random.Random(3)
    s = sched.DEFAULT
    for _ in range(200):
        s = sched.mutate(s, rng)
        assert sched.normalise(s) == s


def test_repair_falls_back_to_safe_schedule_then_gives_up():
    task = load_task(TASKS / "pw_int_ops.py")
    gen = BuiltinGenerator()
    cand = gen.initial(task, 1)[0]
    bad = Verdict(status="runtime_error", message="boom")
    fixed = gen.repair(task, cand, bad)
    assert fixed is not None and fixed.params["schedule"]["fuse"] is False
    assert gen.repair(task, fixed, bad) is None


def test_unfused_schedule_is_still_correct():
    import torch

    task = load_task(TASKS / "norm_rmsnorm.py")
    cand = BuiltinGenerator().generate(task, sched.safe())
    assert cand.params["kernels"] > 2
    ref_ns, new_ns = _load(task.source), _load(cand.source)
    torch.manual_seed(0)
    ref = ref_ns["Model"](48)
    new = new_ns["ModelNew"](48)
    new.load_state_dict(ref.state_dict())
    x = torch.randn(4, 8, 48)
    torch.testing.assert_close(new(x), ref(x), atol=1e-4, rtol=1e-4)


def test_generated_module_guards_shapes_and_constructor_args():
    import torch

    task = load_task(TASKS / "pw_chain_broadcast.py")
    ns = _load(BuiltinGenerator().initial(task, 1)[0].source)
    model = ns["ModelNew"](1.7)
    with pytest.raises(ValueError, match="generated for x of shape"):
        model(torch.randn(2, 3, 3), torch.randn(3))   # another rank (other sizes are taken: sizes.py)
    with pytest.raises(ValueError, match="scale=1.7"):
        ns["ModelNew"](2.0)


def test_module_is_standalone_and_keeps_parameter_names():
    task = load_task(TASKS / "mm_mlp_residual.py")
    src = BuiltinGenerator().initial(task, 1)[0].source
    imports = [ln for ln in src.splitlines() if ln.startswith(("import ", "from "))]
    assert all(ln.split()[1].split(".")[0] in ("torch", "triton") for ln in imports), imports
    ns = _load(src)
    keys = set(ns["ModelNew"](32, 48).state_dict())
    assert keys == {"up.weight", "up.bias", "down.weight"}


def test_unlowerable_ops_are_declared_fallbacks():
    task = load_task(TASKS / "fb_sort.py")
    cand = BuiltinGenerator().initial(task, 1)[0]
    assert cand.params["fallback_ops"] == ["aten.sort.default"]
    assert "fallback" in cand.notes


def test_reference_that_cannot_run_is_a_task_error():
    from kgen.core.errors import TaskError

    src = ("import torch\nimport torch.nn as nn\nclass Model(nn.Module):\n    def forward(self, x):\n"
           "        return x @ x\n\ndef get_inputs():\n    return [torch.randn(2, 3)]\n\n"
           "def get_init_inputs():\n    return []\n")
    with pytest.raises(TaskError, match="Model fails on its own inputs"):
        BuiltinGenerator().initial(task_from_source(src), 1)


def test_candidate_params_are_json():
    import json

    cand = BuiltinGenerator().initial(load_task(TASKS / "scan_cumsum.py"), 1)[0]
    assert isinstance(cand, Candidate)
    json.dumps(cand.params)


@pytest.mark.parametrize("stem", ["norm_layernorm", "mm_linear_gelu", "scan_cumsum", "norm_softmax"])
def test_evolved_schedules_stay_correct(stem):
    """Mutated schedules (tiles, blocks, fusion switches) change the kernels, never the results."""
    import torch

    task = load_task(TASKS / f"{stem}.py")
    gen = BuiltinGenerator(seed=7)
    first = gen.initial(task, 2)
    ok = Verdict(status="correct", pure=True)
    cands = first + gen.mutate(task, [(c, ok) for c in first], 3)
    assert len({c.sha for c in cands}) == len(cands)
    ref_ns = _load(task.source)
    for cand in cands:
        new_ns = _load(cand.source)
        torch.manual_seed(0)
        init = ref_ns["get_init_inputs"]()
        ref = ref_ns["Model"](*init)
        new = new_ns["ModelNew"](*init)
        new.load_state_dict(ref.state_dict())
        inputs = ref_ns["get_inputs"]()
        want, got = ref(*inputs), new(*inputs)
        want = want if isinstance(want, tuple) else (want,)
        got = got if isinstance(got, tuple) else (got,)
        for w, g in zip(want, got):
            torch.testing.assert_close(g, w, atol=1e-4, rtol=1e-4, msg=lambda m: f"{cand.params['schedule']}: {m}")


def _run_matches(task, cand, atol=1e-4, rtol=1e-4):
    import torch

    ref_ns, new_ns = _load(task.source), _load(cand.source)
    torch.manual_seed(0)
    init = ref_ns["get_init_inputs"]()
    ref = ref_ns["Model"](*init)
    new = new_ns["ModelNew"](*init)
    new.load_state_dict(ref.state_dict())
    inputs = ref_ns["get_inputs"]()
    torch.testing.assert_close(new(*inputs), ref(*inputs), atol=atol, rtol=rtol)


@pytest.mark.parametrize("stem", ["mm_plain", "conv2d_bias_relu"])
def test_fp32_dots_default_to_ieee_and_tf32x3_is_a_schedule_option(stem):
    task = load_task(TASKS / f"{stem}.py")
    gen = BuiltinGenerator()
    default = gen.generate(task, sched.DEFAULT)
    assert 'input_precision="ieee"' in default.source and "tf32x3" not in default.source
    x3 = sched.normalise({"matmul": {"input_precision": "tf32x3"}})
    cand = gen.generate(task, x3)
    assert cand.params["schedule"]["matmul"]["input_precision"] == "tf32x3"
    assert 'input_precision="tf32x3"' in cand.source and 'input_precision="ieee"' not in cand.source
    _run_matches(task, cand)     # the interpreter computes in fp32; on a GPU the verifier judges it


def test_mutation_reaches_every_matmul_knob_including_precision():
    rng = random.Random(11)
    seen: dict[str, set] = {k: set() for k in sched.CHOICES["matmul"]}
    s = sched.DEFAULT
    for _ in range(400):
        s = sched.mutate(s, rng, sections={"matmul"})
        for k in seen:
            seen[k].add(s["matmul"][k])
    assert seen["input_precision"] == {"ieee", "tf32x3"}
    assert all(len(v) >= 2 for v in seen.values()), seen


def test_matmul_configs_are_fitted_to_the_target():
    mm = sched.DEFAULT["matmul"]
    fit = sched.fit_matmul(mm, 64, 64, 32, 4)
    assert fit == {**mm, "BLOCK_K": 32}                          # the default fits sm_90 unchanged
    big = {**mm, "num_stages": 4, "num_warps": 2}
    # fp32 128x128x64 tiles over 64 threads would need 768 registers each: 8 warps and BLOCK_K 32
    fit = sched.fit_matmul(big, 128, 128, 64, 4)
    assert fit["num_warps"] == 8 and fit["BLOCK_K"] == 32 and fit["num_stages"] == 4
    # fp16: only the accumulator lives in registers; 4 x (128*64 + 64*128) x 2 B = 128 KB fits
    fit = sched.fit_matmul(big, 128, 128, 64, 2)
    assert fit["num_warps"] == 4 and fit["BLOCK_K"] == 64 and fit["num_stages"] == 4
    # every point of the space, fitted, stays inside the target's shared memory and registers
    import itertools

    c = sched.CHOICES["matmul"]
    lim = sched.TARGETS["sm_90"]
    for bm, bn, bk, w, st, elem in itertools.product(c["BLOCK_M"], c["BLOCK_N"], c["BLOCK_K"], c["num_warps"],
                                                     c["num_stages"], (2, 4)):
        f = sched.fit_matmul({**mm, "num_warps": w, "num_stages": st}, bm, bn, bk, elem)
        assert f["num_stages"] * (bm * f["BLOCK_K"] + f["BLOCK_K"] * bn) * elem <= lim["smem_per_block"]
        if elem == 4 or f["num_warps"] < 4:
            assert (bm * bn + bm * f["BLOCK_K"] + f["BLOCK_K"] * bn) / (32 * f["num_warps"]) <= lim["fp32_tile_regs_per_thread"]
        else:
            assert bm * bn / (32 * f["num_warps"]) <= lim["acc_regs_per_thread"]
