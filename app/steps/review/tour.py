"""Tour driver of the contour review step (protocol: :class:`app.steps.base.TourContext`).

As the physician on the open case (the contouring tour submitted Kidney_L):
clicks Kidney_L in the review queue (the viewer emphasises it on every plane and
in 3D), types a short comment and clicks Approve.  Returns what the step shows
afterwards: the VOI, its status and reviewer (read from the "Show all VOIs"
table and the history table) and how many VOIs are left in the queue.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from app.steps.base import TourContext, TourError
from app.steps.review.model import COLUMNS, HISTORY_COLUMNS
from app.steps.review.view import ReviewStepView

__all__ = ["drive"]

VOI = "Kidney_L"
COMMENT = "Checked on all planes"
TIMEOUT_S = 60.0


def _names(view: ReviewStepView) -> list[str]:
    return [_text(view.table.item(r, 0)) for r in range(view.table.rowCount())]


def _text(item: Any) -> str:
    return "" if item is None else str(item.text())


def _click_row(view: ReviewStepView, name: str) -> None:
    names = _names(view)
    if name not in names:
        raise TourError(
            f"review: {name} is not in the review queue ({', '.join(names) or 'empty'})"
        )
    item = view.table.item(names.index(name), 0)
    if item is None:
        raise TourError(f"review: no cell for {name}")
    view.table.scrollToItem(item)
    rect = view.table.visualItemRect(item)
    QTest.mouseClick(view.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def drive(view: ReviewStepView, ctx: TourContext) -> dict[str, Any]:
    """Approve Kidney_L as the physician (module docstring)."""
    if view.session.case is None:
        raise TourError("review: no case is open")
    view.activated()
    _click_row(view, VOI)
    ctx.settle(0.5)
    if not view.approve_button.isEnabled():
        raise TourError(f"review: Approve is disabled for {view.session.user_label()}")
    view.comment_edit.setFocus()
    QTest.keyClicks(view.comment_edit, COMMENT)
    QTest.mouseClick(view.approve_button, Qt.MouseButton.LeftButton)
    ctx.wait_until(lambda: VOI not in _names(view), TIMEOUT_S, f"{VOI} approved")
    queue_left = view.table.rowCount()
    # on its box (a check box stretched across the column does not take clicks right of its text)
    box = view.show_all
    QTest.mouseClick(box, Qt.MouseButton.LeftButton, pos=QPoint(8, box.height() // 2))
    ctx.wait_until(lambda: VOI in _names(view), TIMEOUT_S, f"{VOI} in the list of all VOIs")
    _click_row(view, VOI)
    ctx.settle(0.8)
    row = _names(view).index(VOI)
    status = _text(view.table.item(row, COLUMNS.index("Status")))
    who = view.history_table.item(0, HISTORY_COLUMNS.index("Who"))
    action = view.history_table.item(0, HISTORY_COLUMNS.index("Action"))
    if who is None or action is None or action.text() != "approve":
        raise TourError("review: the history does not show the approval")
    return {"voi": VOI, "status": status, "reviewer": who.text(), "queue_left": queue_left}
