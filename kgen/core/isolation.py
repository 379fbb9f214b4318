"""Kernel-enforced isolation for one run of untrusted code (candidates, task module code).

`enter(spec)` is called in a freshly forked, single-threaded child BEFORE any untrusted code is
imported. It returns in a new process that is PID 1 of its own PID namespace; every process the
run starts dies with it. Steps, in the order the kernel requires:

1. unshare(CLONE_NEWUSER | NEWNS | NEWPID | NEWNET), with a uid/gid map of our own ids only
   (setgroups denied). The new network namespace has only a downed loopback: no network at all.
2. In the new mount namespace (made private): a fresh tmpfs on /tmp and /dev/shm (the run's own
   dir is bind-mounted back at its old path when it lived under /tmp), so runs never share /tmp.
3. posix_spawn `sleep infinity` as the namespace's init (PID 1; cheap: no copy of this heavy
   process), then fork the run (PID 2), which continues the caller's code. The original process
   stays outside as a relay: it reaps the run, kills init (so the kernel kills every process
   left in the namespace: double forks, setsid daemons, posix.fork included) and exits the way
   the run exited, so the caller's wait4 sees the run's status and peak RSS. The caller kills the
   relay's process group on timeout (init is in it; PR_SET_PDEATHSIG ties the run to the relay).
4. In the run: a fresh /proc for the namespace (only the run's own processes are visible), then a
   Landlock ruleset (read-only: Python, site-packages, system libraries; read-write: the run dir,
   the private /tmp, a few /dev nodes and /dev/nvidia*; TCP bind/connect denied with ABI >= 4;
   signals and abstract sockets scoped with ABI >= 6). Landlock also refuses ptrace and
   /proc/PID/mem|environ of any process outside the run's domain.
5. RLIMIT_NPROC / RLIMIT_CPU backstops, capabilities dropped, PR_SET_NO_NEW_PRIVS,
   PR_SET_DUMPABLE=0, and last a seccomp filter (it blocks unshare and mount, which steps 1-4 use)
   refusing ptrace, process_vm_*, bpf, keyctl, mount APIs, namespaces, module loading, kexec,
   perf_event_open, io_uring, userfaultfd and the other syscalls a run never needs.

`probe()` reports which of these the kernel supports (it tries each in a throw-away child).
No HTTP, no torch: the CLI, the node and the runners import this module.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import platform
import resource
import signal
import struct
import sys
from dataclasses import dataclass, field

# -- constants -----------------------------------------------------------------------------------
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWTIME = 0x00000080
NAMESPACE_FLAGS = (CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER
                   | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWTIME)

MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_GET_SECCOMP = 21
PR_SET_SECCOMP = 22
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
SECCOMP_MODE_FILTER = 2

AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_AARCH64 = 0xC00000B7
X32_SYSCALL_BIT = 0x40000000

# Landlock (uapi/linux/landlock.h)
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1
LANDLOCK_RULE_NET_PORT = 2
FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1, 2, 4, 8
FS_REMOVE_DIR, FS_REMOVE_FILE, FS_MAKE_CHAR, FS_MAKE_DIR = 16, 32, 64, 128
FS_MAKE_REG, FS_MAKE_SOCK, FS_MAKE_FIFO, FS_MAKE_BLOCK = 256, 512, 1024, 2048
FS_MAKE_SYM, FS_REFER, FS_TRUNCATE, FS_IOCTL_DEV = 4096, 8192, 16384, 32768
NET_BIND_TCP, NET_CONNECT_TCP = 1, 2
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1, 2

FS_READ = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR
FS_WRITE_ALL = (FS_WRITE_FILE | FS_REMOVE_DIR | FS_REMOVE_FILE | FS_MAKE_DIR | FS_MAKE_REG
                | FS_MAKE_SOCK | FS_MAKE_FIFO | FS_MAKE_SYM)

SYSCALLS = {  # name -> (x86_64, aarch64)
    "landlock_create_ruleset": (444, 444), "landlock_add_rule": (445, 445),
    "landlock_restrict_self": (446, 446), "seccomp": (317, 277),
}

# Refused with EPERM inside a run. Numbers per architecture (None: the syscall does not exist there).
DENIED_SYSCALLS: dict[str, tuple[int | None, int | None]] = {
    "ptrace": (101, 117), "process_vm_readv": (310, 270), "process_vm_writev": (311, 271),
    "bpf": (321, 280), "keyctl": (250, 219), "add_key": (248, 217), "request_key": (249, 218),
    "mount": (165, 40), "umount2": (166, 39), "unshare": (272, 97), "setns": (308, 268),
    "kexec_load": (246, 104), "kexec_file_load": (320, 294), "init_module": (175, 105),
    "finit_module": (313, 273), "delete_module": (176, 106), "pivot_root": (155, 41),
    "chroot": (161, 51), "perf_event_open": (298, 241), "userfaultfd": (323, 282),
    "open_tree": (428, 428), "move_mount": (429, 429), "fsopen": (430, 430), "fsconfig": (431, 431),
    "fsmount": (432, 432), "fspick": (433, 433), "mount_setattr": (442, 442),
    "io_uring_setup": (425, 425), "io_uring_enter": (426, 426), "io_uring_register": (427, 427),
    "pidfd_getfd": (438, 438), "process_madvise": (440, 440), "kcmp": (312, 272),
    "name_to_handle_at": (303, 264), "open_by_handle_at": (304, 265), "swapon": (167, 224),
    "swapoff": (168, 225), "reboot": (169, 142), "acct": (163, 89), "quotactl": (179, 60),
    "iopl": (172, None), "ioperm": (173, None), "lookup_dcookie": (212, 18), "vhangup": (153, 58),
    "fanotify_init": (300, 262), "settimeofday": (164, 170), "clock_settime": (227, 112),
    "adjtimex": (159, 171), "clock_adjtime": (305, 266), "sethostname": (170, 161),
    "setdomainname": (171, 162), "personality": (135, 92), "uselib": (134, None),
    "quotactl_fd": (443, 443), "move_pages": (279, 239), "migrate_pages": (256, 238),
}
# clone3 takes its flags in a struct seccomp cannot read: ENOSYS makes libc fall back to clone,
# whose flags are checked (no new namespaces).
CLONE = (56, 220)
CLONE3 = (435, 435)


class IsolationError(Exception):
    """A step of the sandbox set-up failed where the probe said it would work."""


@dataclass
class Features:
    user_ns: bool = False
    mount_ns: bool = False
    pid_ns: bool = False
    net_ns: bool = False
    landlock_abi: int = 0
    seccomp: bool = False
    no_new_privs: bool = False
    cgroup_v2_delegated: bool = False
    arch: str = ""
    errors: dict = field(default_factory=dict)

    REQUIRED = ("user_ns", "mount_ns", "pid_ns", "net_ns", "landlock", "seccomp", "no_new_privs")

    def has(self, name: str) -> bool:
        if name == "landlock":
            return self.landlock_abi >= 1
        return bool(getattr(self, name))

    @property
    def missing(self) -> list[str]:
        return [name for name in self.REQUIRED if not self.has(name)]

    @property
    def level(self) -> str:
        """"full", "partial:<missing,...>" or "off" (nothing the sandbox needs works)."""
        missing = self.missing
        if not missing:
            return "full"
        if len(missing) == len(self.REQUIRED):
            return "off"
        return "partial:" + ",".join(missing)

    def to_dict(self) -> dict:
        return {"level": self.level, "missing": self.missing, "user_ns": self.user_ns,
                "mount_ns": self.mount_ns, "pid_ns": self.pid_ns, "net_ns": self.net_ns,
                "landlock_abi": self.landlock_abi, "seccomp": self.seccomp,
                "no_new_privs": self.no_new_privs, "cgroup_v2_delegated": self.cgroup_v2_delegated,
                "arch": self.arch, "errors": dict(self.errors)}

    @classmethod
    def from_dict(cls, data: dict) -> Features:
        names = ("user_ns", "mount_ns", "pid_ns", "net_ns", "landlock_abi", "seccomp", "no_new_privs",
                 "cgroup_v2_delegated", "arch")
        return cls(**{k: data[k] for k in names if k in data})


# -- libc ----------------------------------------------------------------------------------------
_libc = None


def kill_run(pid: int) -> None:
    """SIGKILL a run's process group, or the process alone where it leads none; gone is fine.
    (The PID namespace takes the rest of the run with its init.)"""
    for send in (os.killpg, os.kill):
        try:
            send(pid, signal.SIGKILL)
        except OSError:
            pass


def _lib():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
        _libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
        _libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    return _libc


def _arch_index() -> int | None:
    machine = platform.machine()
    if machine in ("x86_64", "AMD64"):
        return 0
    if machine in ("aarch64", "arm64"):
        return 1
    return None


def _nr(name: str) -> int:
    idx = _arch_index()
    if idx is None:
        raise IsolationError(f"unsupported architecture {platform.machine()}")
    return SYSCALLS[name][idx]


def _check(ret: int, what: str) -> int:
    if ret < 0:
        err = ctypes.get_errno()
        raise IsolationError(f"{what}: {os.strerror(err)} (errno {err})")
    return ret


def _prctl(option: int, arg2: int = 0, arg3: int = 0) -> int:
    return _lib().prctl(option, arg2, arg3, 0, 0)


def unshare(flags: int) -> None:
    _check(_lib().unshare(ctypes.c_int(flags)), "unshare")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = (lambda s: s.encode() if s is not None else None)
    _check(_lib().mount(enc(source), enc(target), enc(fstype), flags, enc(data)), f"mount {target}")


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 when Landlock is absent or disabled."""
    if _arch_index() is None:
        return 0
    ret = _lib().syscall(ctypes.c_long(_nr("landlock_create_ruleset")), None, ctypes.c_size_t(0),
                         ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION))
    return int(ret) if ret > 0 else 0


