"""Tour driver of the exports step (protocol: :class:`app.steps.base.TourContext`).

On the open case, as a user who may export (physicist or physician): ticks SEG
and "re-write the images" (SEG references the CT), and the report when the case
has one, types ``<tour out dir>/export`` as the destination and clicks Export;
waits for the file list.  Then shows the population ranges tab.  Returns what
the step shows: the report version offered, the files written per type, the
summary's first line, and the population line of the first organ.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from app.steps.base import TourContext, TourError
from app.steps.export.view import ExportStepView

__all__ = ["drive"]

TIMEOUT_S = 300.0


def _tick(box: Any) -> None:
    if not box.isChecked():
        # on its box: a check box stretched across a column does not take clicks right of its text
        QTest.mouseClick(box, Qt.MouseButton.LeftButton, pos=QPoint(8, box.height() // 2))
    if not box.isChecked():
        raise TourError(f"export: {box.text()!r} cannot be ticked")


def drive(view: ExportStepView, ctx: TourContext, out_dir: Path | None = None) -> dict[str, Any]:
    """Export RT Dose + SEG (+ the report) to the tour's folder (module docstring)."""
    if view.session.case is None:
        raise TourError("export: no case is open")
    view.activated()
    if not view.export_button.isEnabled():
        raise TourError(
            f"export: Export is disabled for {view.session.user_label()}: "
            f"{view.export_button.toolTip()}"
        )
    base = out_dir if out_dir is not None else Path(getattr(ctx, "out_dir", "."))
    dest = Path(base) / "export"
    view.tabs.setCurrentIndex(0)
    _tick(view.dose_check)
    _tick(view.seg_check)
    _tick(view.images_check)
    if view.report_check.isEnabled():
        _tick(view.report_check)
    view.out_dir_edit.setFocus()
    view.out_dir_edit.selectAll()
    QTest.keyClicks(view.out_dir_edit, str(dest))
    QTest.mouseClick(view.export_button, Qt.MouseButton.LeftButton)
    if not view.is_running():
        raise TourError(f"export: not started: {view.error_label.text()}")
    ctx.wait_until(lambda: not view.is_running(), TIMEOUT_S, "the export finished")
    if view.outcome is None:
        raise TourError(f"export: no files written ({view.status_label.text()})")
    ctx.settle(0.5)
    by_type: dict[str, int] = {}
    for row in view.files_as_shown():
        by_type[row["Type"]] = by_type.get(row["Type"], 0) + 1
    if "RT Dose" not in by_type or "Segmentation (SEG)" not in by_type:
        raise TourError(f"export: RT Dose and SEG expected, the list shows {sorted(by_type)}")
    shown = {
        "report_offered": view.report_label.text(),
        "files_by_type": by_type,
        "summary": view.summary_label.text().splitlines()[0],
        "out_dir": str(dest),
    }
    view.tabs.setCurrentIndex(1)
    view.load_population()
    ctx.wait_until(lambda: not view.is_loading_population(), TIMEOUT_S, "the population ranges")
    ctx.settle(0.5)
    shown["population"] = view.pop_status.text()
    shown["percentile"] = view.percentile_label.text()
    return shown
