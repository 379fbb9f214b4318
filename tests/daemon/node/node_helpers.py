"""Real kgen daemons in subprocesses on ephemeral ports, and tiny task/candidate sources (node and e2e tests)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time

TOKEN = "node-test-token"


class Daemon:
    """A kgen daemon subprocess; stderr is drained in a thread so the pipe never fills.

    `name` is the daemon's log prefix (gateway or node); the daemon is ready once it logs
    `kgen-<name>: listening url=...`, which also tells the ephemeral port it bound.
    """

    def __init__(self, args: list[str], env: dict, name: str, timeout: float = 90.0):
        self.name = name
        self.lines: list[str] = []
        self.proc = subprocess.Popen([sys.executable, "-m", "kgen", *args], env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        self.url = None
        found = threading.Event()

        def drain():
            for line in self.proc.stderr:
                self.lines.append(line.rstrip())
                match = re.search(rf"kgen-{name}: listening url=(\S+)", line)
                if match and not found.is_set():
                    self.url = match.group(1)
                    found.set()
            found.set()

        threading.Thread(target=drain, daemon=True).start()
        if not found.wait(timeout) or self.url is None:
            self.stop()
            raise RuntimeError(f"{name} did not start: " + "\n".join(self.lines[-20:]))

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def daemon_env(tmp_path, **extra) -> dict:
    """The caller's environment without addresses or systemd variables a test must not inherit; `extra` wins."""
    env = dict(os.environ)
    for key in ("KGEN_GATEWAY_URL", "KGEN_NODE_GATEWAY", "NOTIFY_SOCKET", "KGEN_GATEWAY_PORT",
                "KGEN_GATEWAY_DB", "KGEN_GATEWAY_HOST", "WATCHDOG_USEC", "WATCHDOG_PID"):
        env.pop(key, None)
    env.update({"KGEN_HOME": str(tmp_path), "KGEN_TOKEN": TOKEN, "TRITON_INTERPRET": "1", **extra})
    return env


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


TASK_SRC = '''
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return torch.relu(x) * 2.0


def get_inputs():
    return [torch.randn(64)]


def get_init_inputs():
    return []
'''

HONEST_SRC = '''
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def relu2_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)
    tl.store(out_ptr + offs, tl.maximum(x, 0.0) * 2.0, mask=mask)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        x = x.contiguous()
        out = torch.empty_like(x)
        n = x.numel()
        relu2_kernel[(triton.cdiv(n, 64),)](x, out, n, BLOCK=64)
        return out
'''

HANGING_SRC = '''
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        while True:
            pass
'''
