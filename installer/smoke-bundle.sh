#!/usr/bin/env bash
# Smoke test of a built bundle: it starts, prints its version and runs the demo headless.
#
# Usage: bash installer/smoke-bundle.sh DIST_DIR     (the folder holding mrt-dosimetry/)
#
# Checks, in order (any failure: a line saying which, exit status 1):
#   1. `mrtdose --version` and `mrt-dosimetry --version` (QT_QPA_PLATFORM=offscreen)
#      print the same version;
#   2. on a fresh temporary store: `mrtdose demo --json` imports the demo patient,
#      `mrtdose run CASE --protocol lu177-dotatate --json` exits 0 and its JSON has a
#      kidney absorbed dose (organs.kidneys.dose_gy, a positive number of Gy), and the
#      numba kernels it compiled were cached in NUMBA_CACHE_DIR;
#   3. `mrtdose batch` of that case on a local Dask cluster (one worker process, which
#      the frozen program starts from itself) gives the same kidney dose;
#   4. the GUI starts offscreen on that store with --demo, opens the demo case and
#      runs for GUI_SECONDS (default 40) without an error, a traceback or an exit;
#      it is then stopped.
#   With SMOKE_TOUR=1 and xvfb-run on the machine, also the whole self-running tour
#   (`mrt-dosimetry --demo --tour OUT`, minutes) under Xvfb.
# The bundle's numba cache goes to a temporary NUMBA_CACHE_DIR unless one is set, so a
# run starts cold, like a first start on a user's machine.
set -euo pipefail

DIST_DIR="${1:-}"
if [ -z "$DIST_DIR" ]; then
  echo "usage: bash installer/smoke-bundle.sh DIST_DIR" >&2
  exit 2
fi
BUNDLE="$DIST_DIR/mrt-dosimetry"
GUI_SECONDS="${GUI_SECONDS:-40}"
PROTOCOL="lu177-dotatate"

fail() {
  echo "smoke-bundle: FAILED: $*" >&2
  exit 1
}

exe() {
  if [ -x "$BUNDLE/$1" ]; then echo "$BUNDLE/$1"
  elif [ -x "$BUNDLE/$1.exe" ]; then echo "$BUNDLE/$1.exe"
  else fail "no executable $1 in $BUNDLE (build it: bash installer/build-bundle.sh)"
  fi
}
MRTDOSE="$(exe mrtdose)"
GUI="$(exe mrt-dosimetry)"

WORK="$(mktemp -d)"
GUI_PID=""
cleanup() {
  if [ -n "$GUI_PID" ]; then kill "$GUI_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
export NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR:-$WORK/numba}"
export MRTDOSE_STORE="$WORK/store"   # never the user's default store
unset MRTDOSE_USER MRTDOSE_PASSWORD
STORE="$WORK/store"
t0=$(date +%s)

# 1. versions --------------------------------------------------------------------------
cli_version="$("$MRTDOSE" --version 2>&1)" || fail "mrtdose --version exited non-zero: $cli_version"
gui_version="$(QT_QPA_PLATFORM=offscreen "$GUI" --version 2>&1)" \
  || fail "mrt-dosimetry --version exited non-zero: $gui_version"
cli_number="${cli_version##* }"
gui_number="${gui_version##* }"
case "$cli_version" in "mrtdose "[0-9]*) ;; *) fail "mrtdose --version printed '$cli_version'" ;; esac
case "$gui_version" in "mrt-dosimetry "[0-9]*) ;; *) fail "mrt-dosimetry --version printed '$gui_version'" ;; esac
[ "$cli_number" = "$gui_number" ] || fail "versions differ: '$cli_version' vs '$gui_version'"
echo "smoke-bundle: ok  version $cli_number (mrtdose and mrt-dosimetry)"

# 2. the demo pipeline, headless -------------------------------------------------------
"$MRTDOSE" --store "$STORE" demo --json >"$WORK/demo.json" 2>"$WORK/demo.err" \
  || fail "mrtdose demo exited non-zero: $(tail -5 "$WORK/demo.err")"
