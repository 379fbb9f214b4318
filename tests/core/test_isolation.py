"""kgen.core.isolation: each layer tried for real in a forked child, as root and as `nobody`."""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kgen.core import isolation

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux kernel features")

FEATURES = isolation.probe()
needs_full = pytest.mark.skipif(FEATURES.level != "full", reason=f"sandbox is {FEATURES.level} here")

# Runs inside the sandbox; every hostile action records what happened.
HOSTILE = textwrap.dedent("""
    import ctypes, json, os, socket, sys
    out = {"pid": os.getpid()}
    def attempt(name, fn):
        try:
            fn()
            out[name] = "ALLOWED"
        except BaseException as exc:
            out[name] = f"{type(exc).__name__}: {exc}"
    attempt("read_secret", lambda: open(SECRET).read())
    attempt("parent_environ", lambda: open(f"/proc/{PARENT}/environ", "rb").read())
    attempt("parent_mem", lambda: open(f"/proc/{PARENT}/mem", "r+b"))
    attempt("connect", lambda: socket.create_connection(("127.0.0.1", PORT), timeout=2))
    attempt("write_outside", lambda: open(OUTSIDE, "w").write("x"))
    attempt("write_var_tmp", lambda: open(VAR_TMP, "w").write("x"))
    attempt("write_run_dir", lambda: open(os.path.join(WORKDIR, "ok.txt"), "w").write("x"))
    attempt("write_tmp", lambda: open(PRIVATE, "w").write("x"))
    attempt("list_dev", lambda: os.listdir("/dev"))
    attempt("read_disk", lambda: [open(d, "rb").read(512) for d in ("/dev/sda", "/dev/vda", "/dev/nvme0n1", "/dev/xvda")
                                  if os.path.exists(d)] and None)
    libc = ctypes.CDLL(None, use_errno=True)
    def sys_ok(ret):
        if ret != 0:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    attempt("unshare", lambda: sys_ok(libc.unshare(0x10000000)))
    attempt("ptrace", lambda: sys_ok(libc.ptrace(16, PARENT, 0, 0)))
    attempt("mount", lambda: sys_ok(libc.mount(b"tmpfs", b"/mnt", b"tmpfs", 0, None)))
    attempt("fork", lambda: os.waitpid(os.fork() or os._exit(0), 0))
    json.dump(out, open(os.path.join(WORKDIR, "out.json"), "w"))
""")


def run_sandboxed(tmp_path: Path, features: isolation.Features) -> dict:
    workdir = tmp_path / "run"
    workdir.mkdir()
    secret = tmp_path / "secret"
    secret.write_text("s3cret")
    outside = tmp_path / "outside.txt"
    private = f"/tmp/kgen-private-{os.getpid()}.txt"
    var_tmp = Path("/var/tmp") / f"kgen-isolation-test-{os.getpid()}"
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    srv.settimeout(0.5)
    consts = dict(SECRET=str(secret), PARENT=os.getpid(), PORT=srv.getsockname()[1], OUTSIDE=str(outside), VAR_TMP=str(var_tmp), PRIVATE=private,
                  WORKDIR=str(workdir))
    code = "".join(f"{k} = {v!r}\n" for k, v in consts.items()) + HOSTILE
    pid = os.fork()
    if pid == 0:
        status = 0
        try:
            isolation.enter(isolation.Spec(str(workdir), features))
            exec(compile(code, "hostile", "exec"), {})
        except BaseException:  # noqa: BLE001
            import traceback

            traceback.print_exc()
            status = 1
        os._exit(status)
    _, status = os.waitpid(pid, 0)
    try:
        conn, _ = srv.accept()
        conn.close()
        accepted = True
    except OSError:
        accepted = False
    srv.close()
    assert os.waitstatus_to_exitcode(status) == 0
    out = json.loads((workdir / "out.json").read_text())
    out["accepted"] = accepted
    out["outside_exists"] = outside.exists() or var_tmp.exists()
    if var_tmp.exists():
        var_tmp.unlink()
    out["tmp_leaked"] = os.path.exists(private)
    if os.path.exists(private):
        os.unlink(private)
    return out


def test_probe_reports_every_feature_and_a_level():
    data = FEATURES.to_dict()
    for key in ("user_ns", "mount_ns", "pid_ns", "net_ns", "landlock_abi", "seccomp", "no_new_privs",
                "cgroup_v2_delegated", "level", "missing"):
        assert key in data
    assert data["level"] == "full" or data["missing"]
    assert isolation.Features.from_dict(data).level == FEATURES.level


