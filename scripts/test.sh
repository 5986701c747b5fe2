#!/usr/bin/env bash
# Sets everything up, lints, and runs the whole test suite (CPU only; GPU tests skip without CUDA).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
# bpy 4.5 can hang at exit when a test leaves classes registered: never let CI wait 90 minutes.
exec timeout 1500 .venv/bin/python -m pytest "$@"
