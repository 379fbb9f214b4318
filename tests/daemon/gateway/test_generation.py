"""The gateway's generation children: real worker processes running the real builtin generator.

The task sources below are hostile on purpose: their module-level code runs inside the child
(the builtin generator executes the reference to export it), where it tries to corrupt or forge
the reply stream, hang, die, or read secrets.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest

from gw_helpers import TASK_SRC, wait_until

from kgen.core.errors import KgenError, TaskError
from kgen.core.generate import Candidate
from kgen.core.task import task_from_source
from kgen.daemon.gateway.generation import GeneratorPool, PooledGenerator, TaskCheckPool, child_env

SECRETS = {"KGEN_TOKEN": "cluster-token-value", "MY_API_KEY": "k", "DB_PASSWORD": "p", "KGEN_LLM_API_KEY": "llm-key"}


def hostile_task(prelude: str, forward: str = "return torch.relu(x) * 2.0") -> object:
    """TASK_SRC with `prelude` run at import (inside the child) and a replaced forward body."""
    source = TASK_SRC.replace("import torch.nn as nn\n", "import torch.nn as nn\n" + textwrap.dedent(prelude), 1)
    source = source.replace("return torch.relu(x) * 2.0", forward, 1)
    return task_from_source(source, "hostile")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes (its parent may be the test process itself).
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture(scope="module")
def pool():
    saved = {k: os.environ.get(k) for k in SECRETS}
    os.environ.update(SECRETS)   # children started by this pool see what a gateway's would
    pool = GeneratorPool(1, 120.0, log_prefix="kgen-test")
    try:
        yield pool
    finally:
        pool.close()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def generate(pool, task) -> list[Candidate]:
    return pool.call("builtin", {}, "initial", (task, 1))


def assert_recovers(pool) -> None:
    cands = generate(pool, task_from_source(TASK_SRC, "relu"))
    assert len(cands) == 1 and "ModelNew" in cands[0].source and "@triton.jit" in cands[0].source


def test_generate_in_a_child_with_user_output_relayed_as_log_lines(pool, capfd):
    task = hostile_task('''
        import os, sys, warnings
        warnings.warn("first line\\n  second line", FutureWarning)
        print("a print to stdout")
        print("a python-level line", file=sys.stderr)
        os.write(1, b"a raw fd-1 line\\n")
        os.write(2, b"a raw fd-2 line\\n")
    ''')
    cands = PooledGenerator(pool, "builtin").initial(task, 1)
    assert len(cands) == 1 and isinstance(cands[0], Candidate)
    assert "@triton.jit" in cands[0].source and cands[0].params["kernels"] == 1
    seen = ""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "raw fd-2" not in seen:
        time.sleep(0.1)
        seen += capfd.readouterr().err
    time.sleep(0.3)
    seen += capfd.readouterr().err
    lines = [line for line in seen.splitlines() if line.strip()]
    assert all(line.startswith("kgen-test: child_output pid=") for line in lines), lines
    for text in ("FutureWarning: first line second line", "a print to stdout", "a python-level line",
                 "a raw fd-1 line", "a raw fd-2 line"):
        assert any(text in line for line in lines), (text, lines)


def test_child_environment_has_no_secrets_but_keeps_the_llm_key(pool, tmp_path):
    out = tmp_path / "env.txt"
    task = hostile_task(f'''
        import os
        open({str(out)!r}, "w").write("\\n".join(sorted(os.environ)))
    ''')
    assert_recovers(pool)   # warm child, started under the fixture's environment
    generate(pool, task)
    names = set(out.read_text().split("\n"))
    assert "KGEN_LLM_API_KEY" in names
    assert not names & {"KGEN_TOKEN", "MY_API_KEY", "DB_PASSWORD"}
    assert set(child_env({"KGEN_TOKEN": "t", "AWS_SECRET_ACCESS_KEY": "s", "PATH": "/bin", "KGEN_LLM_API_KEY": "k"})) \
        == {"PATH", "KGEN_LLM_API_KEY"}


def test_garbage_and_a_pickle_on_the_reply_stream_are_never_unpickled(pool, tmp_path):
    sentinel = tmp_path / "pwned"
    task = hostile_task(f'''
        import os, pickle, stat, struct

        class Exploit:
            def __reduce__(self):
                return (os.system, ("touch " + {str(sentinel)!r},))

        blob = pickle.dumps(Exploit())
        for name in os.listdir("/proc/self/fd"):
            fd = int(name)
            try:
                if fd > 2 and stat.S_ISFIFO(os.fstat(fd).st_mode):
                    os.write(fd, struct.pack("!i", len(blob)) + blob + b"\\n" + blob + b"\\n")
            except OSError:
                pass
    ''')
    with pytest.raises(KgenError) as info:
        generate(pool, task)
    assert info.value.code == "child_protocol"
    assert "out of protocol" in info.value.message
    time.sleep(0.5)
    assert not sentinel.exists()
    assert_recovers(pool)
    assert not sentinel.exists()


def test_a_forged_json_reply_only_yields_a_checked_error(pool):
    forged = ('{"id": %d, "ok": false, "messages": [], '
              '"error": {"type": "SystemExit", "code": "forged", "message": "forged reply"}}\\n')
    task = hostile_task(f'''
        import os, stat
        for name in os.listdir("/proc/self/fd"):
            fd = int(name)
            try:
                if fd > 2 and stat.S_ISFIFO(os.fstat(fd).st_mode):
                    for guess in range(1, 200):
                        os.write(fd, ({forged!r} % guess).encode())
            except OSError:
                pass
    ''')
    with pytest.raises(KgenError) as info:   # a KgenError whatever the forged reply names
        generate(pool, task)
    assert type(info.value) is KgenError
    # The real reply, still queued behind the forged ones, must not answer the next call.
    assert_recovers(pool)
    assert_recovers(pool)


def test_a_hung_call_times_out_kills_the_child_group_and_the_pool_recovers(pool, tmp_path):
    pids = tmp_path / "pids"
    task = hostile_task(f'''
        import os, subprocess, sys
        helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        open({str(pids)!r}, "w").write(f"{{os.getpid()}} {{helper.pid}}")
    ''', forward="import time; time.sleep(600); return x")
    pool.timeout_s = 4.0
    try:
        with pytest.raises(KgenError) as info:
            generate(pool, task)
    finally:
        pool.timeout_s = 120.0
    assert info.value.code == "child_timeout"
    child, helper = (int(p) for p in pids.read_text().split())
    assert wait_until(lambda: not pid_alive(child) and not pid_alive(helper), timeout=10)
    assert_recovers(pool)


def test_a_child_that_exits_mid_call_is_reported_crashed_and_replaced(pool):
    task = hostile_task("import os\n", forward="os._exit(7)")
    with pytest.raises(KgenError) as info:
        generate(pool, task)
    assert info.value.code == "child_crashed" and "exit 7" in info.value.message
    assert_recovers(pool)


def test_generator_errors_come_back_as_kgen_errors(pool):
    task = hostile_task("", forward="raise ValueError('no export for you')")
    with pytest.raises(KgenError) as info:
        generate(pool, task)
    assert "no export for you" in info.value.message
    assert_recovers(pool)   # an error reply keeps the child


def test_task_checks_run_in_children_and_bad_tasks_raise_task_error():
    checks = TaskCheckPool(1, 180.0, log_prefix="kgen-test")
    try:
        info = checks.check_task(task_from_source(TASK_SRC, "relu"), 120.0)
        assert info["outputs"][0]["shape"] == [64]
        with pytest.raises(TaskError) as bad:
            checks.check_task(hostile_task("", forward="raise RuntimeError('reference is broken')"), 120.0)
        assert "reference is broken" in bad.value.message
    finally:
        checks.close()
    with pytest.raises(KgenError) as stopped:
        checks.check_task(task_from_source(TASK_SRC, "relu"), 120.0)
    assert stopped.value.code == "stopping"


def test_children_leave_when_the_gateway_is_killed(tmp_path):
    pid_file = tmp_path / "child.pid"
    task_src = hostile_task(f'''
        import os
        open({str(pid_file)!r}, "w").write(str(os.getpid()))
    ''', forward="import time; time.sleep(600); return x").source
    script = textwrap.dedent(f'''
        from kgen.core.task import task_from_source
        from kgen.daemon.gateway.generation import GeneratorPool
        GeneratorPool(1, 600).call("builtin", {{}}, "initial", (task_from_source({task_src!r}), 1))
    ''')
    gateway = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: pid_file.exists() and pid_file.read_text(), timeout=60)
        child = int(pid_file.read_text())
        assert pid_alive(child)
        gateway.kill()
        gateway.wait(10)
        assert wait_until(lambda: not pid_alive(child), timeout=15)
    finally:
        gateway.kill()
        gateway.wait(10)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux-only")
def test_the_process_that_starts_children_is_closed_to_ptrace_and_proc_reads(pool):
    import ctypes

    assert_recovers(pool)
    PR_GET_DUMPABLE = 3
    assert ctypes.CDLL(None).prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0
