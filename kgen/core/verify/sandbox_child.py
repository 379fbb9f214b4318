"""What a freshly forked run does before any task or candidate code is imported.

Own process group (the pool kills the whole group on timeout), no inherited descriptors (the
zygote's pipes would let a candidate forge protocol lines), an environment built from an
allow-list, the run dir as cwd/HOME/TMPDIR with its own Triton cache, resource limits, and then
the kernel-enforced isolation of kgen.core.isolation (namespaces, private /tmp, Landlock,
seccomp; the run continues as PID 1 of its own PID namespace).

On CUDA devices RLIMIT_AS is not used: the driver reserves huge virtual ranges and fails under
it; device memory is capped with torch.cuda.set_per_process_memory_fraction in the run, which
is a best-effort limit (it lives in the candidate's own process).
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import tempfile

SECRET_MARKERS = ("TOKEN", "KEY", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL")
# Names (exact) and prefixes a run may inherit; everything else is dropped.
ENV_ALLOWED = {"PATH", "LANG", "LANGUAGE", "TZ", "TERM", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE",
               "PYTHONHASHSEED", "PYTHONUNBUFFERED", "LD_LIBRARY_PATH", "OMP_NUM_THREADS",
               "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "CUDA_HOME", "CUDA_PATH"}
ENV_ALLOWED_PREFIXES = ("LC_", "TRITON_", "CUDA_", "NVIDIA_", "TORCH_", "PYTORCH_", "CUBLAS_", "CUDNN_", "NCCL_")
TRITON_CACHE = ".triton-cache"
SEED_CACHE_MAX_BYTES = 256 * 1024 * 1024


def is_secret_name(name: str) -> bool:
    upper = name.upper()
    return any(m in upper for m in SECRET_MARKERS)


def scrubbed_env(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if not is_secret_name(k)}


def allowed_env_name(name: str) -> bool:
    if is_secret_name(name) or name.startswith("KGEN_"):
        return False
    return name in ENV_ALLOWED or name.startswith(ENV_ALLOWED_PREFIXES)


def run_env(env: dict[str, str], workdir: str, extra: dict | None = None) -> dict[str, str]:
    """The run's environment: allow-listed names only; HOME/TMPDIR/Triton cache in the run dir."""
    out = {k: v for k, v in env.items() if allowed_env_name(k)}
    for name, value in (extra or {}).items():
        if allowed_env_name(name):
            out[name] = str(value)
    for name in ("HOME", "TMPDIR", "TMP", "TEMP"):
        out[name] = workdir
    out["TRITON_CACHE_DIR"] = os.path.join(workdir, TRITON_CACHE)
    out["PYTHONDONTWRITEBYTECODE"] = "1"
    return out


def _limit(which: int, value: int) -> None:
    try:
        soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, hard))
    except (ValueError, OSError):
        pass


def _seed_triton_cache(seed: str | None, target: str) -> None:
    """Copy (never link) the runner's Triton cache into the run's own: warm compiles, and
    nothing the run writes reaches the shared cache."""
    os.makedirs(target, exist_ok=True)
    if not seed or not os.path.isdir(seed):
        return
    total = 0
    for root, _, files in os.walk(seed):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    if 0 < total <= SEED_CACHE_MAX_BYTES:
        shutil.copytree(seed, target, dirs_exist_ok=True, symlinks=False)


def enter_sandbox(workdir: str, config: dict, features=None) -> list[str]:
    """-> the isolation layers skipped (the kernel lacks them). `features` is the zygote's
    isolation probe; None (or config["isolate"] false) runs without kernel isolation."""
    os.setsid()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_DFL)

    log_fd = os.open(os.path.join(workdir, "log.txt"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    null_fd = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null_fd, 0)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.closerange(3, 65536)

    seed_cache = os.environ.get("TRITON_CACHE_DIR")
    env = run_env(dict(os.environ), workdir, config.get("env"))
    os.environ.clear()
    os.environ.update(env)
    tempfile.tempdir = None
    os.chdir(workdir)
    _seed_triton_cache(seed_cache, env["TRITON_CACHE_DIR"])

    _limit(resource.RLIMIT_CORE, 0)  # a segfaulting candidate must not litter core files
    if config.get("as_limit_bytes"):
        _limit(resource.RLIMIT_AS, int(config["as_limit_bytes"]))
    if config.get("fsize_limit_bytes"):
        _limit(resource.RLIMIT_FSIZE, int(config["fsize_limit_bytes"]))

    if features is None or not config.get("isolate", True):
        return ["all"]
    from kgen.core import isolation

    spec = isolation.Spec(workdir=os.path.realpath(workdir), features=features,
                          cpu_seconds=int(config.get("cpu_limit_s") or 0))
    return isolation.enter(spec)
