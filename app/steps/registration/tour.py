"""Tour driver of the registration step (protocol: :class:`app.steps.base.TourContext`).

On the open case, as a user allowed to register: clicks Run, waits for the
registration, then for each time point clicks its row, looks at it by
checkerboard, blink (the Toggle button) and fused overlay, types a comment
and clicks Accept.  Returns what the table shows at the end.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from app.steps.base import TourContext, TourError
from app.steps.registration.model import COLUMNS
from app.steps.registration.view import RegistrationStepView

__all__ = ["drive"]

RUN_TIMEOUT_S = 120.0
"""The full demo registers in ~13 s on two cores; a loaded CI machine gets ample margin."""

_STATUS = COLUMNS.index("Status")
_TRANSLATION = COLUMNS.index("Translation (mm)")
_ROTATION = COLUMNS.index("Rotation (deg)")


def _click(widget: Any) -> None:
    QTest.mouseClick(widget, Qt.MouseButton.LeftButton)


def _numbers(text: str) -> list[float] | None:
    if text.strip() in ("", "-"):
        return None
    return [float(v) for v in text.split(",")]


def _click_row(view: RegistrationStepView, row: int) -> None:
    table = view.table
    table.scrollToItem(table.item(row, 0))
    rect = table.visualItemRect(table.item(row, 0))
    QTest.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def _choose(combo: Any, data: str) -> None:
    idx = combo.findData(data)
    if idx < 0:
        raise TourError(f"registration: no {data!r} in {combo.objectName()}")
    combo.setCurrentIndex(idx)


def drive(view: RegistrationStepView, ctx: TourContext) -> dict[str, Any]:
    """Run, inspect and accept every time point; return the table's figures (module docstring)."""
    if view.session.case is None:
        raise TourError("registration: no case is open")
    if not view.run_button.isEnabled():
        raise TourError(
            f"registration: Run is disabled for {view.session.user_label()} "
            "(a physicist must be logged in and the case needs two CTs)"
        )
    _click(view.run_button)
    ctx.wait_until(lambda: not view.is_running(), RUN_TIMEOUT_S, "the registration to finish")
    if "Registered" not in view.status_label.text():
        raise TourError(f"registration: the run did not succeed ({view.status_label.text()})")

    table = view.table
    for row in range(table.rowCount()):
        if table.item(row, _STATUS).text() == "reference":
            continue
        label = table.item(row, 0).text()
        _click_row(view, row)
        ctx.wait_until(view.comparison_ready, 30.0, f"the compare view of {label}")
        _choose(view.mode_box, "checkerboard")
        ctx.settle(0.2)
        _choose(view.mode_box, "blink")
        _click(view.blink_button)
        ctx.settle(0.2)
        _click(view.blink_button)
        _choose(view.mode_box, "fused")
        ctx.settle(0.2)
        _choose(view.mode_box, "checkerboard")
        if not view.accept_button.isEnabled():
            raise TourError(f"registration: Accept is disabled for {label}")
        view.comment_edit.clear()
        QTest.keyClicks(view.comment_edit, "checked by checkerboard and blink (tour)")
        _click(view.accept_button)
        ctx.wait_until(
            lambda r=row: table.item(r, _STATUS).text() == "accepted",
            10.0,
            f"{label} to be accepted",
        )

    reference = ""
    rows: list[dict[str, Any]] = []
    for row in range(table.rowCount()):
        status = table.item(row, _STATUS).text()
        label = table.item(row, 0).text().split(" ")[0]
        if status == "reference":
            reference = label
            continue
        rows.append(
            {
                "label": label,
                "translation_mm": _numbers(table.item(row, _TRANSLATION).text()),
                "rotation_deg": _numbers(table.item(row, _ROTATION).text()),
                "status": status,
            }
        )
    ctx.settle(0.3)
    return {"time_points": rows, "reference": reference}
