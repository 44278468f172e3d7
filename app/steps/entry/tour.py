"""Tour driver of the data-entry step (protocol: :class:`app.steps.base.TourContext`).

On the open demo case, as a technologist: selects the recorded administration
in the list (the form loads it), types a residual of 150 MBq measured ten
minutes after the administration into the residual fields, reads the net
administered activity the form shows at once, clicks Save and waits for the
"Saved by ..." line.  Returns what the widgets show then.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from app.common.inputs import QuantityInput
from app.steps.base import TourContext, TourError
from app.steps.entry.view import EntryStepView

__all__ = ["RESIDUAL_DELAY", "RESIDUAL_MBQ", "drive"]

RESIDUAL_MBQ = 150.0
RESIDUAL_DELAY = timedelta(minutes=10)
SAVE_TIMEOUT_S = 20.0


def _type(edit: Any, text: str) -> None:
    """Select what the box holds and type over it, as a user does."""
    edit.setFocus()
    QTest.keyClick(edit, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    QTest.keyClicks(edit, text)


def _number(text: str, what: str) -> float:
    try:
        return float(text.replace(",", "").replace("MBq", "").strip())
    except ValueError:
        raise TourError(f"data entry: {what} shows {text!r}, not a number") from None


def drive(view: EntryStepView, ctx: TourContext) -> dict[str, Any]:
    """Enter a residual on the case's administration and save it (module docstring)."""
    session = view.session
    if session.case is None or not session.case.administrations:
        raise TourError("data entry: no open case with an administration")
    if not view.admin_box.isEnabled():
        raise TourError(f"data entry: the form is disabled for {session.user_label()}")
    table = view.admin_table
    if table.rowCount() < 1:
        raise TourError("data entry: the administration list is empty")
    item = table.item(table.rowCount() - 1, 0)
    assert item is not None
    table.scrollToItem(item)
    rect = table.visualItemRect(item)
    QTest.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    ctx.settle(0.2)
    rows = view.admin_rows
    time_text = rows["time"].editor.text()
    try:
        administered_at = datetime.fromisoformat(time_text.strip())
    except ValueError:
        raise TourError(f"data entry: administration time shows {time_text!r}") from None
    activity = rows["activity_mbq"].editor
    if not isinstance(activity, QuantityInput) or activity.unit() != "MBq":
        raise TourError("data entry: the activity is not shown in MBq")
    view.scroll_area.ensureWidgetVisible(rows["residual_activity_mbq"])
    _type(rows["residual_activity_mbq"].editor.edit, f"{RESIDUAL_MBQ:g}")
    residual_at = administered_at + RESIDUAL_DELAY
    _type(rows["residual_time"].editor.edit, residual_at.strftime("%Y-%m-%d %H:%M"))
    ctx.settle(0.2)
    for name, row in rows.items():
        if row.state == "error":
            raise TourError(f"data entry: {name} refused: {row.message.text()}")
    before = view.saved_label.text()
    QTest.mouseClick(view.save_admin_button, Qt.MouseButton.LeftButton)
    ctx.wait_until(
        lambda: (
            view.saved_label.text().startswith("Saved by") and view.saved_label.text() != before
        ),
        SAVE_TIMEOUT_S,
        "the administration to be saved",
    )
    view.scroll_area.ensureWidgetVisible(view.net_label)
    ctx.settle(0.3)
    saved = view.saved_label.text()
    saved_by = saved[len("Saved by ") :].split(" at ", 1)[0]
    net_text = view.net_label.text().split(":", 1)[-1]
    return {
        "administered_activity_mbq": _number(rows["activity_mbq"].editor.text(), "activity"),
        "residual_activity_mbq": _number(
            rows["residual_activity_mbq"].editor.text(), "residual activity"
        ),
        "residual_time": rows["residual_time"].editor.text(),
        "administration_time": time_text,
        "net_administered_activity_mbq": _number(net_text, "net administered activity"),
        "saved_by": saved_by,
        "saved": saved,
    }