def set_undumpable() -> bool:
    """PR_SET_DUMPABLE=0: other processes of the same uid cannot ptrace us or read our
    /proc/PID/{mem,environ}. exec resets it, so every exec'd runner sets it in its own main()."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        return _prctl(PR_SET_DUMPABLE, 0) == 0
    except (OSError, AttributeError):
        return False


# -- the steps -----------------------------------------------------------------------------------
def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _enter_namespaces(flags: int) -> None:
    uid, gid = os.getuid(), os.getgid()
    # Our own /proc/self/uid_map belongs to root while we are not dumpable (the zygote is not):
    # dumpable for the few instructions it takes to write the maps, before any untrusted code.
    _prctl(PR_SET_DUMPABLE, 1)
    try:
        unshare(flags)
        if flags & CLONE_NEWUSER:
            _write("/proc/self/setgroups", "deny")
            _write("/proc/self/uid_map", f"{uid} {uid} 1\n")
            _write("/proc/self/gid_map", f"{gid} {gid} 1\n")
    finally:
        _prctl(PR_SET_DUMPABLE, 0)


def _private_mounts(workdir: str) -> None:
    """/tmp and /dev/shm become fresh tmpfs; the run dir and the Python paths the run must read
    (an interpreter, venv or checkout that lives under /tmp) are bound back at their paths."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    wanted = {os.path.realpath(p) for p in [workdir, *_python_paths()]}
    kept = sorted(p for p in wanted if (p == "/tmp" or p.startswith("/tmp/")) and os.path.isdir(p))
    keep = {p: os.open(p, os.O_PATH | os.O_DIRECTORY) for p in kept}
    try:
        _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=1g")
        for path, fd in keep.items():
            os.makedirs(path, mode=0o700, exist_ok=True)
            _mount(f"/proc/self/fd/{fd}", path, None, MS_BIND)
    finally:
        for fd in keep.values():
            os.close(fd)
    if os.path.isdir("/dev/shm"):
        try:
            _mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=256m")
        except IsolationError:
            pass  # then /dev/shm is simply not in the Landlock rules: unreachable


