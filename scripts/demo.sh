#!/usr/bin/env bash
# Sets everything up, renders the built-in demo object and reconstructs it into demo-output/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m engine demo --out "${1:-demo-output}"
