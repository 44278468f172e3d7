"""DVH redraw time of the dose step after ticking one VOI, and the longest event-loop gap.

Run under a display (or ``QT_QPA_PLATFORM=offscreen``)::

    xvfb-run -a -s "-screen 0 1280x1024x24" .venv/bin/python benchmarks/bench_dvh.py \\
        [--vois 2 8 15 30] [--repeat 7] [--json]

Set-up (not timed): a temporary store with one case of N VOIs (tiny masks) and a
stored voxel S-value dose summary whose every VOI has a cumulative DVH of the
step's :data:`~app.steps.dose.model.DVH_BINS` bins, computed by the core
(:func:`dosimetry_core.dose.dvh.dose_volume_histogram`) from a gamma-distributed
dose sample of 20,000 voxels; the dose step's view opened on it (1200 x 850)
with N - 1 VOIs ticked.

Timed: the user ticks the N-th VOI in the DVH list and unticks it again (each a
``QListWidgetItem.setCheckState`` as a click does, then ``repaint()`` of the plot
so the drawing is included); one figure = one tick + paint.  Baseline, same run,
interleaved: a bare ``pyqtgraph.PlotWidget`` of the same size with the same N - 1
curves, the N-th curve shown with ``PlotDataItem.setData(x, y)`` (after
``setData([], [])`` to hide it) and painted the same way: the least any DVH plot
does.  Ratio = median step / median baseline.  Medians of ``--repeat`` (>= 3).

Longest event-loop gap: while the ticks run from the event loop (one per 20 ms
single-shot timer), a ``QTimer`` every 5 ms records the largest interval between
its ticks (goal <= 100 ms); the same for the bare plot's ``setData`` toggles
(the gap a loaded machine causes by itself).  The load average is printed: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from gap_meter import GOAL_GAP_MS, GapMeter


def make_case(store: Any, n_vois: int) -> str:
    """A case with ``n_vois`` VOIs and one vsv dose summary with a DVH for each."""
    from dosimetry_core.dose.dvh import dose_volume_histogram
    from dosimetry_core.model import Geometry, ImageUnits, Volume
    from dosimetry_core.model.case import VOI, Case, Patient, VoiKind
    from dosimetry_core.model.results import DoseStatistics, DoseSummary, DvhCurve, VoiDose

    geom = Geometry((4, 4, 4), (4.0, 4.0, 4.0), (0.0, 0.0, 0.0))
    mask = store.put_volume(Volume(np.ones((4, 4, 4), np.uint8), geom, ImageUnits.MASK, "m"))
    case = Case(patient=Patient(patient_id="BENCH-DVH", name="Dvh^Bench"))
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n_vois):
        colour = tuple(int(c) for c in rng.integers(40, 255, 3))
        voi = VOI(f"VOI_{i:02d}", VoiKind.ORGAN, mask, colour)  # type: ignore[arg-type]
        case.vois.append(voi)
        dose = rng.gamma(4.0 + i % 5, 1.0 + 0.3 * i, 20_000).reshape(20, 1000, 1)
        h = dose_volume_histogram(dose, np.ones_like(dose, bool), (4.0, 4.0, 4.0), n_bins=200)
        dvh = DvhCurve(
            tuple(h.bin_edges_gy), tuple(h.differential_ml), tuple(h.differential_fraction),
            tuple(h.cumulative_fraction), float(h.volume_ml),
        )  # fmt: skip
        m = float(dose.mean())
        stats = DoseStatistics(
            20_000, 1280.0, m, float(np.median(dose)), float(dose.min()), float(dose.max()),
            float(dose.std()), float(np.percentile(dose, 98)), float(np.median(dose)),
            float(np.percentile(dose, 2)),
        )  # fmt: skip
        rows.append(VoiDose(voi.voi_id, voi.name, "", stats, dvh=dvh))
    case.add_result(DoseSummary("dose-map-bench", "vsv", tuple(rows), nuclide="Lu-177"))
    store.save_case(case)
    return case.case_id


def bench(n_vois: int, repeat: int, app: Any) -> dict[str, Any]:
    import pyqtgraph as pg
    from PySide6.QtCore import QEventLoop, Qt, QTimer

    from app.session import CaseSession
    from app.steps.dose.view import DoseStepView
    from dosimetry_core.store import CaseStore

    with tempfile.TemporaryDirectory(prefix="bench_dvh_") as tmp:
        store = CaseStore(Path(tmp) / "store")
        case_id = make_case(store, n_vois)
        session = CaseSession(store, store.path)
        view = DoseStepView(session)
        view.resize(1200, 850)
        view.show()
        session.open_case(case_id)
        app.processEvents()
        items = [view.voi_list.item(i) for i in range(view.voi_list.count())]
        for item in items[:-1]:
            item.setCheckState(Qt.CheckState.Checked)
        last = items[-1]
        app.processEvents()

        # the baseline: a bare PlotWidget with the same curves, same size
        bare = pg.PlotWidget()
        bare.resize(view.plot.size())
        bare.show()
        curves = []
        for row in view.model.rows:
            d = view.model.dvh(row.voi_id)
            assert d is not None
            curves.append((d.dose_gy, d.volume_percent, pg.mkPen(color=d.color_rgb, width=2)))
        for x, y, pen in curves[:-1]:
            bare.plot(x, y, pen=pen)
        x_last, y_last, pen_last = curves[-1]
        bare_last = bare.plot([], [], pen=pen_last)
        app.processEvents()

        def step_once(on: bool) -> float:
            t = time.perf_counter()
            last.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
            view.plot.viewport().repaint()
            return time.perf_counter() - t

        def bare_once(on: bool) -> float:
            t = time.perf_counter()
            if on:
                bare_last.setData(x_last, y_last)
            else:
                bare_last.setData([], [])
            bare.viewport().repaint()
            return time.perf_counter() - t

        for on in (True, False):  # warm-up
            step_once(on)
            bare_once(on)
        ours: list[float] = []
        base: list[float] = []
        for _ in range(repeat):
            for on in (True, False):
                ours.append(step_once(on))
                base.append(bare_once(on))
                app.processEvents()
        assert len(view.shown_dvh()) == n_vois - 1, "the last VOI is unticked at the end"

        # the longest event-loop gap while ticking from the event loop (ours, then bare)
        def set_ours(on: bool) -> None:
            last.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)

        def set_bare(on: bool) -> None:
            bare_last.setData(x_last, y_last) if on else bare_last.setData([], [])

        gaps = {}
        for name, toggle in (("ours", set_ours), ("bare", set_bare)):
            gap = GapMeter()
            loop = QEventLoop()
            toggles = [True, False] * repeat

            def next_toggle(
                toggles: list[bool] = toggles, toggle: Any = toggle, loop: QEventLoop = loop
            ) -> None:
                if not toggles:
                    loop.quit()
                    return
                toggle(toggles.pop(0))
                QTimer.singleShot(20, next_toggle)

            gap.start()
            QTimer.singleShot(20, next_toggle)
            loop.exec()
            gap.stop()
            gaps[name] = gap.longest_ms
        bare.close()
        view.close()
        session.close_case()
        store.close()
    m_ours, m_base = statistics.median(ours), statistics.median(base)
    return {
        "vois": n_vois,
        "dvh_bins": len(x_last) - 1,
        "step_redraw_ms": round(1000 * m_ours, 2),
        "baseline_setdata_ms": round(1000 * m_base, 2),
        "ratio": round(m_ours / m_base, 2) if m_base > 0 else None,
        "longest_event_loop_gap_ms": round(gaps["ours"], 1),
        "baseline_longest_gap_ms": round(gaps["bare"], 1),
        "gap_goal_met": gaps["ours"] <= GOAL_GAP_MS,
        "samples": len(ours),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--vois", type=int, nargs="+", default=[2, 8, 15, 30])
    p.add_argument("--repeat", type=int, default=7, help="tick/untick pairs (>= 3)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    repeat = max(3, args.repeat)
    load_before = os.getloadavg()
    rows = [bench(max(2, n), repeat, app) for n in args.vois]
    result = {
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "repeat": repeat,
        "goal_gap_ms": GOAL_GAP_MS,
        "results": rows,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"load average {result['load_average_before']} -> {result['load_average_after']}")
    print(f"{'VOIs':>5} {'step ms':>9} {'bare ms':>9} {'ratio':>6} {'gap ms':>8} {'bare gap':>9}")
    for r in rows:
        print(
            f"{r['vois']:>5} {r['step_redraw_ms']:>9.2f} {r['baseline_setdata_ms']:>9.2f} "
            f"{r['ratio']:>6} {r['longest_event_loop_gap_ms']:>8.1f} "
            f"{r['baseline_longest_gap_ms']:>9.1f}"
            + ("" if r["gap_goal_met"] else "  (gap goal missed)")
        )


if __name__ == "__main__":
    main()
