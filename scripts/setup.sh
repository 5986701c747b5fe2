#!/usr/bin/env bash
# Creates .venv (Python 3.11) with Meshlift's pinned dependencies. Safe to run again: it only
# reinstalls when pyproject.toml changed. Nothing is downloaded at run time afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.meshlift-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip setuptools wheel
  .venv/bin/python -m pip install --quiet -e ".[dev,cluster]"
  touch "$stamp"
fi
