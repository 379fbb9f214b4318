#!/usr/bin/env bash
# Idempotent: a second virtualenv, .venv-compat, holding the oldest pair kgen supports on the
# machines it is measured on (triton 3.6; torch's CPU build, whose interpreter path is what
# triton 3.6 changes). scripts/check.sh runs a slice of the suite in it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TRITON_COMPAT=${TRITON_COMPAT:-3.6.*}
if [ ! -x .venv-compat/bin/python ]; then
  "$PY" -m venv .venv-compat
fi
stamp=.venv-compat/.kgen-installed
want=$( (cat pyproject.toml scripts/compat_venv.sh; echo "$TRITON_COMPAT") | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  pip() { .venv-compat/bin/python -m pip -q --disable-pip-version-check "$@" >&2; }
  pip install --upgrade pip
  if ! .venv-compat/bin/python -c 'import torch' 2>/dev/null; then
    pip install "torch==2.13.0"
  fi
  pip install "triton==$TRITON_COMPAT"
  # kgen's own dependencies minus tomli-w: the compat job also proves kgen runs without it.
  pip install "typer>=0.26" "rich>=13" "aiohttp>=3.9" "numpy>=1.26" "pytest>=8" "pytest-timeout>=2.3" "pytest-xdist>=3.5" "setuptools>=68"
  pip install --no-deps --no-build-isolation -e .
  if .venv-compat/bin/python -c 'import tomli_w' 2>/dev/null; then
    pip uninstall -y tomli-w
  fi
  echo "$want" > "$stamp"
fi