def _fresh_proc() -> bool:
    """A /proc of the new PID namespace (only the run's processes). Fails in some containers whose
    /proc has masked paths; Landlock still denies other processes' mem/environ there."""
    try:
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        return True
    except IsolationError:
        return False


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _fs_rights(abi: int) -> int:
    rights = (1 << 13) - 1  # ABI 1: EXECUTE .. MAKE_SYM
    if abi >= 2:
        rights |= FS_REFER
    if abi >= 3:
        rights |= FS_TRUNCATE
    if abi >= 5:
        rights |= FS_IOCTL_DEV
    return rights


def _python_paths() -> list[str]:
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             os.path.dirname(os.path.realpath(sys.executable))}
    for entry in sys.path:
        if entry and os.path.isdir(entry) and ("site-packages" in entry or "dist-packages" in entry
                                               or entry.startswith(tuple(p for p in paths if p))):
            paths.add(entry)
    # kgen itself (a source checkout is on PYTHONPATH: only its package dir, not the checkout).
    paths.add(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return sorted(p for p in paths if p and p != "/")


SYSTEM_READ = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/opt/conda", "/usr/local",
               "/sys", "/proc", "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d",
               "/etc/localtime", "/etc/passwd", "/etc/group", "/etc/nsswitch.conf", "/etc/hosts",
               "/etc/alternatives", "/etc/os-release", "/etc/mime.types")
