"""Tour driver of the dose step (protocol: :class:`app.steps.base.TourContext`).

On the open case (the kinetics tour step made its voxel-wise TIA map), as a
physicist: picks "Voxel S-values" in the engine box with the keyboard, clicks
Run, waits for the calculation, ticks both kidneys in the DVH list (click and
Space), picks the case's protocol (or the demo's Lu-177 DOTATATE protocol) for
the limits, and waits for the viewer to show the new dose map.  Returns what
the table and the plot show.
"""

from __future__ import annotations

import re
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from app.steps.base import TourContext, TourError
from app.steps.dose.model import COLUMNS
from app.steps.dose.view import DoseStepView

__all__ = ["drive"]

RUN_TIMEOUT_S = 300.0
"""vsv on the full demo takes a few seconds (kernel cached); a busy machine gets a margin."""
LIMITS_PROTOCOL = "lu177-dotatate"
"""Limits shown when the case has no protocol yet (the demo is a Lu-177 DOTATATE case)."""

_LEFT = re.compile(r"^(kidney[ _]?l(eft)?|left[ _]kidney)$", re.IGNORECASE)
_RIGHT = re.compile(r"^(kidney[ _]?r(ight)?|right[ _]kidney)$", re.IGNORECASE)
_MEAN = COLUMNS.index("Mean (Gy)")
_LIMIT = COLUMNS.index("Limit (Gy)")
_CHECK = COLUMNS.index("Limit check")


def _choose(combo: Any, data: str) -> None:
    target = combo.findData(data)
    if target < 0:
        raise TourError(f"dose: no {data!r} in {combo.objectName()}")
    combo.setFocus()
    for _ in range(combo.count()):
        if combo.currentIndex() == target:
            return
        key = Qt.Key.Key_Down if combo.currentIndex() < target else Qt.Key.Key_Up
        QTest.keyClick(combo, key)
    if combo.currentIndex() != target:
        raise TourError(f"dose: could not choose {data!r} in {combo.objectName()}")


def _tick(view: DoseStepView, name: str) -> None:
    lst = view.voi_list
    for i in range(lst.count()):
        item = lst.item(i)
        if item.text() == name:
            lst.scrollToItem(item)
            rect = lst.visualItemRect(item)
            QTest.mouseClick(lst.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
            QTest.keyClick(lst.viewport(), Qt.Key.Key_Space)
            return
    raise TourError(f"dose: no VOI {name!r} in the DVH list")


def _kidneys(view: DoseStepView) -> tuple[str, str]:
    names = [view.voi_list.item(i).text() for i in range(view.voi_list.count())]
    left = next(
        (n for n in names if re.match(r"^(kidney[ _]?l(eft)?|left[ _]kidney)$", n, re.I)), None
    )
    right = next(
        (n for n in names if re.match(r"^(kidney[ _]?r(ight)?|right[ _]kidney)$", n, re.I)), None
    )
    if left is None or right is None:
        raise TourError(f"dose: both kidneys are needed in the VOI list, found {names}")
    return left, right


def _text(view: DoseStepView, row: int, col: int) -> str:
    item = view.table.item(row, col)
    return "" if item is None else item.text()


def _row(view: DoseStepView, name: str) -> int:
    for i in range(view.table.rowCount()):
        if _text(view, i, 0) == name:
            return i
    raise TourError(f"dose: no row {name!r} in the dose table")


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def drive(view: DoseStepView, ctx: TourContext) -> dict[str, Any]:
    """Run voxel S-values, show both kidneys' DVH, return the figures (module docstring)."""
    case = view.session.case
    if case is None:
        raise TourError("dose: no case is open")
    if not view.run_button.isEnabled():
        raise TourError(f"dose: Run is disabled for {view.session.user_label()}")
    _choose(view.engine_box, "vsv")
    QTest.mouseClick(view.run_button, Qt.MouseButton.LeftButton)
    ctx.wait_until(lambda: not view.is_running(), RUN_TIMEOUT_S, "the dose calculation")
    if "Done" not in view.status_label.text():
        raise TourError(f"dose: the run did not succeed ({view.status_label.text()})")
    if "(vsv)" not in view.summary_box.currentText():
        raise TourError(f"dose: the table shows {view.summary_box.currentText()!r}, not vsv")

    left, right = _kidneys(view)
    for name in (left, right):
        if name not in view.shown_dvh():
            _tick(view, name)
    _choose(view.protocol_box, case.protocol or LIMITS_PROTOCOL)

    # the viewer reloads the case on caseChanged and shows the newest dose map
    viewer = getattr(ctx.window, "viewer", None)
    viewer_dose = ""
    if viewer is not None and hasattr(viewer, "view_data"):

        def dose_shown() -> bool:
            data = viewer.view_data()
            return bool(viewer.is_ready() and data is not None and "dose" in data.layers)

        try:
            ctx.wait_until(dose_shown, 60.0, "the viewer to show the dose map")
            viewer_dose = viewer.view_data().layers["dose"].label
        except TourError:
            viewer_dose = ""
    ctx.settle(0.5)

    table = view.table
    rows = {name: _row(view, name) for name in (left, right)}
    shown = view.shown_dvh()
    return {
        "method": "vsv" if "(vsv)" in view.summary_box.currentText() else "",
        "kidney_left_mean_gy": _number(_text(view, rows[left], _MEAN)),
        "kidney_right_mean_gy": _number(_text(view, rows[right], _MEAN)),
        "kidney_limit_gy": _text(view, rows[left], _LIMIT),
        "kidney_limit_check": [
            _text(view, rows[left], _CHECK),
            _text(view, rows[right], _CHECK),
        ],
        "limits_protocol": view.protocol_box.currentText(),
        "dvh_vois": sorted(shown),
        "dvh_max_dose_gy": {k: float(v[0][-1]) for k, v in shown.items()},
        "viewer_dose_layer": viewer_dose,
        "table_rows": table.rowCount(),
    }
