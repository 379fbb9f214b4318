"""The gateway's generation children: a real zygote forking one sandboxed child per request,
running the real builtin generator.

The task sources below are hostile on purpose: their module-level code runs inside the child
(the builtin generator executes the reference to export it), where it tries to corrupt or forge
the reply stream, hang, die, read secrets, or leave state for the next job.
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


def named(name: str) -> list[int]:
    """Pids of live processes whose comm is `name` (task code sets it with PR_SET_NAME: inside its
    PID namespace it cannot learn its pid as the test sees it)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if open(f"/proc/{entry}/comm").read().strip() == name and pid_alive(int(entry)):
                    found.append(int(entry))
            except OSError:
                pass
    return found


SET_NAME = "import ctypes as _c\n_c.CDLL(None).prctl(15, {name!r}.encode(), 0, 0, 0)\n"


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


def test_child_environment_is_an_allow_list_without_secrets(pool):
    task = hostile_task("import os\n", forward="raise ValueError('ENV ' + ' '.join(sorted(os.environ)))")
    with pytest.raises(KgenError) as info:
        generate(pool, task)
    names = set(info.value.message.split("ENV ", 1)[1].split())
    assert "PATH" in names
    assert not names & {"KGEN_TOKEN", "MY_API_KEY", "DB_PASSWORD", "KGEN_LLM_API_KEY", "KGEN_HOME"}
    env = child_env({"KGEN_TOKEN": "t", "AWS_SECRET_ACCESS_KEY": "s", "PATH": "/bin", "KGEN_LLM_API_KEY": "k",
                     "KGEN_HOME": "/etc/kgen"})
    assert "PATH" in env and not set(env) & {"KGEN_TOKEN", "AWS_SECRET_ACCESS_KEY", "KGEN_LLM_API_KEY", "KGEN_HOME"}


def test_each_request_gets_a_fresh_sandboxed_child(pool, tmp_path, kgen_home):
    """Job A's task reads the token (file and every /proc/*/environ), marks builtins, patches the
    generator module and starts a daemon; job B's unrelated task sees none of it."""
    (kgen_home / "token").write_text("cluster-token-value\n")
    marker = "kgen-mark-" + os.urandom(3).hex()
    job_a = hostile_task(SET_NAME.format(name=marker) + textwrap.dedent(f'''
        import builtins, os, sys, time
        stolen = []
        for path in [{str(kgen_home / "token")!r}]:
            try:
                stolen.append(open(path).read())
            except OSError:
                pass
        for pid in os.listdir("/proc"):
            try:
                stolen.append(open(f"/proc/{{pid}}/environ", "rb").read().decode(errors="replace"))
            except OSError:
                pass
        builtins.KGEN_MARK = stolen or ["marked"]
        import kgen.core.generate.builtin as gen
        gen.BuiltinGenerator.initial = lambda self, task, n: (_ for _ in ()).throw(RuntimeError("poisoned"))
        if os.fork() == 0:
            os.setsid()
            while True:
                time.sleep(1)
    '''), forward="raise ValueError('A: ' + repr(__import__('builtins').KGEN_MARK))")
    with pytest.raises(KgenError) as info:
        generate(pool, job_a)
    assert "cluster-token-value" not in info.value.message
    job_b = hostile_task('''
        import builtins
        assert not hasattr(builtins, "KGEN_MARK"), "saw job A's mark"
    ''')
    cands = generate(pool, job_b)
    assert len(cands) == 1 and "@triton.jit" in cands[0].source
    assert wait_until(lambda: not named(marker), timeout=10)
    assert pool.children >= 2


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
                mode = os.fstat(fd).st_mode
                if fd > 2 and (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
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
                mode = os.fstat(fd).st_mode
                if fd > 2 and (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
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


def test_a_hung_call_times_out_kills_the_child_group_and_the_pool_recovers(pool):
    child_name, helper_name = "kgen-hung-" + os.urandom(2).hex(), "kgen-help-" + os.urandom(2).hex()
    task = hostile_task(SET_NAME.format(name=child_name) + textwrap.dedent(f'''
        import os, subprocess, sys
        helper = subprocess.Popen([sys.executable, "-c", "import ctypes, time; "
                                   "ctypes.CDLL(None).prctl(15, b'{helper_name}', 0, 0, 0); time.sleep(600)"])
    '''), forward="import time; time.sleep(600); return x")
    pool.timeout_s = 8.0
    try:
        with pytest.raises(KgenError) as info:
            generate(pool, task)
    finally:
        pool.timeout_s = 120.0
    assert info.value.code == "child_timeout"
    assert wait_until(lambda: not named(child_name) and not named(helper_name), timeout=10)
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
    name = "kgen-orph-" + os.urandom(2).hex()
    task_src = hostile_task(SET_NAME.format(name=name), forward="import time; time.sleep(600); return x").source
    script = textwrap.dedent(f'''
        from kgen.core.task import task_from_source
        from kgen.daemon.gateway.generation import GeneratorPool
        GeneratorPool(1, 600).call("builtin", {{}}, "initial", (task_from_source({task_src!r}), 1))
    ''')
    gateway = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: named(name), timeout=60)
        gateway.kill()
        gateway.wait(10)
        assert wait_until(lambda: not named(name), timeout=15)
    finally:
        gateway.kill()
        gateway.wait(10)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux-only")
def test_the_process_that_starts_children_is_closed_to_ptrace_and_proc_reads(pool):
    import ctypes

    assert_recovers(pool)
    PR_GET_DUMPABLE = 3
    assert ctypes.CDLL(None).prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0
