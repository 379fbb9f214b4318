"""The real CUDA path: run by benchmarks/gpu_check.sh on a GPU machine; skipped without a GPU.

Each test drives kgen the way a user does (verify on cuda, GPU timing, fp32-strict references),
so a first run on real hardware shows what the CPU interpreter cannot."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

EXAMPLES = [("softmax.py", "softmax_triton.py"), ("elementwise.py", "elementwise_triton.py")]


@pytest.mark.parametrize("task_name,cand_name", EXAMPLES)
def test_examples_verify_and_time_on_cuda(task_name, cand_name, examples_dir):
    from kgen.core.task import load_task
    from kgen.core.verify import RunnerPool, verify

    pool = RunnerPool(memory_mb=8192)
    try:
        task = load_task(examples_dir / task_name)
        v = verify(task, (examples_dir / cand_name).read_text(), device="cuda:0", pool=pool,
                   compile_for=["sm_90"], timeout_s=300)
    finally:
        pool.close()
    assert v.status == "correct", f"{v.message}\n{v.log_tail}"
    assert v.device == "cuda:0" and v.device_name and "interpreter" not in v.device_name
    assert v.pure and v.kernels_launched >= 1
    # Timing: CUDA events, L2 flushed; the baselines come with the math settings they ran under.
    assert v.timing is not None and v.timing.kind == "gpu"
    assert v.timing.candidate_ms and v.timing.candidate_ms > 0
    assert v.timing.eager_ms and v.timing.eager_ms > 0
    assert v.timing.speedup_eager and v.timing.speedup_eager > 0
    assert set(v.baseline_settings) == {"cuda_matmul_allow_tf32", "cudnn_allow_tf32", "float32_matmul_precision"}
    assert v.reference_precision.startswith("fp32-strict")
    assert all(r["ok"] for r in v.compiled) and {r["target"] for r in v.compiled} == {"sm_90"}


def test_strict_fp32_turns_tf32_off_and_restores_the_users_settings():
    from kgen.core.verify.child import math_settings, restore_math, strict_fp32

    torch.backends.cudnn.allow_tf32 = True
    torch.set_float32_matmul_precision("high")
    before = strict_fp32()
    try:
        now = math_settings()
        assert now == {"cuda_matmul_allow_tf32": False, "cudnn_allow_tf32": False,
                       "float32_matmul_precision": "highest"}
        # The effect, on hardware with TF32 (sm_80+): a strict fp32 conv matches float64 closely.
        x = torch.randn(8, 64, 32, 32, device="cuda")
        w = torch.randn(64, 64, 3, 3, device="cuda")
        ref = torch.nn.functional.conv2d(x.double(), w.double())
        strict_err = (torch.nn.functional.conv2d(x, w).double() - ref).abs().max().item()
        assert strict_err < 1e-3
    finally:
        restore_math(before)
    assert math_settings() == before and before["cudnn_allow_tf32"] is True
    if torch.cuda.get_device_capability()[0] >= 8:
        tf32_err = (torch.nn.functional.conv2d(x, w).double() - ref).abs().max().item()
        assert tf32_err > strict_err  # TF32 really was in force before, and is again


def test_kernel_compiles_for_the_device_it_runs_on():
    """On a GPU the same compile-for path reports what the real launch will use."""
    import triton
    import triton.language as tl

    from kgen.core.verify.targets import Compiler

    @triton.jit
    def add_one(x_ptr, n, BLOCK: tl.constexpr):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        tl.store(x_ptr + offs, tl.load(x_ptr + offs, mask=offs < n) + 1.0, mask=offs < n)

    major, minor = torch.cuda.get_device_capability()
    target = f"sm_{major}{minor}"
    x = torch.zeros(1000, device="cuda")
    recs = Compiler([target]).on_launch(add_one, (x, 1000), {"grid": (4,), "BLOCK": 256})
    assert recs and recs[0]["ok"] and recs[0]["n_regs"] > 0, recs
    add_one[(4,)](x, 1000, BLOCK=256)
    torch.cuda.synchronize()
    assert torch.all(x == 1.0)
