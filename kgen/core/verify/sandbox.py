"""Warm runners as seen from the verifier: one zygote process per device, forked per run.

`RunnerPool` owns the zygotes (started lazily, replaced when they die), a private directory for
runs, and the reference cache. `Runner.run` forks one child through the zygote, enforces the
timeout by killing the child's whole process group, and reports how the child ended.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from kgen.core.isolation import kill_run
from kgen.core.verify.sandbox_child import scrubbed_env

STARTUP_TIMEOUT_S = 180.0
KILL_GRACE_S = 10.0


class RunnerDied(Exception):
    """The zygote went away before it could fork the run; the pool retries on a fresh one."""


@dataclass
class Outcome:
    exit_code: int | None = None
    signal: int | None = None
    maxrss: int = 0
    timed_out: bool = False
    runner_died: bool = False
    wall_s: float = 0.0


def _pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        pass
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


class Runner:
    """Client side of one zygote (see zygote.py for the protocol)."""

    def __init__(self, device_kind: str, env: dict[str, str], cwd: str):
        self.device_kind = device_kind
        self._cond = threading.Condition()
        self._write_lock = threading.Lock()
        self._pids: dict[str, int] = {}
        self._exits: dict[str, dict] = {}
        self.dead = False
        self.vmsize = 0
        self.cuda_initialized = False
        self.sandbox: dict = {}
        self._ready = False
        self._stderr = open(os.path.join(cwd, f"zygote-{device_kind}.log"), "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kgen.core.verify.zygote"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
            env=env, cwd=cwd, start_new_session=True, close_fds=True)
        self._reader = threading.Thread(target=self._read, name=f"kgen-zygote-{device_kind}", daemon=True)
        self._reader.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        with self._cond:
            while not self._ready and not self.dead:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
        if not self._ready:
            self.close()
            raise RuntimeError(f"the {device_kind} warm runner did not start (see {self._stderr.name})")
        if device_kind == "cuda" and self.cuda_initialized:
            self.close()
            raise RuntimeError("the cuda warm runner initialised CUDA before forking; runs could not use the GPU")

    def _read(self) -> None:
        try:
            for line in self.proc.stdout:
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                with self._cond:
                    if msg.get("ready"):
                        self._ready = True
                        self.vmsize = int(msg.get("vmsize") or 0)
                        self.cuda_initialized = bool(msg.get("cuda_initialized"))
                        self.sandbox = msg.get("sandbox") if isinstance(msg.get("sandbox"), dict) else {}
                    elif "exit" in msg:
                        self._exits[msg["id"]] = msg
                    elif "pid" in msg:
                        self._pids[msg["id"]] = int(msg["pid"])
                    self._cond.notify_all()
        except (OSError, ValueError):
            pass
        with self._cond:
            self.dead = True
            self._cond.notify_all()

    @property
    def alive(self) -> bool:
        return not self.dead and self.proc.poll() is None

    def run(self, role: str, workdir: str, config: dict, timeout_s: float) -> Outcome:
        rid = uuid.uuid4().hex
        line = json.dumps({"id": rid, "role": role, "dir": workdir, "config": config}) + "\n"
        start = time.monotonic()
        try:
            with self._write_lock:
                self.proc.stdin.write(line.encode())
                self.proc.stdin.flush()
        except (OSError, ValueError):
            raise RunnerDied() from None
        with self._cond:
            while rid not in self._pids and not self.dead:
                self._cond.wait(1.0)
            if rid not in self._pids:
                raise RunnerDied()
            pid = self._pids.pop(rid)
            deadline = start + timeout_s
            while rid not in self._exits and not self.dead:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(min(left, 1.0))
            msg = self._exits.pop(rid, None)
        if msg is not None:
            # Processes the run left behind in its group (daemonised helpers) go with it.
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
            return Outcome(msg.get("exit"), msg.get("signal"), int(msg.get("maxrss") or 0),
                           wall_s=time.monotonic() - start)
        if not self.dead:  # timed out: kill the group, let the zygote reap it
            kill_run(pid)
            with self._cond:
                end = time.monotonic() + KILL_GRACE_S
                while rid not in self._exits and not self.dead and time.monotonic() < end:
                    self._cond.wait(0.5)
                msg = self._exits.pop(rid, None)
            return Outcome(msg.get("exit") if msg else None, msg.get("signal") if msg else None,
                           int(msg.get("maxrss") or 0) if msg else 0, timed_out=True,
                           wall_s=time.monotonic() - start)
        # The zygote died under a running child: the child is an orphan now; wait for it to end
        # (its result file may still arrive), within the same deadline.
        while _pid_alive(pid) and time.monotonic() < start + timeout_s:
            time.sleep(0.05)
        timed_out = _pid_alive(pid)
        if timed_out:
            kill_run(pid)
        return Outcome(timed_out=timed_out, runner_died=True, wall_s=time.monotonic() - start)

    def close(self) -> None:
        try:
            if self.proc.stdin:
                self.proc.stdin.close()  # the zygote kills its children and exits on EOF
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            kill_run(self.proc.pid)
            self.proc.wait()
        self._stderr.close()


def make_undumpable() -> bool:
    """Mark this process non-dumpable (Linux), so that /proc/<pid>/environ, /mem and ptrace are
    closed to other processes of the same uid: the process that owns the runners may hold
    tokens in its environment. Runs are also kept out by their own PID namespace and Landlock
    domain (kgen.core.isolation). Returns whether the flag was set."""
    from kgen.core.isolation import set_undumpable

    return set_undumpable()


_warned = False


def _warn_partial(level: str) -> None:
    """One line on stderr, once per process, when runs are not fully isolated here."""
    global _warned
    if level != "full" and not _warned:
        _warned = True
        sys.stderr.write(f"kgen: warning: run sandbox is {level} on this machine "
                         "(see `kgen doctor`); untrusted code is less isolated\n")
        sys.stderr.flush()


def _package_root() -> str:
    return str(Path(__file__).resolve().parents[3])


def runner_env(device_kind: str, cache_dir: str) -> dict[str, str]:
    env = scrubbed_env(dict(os.environ))
    root = _package_root()
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("TRITON_CACHE_DIR", os.path.join(cache_dir, "triton"))
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if device_kind == "cpu":
        env["TRITON_INTERPRET"] = "1"
    else:
        env.pop("TRITON_INTERPRET", None)
    return env


class RunnerPool:
    """Warm runner per device kind/index, reused across candidates; thread-safe."""

    def __init__(self, memory_mb: int | None = None, *, isolate: bool = True):
        if memory_mb is None:
            from kgen.core.config import resolve

            memory_mb = int(resolve("verify.memory_mb", None)[0])
        self.memory_mb = int(memory_mb)
        # False only for measurements (the benchmark's unsandboxed baseline): runs then fork
        # without kernel isolation.
        self.isolate = bool(isolate)
        self.root = tempfile.mkdtemp(prefix="kgen-verify-")
        os.makedirs(os.path.join(self.root, "runs"), exist_ok=True)
        os.makedirs(os.path.join(self.root, "cache"), exist_ok=True)
        self._lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}
        self._runners: dict[str, Runner] = {}
        self.replaced = 0  # how many dead runners were replaced (observability, tests)
        self.closed = False
        from kgen.core.verify.reference import FreshStock, ReferenceCache

        self.references = ReferenceCache(os.path.join(self.root, "cache"))
        self.fresh = FreshStock()

    def _key_lock(self, key: str) -> threading.Lock:
        with self._lock:
            return self._key_locks.setdefault(key, threading.Lock())

    def runner(self, key: str) -> Runner:
        """The live runner for a device key ("cpu" or "cuda:N"), started or replaced as needed."""
        if self.closed:
            raise RuntimeError("runner pool is closed")
        with self._key_lock(key):
            r = self._runners.get(key)
            if r is not None and r.alive:
                return r
            if r is not None:
                self.replaced += 1
                r.close()
            kind = "cpu" if key == "cpu" else "cuda"
            make_undumpable()
            r = Runner(kind, runner_env(kind, os.path.join(self.root, "cache")), self.root)
            if self.isolate:
                _warn_partial(self.sandbox_level(r))
            self._runners[key] = r
            return r

    @staticmethod
    def sandbox_level(runner: Runner) -> str:
        return str((runner.sandbox or {}).get("level") or "off")

    def new_workdir(self) -> str:
        path = tempfile.mkdtemp(prefix="run-", dir=os.path.join(self.root, "runs"))
        os.chmod(path, 0o700)
        return path

    def run(self, key: str, role: str, workdir: str, config: dict, timeout_s: float) -> Outcome:
        for attempt in range(2):
            runner = self.runner(key)
            cfg = dict(config)
            if key == "cpu" and self.memory_mb > 0:
                # RLIMIT_AS counts address space, and the warm runner has already mapped torch
                # and triton; the limit is memory_mb of headroom beyond that.
                cfg["as_limit_bytes"] = runner.vmsize + self.memory_mb * 1024 * 1024
            cfg["fsize_limit_bytes"] = max(self.memory_mb, 1024) * 1024 * 1024
            cfg["isolate"] = self.isolate
            # RLIMIT_CPU backstop: CPU seconds of all threads, so scaled by the cores.
            cfg["cpu_limit_s"] = int(timeout_s * max(os.cpu_count() or 1, 1)) + 60
            try:
                return runner.run(role, workdir, cfg, timeout_s)
            except RunnerDied:
                if attempt:
                    return Outcome(runner_died=True)
        return Outcome(runner_died=True)

    def close(self) -> None:
        with self._lock:
            self.closed = True
            runners, self._runners = list(self._runners.values()), {}
        for r in runners:
            r.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> RunnerPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_default: RunnerPool | None = None
_default_lock = threading.Lock()


def default_pool() -> RunnerPool:
    global _default
    with _default_lock:
        if _default is None or _default.closed:
            import atexit

            _default = RunnerPool()
            atexit.register(_default.close)
        return _default
