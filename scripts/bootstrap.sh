#!/usr/bin/env bash
# Idempotent set-up: a project-local virtualenv with the CPU build of torch and kgen installed editable.
# The torch pin comes first so that no later resolver step pulls a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.kgen-installed
want=$(cat pyproject.toml scripts/bootstrap.sh | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >&2
  if ! .venv/bin/python -c 'import torch' 2>/dev/null; then
    .venv/bin/python -m pip install -q --disable-pip-version-check "torch==2.13.0" >&2
  fi
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]' >&2
  echo "$want" > "$stamp"
fi
