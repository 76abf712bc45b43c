#!/usr/bin/env bash
# Sets up .venv and starts the whole back office with demo data (embedded PostgreSQL unless
# ONESTOP_DATABASE_URL is set). Prints the URL and development tokens.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-venv.sh
exec .venv/bin/onestop run "$@"
