"""The verdict: what kgen says about one candidate on one device kind (DESIGN.md section 1).

A plain dataclass that round-trips through JSON unchanged: it crosses process boundaries
(runner -> verifier), HTTP (node -> gateway) and the SQLite store.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

STATUSES = ("correct", "incorrect", "compile_error", "runtime_error", "timeout", "crashed", "rejected")


@dataclass
class Trial:
    seed: int
    ok: bool
    max_abs_err: float | None = None
    max_rel_err: float | None = None
    message: str = ""


@dataclass
class Timing:
    """GPU: milliseconds per call (median). CPU interpreter: wall ms, never called a speedup."""

    kind: str  # "gpu" | "interpreter"
    candidate_ms: float | None = None
    eager_ms: float | None = None
    compile_ms: float | None = None
    speedup_eager: float | None = None      # set on GPU only
    speedup_compile: float | None = None    # set on GPU only
    repeats: int = 0
    # GPU: the per-call wall time the runner measured outside the candidate's process (the
    # CUDA-event figure above is cross-checked against it). CPU: candidate_ms is that figure.
    external_ms: float | None = None


@dataclass
class Verdict:
    status: str
    message: str = ""
    task_id: str = ""
    candidate_sha: str = ""
    device: str = "cpu"           # "cpu" or "cuda:N"
    device_name: str = ""         # e.g. "NVIDIA H100 80GB HBM3" or "cpu (triton interpreter)"
    trials: list[Trial] = field(default_factory=list)
    trials_run: int = 0
    kernels_launched: int = 0
    # Torch compute ops the candidate called during forward, plus host escapes ("host:numpy",
    # "host:tolist", ...; see kgen.core.verify.escapes) when it moved the math off torch.
    torch_ops: list[str] = field(default_factory=list)
    pure: bool = False
    atol: float | None = None
    rtol: float | None = None
    timing: Timing | None = None
    wall_s: float = 0.0
    peak_mem_bytes: int = 0
    log_tail: str = ""            # last lines of the candidate's stdout/stderr, for feedback
    # Torch compute calls a static scan found in the candidate's host code (kernels excluded).
    # Evidence only: `torch_ops` (recorded at run time) decides `pure` and rejection.
    static_torch_calls: list[str] = field(default_factory=list)
    # GPU targets the run compiled every launch for (`--compile-for sm_80,sm_90`), and per distinct
    # kernel specialisation and target: kernel, target, ok, error, n_regs, n_spills (bytes),
    # shared (bytes), grid, num_warps, num_stages. Empty when none were asked for.
    compile_targets: list[str] = field(default_factory=list)
    compiled: list[dict] = field(default_factory=list)
    # How the reference outputs were computed: "fp32-strict" (CUDA: TF32 off for matmul and
    # cuDNN), "default" (CPU: no TF32 exists). The eager/torch.compile baselines are timed with
    # the user's defaults, recorded in baseline_settings.
    reference_precision: str = ""
    baseline_settings: dict = field(default_factory=dict)
    # Bytes one forward call moved on the Triton interpreter ({raw, unique, minimum, launches,
    # per_launch, ...}; kgen.core.verify.traffic), None where not measured (GPU runs, failures
    # before forward). Best effort: counted inside the candidate's process.
    traffic: dict[str, Any] | None = None
    # The roofline model's estimate from `traffic` ({model, est_us, ...}; kgen.core.perf.cost).
    # A model, not a measurement: measured GPU time (`timing`) replaces it where there is one.
    cost: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown verdict status {self.status!r}")

    @property
    def correct(self) -> bool:
        return self.status == "correct"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verdict:
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in data.items() if k in known}
        kw["trials"] = [Trial(**t) if isinstance(t, dict) else t for t in kw.get("trials") or []]
        if isinstance(kw.get("timing"), dict):
            names = {f.name for f in fields(Timing)}
            kw["timing"] = Timing(**{k: v for k, v in kw["timing"].items() if k in names})
        return cls(**kw)
