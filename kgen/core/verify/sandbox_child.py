"""What a freshly forked run does before any task or candidate code is imported.

Own process group (the pool kills the whole group on timeout), no inherited descriptors (the
zygote's pipes would let a candidate forge protocol lines), scrubbed environment, private temp
dir as cwd/HOME/TMPDIR, and resource limits. On CUDA devices RLIMIT_AS is not used: the driver
reserves huge virtual ranges and fails under it; device memory is capped with
torch.cuda.set_per_process_memory_fraction in the harness instead.
"""

from __future__ import annotations

import os
import resource
import signal
import tempfile

SECRET_MARKERS = ("TOKEN", "KEY", "SECRET", "PASSWORD")


def is_secret_name(name: str) -> bool:
    upper = name.upper()
    return any(m in upper for m in SECRET_MARKERS)


def scrubbed_env(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if not is_secret_name(k)}


def _limit(which: int, value: int) -> None:
    try:
        soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, hard))
    except (ValueError, OSError):
        pass


def enter_sandbox(workdir: str, config: dict) -> None:
    os.setsid()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_DFL)

    log_fd = os.open(os.path.join(workdir, "log.txt"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    null_fd = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null_fd, 0)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.closerange(3, 65536)

    for name in list(os.environ):
        if is_secret_name(name):
            del os.environ[name]
    for name, value in (config.get("env") or {}).items():
        if not is_secret_name(name):
            os.environ[name] = str(value)
    for name in ("HOME", "TMPDIR", "TMP", "TEMP"):
        os.environ[name] = workdir
    tempfile.tempdir = None
    os.chdir(workdir)

    _limit(resource.RLIMIT_CORE, 0)  # a segfaulting candidate must not litter core files
    if config.get("as_limit_bytes"):
        _limit(resource.RLIMIT_AS, int(config["as_limit_bytes"]))
    if config.get("fsize_limit_bytes"):
        _limit(resource.RLIMIT_FSIZE, int(config["fsize_limit_bytes"]))
