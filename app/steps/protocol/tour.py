"""Tour driver of the protocol step (protocol: :class:`app.steps.base.TourContext`).

On the open case, as a user allowed to compute: shows the "Protocol run" tab,
chooses lu177-dotatate, clicks Run, waits for the run (kinetics, TIA map, dose,
BED, uncertainty, limits), clicks the kidney row for its uncertainty budget,
and returns what the result panel shows: kidney and marrow dose (Gy), kidney
BED (Gy), the next-cycle activity (GBq) and the binding constraint.
"""

from __future__ import annotations

import re
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QTableWidget

from app.steps.base import TourContext, TourError
from app.steps.protocol.model import LIMIT_COLUMNS, ORGAN_COLUMNS
from app.steps.protocol.view import ProtocolStepView

__all__ = ["PROTOCOL", "drive"]

PROTOCOL = "lu177-dotatate"
RUN_TIMEOUT_S = 300.0
"""The full demo runs in about a minute on two idle cores; a loaded machine gets ample margin."""


def _cell(table: QTableWidget, row_text: str, column: str) -> str | None:
    j = ORGAN_COLUMNS.index(column)
    for i in range(table.rowCount()):
        item = table.item(i, 0)
        if item is not None and item.text() == row_text:
            cell = table.item(i, j)
            return None if cell is None else cell.text()
    return None


def _number(text: str | None) -> float | None:
    if text is None or text.strip() in ("", "-"):
        return None
    return float(text)


def _click_row(table: QTableWidget, name: str) -> None:
    for i in range(table.rowCount()):
        item = table.item(i, 0)
        if item is not None and item.text() == name:
            table.scrollToItem(item)
            rect = table.visualItemRect(item)
            QTest.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
            return


def drive(view: ProtocolStepView, ctx: TourContext) -> dict[str, Any]:
    """Choose the protocol, Run, read the result panel (module docstring)."""
    if view.session.case is None:
        raise TourError("protocol-run: no case is open")
    tab = view.tabs.tabBar()
    QTest.mouseClick(tab, Qt.MouseButton.LeftButton, pos=tab.tabRect(0).center())
    panel = view.run_panel
    idx = panel.protocol_box.findData(PROTOCOL)
    if idx < 0:
        raise TourError(f"protocol-run: {PROTOCOL} is not offered")
    panel.protocol_box.setCurrentIndex(idx)
    ctx.settle(0.2)
    if not panel.run_button.isEnabled():
        raise TourError(
            f"protocol-run: Run is disabled for {view.session.user_label()}: "
            f"{panel.run_button.toolTip()}"
        )
    QTest.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    ctx.wait_until(lambda: not panel.is_running(), RUN_TIMEOUT_S, "the protocol run to finish")
    if "run and saved" not in panel.status_label.text():
        raise TourError(f"protocol-run: the run did not succeed ({panel.status_label.text()})")

    bar = panel.result_tabs.tabBar()
    QTest.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(1).center())
    ctx.settle(0.2)
    _click_row(panel.voi_table, "Kidney_L")
    ctx.settle(0.5)
    QTest.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(0).center())
    ctx.settle(0.3)

    organs = panel.organ_table
    marrow = _number(_cell(organs, "Red marrow", "Dose (Gy)"))
    m = re.search(r"at most ([0-9.]+) GBq", panel.next_cycle_label.text())
    binding = panel.binding_label.text().removeprefix("Binding constraint: ").split(". ")[0]
    limits = {}
    for i in range(panel.limit_table.rowCount()):
        cells = [panel.limit_table.item(i, j) for j in range(panel.limit_table.columnCount())]
        texts = ["" if c is None else c.text() for c in cells]
        key = f"{texts[0]} {texts[1]}"
        limits[key] = (
            f"{texts[LIMIT_COLUMNS.index('Cumulative (Gy)')]} of "
            f"{texts[LIMIT_COLUMNS.index('Limit (Gy)')]} Gy: "
            f"{texts[LIMIT_COLUMNS.index('Result')]}"
        )
    return {
        "protocol": panel.protocol_box.currentData(),
        "kidney_gy": _number(_cell(organs, "Kidneys", "Dose (Gy)")),
        "kidney_gy_per_gbq": _number(_cell(organs, "Kidneys", "Per activity (Gy/GBq)")),
        "kidney_bed_gy": _number(_cell(organs, "Kidneys", "BED (Gy)")),
        "marrow_gy": marrow
        if marrow is not None
        else "absent: the case has no red-marrow VOI the protocol recognises",
        "next_cycle_gbq": float(m.group(1)) if m else None,
        "binding_constraint": binding or None,
        "limits_cumulative_gy": limits,
        "budget_shown": panel.budget_caption.text(),
    }