# Device nodes one by one, never /dev as a whole: a run as root could read raw disks there.
DEV_RW = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/shm")


def landlock_rules(workdir: str, extra_read: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """(path, "ro" | "rw") pairs the run may reach; everything else is denied."""
    rules = [(p, "ro") for p in (*SYSTEM_READ, *_python_paths(), *extra_read)]
    rules += [(p, "rw") for p in DEV_RW]
    try:
        rules += [(os.path.join("/dev", n), "rw") for n in sorted(os.listdir("/dev"))
                  if n.startswith("nvidia") or n in ("dxg",)]
    except OSError:
        pass
    rules += [("/tmp", "rw"), (workdir, "rw")]
    return rules


def _landlock(abi: int, workdir: str, extra_read: tuple[str, ...]) -> None:
    lib = _lib()
    handled = _fs_rights(abi)
    attr = _RulesetAttr(handled, (NET_BIND_TCP | NET_CONNECT_TCP) if abi >= 4 else 0,
                        (SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL) if abi >= 6 else 0)
    size = ctypes.sizeof(_RulesetAttr) if abi >= 6 else (16 if abi >= 4 else 8)
    rfd = _check(lib.syscall(ctypes.c_long(_nr("landlock_create_ruleset")), ctypes.byref(attr),
                             ctypes.c_size_t(size), ctypes.c_uint32(0)), "landlock_create_ruleset")
    try:
        file_only = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV
        for path, mode in landlock_rules(workdir, extra_read):
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                is_dir = os.path.isdir(path)
                access = FS_READ if mode == "ro" else (FS_READ | FS_WRITE_ALL | FS_REFER | FS_TRUNCATE
                                                       | FS_IOCTL_DEV)
                if mode == "rw" and not is_dir:
                    access |= FS_WRITE_FILE
                access &= handled
                if not is_dir:
                    access &= file_only
                rule = _PathBeneath(access, fd)
                _check(lib.syscall(ctypes.c_long(_nr("landlock_add_rule")), ctypes.c_int(rfd),
                                   ctypes.c_int(LANDLOCK_RULE_PATH_BENEATH), ctypes.byref(rule),
                                   ctypes.c_uint32(0)), f"landlock_add_rule {path}")
            finally:
                os.close(fd)
        _check(lib.syscall(ctypes.c_long(_nr("landlock_restrict_self")), ctypes.c_int(rfd),
                           ctypes.c_uint32(0)), "landlock_restrict_self")
    finally:
        os.close(rfd)


# -- seccomp -------------------------------------------------------------------------------------
BPF_LD_W_ABS = 0x20
BPF_JEQ_K = 0x15
BPF_JGE_K = 0x35
BPF_JSET_K = 0x45
BPF_RET_K = 0x06
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
# struct seccomp_data: int nr; u32 arch; u64 ip; u64 args[6]
_OFF_NR, _OFF_ARCH, _OFF_ARG0_LO = 0, 4, 16


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k & 0xFFFFFFFF)


