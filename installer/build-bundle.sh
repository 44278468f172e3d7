#!/usr/bin/env bash
# Build the one-folder desktop bundle dist/mrt-dosimetry/ (mrt-dosimetry + mrtdose) with
# the virtual environment's PyInstaller (extra 'bundle'), then print the time taken and
# the bundle's size.  See installer/README.md.
#
# Usage: bash installer/build-bundle.sh [DIST_DIR]     (default: <repo>/dist)
# Environment: MRT_VENV (default <repo>/.venv), BUILD_DIR (default <repo>/build).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MRT_VENV:-$ROOT/.venv}"
DIST_DIR="${1:-$ROOT/dist}"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"

if [ -x "$VENV/bin/pyinstaller" ]; then
  PYINSTALLER="$VENV/bin/pyinstaller"
elif [ -x "$VENV/Scripts/pyinstaller.exe" ]; then   # Git Bash on Windows
  PYINSTALLER="$VENV/Scripts/pyinstaller.exe"
else
  echo "build-bundle: PyInstaller is not installed in $VENV: install the 'bundle' extra" >&2
  echo "build-bundle:   bash installer/setup.sh gui,dev,bundle   (or: $VENV/bin/python -m pip install -e \".[gui,bundle]\")" >&2
  exit 1
fi

echo "build-bundle: $("$PYINSTALLER" --version | sed 's/^/PyInstaller /') -> $DIST_DIR/mrt-dosimetry"
start=$(date +%s)
cd "$ROOT"
"$PYINSTALLER" --noconfirm --clean --log-level WARN \
  --distpath "$DIST_DIR" --workpath "$BUILD_DIR" installer/mrt-dosimetry.spec
end=$(date +%s)

BUNDLE="$DIST_DIR/mrt-dosimetry"
for exe in mrt-dosimetry mrtdose; do
  if [ ! -e "$BUNDLE/$exe" ] && [ ! -e "$BUNDLE/$exe.exe" ]; then
    echo "build-bundle: the build did not produce $BUNDLE/$exe" >&2
    exit 1
  fi
done
size="$(du -sh "$BUNDLE" | cut -f1)"
echo "build-bundle: built $BUNDLE in $((end - start)) s; size $size"
echo "build-bundle: check it with: bash installer/smoke-bundle.sh $DIST_DIR"
