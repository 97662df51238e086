#!/usr/bin/env bash
# Runs the pharos-client tests in a fresh venv against a real `pharos serve`.
#   PHAROS_BIN=/path/to/pharos clients/python/run_tests.sh [pytest args...]
# Without PHAROS_BIN the binary is $CARGO_TARGET_DIR (or ./target)/debug/pharos; build it
# first with `cargo build -p pharos`. VENV (default: a temporary directory) keeps the venv.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${VENV:-$(mktemp -d)/venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet "$here[test]"
cd "$repo"
exec "$venv/bin/python" -m pytest -q clients/python/tests "$@"