def seccomp_program(arch_index: int) -> bytes:
    """The BPF filter: EPERM for DENIED_SYSCALLS, for clone with namespace flags and for any other
    syscall ABI (i386 int 0x80, x32); ENOSYS for clone3; everything else allowed."""
    arch = (AUDIT_ARCH_X86_64, AUDIT_ARCH_AARCH64)[arch_index]
    eperm = SECCOMP_RET_ERRNO | errno.EPERM
    denied = sorted({nr for nrs in DENIED_SYSCALLS.values() if (nr := nrs[arch_index]) is not None})
    prog = [
        _insn(BPF_LD_W_ABS, 0, 0, _OFF_ARCH),
        _insn(BPF_JEQ_K, 1, 0, arch),
        _insn(BPF_RET_K, 0, 0, eperm),
        _insn(BPF_LD_W_ABS, 0, 0, _OFF_NR),
    ]
    if arch_index == 0:
        prog += [_insn(BPF_JGE_K, 0, 1, X32_SYSCALL_BIT), _insn(BPF_RET_K, 0, 0, eperm)]
    for nr in denied:
        prog += [_insn(BPF_JEQ_K, 0, 1, nr), _insn(BPF_RET_K, 0, 0, eperm)]
    prog += [_insn(BPF_JEQ_K, 0, 1, CLONE3[arch_index]), _insn(BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | errno.ENOSYS)]
    # clone: the low 32 bits of the flags argument must carry no CLONE_NEW* bit.
    prog += [
        _insn(BPF_JEQ_K, 0, 3, CLONE[arch_index]),
        _insn(BPF_LD_W_ABS, 0, 0, _OFF_ARG0_LO),
        _insn(BPF_JSET_K, 0, 1, NAMESPACE_FLAGS),
        _insn(BPF_RET_K, 0, 0, eperm),
        _insn(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),
    ]
    return b"".join(prog)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _seccomp() -> None:
    idx = _arch_index()
    if idx is None:
        raise IsolationError(f"no seccomp filter for architecture {platform.machine()}")
    prog = seccomp_program(idx)
    buf = ctypes.create_string_buffer(prog, len(prog))
    fprog = _SockFprog(len(prog) // 8, ctypes.cast(buf, ctypes.c_void_p))
    _check(_lib().prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(fprog), 0, 0), "seccomp")


def _drop_capabilities() -> None:
    """The user namespace gave us every capability inside it; the run needs none."""
    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    header = Header(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (Data * 2)()
    _check(_lib().capset(ctypes.byref(header), ctypes.byref(data)), "capset")


def _limit(which: int, value: int) -> None:
    try:
        soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, value if hard == resource.RLIM_INFINITY else hard))
    except (ValueError, OSError):
        pass


# -- entry ---------------------------------------------------------------------------------------
@dataclass
class Spec:
    workdir: str
    features: Features
    cpu_seconds: int = 0            # RLIMIT_CPU backstop (0: none)
    max_tasks: int = 1024           # RLIMIT_NPROC backstop (threads count as tasks)
    extra_read: tuple = ()          # more read-only paths (e.g. a task's data dir)


def _exit_like(status: int) -> None:
    """Leave the way a waited-for process left (same exit code, or killed by the same signal)."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError):
            pass
        _limit(resource.RLIMIT_CORE, 0)
        os.kill(os.getpid(), sig)
        os._exit(128 + sig)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 70)


def _read_all(fd: int) -> bytes:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 64)
        except InterruptedError:
            continue
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _relay(init_pid: int, status_r: int) -> None:
    """Outside the namespace: wait for its init, then leave as the run left. Never returns."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    reported = _read_all(status_r)
    while True:
        try:
            os.waitpid(init_pid, 0)
            break
        except InterruptedError:
            continue
        except ChildProcessError:
            break
    try:
        status = int(reported.decode() or "x")
    except ValueError:
        os._exit(70)  # init died before the run ended (killed from outside)
    _exit_like(status)


