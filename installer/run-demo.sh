#!/usr/bin/env bash
# Set up (first run only) and open the workstation on the bundled demo patient.
# Needs a display (X11/Wayland); on a headless machine use: xvfb-run -a bash installer/run-demo.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/installer/setup.sh" gui
exec "${MRT_VENV:-$ROOT/.venv}/bin/mrt-dosimetry" --demo "$@"