case_id="$(sed -n 's/.*"case_id": *"\([^"]*\)".*/\1/p' "$WORK/demo.json" | head -n 1)"
[ -n "$case_id" ] || fail "mrtdose demo printed no case_id: $(head -c 300 "$WORK/demo.json")"
echo "smoke-bundle: ok  demo patient imported as $case_id ($(($(date +%s) - t0)) s so far)"

"$MRTDOSE" --store "$STORE" run "$case_id" --protocol "$PROTOCOL" --json \
  >"$WORK/run.json" 2>"$WORK/run.err" \
  || fail "mrtdose run $case_id --protocol $PROTOCOL exited non-zero: $(tail -5 "$WORK/run.err")"
PY="$(command -v python3 || command -v python || true)"
if [ -n "$PY" ]; then
  kidney="$("$PY" -c '
import json, math, sys
data = json.load(open(sys.argv[1], encoding="utf-8"))
dose = data["organs"]["kidneys"]["dose_gy"]
assert isinstance(dose, (int, float)) and math.isfinite(dose) and dose > 0, dose
print(f"{dose:.3f}")
' "$WORK/run.json" 2>"$WORK/parse.err")" \
    || fail "the run JSON has no positive kidney dose (organs.kidneys.dose_gy): $(tail -1 "$WORK/parse.err")"
else
  # no Python on this machine: the JSON is indented, one key a line
  grep -q '"kidneys"' "$WORK/run.json" || fail "the run JSON has no kidneys"
  kidney="$(grep -A12 '"kidneys"' "$WORK/run.json" | sed -n 's/.*"dose_gy": *\([0-9.eE+-]*\).*/\1/p' | head -n 1)"
  [ -n "$kidney" ] || fail "the run JSON has no kidney dose_gy"
fi
echo "smoke-bundle: ok  mrtdose run: kidney dose $kidney Gy ($(($(date +%s) - t0)) s so far)"
# the run's numba kernels (voxel fits, VOI fractions; cache=True) were cached where the
# bundle says: NUMBA_CACHE_DIR, not numba's own ~/.cache/numba (installer/bundle/mrt_bundle_numba.py)
cached="$(find "$NUMBA_CACHE_DIR" -name '*.nbi' 2>/dev/null | wc -l | tr -d ' ')"
[ "$cached" -gt 0 ] || fail "numba cached no kernel in NUMBA_CACHE_DIR=$NUMBA_CACHE_DIR"
echo "smoke-bundle: ok  numba cached $cached kernels in NUMBA_CACHE_DIR"

# 3. the same case as a cohort batch on a local Dask cluster --------------------------
# (the frozen program starts a worker process from itself: multiprocessing.freeze_support)
echo "$case_id" >"$WORK/cases.txt"
"$MRTDOSE" --store "$STORE" batch "$WORK/cases.txt" --protocol "$PROTOCOL" --scheduler local:1 \
  --force --out "$WORK/batch" --json >"$WORK/batch.json" 2>"$WORK/batch.err" \
  || fail "mrtdose batch --scheduler local:1 exited non-zero: $(tail -5 "$WORK/batch.err")"
if [ -n "$PY" ]; then
  "$PY" -c '
import json, math, sys
events = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8") if line.strip()]
done = [e for e in events if e.get("event") == "finished"]
assert len(done) == 1, events
dose = done[0]["organs"]["kidneys"]
assert math.isclose(dose, float(sys.argv[2]), rel_tol=1e-3), (dose, sys.argv[2])
' "$WORK/batch.json" "$kidney" 2>"$WORK/parse.err" \
    || fail "the batch did not give the kidney dose of the run: $(tail -1 "$WORK/parse.err")"
else
  grep -q '"event": "finished"' "$WORK/batch.json" || fail "the batch finished no case"
fi
echo "smoke-bundle: ok  mrtdose batch on a local Dask worker: same kidney dose ($(($(date +%s) - t0)) s so far)"

# 4. the GUI starts offscreen on the demo ----------------------------------------------
QT_QPA_PLATFORM=offscreen "$GUI" --store "$STORE" --demo >"$WORK/gui.out" 2>"$WORK/gui.err" &
GUI_PID=$!
waited=0
while [ "$waited" -lt "$GUI_SECONDS" ]; do
  sleep 1
  waited=$((waited + 1))
  if ! kill -0 "$GUI_PID" 2>/dev/null; then
    status=0; wait "$GUI_PID" || status=$?
    GUI_PID=""
    fail "the GUI exited after ${waited} s (status $status): $(tail -15 "$WORK/gui.err")"
  fi
done
kill "$GUI_PID" 2>/dev/null || true
wait "$GUI_PID" 2>/dev/null || true
GUI_PID=""
# what the user would have seen as an error dialog is logged as a WARNING/ERROR line
if grep -E -q "Traceback|ERROR|WARNING|failed:|cannot be loaded|could not" "$WORK/gui.err"; then
  fail "the GUI reported a problem while opening the demo: $(grep -E -m 5 -A 3 "Traceback|ERROR|WARNING|failed:|cannot be loaded|could not" "$WORK/gui.err")"
fi
echo "smoke-bundle: ok  GUI ran ${GUI_SECONDS} s offscreen on the demo case without an error"

# optional: the whole tour under Xvfb -------------------------------------------------
if [ "${SMOKE_TOUR:-0}" = 1 ]; then
  command -v xvfb-run >/dev/null 2>&1 || fail "SMOKE_TOUR=1 needs xvfb-run (Debian package xvfb)"
  xvfb-run -a -s "-screen 0 1280x1024x24" "$GUI" --demo --tour "$WORK/tour" >"$WORK/tour.log" 2>&1 \
    || fail "the tour failed: $(tail -15 "$WORK/tour.log")"
  echo "smoke-bundle: ok  tour passed ($(ls "$WORK"/tour/*.png | wc -l) screenshots)"
fi

echo "smoke-bundle: PASSED in $(($(date +%s) - t0)) s ($BUNDLE)"