def _init(run_pid: int, status_w: int) -> None:
    """PID 1 of the run's namespace: reap everything, report the run's wait status, and exit
    when the run exits, which makes the kernel kill whatever the run left behind."""
    while True:
        try:
            pid, status = os.wait()
        except InterruptedError:
            continue
        except ChildProcessError:
            os._exit(70)
        if pid == run_pid:
            os.write(status_w, str(status).encode())
            os._exit(0)


INIT_PROGRAM = ("/bin/sleep", "/usr/bin/sleep")


def _spawn_init() -> int | None:
    """PID 1 of the new namespace: a `sleep infinity` started with posix_spawn (no copy of this
    heavy process); None when there is no sleep binary."""
    for path in INIT_PROGRAM:
        if os.access(path, os.X_OK):
            try:
                return os.posix_spawn(path, [path, "infinity"], {}, setsigdef=(signal.SIGTERM,))
            except OSError:
                continue
    return None


def _enter_pid_namespace(flags: int) -> None:
    """Returns in the run, PID 2 of a new PID namespace; the caller stays outside as a relay.

    The first process created in the namespace is its init: a `sleep` (cheap to start, nothing to
    attack); the run is the relay's next child (PID 2), so signals act on it normally. The relay
    reaps the run, then kills init, which makes the kernel kill everything left in the namespace.
    The runner kills the relay's whole process group on timeout, init included. Without a sleep
    binary, init is a fork of this process that reaps until the run ends.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    init_pid = _spawn_init()
    if init_pid is None:
        status_r, status_w = os.pipe()
        init_pid = os.fork()
        if init_pid:
            os.close(status_w)
            _relay(init_pid, status_r)
        os.close(status_r)
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if flags & CLONE_NEWNS:
            _fresh_proc()
        run_pid = os.fork()
        if run_pid:
            _init(run_pid, status_w)
        os.close(status_w)
        return
    run_pid = os.fork()
    if run_pid:
        _relay_direct(run_pid, init_pid)
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # the relay dies (timeout kill): so does the run
    if flags & CLONE_NEWNS:
        _fresh_proc()


def _relay_direct(run_pid: int, init_pid: int) -> None:
    """Outside the namespace: reap the run, end the namespace, leave as the run left."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    status = None
    while True:
        try:
            _, status = os.waitpid(run_pid, 0)
            break
        except InterruptedError:
            continue
        except ChildProcessError:
            break
    try:
        os.kill(init_pid, signal.SIGKILL)
        os.waitpid(init_pid, 0)
    except (OSError, ChildProcessError):
        pass
    if status is None:
        os._exit(70)
    _exit_like(status)


def enter(spec: Spec) -> list[str]:
    """Isolate the calling (forked, single-threaded) process as far as `spec.features` allow.

    Returns in a new process (PID 2 of a fresh PID namespace when pid_ns is available, under a
    minimal init); the caller's original process stays behind as a relay of the exit status. Returns the list of
    layers that were skipped because the kernel lacks them. Raises IsolationError when a layer
    the probe found working fails: the caller must not run untrusted code then.
    """
    f = spec.features
    skipped = [name for name in f.missing]
    flags = 0
    if f.user_ns:
        flags |= CLONE_NEWUSER
        flags |= CLONE_NEWNS if f.mount_ns else 0
        flags |= CLONE_NEWPID if f.pid_ns else 0
        flags |= CLONE_NEWNET if f.net_ns else 0
    elif os.geteuid() == 0:
        flags |= (CLONE_NEWNS if f.mount_ns else 0) | (CLONE_NEWPID if f.pid_ns else 0) | (CLONE_NEWNET if f.net_ns else 0)
    if flags:
        _enter_namespaces(flags)
    if flags & CLONE_NEWNS:
        _private_mounts(spec.workdir)
    if flags & CLONE_NEWPID:
        _enter_pid_namespace(flags)
    if f.landlock_abi >= 1:
        _landlock(f.landlock_abi, spec.workdir, tuple(spec.extra_read))
    if spec.cpu_seconds:
        _limit(resource.RLIMIT_CPU, int(spec.cpu_seconds))
    if spec.max_tasks:
        _limit(resource.RLIMIT_NPROC, int(spec.max_tasks))
    _limit(resource.RLIMIT_CORE, 0)
    if flags & CLONE_NEWUSER:
        _drop_capabilities()
    if f.no_new_privs:
        _check(_prctl(PR_SET_NO_NEW_PRIVS, 1), "PR_SET_NO_NEW_PRIVS")
    _prctl(PR_SET_DUMPABLE, 0)
    if f.seccomp:
        _seccomp()
    return skipped


