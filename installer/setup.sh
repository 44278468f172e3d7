#!/usr/bin/env bash
# Set up everything the workstation needs on a fresh Debian machine with Python 3.11:
# system libraries for Qt (xcb) and Xvfb, DICOM validation tools, and a virtual
# environment in .venv with the package installed (editable) and its extras.
#
# Usage: bash installer/setup.sh [EXTRAS]     (EXTRAS default: gui,dev)
# Sourced by installer/run-demo.sh and installer/run-tests.sh.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EXTRAS="${1:-gui,dev}"
VENV="${MRT_VENV:-$ROOT/.venv}"

# Debian packages: Qt's xcb platform plugin, Xvfb for headless GUI tests and
# screenshots, dicom3tools (dciodvfy) to validate what we write, dcmtk (storescu,
# findscu, movescu) as the PACS peer of the networking tests, poppler-utils
# to look at PDF reports.
APT_PACKAGES=(xvfb xauth libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0
  libxcb-render-util0 libxcb-xkb1 libxcb-randr0 libxcb-shape0 libxcb-xinerama0 libxkbcommon-x11-0
  libegl1 libgl1 libgl1-mesa-dri libosmesa6 libglib2.0-0 libfontconfig1 libdbus-1-3 x11-apps imagemagick dicom3tools dcmtk poppler-utils)

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
fi
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for cand in python3.11 python3; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      PY="$cand"; break
    fi
  done
fi
if [ -z "$PY" ]; then
  echo "setup: Python 3.11 is required (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating virtual environment $VENV"
  if ! "$PY" -m venv "$VENV" 2>/dev/null; then
    SUDO=""; if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
    "$PY" -m venv "$VENV"
  fi
  "$VENV/bin/python" -m pip install -q --upgrade pip >"$VENV/pip-upgrade.log" 2>&1 || true
fi

# Reinstall only when the dependency list changed.
# The stamp holds the pyproject hash and the extras installed; asking for a subset
# of what is installed (e.g. "gui" after "gui,dev") installs nothing.
STAMP="$VENV/.mrt-installed"
HASH="$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)"
need_install=1
if [ -f "$STAMP" ] && [ "$(cut -d' ' -f1 "$STAMP")" = "$HASH" ]; then
  have=",$(cut -d' ' -f2 "$STAMP"),"
  need_install=0
  for e in ${EXTRAS//,/ }; do
    case "$have" in *",$e,"*) ;; *) need_install=1 ;; esac
  done
fi
if [ "$need_install" = 1 ]; then
  if [ -f "$STAMP" ] && [ "$(cut -d' ' -f1 "$STAMP")" = "$HASH" ]; then
    # keep the extras already installed
    EXTRAS="$(printf '%s,%s' "$(cut -d' ' -f2 "$STAMP")" "$EXTRAS" | tr ',' '\n' | sort -u | paste -sd, -)"
  fi
  echo "setup: installing the workstation and its Python dependencies ($EXTRAS)"
  LOG="$VENV/pip-install.log"
  if ! "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$ROOT[$EXTRAS]" >"$LOG" 2>&1; then
    grep -v -E "^WARNING: Location .* is ignored" "$LOG" | tail -40 >&2
    echo "setup: pip install failed (full log: $LOG)" >&2
    exit 1
  fi
  "$VENV/bin/python" -c "import dosimetry_core, numpy, pydicom, SimpleITK, sqlalchemy" \
    || { echo "setup: installation failed" >&2; exit 1; }
  echo "$HASH $EXTRAS" > "$STAMP"
fi
