#!/usr/bin/env bash
# Sets up .venv and runs the whole test suite (unit, integration, e2e).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-venv.sh
exec .venv/bin/python -m pytest "$@"
