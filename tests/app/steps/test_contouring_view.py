"""The contouring step beside the viewer (pytest-qt) on the shared analysis case.

What the user sees is asserted: the VOI list's cells, the preview drawn in the
axial plane while the threshold value is typed, the mask a mouse stroke paints,
and that Ctrl+Z brings the stored mask back exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QHBoxLayout, QWidget

from app.common import error_display
from app.steps.contouring.model import COLUMNS
from app.steps.contouring.view import ContouringStepView
from app.viewer.panel import ViewerPanel
from dosimetry_core.imaging.case_volumes import load_mask
from dosimetry_core.pipeline.contouring import ct_of, spect_on_grid, voi_table
from dosimetry_core.segmentation import operations as ops

VOLUME_COL = COLUMNS.index("Volume (mL)")


@pytest.fixture()
def errors(monkeypatch: Any) -> list[str]:
    shown: list[str] = []
    monkeypatch.setattr(
        error_display, "show_error", lambda parent, title, msg, details="": shown.append(msg)
    )
    return shown


_HOSTS: list[QWidget] = []
"""The windows of the open tests (a widget without a Python reference is deleted)."""


def _open(qtbot: Any, session: Any) -> tuple[ContouringStepView, ViewerPanel]:
    host = QWidget()
    _HOSTS[:] = [host]
    panel = ViewerPanel(session, host)
    view = ContouringStepView(session, host)
    lay = QHBoxLayout(host)
    lay.addWidget(panel, 3)
    lay.addWidget(view, 2)
    qtbot.addWidget(host)
    host.resize(1500, 950)
    host.show()
    qtbot.waitExposed(host)
    view.attach_viewer(panel)
    qtbot.waitUntil(lambda: panel.is_ready() and not view.busy(), timeout=60_000)
    return view, panel


def _wait_saved(qtbot: Any, view: ContouringStepView, panel: ViewerPanel) -> None:
    qtbot.waitUntil(lambda: not view.busy() and panel.is_ready(), timeout=60_000)


def _click(qtbot: Any, w: Any) -> None:
    qtbot.mouseClick(w, Qt.MouseButton.LeftButton)


def _type(qtbot: Any, w: Any, text: str) -> None:
    w.setFocus()
    w.selectAll() if hasattr(w, "selectAll") else None
    QTest.keyClicks(w, text)
    QTest.keyClick(w, Qt.Key.Key_Return)


def _row(view: ContouringStepView, name: str) -> int:
    names = [view.table.item(r, 2).text() for r in range(view.table.rowCount())]
    return names.index(name)


def test_threshold_with_live_preview_then_apply_shows_the_core_volume(
    qtbot: Any, analysis_session: Any, errors: list[str]
) -> None:
    view, panel = _open(qtbot, analysis_session)
    store = analysis_session.store
    case = analysis_session.case
    tp = case.sorted_time_points()[0]
    assert view.shown_time_point_id() == tp.time_point_id
    assert "Kidney_L" in [r["name"] for r in view.rows_as_shown()]

    # the crosshair on the hottest kidney voxel, so the preview is in the planes
    spect = spect_on_grid(store, tp, ct_of(store, tp).geometry)
    kidney = next(v for v in case.vois if v.name == "Kidney_L")
    region, g = load_mask(store, kidney)
    expected = ops.threshold_relative(spect, 40.0, within=region)
    hot = np.unravel_index(np.argmax(np.where(region, spect.array, -np.inf)), region.shape)
    panel.set_world_position(g.index_to_world(np.asarray(hot, dtype=float)))

    _type(qtbot, view.name_box.lineEdit(), "Tour_threshold")
    _click(qtbot, view.new_button)
    assert "new VOI Tour_threshold" in view.target_label.text()
    view.within_box.setCurrentText("Kidney_L")
    _type(qtbot, view.value_spin.lineEdit(), "40")
    assert view.slider.value() == 40
    shown = panel.viewer.edit_overlay_image("axial")
    assert shown is not None
    assert np.array_equal(shown[..., 3] > 0, expected[hot[0]])  # preview = core on that slice

    _click(qtbot, view.apply_button)
    qtbot.waitUntil(
        lambda: "Tour_threshold" in [r["name"] for r in view.rows_as_shown()], timeout=60_000
    )
    _wait_saved(qtbot, view, panel)
    saved = next(v for v in analysis_session.case.vois if v.name == "Tour_threshold")
    mask, _ = load_mask(store, saved)
    assert np.array_equal(mask, expected)
    table = {r["name"]: r for r in voi_table(store, analysis_session.case)}
    cell = view.table.item(_row(view, "Tour_threshold"), VOLUME_COL).text()
    assert cell == f"{table['Tour_threshold']['volume_ml']:,.2f}"
    assert errors == []


def _drag(viewport: QWidget, points: list[QPointF]) -> None:
    left = Qt.MouseButton.LeftButton
    QTest.mousePress(viewport, left, Qt.KeyboardModifier.NoModifier, points[0].toPoint())
    for p in points[1:]:
        ev = QMouseEvent(
            QEvent.Type.MouseMove,
            p,
            viewport.mapToGlobal(p),
            Qt.MouseButton.NoButton,
            left,
            Qt.KeyboardModifier.NoModifier,
        )
        QApplication.sendEvent(viewport, ev)
        QApplication.processEvents()
    QTest.mouseRelease(viewport, left, Qt.KeyboardModifier.NoModifier, points[-1].toPoint())


def test_brush_stroke_saves_one_edit_and_ctrl_z_restores_the_exact_mask(
    qtbot: Any, analysis_session: Any, errors: list[str]
) -> None:
    view, panel = _open(qtbot, analysis_session)
    store = analysis_session.store
    liver = next(v for v in analysis_session.case.vois if v.name == "Liver")
    before, g = load_mask(store, liver)
    rect = view.table.visualItemRect(view.table.item(_row(view, "Liver"), 2))
    qtbot.mouseClick(view.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert view.target() == ("Liver", liver.time_point_id)
    view.tabs.setCurrentIndex(1)
    _click(qtbot, view.tool_buttons["brush"])
    assert panel.viewer.tool_active()

    # a stroke outside the liver, through the middle of the axial plane
    plane = panel.viewer.planes["axial"]
    vp = plane.view.viewport()
    centre = g.center_world()
    h, v = float(centre[0]), float(centre[1])
    pts = [
        QPointF(vp.mapFrom(plane, plane.view_to_widget(h + dx, v).toPoint()))
        for dx in (-30, -15, 0, 15, 30)
    ]
    n_before = int(before.sum())
    _drag(vp, pts)
    qtbot.waitUntil(lambda: view.undo_stack().can_undo(), timeout=10_000)
    _wait_saved(qtbot, view, panel)
    after, _ = load_mask(store, next(v for v in analysis_session.case.vois if v.name == "Liver"))
    assert after.sum() > n_before and (after | before).sum() == after.sum()
    assert "brush 10 mm" in view.undo_action.toolTip()
    cell = view.table.item(_row(view, "Liver"), VOLUME_COL).text()
    qtbot.waitUntil(
        lambda: (
            view.table.item(_row(view, "Liver"), VOLUME_COL).text()
            == f"{after.sum() * g.voxel_volume_ml:,.2f}"
        ),
        timeout=20_000,
    )

    QTest.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    _wait_saved(qtbot, view, panel)
    restored, _ = load_mask(store, next(v for v in analysis_session.case.vois if v.name == "Liver"))
    assert np.array_equal(restored, before)
    qtbot.waitUntil(
        lambda: view.table.item(_row(view, "Liver"), VOLUME_COL).text() != cell, timeout=20_000
    )
    assert errors == []


def test_a_physician_sees_the_list_but_cannot_edit(qtbot: Any, analysis_store: Any) -> None:
    from app.session import CaseSession
    from tests.app.steps.conftest import ENTRY_PASSWORDS, add_entry_accounts

    add_entry_accounts(analysis_store)
    session = CaseSession(analysis_store, analysis_store.path)
    session.login("dora", ENTRY_PASSWORDS["dora"])
    session.open_case(analysis_store.case_id)
    view, panel = _open(qtbot, session)
    assert view.table.rowCount() == len(session.case.vois) > 0
    rect = view.table.visualItemRect(view.table.item(0, 2))
    qtbot.mouseClick(view.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    for w in (
        view.new_button,
        view.rename_button,
        view.delete_button,
        view.apply_button,
        view.margin_button,
        view.tool_buttons["brush"],
        view.import_buttons["rtstruct"],
    ):
        assert not w.isEnabled(), w.objectName()
    assert view.export_buttons["nifti"].isEnabled()  # a physician may export
    assert not view.undo_action.isEnabled()
    session.cancel_jobs()
