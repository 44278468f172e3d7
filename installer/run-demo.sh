#!/usr/bin/env bash
# Set up (first run only) and open the workstation on the bundled demo patient.
#
# With a display (X11 or Wayland): opens the window on the demo patient.
# Without one: says so, runs the self-running tour under a virtual display
# (xvfb-run), which imports the demo, goes through every step by its widgets,
# saves a screenshot per step and writes the demo report (run under the
# Lu-177 DOTATATE protocol, as the tour's physicist, inside the tour process:
# no password is ever written to disk), then says where everything is.
#
# Usage: bash installer/run-demo.sh [OUT_DIR]     (headless; default ./demo_out/tour)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/installer/setup.sh" gui
BIN="${MRT_VENV:-$ROOT/.venv}/bin"

if [ -n "${DISPLAY:-}" ] || [ -n "${WAYLAND_DISPLAY:-}" ]; then
  exec "$BIN/mrt-dosimetry" --demo "$@"
fi

OUT_DIR="${1:-./demo_out/tour}"
mkdir -p "$OUT_DIR"
OUT_DIR="$(cd "$OUT_DIR" && pwd)"
echo "run-demo: no display (\$DISPLAY and \$WAYLAND_DISPLAY are unset): running the"
echo "run-demo: self-running tour under a virtual display (xvfb-run) instead of opening a window."
if ! command -v xvfb-run >/dev/null 2>&1; then
  echo "run-demo: xvfb-run is missing; install the Debian package xvfb (installer/setup.sh does)" >&2
  exit 1
fi
status=0
xvfb-run -a -s "-screen 0 1280x1024x24" "$BIN/mrt-dosimetry" --demo --tour "$OUT_DIR" || status=$?
echo
echo "run-demo: screenshots of each step: $OUT_DIR/NN-<step>.png"
echo "run-demo: what each step showed:    $OUT_DIR/tour.json"
report="$(ls -1 "$OUT_DIR"/report/*.pdf 2>/dev/null | head -n 1 || true)"
if [ -n "$report" ]; then
  echo "run-demo: the demo report:          $report"
else
  echo "run-demo: no demo report was written (see the messages above)"
fi
echo "run-demo: the tour's case store:    $OUT_DIR/store (accounts with random passwords, not kept)"
if [ "$status" -ne 0 ]; then
  echo "run-demo: the tour reported a failed step (exit status $status); the lines above name it" >&2
fi
exit "$status"
