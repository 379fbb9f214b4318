"""Submitted task code through a real gateway and node: job A's module-level code hunts for the
gateway's token (the token file and every /proc/*/environ), marks the interpreter and patches
the builtin generator; job B, unrelated, must see none of it, and the token must appear in no
event, result or error body."""

from __future__ import annotations

import json

import pytest

from gw_helpers import TASK_SRC, TOKEN, read_events, request, start_gateway, start_node, submit_body, wait_until
from kgen.core import isolation

pytestmark = pytest.mark.skipif(isolation.features().level != "full",
                                reason=f"sandbox is {isolation.features().level} here")

HOSTILE_PRELUDE = '''
import builtins, glob, os
_stolen = []
for _path in glob.glob(TOKEN_GLOB):
    try:
        _stolen.append(open(_path).read())
    except OSError:
        pass
for _pid in os.listdir("/proc"):
    try:
        _env = open(f"/proc/{_pid}/environ", "rb").read().decode(errors="replace")
        if "KGEN_TOKEN" in _env:
            _stolen.append(_env)
    except OSError:
        pass
builtins.KGEN_MARK = "job A was here: " + " ".join(_stolen)
try:
    import importlib, sys
    _gen = importlib.import_module("kg" + "en.core.generate.builtin")  # spelled so the screen lets A's candidate run
    def _patched(orig):
        def run(self, *args):
            out = orig(self, *args)
            for c in (out if isinstance(out, list) else [out] if out is not None else []):
                c.source = c.source + "\\n# injected by job A: " + builtins.KGEN_MARK.replace("\\n", " ") + "\\n"
            return out
        return run
    for _name in ("initial", "mutate", "repair"):
        setattr(_gen.BuiltinGenerator, _name, _patched(getattr(_gen.BuiltinGenerator, _name)))
except ImportError:
    pass
'''

CHECK_PRELUDE = '''
import builtins
if hasattr(builtins, "KGEN_MARK"):
    raise RuntimeError("saw another job's mark: " + builtins.KGEN_MARK)
'''


def with_prelude(prelude: str) -> str:
    return TASK_SRC.replace("import torch.nn as nn\n", "import torch.nn as nn\n" + prelude, 1)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    home = tmp_path_factory.mktemp("gw-isolation")
    (home / "token").write_text(TOKEN + "\n")
    gateway = start_gateway(home, home / "gateway.db", "--heartbeat-ttl", "10")
    node = start_node(home, "--gateway", gateway.url)
    try:
        assert wait_until(lambda: request(gateway.url + "/api/v1/workers").json()["workers"], 60)
        yield gateway, home
    finally:
        node.stop()
        gateway.stop()


def run_job(gateway, task: str) -> tuple[str, list[dict], dict]:
    reply = request(f"{gateway.url}/api/v1/jobs", "POST", submit_body(task=task))
    assert TOKEN not in reply.body.decode(errors="replace")
    assert reply.status == 201, reply.body
    job_id = reply.json()["job_id"]
    events = read_events(gateway.url, job_id, follow=True, timeout=280)
    result = request(f"{gateway.url}/api/v1/jobs/{job_id}/result")
    return job_id, events, result.json()


def test_task_code_leaves_nothing_for_the_next_job_and_never_sees_the_token(cluster):
    gateway, home = cluster
    hostile = with_prelude(HOSTILE_PRELUDE.replace("TOKEN_GLOB", repr(str(home / "*token*"))))
    _, events_a, result_a = run_job(gateway, hostile)
    assert events_a[-1]["type"] == "end"
    _, events_b, result_b = run_job(gateway, with_prelude(CHECK_PRELUDE))
    assert events_b[-1] == {"type": "end", "status": "succeeded"}, events_b[-3:]
    assert "injected by job A" not in result_b["best"]["source"]
    everything = json.dumps([events_a, result_a, events_b, result_b])
    assert TOKEN not in everything
    # Job A itself is an ordinary job: its code ran in children of its own and found nothing.
    assert events_a[-1]["status"] == "succeeded", events_a[-4:]
