#!/usr/bin/env bash
# Lint and type-check kgen/ (configuration in pyproject.toml: [tool.ruff], [tool.mypy]).
# Exits non-zero on any finding. Needs the dev extra: bash scripts/bootstrap.sh installs it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
echo "ruff check kgen"
"$PY" -m ruff check kgen
echo "mypy (packages = kgen)"
"$PY" -m mypy