# -- probe ---------------------------------------------------------------------------------------
def _cgroup_v2_delegated() -> bool:
    try:
        with open("/proc/self/cgroup") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return False
    unified = [line.split(":", 2)[2] for line in lines if line.startswith("0::")]
    if not unified or not os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        return False
    path = "/sys/fs/cgroup" + unified[0]
    return os.access(path, os.W_OK) and os.access(os.path.join(path, "cgroup.subtree_control"), os.W_OK)


def _try_in_child(step) -> str | None:
    """Run `step()` in a throw-away fork; None when it worked, else the error text."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            step()
            msg = b""
        except BaseException as exc:  # noqa: BLE001
            msg = f"{exc}".encode()[:500] or b"failed"
        try:
            os.write(w, msg)
        finally:
            os._exit(0)
    os.close(w)
    chunks = []
    while True:
        chunk = os.read(r, 4096)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    if not os.WIFEXITED(status):
        return f"probe child died (status {status})"
    text = b"".join(chunks).decode("utf-8", "replace")
    return text or None


def probe() -> Features:
    """What this kernel lets an unprivileged run use, each layer tried in a throw-away child."""
    f = Features(arch=platform.machine())
    if not sys.platform.startswith("linux"):
        f.errors["platform"] = f"{sys.platform} is not Linux"
        return f
    try:
        _lib()
    except OSError as exc:
        f.errors["libc"] = str(exc)
        return f

    def ns(flags):
        def step():
            _enter_namespaces(flags)
            if flags & CLONE_NEWNS:
                _mount(None, "/", None, MS_REC | MS_PRIVATE)
                _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=1m")
            if flags & CLONE_NEWPID:
                pid = os.fork()
                if pid == 0:
                    os._exit(0 if os.getpid() == 1 else 1)
                _, status = os.waitpid(pid, 0)
                if os.waitstatus_to_exitcode(status) != 0:
                    raise IsolationError("the first child is not PID 1 of the new namespace")
        return step

    for name, flags in (("user_ns", CLONE_NEWUSER), ("mount_ns", CLONE_NEWUSER | CLONE_NEWNS),
                        ("pid_ns", CLONE_NEWUSER | CLONE_NEWPID), ("net_ns", CLONE_NEWUSER | CLONE_NEWNET)):
        err = _try_in_child(ns(flags))
        setattr(f, name, err is None)
        if err:
            f.errors[name] = err
    f.landlock_abi = landlock_abi() if _arch_index() is not None else 0
    if not f.landlock_abi:
        f.errors["landlock"] = "landlock_create_ruleset(VERSION) failed: Landlock is absent or disabled"
    f.no_new_privs = _lib().prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) >= 0
    if _arch_index() is None:
        f.errors["seccomp"] = f"no filter for architecture {platform.machine()}"
    else:
        def seccomp_step():
            _check(_prctl(PR_SET_NO_NEW_PRIVS, 1), "PR_SET_NO_NEW_PRIVS")
            _seccomp()
            if _lib().unshare(ctypes.c_int(CLONE_NEWUSER)) == 0:
                raise IsolationError("the filter did not refuse unshare")
        err = _try_in_child(seccomp_step)
        f.seccomp = err is None
        if err:
            f.errors["seccomp"] = err
    f.cgroup_v2_delegated = _cgroup_v2_delegated()
    return f


_cached: Features | None = None


def features() -> Features:
    """probe(), once per process."""
    global _cached
    if _cached is None:
        _cached = probe()
    return _cached


if __name__ == "__main__":
    print(json.dumps(probe().to_dict()))
