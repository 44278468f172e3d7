"""ViewerPanel bound to a session: time points, layers, readout, isodose, VOI list, reset view."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication

from app.common import error_display
from app.session import CaseSession
from app.viewer.panel import ViewerPanel
from dosimetry_core.segmentation.mass import voi_mass_g, voi_volume_ml
from tests.app.conftest import CT_GEOMETRY, LESION_CENTRES, synthetic_ct, synthetic_spect
from tests.app.viewer.conftest import (
    DOSE_CENTRE,
    DOSE_LENGTH_MM,
    DOSE_PEAK_GY,
    sphere_mask,
)


@pytest.fixture()
def errors(monkeypatch):
    shown = []
    monkeypatch.setattr(
        error_display, "show_error", lambda parent, title, msg, details="": shown.append(msg)
    )
    return shown


@pytest.fixture()
def panel(qtbot, case_with_maps, errors):
    store, case = case_with_maps
    session = CaseSession(store)
    p = ViewerPanel(session)
    qtbot.addWidget(p)
    p.resize(1400, 900)
    p.show()
    qtbot.waitExposed(p)
    with qtbot.waitSignal(p.timePointShown, timeout=20_000):
        session.open_case(case.case_id)
    qtbot.waitUntil(p.is_ready, timeout=20_000)
    p.session_case = case
    return p


def _rgb(widget, p: QPointF) -> tuple[int, int, int]:
    QApplication.processEvents()
    img = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    c = img.pixelColor(int(round(p.x())), int(round(p.y())))
    return c.red(), c.green(), c.blue()


def _ct_index(world) -> tuple[int, int, int]:
    k, j, i = np.rint(CT_GEOMETRY.world_to_index(world)).astype(int)
    return int(k), int(j), int(i)


def test_panel_lists_time_points_and_layers(panel):
    assert panel.time_point_labels() == [
        "TP1 · 4.0 h · NM",
        "TP2 · 24.0 h · NM",
        "TP3 · 96.0 h · NM",
    ]
    assert panel.current_time_point().label == "TP1"
    names = [panel.layer_table.item(r, 1).text() for r in range(panel.layer_table.rowCount())]
    assert names == ["CT (HU)", "SPECT (Bq/mL)", "TIA (MBq·h/mL)", "Dose (Gy)"]


def test_time_point_button_shows_the_other_spect(panel, qtbot):
    before = panel.viewer.current_slices()["axial"].overlay.copy()
    tp2 = panel.time_points()[1]
    with qtbot.waitSignal(panel.timePointShown, timeout=20_000) as blocker:
        qtbot.mouseClick(panel.time_point_selector.button(1), Qt.MouseButton.LeftButton)
    assert blocker.args == [tp2.time_point_id]
    assert panel.is_ready()
    after = panel.viewer.current_slices()["axial"].overlay
    k = panel.viewer.slice_index()[0]
    ct = synthetic_ct()
    from app.viewer.model import fused_overlay

    np.testing.assert_allclose(after, fused_overlay(ct, synthetic_spect(1)).array[k], rtol=1e-5)
    assert not np.allclose(after, before)


def test_readout_names_every_visible_layer_with_its_unit(panel):
    panel.set_world_position(DOSE_CENTRE)
    k, j, i = _ct_index(DOSE_CENTRE)
    ct = synthetic_ct()
    spect = synthetic_spect(0)
    sk, sj, si = np.rint(spect.geometry.world_to_index(DOSE_CENTRE)).astype(int)
    text = panel.readout()
    assert text == (
        f"CT {ct.array[k, j, i]:.0f} HU · SPECT {spect.array[sk, sj, si]:,.0f} Bq/mL · "
        f"Dose {DOSE_PEAK_GY:.3g} Gy"
    )  # the TIA layer starts hidden
    panel.layer_table.rows["tia"]["visible"].setChecked(True)
    assert "TIA 0.84 MBq·h/mL" in panel.readout()
    # the mouse over the axial plane announces the same values (status bar)
    infos = []
    panel.cursorInfo.connect(infos.append)
    plane = panel.viewer.planes["axial"]
    vp = plane.view.viewport()
    pos = plane.view_to_widget(DOSE_CENTRE[0], DOSE_CENTRE[1]).toPoint()
    from PySide6.QtTest import QTest
    from pytestqt.qtbot import QtBot  # noqa: F401  (qtbot fixture type)

    QTest.mouseMove(vp, vp.mapFrom(plane, pos))
    QApplication.processEvents()
    assert infos and "Dose 20 Gy" in infos[-1] and "TIA 0.84 MBq·h/mL" in infos[-1]
    panel.layer_table.rows["dose"]["visible"].setChecked(False)
    assert "Dose" not in panel.readout()


def test_dose_layer_toggle_changes_the_pixels_seen(panel):
    panel.set_world_position(DOSE_CENTRE)
    plane = panel.viewer.planes["axial"]
    px = plane.view_to_widget(DOSE_CENTRE[0] + 12.0, DOSE_CENTRE[1] + 30.0)
    with_dose = _rgb(plane, px)
    panel.layer_table.rows["dose"]["visible"].setChecked(False)
    without = _rgb(plane, px)
    assert with_dose != without
    panel.layer_table.rows["dose"]["visible"].setChecked(True)
    assert _rgb(plane, px) == with_dose
    # CT off: where there is no overlay the plane turns black
    panel.layer_table.rows["spect"]["visible"].setChecked(False)
    panel.layer_table.rows["dose"]["visible"].setChecked(False)
    air = plane.view_to_widget(-180.0, -180.0)
    body = plane.view_to_widget(-100.0, 40.0)
    assert _rgb(plane, body) != (0, 0, 0)
    panel.layer_table.rows["ct"]["visible"].setChecked(False)
    assert _rgb(plane, body) == (0, 0, 0) == _rgb(plane, air)


def test_layer_window_colour_map_and_opacity_reach_the_image_items(panel):
    row = panel.layer_table.rows["dose"]
    row["lower"].setValue(2.0)
    row["upper"].setValue(10.0)
    item = panel.viewer.planes["axial"].extra_items["dose"]
    assert tuple(item.levels) == pytest.approx((2.0, 10.0))
    row["opacity"].setValue(80)
    assert item.opacity() == pytest.approx(0.8)
    row["cmap"].setCurrentText("Hot")
    from app.viewer.planes import overlay_lookup_table

    np.testing.assert_array_equal(item.lut, overlay_lookup_table("Hot"))
    ct_row = panel.layer_table.rows["ct"]
    ct_row["lower"].setValue(-1000.0)
    ct_row["upper"].setValue(200.0)
    assert tuple(panel.viewer.planes["axial"].ct_item.levels) == pytest.approx((-1000.0, 200.0))


def test_isodose_5_gy_lies_at_the_analytic_radius(panel, qtbot, errors):
    panel.set_world_position(DOSE_CENTRE)
    panel.isodose_edit.setText("5")
    panel.isodose_edit.editingFinished.emit()
    assert panel.isodose_levels_gy() == [5.0]
    r_expected = DOSE_LENGTH_MM * np.log(DOSE_PEAK_GY / 5.0)  # 41.6 mm
    for plane, (h, v) in {"axial": (0, 1), "coronal": (0, 2), "sagittal": (1, 2)}.items():
        seg = panel.viewer.isodose_segments(plane)[5.0]
        pts = seg.reshape(-1, 2)
        assert len(pts) > 20
        r = np.hypot(pts[:, 0] - DOSE_CENTRE[h], pts[:, 1] - DOSE_CENTRE[v])
        voxel = max(CT_GEOMETRY.spacing_mm)
        assert np.all(np.abs(r - r_expected) <= voxel), plane
    # what is drawn is what isodose_segments reports
    curve = panel.viewer.planes["axial"].isodose_items[0]
    x, _y = curve.getData()
    assert len(x) == 2 * len(panel.viewer.isodose_segments("axial")[5.0])
    # hostile input: refused with a message naming the field, levels unchanged
    panel.isodose_edit.setText("5, abc")
    panel.isodose_edit.editingFinished.emit()
    assert errors and "isodose" in errors[-1]
    assert panel.isodose_edit.property("invalid") is True
    panel.isodose_edit.setText("-2")
    panel.isodose_edit.editingFinished.emit()
    assert "positive" in errors[-1]
    assert panel.isodose_levels_gy() == [5.0]


def test_voi_list_shows_the_core_volume_and_mass(panel):
    table = panel.voi_list_widget
    rows = table.rows_as_shown()
    assert [r["name"] for r in rows] == ["Lesion"]
    mask = sphere_mask()
    volume = voi_volume_ml(mask.array, mask.geometry)
    mass = voi_mass_g(mask.array, synthetic_ct())
    assert rows[0]["volume_ml"] == pytest.approx(round(volume, 1))
    assert rows[0]["mass_g"] == pytest.approx(round(mass, 1))
    assert rows[0]["kind"] == "lesion" and rows[0]["status"] == "draft"
    # the outline is drawn; hiding the VOI removes it; a new colour recolours it
    assert panel.viewer.voi_names() == ["Lesion"]
    panel.set_world_position(DOSE_CENTRE)
    outline = panel.viewer.voi_outline_image("axial")
    assert outline is not None and (outline[..., 1] == 255).any()
    from PySide6.QtGui import QColor

    table.choose_colour(0, QColor(255, 0, 255))
    outline = panel.viewer.voi_outline_image("axial")
    edge = outline[..., 3] == 255
    assert edge.any() and np.all(outline[edge][:, :3] == (255, 0, 255))
    table.checks[0].setChecked(False)
    assert panel.viewer.voi_names() == []


def test_reset_button_and_action_restore_the_initial_view(panel, qtbot):
    viewer = panel.viewer
    centre = viewer._grid.geometry.center_world()
    initial_range = viewer.planes["axial"].vb.viewRange()
    for trigger in (
        lambda: qtbot.mouseClick(panel.reset_button, Qt.MouseButton.LeftButton),
        panel.reset_action.trigger,
    ):
        viewer.pick("axial", 150.0, 150.0)
        viewer.planes["axial"].vb.scaleBy((0.3, 0.3))
        assert not np.allclose(panel.world_position(), centre)
        trigger()
        np.testing.assert_allclose(panel.world_position(), centre)
        np.testing.assert_allclose(viewer.planes["axial"].vb.viewRange(), initial_range, atol=1.0)
    assert panel.reset_action.shortcut().toString() == "Ctrl+0"


def test_closing_the_case_clears_the_viewer(panel):
    panel.session.close_case()
    assert not panel.viewer.has_image()
    assert panel.time_point_labels() == []
    assert panel.voi_list_widget.rowCount() == 0
    assert panel.current_time_point() is None and not panel.is_ready()


def test_lesion_centre_is_hot_in_the_spect_layer(panel):
    # sanity of the fixture: TP1's hot sphere is where the conftest puts it
    panel.set_world_position(LESION_CENTRES[0])
    assert "SPECT" in panel.readout()


def test_an_unreadable_map_reaches_the_user_with_the_store_message(
    qtbot, case_with_maps, errors, monkeypatch
):
    """The store cannot read the dose map's voxels: the error dialog shows the store's
    message, nothing half-drawn stays on screen."""
    from dosimetry_core.errors import StoreError
    from dosimetry_core.model import DerivedKind

    store, case = case_with_maps
    bad_key = case.derived_maps(DerivedKind.DOSE)[0].volume.key
    real = store.load_volume

    def load_volume(ref):
        if ref.key == bad_key:
            raise StoreError(f"blob {bad_key[:12]} is corrupt (hash mismatch)")
        return real(ref)

    monkeypatch.setattr(store, "load_volume", load_volume)
    session = CaseSession(store)
    p = ViewerPanel(session)
    qtbot.addWidget(p)
    with qtbot.waitSignal(p.loadFailed, timeout=20_000) as blocker:
        session.open_case(case.case_id)
    assert errors == [blocker.args[0]] == [f"blob {bad_key[:12]} is corrupt (hash mismatch)"]
    assert not p.is_ready() and not p.viewer.has_image()
    assert p.status_label.text() == "Could not load the time point"


def test_the_layer_style_stays_when_the_time_point_changes(panel, qtbot):
    panel.layer_table.rows["dose"]["upper"].setValue(12.0)
    panel.layer_table.rows["tia"]["visible"].setChecked(True)
    with qtbot.waitSignal(panel.timePointShown, timeout=20_000):
        panel.select_time_point(2)
    assert panel.layer_table.rows["dose"]["upper"].value() == pytest.approx(12.0)
    assert panel.layer_table.rows["tia"]["visible"].isChecked()
    assert "TIA" in panel.readout()


def test_time_point_buttons_drop_the_modality_when_narrow_never_elide(qtbot):
    from app.viewer.panel import TimePointSelector

    sel = TimePointSelector()
    qtbot.addWidget(sel)
    labels = ["TP1 · 4.0 h · NM", "TP2 · 24.0 h · NM", "TP3 · 96.0 h · NM", "TP4 · 168.0 h · NM"]
    sel.set_items(labels)
    sel.resize(900, 30)
    sel.show()
    qtbot.waitExposed(sel)
    shown = [b.text() for b in sel.findChildren(type(sel._buttons[0]))]
    assert shown == labels  # wide: the whole label
    sel.resize(330, 30)
    qtbot.waitUntil(lambda: sel._buttons[0].text() == "TP1 · 4.0 h")
    assert [b.text() for b in sel._buttons] == [
        "TP1 · 4.0 h",
        "TP2 · 24.0 h",
        "TP3 · 96.0 h",
        "TP4 · 168.0 h",
    ]
    assert sel.labels() == labels  # what the tour and tests read is still the full label
    assert [b.toolTip() for b in sel._buttons] == labels
