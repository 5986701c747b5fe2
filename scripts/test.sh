#!/usr/bin/env bash
# Sets everything up, lints, and runs the whole test suite (CPU only; GPU tests skip without CUDA).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
# bpy 4.5 can hang at exit when a test leaves classes registered: never let CI wait 90 minutes.
# -k: an engine job in a test turns SIGTERM into a clean cancel (SystemExit), so a TERM alone need not stop pytest.
exec timeout -k 60 1500 .venv/bin/python -m pytest "$@"
