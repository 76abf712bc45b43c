#!/usr/bin/env bash
# Creates .venv with Python 3.11+ and installs OneStop (editable) with its test tools.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
    echo "OneStop needs Python 3.11 or newer (found: $("$PY" --version 2>&1))" >&2
    exit 1
fi
if ! "$PY" -c 'import venv, ensurepip' 2>/dev/null; then
    echo "installing python3-venv (Debian/Ubuntu)" >&2
    if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    else sudo apt-get update -qq && sudo apt-get install -y -qq python3-venv >/dev/null; fi
fi
# The browser tests drive Debian's chromium (never a downloaded browser build) with Playwright.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium (Debian) for the browser tests" >&2
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null \
        || echo "warning: chromium could not be installed; the browser tests will skip (and fail under CI)" >&2
fi
# Receipts are printed in Thai: a Thai TrueType font (Debian's TLWG fonts, e.g. Garuda).
if ! [ -f /usr/share/fonts/truetype/tlwg/Garuda.ttf ] && command -v apt-get >/dev/null; then
    echo "installing fonts-thai-tlwg (Thai fonts for receipts)" >&2
    if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq fonts-thai-tlwg >/dev/null
    else sudo apt-get update -qq && sudo apt-get install -y -qq fonts-thai-tlwg >/dev/null; fi
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"
# The official JSON-Schema-Test-Suite, as shipped inside the jsonschema sdist, for
# tests/unit/test_json_schema_suite.py (kept out of git; fetched once).
SUITE_DIR=.cache/json-schema-test-suite
if [ ! -f "$SUITE_DIR/jsonschema-4.26.0.tar.gz" ]; then
    mkdir -p "$SUITE_DIR"
    .venv/bin/python -m pip download -q --no-deps --no-binary :all: jsonschema==4.26.0 -d "$SUITE_DIR" \
        || echo "could not download the JSON-Schema-Test-Suite; its test will skip (and fail under CI)" >&2
fi
