#!/usr/bin/env bash
# Set up (first run only) and run the whole test suite, GUI tests included,
# under a virtual X server.  Extra arguments go to pytest.
# The tests run in MRT_TEST_WORKERS processes (default: 2, one per core of the CI
# machine; pytest-xdist, whole files per process so module fixtures are built once);
# MRT_TEST_WORKERS=0 runs them in this process.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/installer/setup.sh" gui,dev
VENV="${MRT_VENV:-$ROOT/.venv}"
cd "$ROOT"
export NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR:-$ROOT/.numba_cache}"
# A private store for anything the tests might open by default.
export MRTDOSE_STORE="${MRTDOSE_STORE:-$(mktemp -d)/store}"
WORKERS="${MRT_TEST_WORKERS:-2}"
PARALLEL=()
if [ "$WORKERS" != 0 ]; then PARALLEL=(-n "$WORKERS" --dist loadfile); fi
exec xvfb-run -a -s "-screen 0 1280x1024x24" "$VENV/bin/python" -m pytest -p no:cacheprovider \
  "${PARALLEL[@]}" "$@"
