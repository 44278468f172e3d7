"""Tour driver of the QA step (protocol: :class:`app.steps.base.TourContext`).

The tour has no phantom folder: two small uniform-cylinder scans of the demo
camera (Lu-177, 100 MBq assayed 2 h before each scan, a month apart) are
written with the core generator
(:func:`dosimetry_core.phantoms.qa_phantoms.write_cylinder_phantom`) into
``qa-phantoms`` beside the tour's store.  As a physicist, for each: types the
folder, activity, assay time and VOI margin into the calibration form, clicks
Run calibration and waits; the second run is checked for constancy against the
first.  Then opens the QA records tab, reads the number of records, and comes
back to the calibration tab (the screenshot shows the result and the chart).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from app.steps.base import TourContext, TourError
from app.steps.qa.view import QaStepView

__all__ = ["drive"]

RUN_TIMEOUT_S = 120.0
SCAN_TIMES = (datetime(2026, 2, 2, 9, 0), datetime(2026, 3, 2, 9, 0))
"""A month apart: the constancy chart has two points."""


def _click(widget: Any) -> None:
    QTest.mouseClick(widget, Qt.MouseButton.LeftButton)


def _type(edit: Any, text: str) -> None:
    edit.clear()
    QTest.keyClicks(edit, text)


def _tab(view: QaStepView, index: int) -> None:
    bar = view.tabs.tabBar()
    QTest.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(index).center())


def _phantoms(view: QaStepView) -> list[Any]:
    from dosimetry_core.phantoms.qa_phantoms import QaScanConfig, write_cylinder_phantom

    if not view.session.store_path:
        raise TourError("qa: the session names no store folder to put the phantoms beside")
    out = Path(view.session.store_path).parent / "qa-phantoms"
    files = []
    for n, when in enumerate(SCAN_TIMES):
        cfg = QaScanConfig(
            scan_datetime=when, seed=1500 + n, shape_zyx=(40, 56, 56), spacing_mm=(6.0, 6.0, 6.0)
        )
        files.append(
            write_cylinder_phantom(
                out / f"cylinder-{when:%Y%m%d}", diameter_mm=200.0, length_mm=120.0, config=cfg
            )
        )
    return files


def drive(view: QaStepView, ctx: TourContext) -> dict[str, Any]:
    """Calibrate the demo camera twice through the form (module docstring)."""
    if not view.cal_run_button.isEnabled():
        raise TourError(f"qa: Run calibration is disabled for {view.session.user_label()}")
    _tab(view, 0)
    for files in _phantoms(view):
        _type(view.cal_folder, str(files.out_dir))
        _type(view.cal_activity, f"{files.truth['activity_mbq']:g}")
        _type(view.cal_time, files.truth["activity_time"].replace("T", " ")[:16])
        _type(view.cal_margin, "30")
        _click(view.cal_run_button)
        ctx.wait_until(lambda: not view.is_running(), RUN_TIMEOUT_S, "the camera calibration")
        if not view.cal_status.text().startswith("Stored as"):
            raise TourError(f"qa: the calibration did not succeed ({view.cal_status.text()})")
    factor_text = view.cal_factor_label.text()  # "8.99 ± 0.0087 cps/MBq"
    parts = factor_text.split()
    if len(parts) < 4 or parts[-1] != "cps/MBq":
        raise TourError(f"qa: the factor reads {factor_text!r}")
    _tab(view, 2)
    ctx.settle(0.2)
    n_records = view.records_table.rowCount()
    summary = view.records_summary.text()
    _tab(view, 0)
    ctx.settle(0.3)
    return {
        "calibration_factor_cps_per_mbq": float(parts[0]),
        "calibration_factor_sd_cps_per_mbq": float(parts[2]),
        "device": view.cal_device_label.text(),
        "constancy": view.cal_verdict_label.text(),
        "constancy_detail": view.cal_constancy_label.text(),
        "n_chart_points": len(view.chart.values_cps_per_mbq) if view.chart else 0,
        "n_records": n_records,
        "records": summary,
    }
