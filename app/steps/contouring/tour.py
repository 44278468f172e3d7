"""Tour driver of the contouring step (protocol: :class:`app.steps.base.TourContext`).

As the physicist on the open case: clicks the first time point in the viewer,
moves the crosshair into the left kidney with clicks on the coronal and axial
planes, types the new VOI's name ``Tour_threshold`` and clicks New, chooses
"within Kidney_L" on the SPECT, types 40 (% of max) -- the live preview shows
in the planes -- and clicks Apply.  Then selects Kidney_L and clicks "Submit
for review" (the physician's review step approves it).  Returns what the VOI
list shows for the new VOI (volume in mL and mass in g from the core), how many
VOIs it lists and which VOI was submitted.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from app.steps.base import TourContext, TourError
from app.steps.contouring.view import PERCENT, ContouringStepView
from app.viewer.panel import ViewerPanel

__all__ = ["drive"]

NAME = "Tour_threshold"
WITHIN = "Kidney_L"
PERCENT_OF_MAX = 40
SUBMIT = "Kidney_L"
"""The VOI the physicist submits for review at the end (the physician approves it)."""
TIMEOUT_S = 120.0


def _click(widget: Any) -> None:
    QTest.mouseClick(widget, Qt.MouseButton.LeftButton)


def _click_plane(panel: ViewerPanel, plane: str, h_mm: float, v_mm: float) -> None:
    view = panel.viewer.planes[plane]
    viewport = view.view.viewport()
    pos = view.view_to_widget(h_mm, v_mm).toPoint()
    QTest.mouseClick(
        viewport,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
        viewport.mapFrom(view, pos),
    )


def _choose(combo: Any, text: str) -> None:
    idx = combo.findText(text)
    if idx < 0:
        raise TourError(f"contouring: no {text!r} in {combo.objectName()}")
    combo.setCurrentIndex(idx)


def _type(widget: Any, text: str) -> None:
    widget.setFocus()
    widget.selectAll()
    QTest.keyClicks(widget, text)
    QTest.keyClick(widget, Qt.Key.Key_Return)


def _into_kidney(view: ContouringStepView, panel: ViewerPanel) -> None:
    """Crosshair to the kidney's centre (the planes show LPS mm on an axis-aligned grid)."""
    data = panel.view_data()
    row = next((v for v in data.vois if v.name == WITHIN), None) if data is not None else None
    if data is None or row is None or row.display_mask is None:
        raise TourError(f"contouring: the viewer shows no {WITHIN}")
    idx = np.argwhere(row.display_mask).mean(axis=0)
    world = data.display.geometry.index_to_world(idx)
    _click_plane(panel, "coronal", float(world[0]), float(world[2]))
    _click_plane(panel, "axial", float(world[0]), float(world[1]))


def drive(view: ContouringStepView, ctx: TourContext) -> dict[str, Any]:
    """Draw and apply a 40 % threshold inside the left kidney (module docstring)."""
    if view.session.case is None:
        raise TourError("contouring: no case is open")
    view.activated()
    panel = view.panel
    if panel is None:
        raise TourError("contouring: the step found no viewer")
    _click(panel.time_point_selector.button(0))
    ctx.wait_until(lambda: panel.is_ready() and not view.busy(), TIMEOUT_S, "the first time point")
    _into_kidney(view, panel)

    tabs = view.tabs
    _click_tab = tabs.tabBar().tabRect(0).center()
    QTest.mouseClick(tabs.tabBar(), Qt.MouseButton.LeftButton, pos=_click_tab)
    line = view.name_box.lineEdit()
    if line is None:
        raise TourError("contouring: the name box is not editable")
    _type(line, NAME)
    if not view.new_button.isEnabled():
        raise TourError(f"contouring: New is disabled for {view.session.user_label()}")
    _click(view.new_button)
    _choose(view.image_box, "SPECT")
    _choose(view.mode_box, PERCENT)
    _choose(view.within_box, WITHIN)
    spin = view.value_spin.lineEdit()
    if spin is None:
        raise TourError("contouring: the threshold value cannot be typed")
    _type(spin, str(PERCENT_OF_MAX))
    ctx.settle(0.3)
    if not view.apply_button.isEnabled():
        raise TourError("contouring: Apply threshold is disabled")
    _click(view.apply_button)

    def listed() -> bool:
        return NAME in [r["name"] for r in view.rows_as_shown()] and not view.busy()

    ctx.wait_until(listed, TIMEOUT_S, f"{NAME} in the VOI list")
    ctx.wait_until(lambda: panel.is_ready() and not view.busy(), TIMEOUT_S, "the redraw")
    view.select_voi(NAME)
    ctx.settle(0.5)
    rows = view.rows_as_shown()
    row = next(r for r in rows if r["name"] == NAME)
    shown: dict[str, Any] = {
        "voi": NAME,
        "threshold": f"{PERCENT_OF_MAX} % of max within {WITHIN} on the SPECT of "
        f"{row['time_point']}",
        "volume_ml": row["volume_ml"],
        "mass_g": row["mass_g"],
        "n_vois": len(rows),
    }
    shown["submitted"] = _submit(view, ctx, SUBMIT)
    view.select_voi(NAME)
    ctx.settle(0.5)
    return shown


def _submit(view: ContouringStepView, ctx: TourContext, name: str) -> str:
    """Select ``name`` and click "Submit for review"; wait until the list says submitted."""
    view.select_voi(name)
    ctx.settle(0.2)
    if not view.submit_button.isEnabled():
        raise TourError(f"contouring: Submit for review is disabled for {name}")
    _click(view.submit_button)

    def submitted() -> bool:
        return not view.busy() and any(
            r["name"] == name and r["status"] == "submitted" for r in view.rows_as_shown()
        )

    ctx.wait_until(submitted, TIMEOUT_S, f"{name} submitted for review")
    return name
