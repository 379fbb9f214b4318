"""The warm runner: a process that has imported torch and triton and forks one child per run.

Started by `RunnerPool` as `python -m kgen.core.verify.zygote`, with an environment already
scrubbed of secrets. It never runs a torch op and never initialises CUDA, so forking it is safe
and cheap; candidate code only ever runs in the forked children, so a candidate cannot poison it.

Protocol (JSON lines): the pool writes `{"id", "role", "dir", "config"}` on stdin; the zygote
answers `{"id", "pid"}` once the child is forked and `{"id", "pid", "exit", "signal", "maxrss"}`
once it has been reaped (rusage comes from wait4, so a candidate cannot fake its own memory).
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import sys


def _emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _vm_size_bytes() -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


_FEATURES = None  # this machine's isolation probe, taken once at start (kgen.core.isolation)
SANDBOX_FAILED = 71


def _child(req: dict) -> None:
    """Runs in the forked child; never returns. With isolation, the code below the sandbox
    entry runs in a grandchild (PID 1 of the run's own PID namespace)."""
    code = 70
    try:
        from kgen.core import isolation
        from kgen.core.verify import sandbox_child

        try:
            sandbox_child.enter_sandbox(req["dir"], req.get("config") or {}, _FEATURES)
        except isolation.IsolationError as exc:
            # Never run untrusted code half-sandboxed: the verdict says the sandbox failed.
            sys.stderr.write(f"kgen: sandbox set-up failed: {exc}\n")
            sys.stderr.flush()
            os._exit(SANDBOX_FAILED)
        from kgen.core.verify import child

        code = child.main(req["role"], req["dir"], req.get("config") or {})
    except BaseException:  # noqa: BLE001 - anything escaping the harness is a crash of the run
        try:
            import traceback

            traceback.print_exc()
            sys.stderr.flush()
        except BaseException:  # noqa: BLE001
            pass
        code = 70
    finally:
        os._exit(code if isinstance(code, int) else 70)


def _warm_lazy_imports() -> None:
    """Modules that torch and triton import lazily on a run's first dispatch-mode entry or
    interpreted launch (torch._dynamo alone costs seconds). Imports only: no torch op runs here,
    so forking stays safe."""
    import importlib

    for name in ("numpy", "torch._dynamo", "torch.utils._python_dispatch", "triton.runtime.interpreter", "triton.experimental.gluon",
                 "kgen.core.verify.child", "kgen.core.verify.sandbox_child", "kgen.core.verify.instrument",
                 "kgen.core.verify.escapes", "kgen.core.verify.tamper", "kgen.core.isolation",
                 # what a --compile-for run's first compile would import (~1 s of it)
                 "triton.compiler.compiler", "triton.compiler.code_generator", "triton.backends.nvidia.compiler",
                 "kgen.core.verify.targets"):
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a missing optional module only costs speed
            pass


def main() -> None:
    global _FEATURES
    from kgen.core import isolation

    # exec reset PR_SET_DUMPABLE: runs (and other same-uid processes) must not ptrace us or open
    # our /proc/PID/mem; forked runs inherit the flag.
    isolation.set_undumpable()
    _FEATURES = isolation.probe()
    import torch  # the point of the warm runner: pay these imports once
    import triton  # noqa: F401
    import triton.language  # noqa: F401

    _warm_lazy_imports()

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the pool owns our lifetime, not the terminal
    sel = selectors.DefaultSelector()
    stdin = sys.stdin.buffer
    sel.register(stdin.fileno(), selectors.EVENT_READ, ("stdin", None))
    running: dict[int, tuple[str, int | None]] = {}  # pid -> (request id, pidfd)
    buf = b""
    # Forked children cannot use CUDA if it was initialised here; the pool refuses such a runner.
    _emit({"ready": True, "pid": os.getpid(), "vmsize": _vm_size_bytes(),
           "cuda_initialized": bool(torch.cuda.is_initialized()), "sandbox": _FEATURES.to_dict()})

    def reap(pid: int) -> None:
        try:
            rpid, status, ru = os.wait4(pid, os.WNOHANG)
        except ChildProcessError:
            rpid, status, ru = pid, 0, None
        if rpid == 0:
            return
        rid, pidfd = running.pop(pid)
        if pidfd is not None:
            sel.unregister(pidfd)
            os.close(pidfd)
        exit_code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        maxrss = int(ru.ru_maxrss) * 1024 if ru is not None else 0
        _emit({"id": rid, "pid": pid, "exit": exit_code, "signal": sig, "maxrss": maxrss})

    while True:
        timeout = None if all(fd is not None for _, fd in running.values()) else 0.05
        for key, _ in sel.select(timeout):
            kind, pid = key.data
            if kind == "child":
                reap(pid)
                continue
            chunk = os.read(stdin.fileno(), 65536)
            if not chunk:  # the pool went away: take our children with us
                for p in list(running):
                    try:
                        os.killpg(p, signal.SIGKILL)
                    except OSError:
                        pass
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if not line.strip():
                    continue
                req = json.loads(line)
                sys.stdout.flush()
                pid = os.fork()
                if pid == 0:
                    _child(req)
                pidfd = None
                if hasattr(os, "pidfd_open"):
                    try:
                        pidfd = os.pidfd_open(pid)
                        sel.register(pidfd, selectors.EVENT_READ, ("child", pid))
                    except OSError:
                        pidfd = None
                running[pid] = (req["id"], pidfd)
                _emit({"id": req["id"], "pid": pid})
        for pid, (_, fd) in list(running.items()):
            if fd is None:
                reap(pid)


if __name__ == "__main__":
    main()
