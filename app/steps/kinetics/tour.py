"""Tour driver of the kinetics step (protocol: :class:`app.steps.base.TourContext`).

As the physicist on the open (registered) case: clicks "Fit all VOIs" and waits,
clicks the left kidney's row, looks at the single-time-point comparison by
Hänscheid and Madsen, clicks "Voxel-wise TIA map" and waits (the dose step
after this one needs the map).  Returns what the widgets show for the kidney:
its VOI name, the selected model (the model table's marked row), TIA ± SD in
MBq·h (the VOI list) and whether the case now has a TIA map made by the click.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QTableWidget, QTableWidgetItem

from app.steps.base import TourContext, TourError
from app.steps.kinetics.model import VOI_COLUMNS
from app.steps.kinetics.view import KineticsStepView

__all__ = ["drive"]

FIT_TIMEOUT_S = 600.0
TIA_MAP_TIMEOUT_S = 600.0
"""The full demo fits its 15 VOIs and its voxels in well under a minute each on two
cores; a loaded machine gets ample margin."""

KIDNEY_NAMES = ("Kidney_L", "Left Kidney", "KIDNEY_L", "kidney left")
_MODEL = VOI_COLUMNS.index("Model")
_TIA = VOI_COLUMNS.index("TIA ± SD (MBq·h)")


def _click(widget: Any) -> None:
    QTest.mouseClick(widget, Qt.MouseButton.LeftButton)


def _item(table: QTableWidget, row: int, col: int) -> QTableWidgetItem:
    item = table.item(row, col)
    if item is None:
        raise TourError(f"kinetics: {table.objectName()} has no cell ({row}, {col})")
    return item


def _kidney_row(view: KineticsStepView) -> int:
    names = [_item(view.voi_table, i, 0).text() for i in range(view.voi_table.rowCount())]
    for want in KIDNEY_NAMES:
        for i, n in enumerate(names):
            if n.lower() == want.lower():
                return i
    for i, n in enumerate(names):
        if "kidney" in n.lower() and ("_l" in n.lower() or "left" in n.lower()):
            return i
    raise TourError(f"kinetics: no left kidney VOI among {names}")


def _choose(combo: Any, data: str) -> None:
    idx = combo.findData(data)
    if idx < 0:
        raise TourError(f"kinetics: no {data!r} in {combo.objectName()}")
    combo.setCurrentIndex(idx)


def drive(view: KineticsStepView, ctx: TourContext) -> dict[str, Any]:
    """Fit, inspect the kidney, make the TIA map; return the figures shown (module docstring)."""
    if view.session.case is None:
        raise TourError("kinetics: no case is open")
    if not view.fit_button.isEnabled():
        raise TourError(
            f"kinetics: Fit all VOIs is disabled for {view.session.user_label()} "
            "(a physicist must be logged in and the case needs VOIs)"
        )
    _click(view.fit_button)
    ctx.wait_until(lambda: not view.is_running(), FIT_TIMEOUT_S, "the kinetics fit to finish")
    if not view.status_label.text().startswith("Fitted"):
        raise TourError(f"kinetics: the fit did not succeed ({view.status_label.text()})")

    row = _kidney_row(view)
    item = _item(view.voi_table, row, 0)
    view.voi_table.scrollToItem(item)
    rect = view.voi_table.visualItemRect(item)
    QTest.mouseClick(view.voi_table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    ctx.settle(0.3)
    if view.selected_voi_id() != item.data(Qt.ItemDataRole.UserRole):
        raise TourError("kinetics: clicking the kidney's row did not select it")
    _choose(view.stp_box, "madsen")
    ctx.settle(0.2)
    _choose(view.stp_box, "haenscheid")

    old_map = view.model.tia_map_id()
    if not view.tia_map_button.isEnabled():
        raise TourError("kinetics: Voxel-wise TIA map is disabled")
    _click(view.tia_map_button)
    ctx.wait_until(lambda: not view.is_running(), TIA_MAP_TIMEOUT_S, "the voxel-wise TIA map")
    made = view.status_label.text().startswith("Voxel-wise TIA map made")
    if not made:
        raise TourError(f"kinetics: the TIA map was not made ({view.status_label.text()})")
    ctx.settle(0.3)

    voi = _item(view.voi_table, row, 0).text()
    tia_text = _item(view.voi_table, row, _TIA).text()
    try:
        value, sd = (float(v) for v in tia_text.split("±"))
    except ValueError as exc:
        raise TourError(f"kinetics: no TIA ± SD shown for {voi} ({tia_text!r})") from exc
    selected = ""
    for i in range(view.model_table.rowCount()):
        text = _item(view.model_table, i, 0).text()
        if text.startswith("✔"):
            selected = text.removeprefix("✔").strip()
    return {
        "voi": voi,
        "selected_model": selected,
        "voi_list_model": _item(view.voi_table, row, _MODEL).text(),
        "tia_mbq_h": value,
        "tia_sd_mbq_h": sd,
        "tia_map": made and view.model.tia_map_id() not in (None, old_map),
        "tia_map_line": view.tia_map_label.text(),
    }