def test_level_names_what_is_missing():
    f = isolation.Features(user_ns=True, mount_ns=True, pid_ns=True, net_ns=True, landlock_abi=0,
                           seccomp=True, no_new_privs=True)
    assert f.level == "partial:landlock" and f.missing == ["landlock"]
    assert isolation.Features().level == "off"


@needs_full
def test_hostile_actions_fail_inside_the_sandbox(tmp_path):
    out = run_sandboxed(tmp_path, FEATURES)
    assert out["pid"] == 2  # under the namespace's own init
    assert out["write_run_dir"] == "ALLOWED" and out["write_tmp"] == "ALLOWED" and out["fork"] == "ALLOWED"
    # write_outside targets the real /tmp: inside, /tmp is a private tmpfs, so the write lands there.
    for name in ("read_secret", "parent_environ", "parent_mem", "connect", "write_var_tmp", "unshare", "list_dev",
                 "ptrace", "mount"):
        assert out[name] != "ALLOWED", (name, out)
    assert not out["accepted"] and not out["outside_exists"] and not out["tmp_leaked"]
    for name in ("unshare", "ptrace", "mount"):
        assert "Operation not permitted" in out[name]


def test_without_isolation_the_same_actions_succeed(tmp_path):
    """The control: the hostile script is able to do harm when nothing contains it."""
    out = run_sandboxed(tmp_path, isolation.Features())
    assert out["read_secret"] == "ALLOWED" and out["write_outside"] == "ALLOWED"
    assert out["connect"] == "ALLOWED" and out["accepted"] and out["outside_exists"]


@needs_full
def _named(name: str) -> list[str]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                status = Path(f"/proc/{entry}/status").read_text()
            except OSError:
                continue
            if f"Name:\t{name}\n" in status and "State:\tZ" not in status:
                found.append(entry)
    return found


@needs_full
def test_processes_left_behind_die_with_the_run(tmp_path):
    marker = tmp_path / "pids"
    name = "kgen-left-" + os.urandom(2).hex()
    pid = os.fork()
    if pid == 0:
        try:
            isolation.enter(isolation.Spec(str(tmp_path), FEATURES))
            import ctypes
            import posix
            import time

            if posix.fork() == 0:
                os.setsid()
                if posix.fork() == 0:
                    ctypes.CDLL(None).prctl(15, name.encode(), 0, 0, 0)  # PR_SET_NAME
                    with open(marker, "w") as fh:
                        fh.write("alive")
                    while True:
                        time.sleep(1)
                os._exit(0)
            for _ in range(100):
                if marker.exists():
                    break
                time.sleep(0.05)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert marker.read_text() == "alive"
    # The daemon ran (it wrote the marker); once the run is over, it is gone.
    import time

    deadline = time.monotonic() + 5
    while _named(name) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _named(name) == []


def test_seccomp_program_checks_the_architecture_first():
    for idx, arch in ((0, isolation.AUDIT_ARCH_X86_64), (1, isolation.AUDIT_ARCH_AARCH64)):
        prog = isolation.seccomp_program(idx)
        assert len(prog) % 8 == 0 and len(prog) // 8 < 4096
        insns = [struct.unpack("=HBBI", prog[i:i + 8]) for i in range(0, len(prog), 8)]
        assert insns[0] == (0x20, 0, 0, 4)           # load arch
        assert insns[1] == (0x15, 1, 0, arch)         # native arch: go on
        assert insns[2][0] == 0x06 and insns[2][3] == 0x00050000 | 1  # anything else: EPERM
        assert insns[-1] == (0x06, 0, 0, 0x7FFF0000)  # default allow
        assert isolation.DENIED_SYSCALLS["ptrace"][idx] in {k for c, _, _, k in insns if c == 0x15}


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv") or not os.path.exists("/usr/bin/python3"),
                    reason="needs root (to switch to nobody), setpriv and a system python3")
def test_an_unprivileged_user_gets_the_same_layers():
    """As `nobody` (the module is stdlib-only, so the system Python runs it from a copy)."""
    import tempfile

    copy = Path(tempfile.mkdtemp(prefix="kgen-iso-"))
    os.chmod(copy, 0o755)
    shutil.copy(isolation.__file__, copy / "isolation.py")
    os.chmod(copy / "isolation.py", 0o644)
    out = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3",
                          str(copy / "isolation.py")], capture_output=True, text=True, timeout=60, cwd="/")
    if out.returncode != 0:
        pytest.skip(f"cannot run as nobody here: {out.stderr.strip()[:200]}")
    shutil.rmtree(copy, ignore_errors=True)
    data = json.loads(out.stdout)
    assert data["level"] == FEATURES.level, data
