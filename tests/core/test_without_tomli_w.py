"""tomli-w is only for writing the config file: kgen imports, reads config and verifies without it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

BLOCK = "import sys; sys.modules['tomli_w'] = None\n"  # `import tomli_w` now raises ImportError


def _kgen(args: list[str], env_home) -> subprocess.CompletedProcess:
    code = BLOCK + "from kgen.cli import main; sys.argv = ['kgen'] + sys.argv[1:]; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300,
                          cwd=REPO_ROOT, env={"KGEN_HOME": str(env_home), "TRITON_INTERPRET": "1",
                                              "PATH": "/usr/bin:/bin", "HOME": str(env_home)})


def test_verify_and_config_reads_work_and_config_writes_say_what_is_missing(tmp_path):
    done = _kgen(["verify", "examples/elementwise.py", "examples/elementwise_triton.py", "--json"], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert '"status": "correct"' in done.stdout
    done = _kgen(["config", "get", "node.port"], tmp_path)
    assert done.returncode == 0 and "9001" in done.stdout, done.stderr
    done = _kgen(["config", "set", "node.port", "9100"], tmp_path)
    assert done.returncode != 0
    assert "tomli-w" in done.stderr.strip().splitlines()[-1]
