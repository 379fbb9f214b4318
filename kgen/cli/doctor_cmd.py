"""`kgen doctor`: what this machine's kernel offers the run sandbox (kgen.core.isolation)."""

from __future__ import annotations

import typer

# name in the probe -> what it gives a run
LAYERS = (
    ("user_ns", "user namespace", "unprivileged namespaces, uid/gid map of the runner's own ids"),
    ("mount_ns", "mount namespace", "private /tmp and /dev/shm, a /proc of the run's own PID namespace"),
    ("pid_ns", "PID namespace", "every process a run starts dies with it"),
    ("net_ns", "network namespace", "no network at all (a loopback that is down)"),
    ("landlock", "Landlock", "file access limited to the run dir + read-only system paths and named /dev nodes; no TCP (ABI >= 4)"),
    ("seccomp", "seccomp", "ptrace, process_vm_*, bpf, keyctl, mount, unshare/setns, kexec, modules refused"),
    ("no_new_privs", "no_new_privs", "no privilege gain through exec (setuid binaries)"),
    ("cgroup_v2_delegated", "cgroup v2 delegation", "optional: not needed (the PID namespace kills leftovers)"),
)


def doctor(as_json: bool = typer.Option(False, "--json", help="Print the probe as JSON.")) -> None:
    """Print which run-sandbox features this machine supports (each tried for real in a throw-away child)."""
    from kgen.core import isolation

    features = isolation.probe()
    if as_json:
        from kgen.cli._output import print_json

        print_json(features.to_dict())
        return
    from kgen.cli._output import out

    console = out()
    for name, title, gives in LAYERS:
        ok = features.has(name)
        extra = f" (ABI {features.landlock_abi})" if name == "landlock" and ok else ""
        why = f": {features.errors[name]}" if not ok and features.errors.get(name) else ""
        mark = "ok  " if ok else ("--  " if name == "cgroup_v2_delegated" else "MISSING")
        console.print(f"{mark:7} {title}{extra}: {gives}{why}", markup=False)
    console.print(f"sandbox level: {features.level}", markup=False)
    if features.missing:
        console.print("a node refuses to start at this level unless --insecure-sandbox "
                      "(config node.insecure_sandbox) is given; local runs warn", markup=False)


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
