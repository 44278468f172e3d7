"""Benchmark: launch of the workstation to a usable window.

Measures, in child processes (so each launch pays its own imports), the time
from process start to the main window shown with the case list filled (the
child prints a marker when :class:`app.main_window.MainWindow` is visible and
its worklist lists the store's cases), against a baseline measured in the same
run: a bare ``QApplication`` + ``QMainWindow`` shown.  Medians of ``--runs``
launches each (at least 3); the ratio is printed with both figures.

The store is a temporary one holding ``--cases`` hand-made cases (created by
the core's ``create_case``), so the worklist reads real rows.

Run under a display or Xvfb (``xvfb-run -a -s "-screen 0 1280x1024x24"``), or
with ``QT_QPA_PLATFORM=offscreen`` (the 3D view is then replaced by a note).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD_WINDOW = r"""
import sys, time
t_start = float(sys.argv[2])
from PySide6.QtWidgets import QApplication
app = QApplication([])
from app.main import apply_theme, open_store
from app.main_window import MainWindow
apply_theme(app)
store = open_store(__import__("pathlib").Path(sys.argv[1]))
w = MainWindow(store, store_path=sys.argv[1])
w.show()
n = len(store.list_cases())
while not (w.isVisible() and len(w.case_list.visible_case_ids()) == n):
    app.processEvents()
app.processEvents()
print("READY", time.time() - t_start, n, flush=True)
w.ask = lambda title, text: True
w.close()
store.close()
"""

CHILD_BARE = r"""
import sys, time
t_start = float(sys.argv[1])
from PySide6.QtWidgets import QApplication, QMainWindow
app = QApplication([])
w = QMainWindow()
w.resize(1280, 900)
w.show()
while not w.isVisible():
    app.processEvents()
app.processEvents()
print("READY", time.time() - t_start, 0, flush=True)
"""


def _launch(code: str, *args: str) -> float:
    t0 = time.time()
    p = subprocess.run(
        [sys.executable, "-c", code, *args, str(t0)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        timeout=300,
    )
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("READY")]
    if p.returncode != 0 or not lines:
        raise RuntimeError(f"launch failed ({p.returncode}):\n{p.stdout}\n{p.stderr[-2000:]}")
    return float(lines[-1].split()[1])


def _make_store(path: Path, n_cases: int) -> None:
    from dosimetry_core.pipeline.cases import create_case
    from dosimetry_core.store import CaseStore

    store = CaseStore(path)
    for n in range(n_cases):
        create_case(store, f"BENCH-{n:04d}", f"Bench^{n}", protocol_id="lu177-dotatate")
    store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="launches of each kind (>= 3)")
    parser.add_argument("--cases", type=int, default=50, help="cases in the temporary store")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    runs = max(3, args.runs)
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        _make_store(store, args.cases)
        bare = [_launch(CHILD_BARE) for _ in range(runs)]
        window = [_launch(CHILD_WINDOW, str(store)) for _ in range(runs)]
    bare_s, window_s = statistics.median(bare), statistics.median(window)
    result = {
        "runs": runs,
        "cases_in_store": args.cases,
        "qt_platform": os.environ.get("QT_QPA_PLATFORM", "(default)"),
        "baseline_bare_qmainwindow_s": round(bare_s, 3),
        "workstation_usable_window_s": round(window_s, 3),
        "ratio_workstation_vs_bare": round(window_s / bare_s, 2),
        "all_bare_s": [round(v, 3) for v in bare],
        "all_workstation_s": [round(v, 3) for v in window],
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for k, v in result.items():
            print(f"{k:>30}: {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
