"""FusedViewer: fusion on the CT grid, linked crosshair, orientation, windows and opacity."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QImage, QWheelEvent
from PySide6.QtWidgets import QApplication

from app.viewer.planes import (
    CT_PRESETS,
    MIP,
    FusedViewer,
    fused_overlay,
    overlay_lookup_table,
)
from dosimetry_core.imaging.resample import resample
from dosimetry_core.model import Geometry
from tests.app.conftest import (
    CT_GEOMETRY,
    LESION_CENTRES,
    synthetic_ct,
    synthetic_spect,
)


@pytest.fixture()
def viewer(qtbot) -> FusedViewer:
    v = FusedViewer()
    qtbot.addWidget(v)
    v.resize(1000, 800)
    v.show()
    qtbot.waitExposed(v)
    return v


def _voxel(geom: Geometry, world) -> tuple[int, int, int]:
    k, j, i = np.rint(geom.world_to_index(world)).astype(int)
    return int(k), int(j), int(i)


def _grab(widget) -> QImage:
    QApplication.processEvents()
    return widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)


def _rgb(img: QImage, p: QPointF) -> tuple[int, int, int]:
    c = img.pixelColor(int(round(p.x())), int(round(p.y())))
    return c.red(), c.green(), c.blue()


# ------------------------------------------------------------------- fusion
def test_overlay_is_the_spect_resampled_onto_the_ct_grid(viewer):
    ct, spect = synthetic_ct(), synthetic_spect(0)
    viewer.set_time_point(ct, spect)
    expected = resample(spect, ct.geometry, order=1, fill_value=0.0).array
    k, j, i = viewer.slice_index()
    s = viewer.current_slices()
    np.testing.assert_array_equal(s["axial"].ct, ct.array[k])
    np.testing.assert_array_equal(s["coronal"].ct, ct.array[:, j, :])
    np.testing.assert_array_equal(s["sagittal"].ct, ct.array[:, :, i])
    np.testing.assert_allclose(s["axial"].overlay, expected[k], rtol=1e-6)
    np.testing.assert_allclose(s["coronal"].overlay, expected[:, j, :], rtol=1e-6)
    np.testing.assert_allclose(s["sagittal"].overlay, expected[:, :, i], rtol=1e-6)
    # what the ImageItems hold is what current_slices() reports
    np.testing.assert_array_equal(viewer.planes["axial"].overlay_item.image, s["axial"].overlay)
    np.testing.assert_array_equal(viewer.planes["sagittal"].ct_item.image, s["sagittal"].ct)


def test_overlay_is_computed_once_per_time_point(viewer, monkeypatch):
    import app.viewer.planes as fv

    calls = []
    real = fv.fused_overlay
    monkeypatch.setattr(fv, "fused_overlay", lambda ct, sp: calls.append(1) or real(ct, sp))
    ct, s0, s1 = synthetic_ct(), synthetic_spect(0), synthetic_spect(1)
    viewer.set_time_point(ct, s0)
    viewer.set_time_point(ct, s1)
    viewer.set_time_point(ct, s0)
    viewer.set_time_point(ct, s1)
    assert len(calls) == 2


def test_time_point_change_keeps_the_world_position_on_another_ct_grid(viewer):
    ct, spect = synthetic_ct(), synthetic_spect(0)
    viewer.set_time_point(ct, spect)
    target = np.array(LESION_CENTRES[0])
    viewer.set_world_position(target)
    before = viewer.current_slices()["axial"].overlay.copy()
    # next visit: the CT grid starts 2 slices and 3 columns further
    g = CT_GEOMETRY
    shifted = Geometry(
        g.shape_zyx,
        g.spacing_mm,
        (
            g.origin_mm[0] + 3 * g.spacing_mm[0],
            g.origin_mm[1],
            g.origin_mm[2] + 2 * g.spacing_mm[2],
        ),
        g.direction,
        g.frame_of_reference_uid,
    )
    ct2, spect2 = synthetic_ct(shifted), synthetic_spect(1)
    viewer.set_time_point(ct2, spect2)
    np.testing.assert_allclose(viewer.world_position(), target)
    assert viewer.slice_index() == _voxel(shifted, target)
    assert viewer.slice_index() != _voxel(g, target)
    k, _, _ = viewer.slice_index()
    after = viewer.current_slices()["axial"].overlay
    np.testing.assert_allclose(after, fused_overlay(ct2, spect2).array[k], rtol=1e-6)
    assert not np.allclose(after, before)


# ---------------------------------------------------------------- crosshair
def test_click_in_axial_moves_coronal_and_sagittal(viewer, qtbot):
    ct, spect = synthetic_ct(), synthetic_spect(0)
    viewer.set_time_point(ct, spect)
    k0 = viewer.slice_index()[0]
    # a voxel centre (i=45, j=20) of the current axial slice
    target = ct.geometry.index_to_world([k0, 20, 45])
    plane = viewer.planes["axial"]
    pos = plane.view_to_widget(target[0], target[1])
    vp = plane.view.viewport()
    qtbot.mouseClick(vp, Qt.MouseButton.LeftButton, pos=vp.mapFrom(plane, pos.toPoint()))
    expected = _voxel(ct.geometry, target)
    assert viewer.slice_index() == expected == (k0, 20, 45)
    s = viewer.current_slices()
    np.testing.assert_array_equal(s["coronal"].ct, ct.array[:, 20, :])
    np.testing.assert_array_equal(s["sagittal"].ct, ct.array[:, :, 45])
    # the crosshair lines of the other planes sit on the new slices (mm)
    assert viewer.planes["coronal"].vline.value() == pytest.approx(target[0])
    assert viewer.planes["sagittal"].vline.value() == pytest.approx(target[1])


def test_pick_in_coronal_and_sagittal(viewer, qtbot):
    ct, spect = synthetic_ct(), synthetic_spect(0)
    viewer.set_time_point(ct, spect)
    world = np.array([30.0, -50.0, 70.0])
    with qtbot.waitSignal(viewer.positionChanged, timeout=1000) as blocker:
        viewer.pick("coronal", world[0], world[2])  # horizontal x, vertical z
    assert blocker.args[0][[0, 2]] == pytest.approx(world[[0, 2]])
    k, j0, i = viewer.slice_index()
    assert (k, i) == (_voxel(ct.geometry, world)[0], _voxel(ct.geometry, world)[2])
    viewer.pick("sagittal", world[1], world[2])  # horizontal y, vertical z
    assert viewer.slice_index() == _voxel(ct.geometry, world)
    # a pick outside the image keeps the crosshair inside the grid
    viewer.pick("axial", 5000.0, -5000.0)
    k, j, i = viewer.slice_index()
    assert (j, i) == (0, ct.geometry.shape_zyx[2] - 1)


def test_mouse_wheel_scrolls_slices(viewer, qtbot):
    ct, spect = synthetic_ct(), synthetic_spect(0)
    viewer.set_time_point(ct, spect)
    k, j, i = viewer.slice_index()
    plane = viewer.planes["axial"]
    vp = plane.view.viewport()
    centre = QPointF(vp.width() / 2, vp.height() / 2)
    for _ in range(3):
        ev = QWheelEvent(
            centre,
            QPointF(vp.mapToGlobal(centre.toPoint())),
            QPoint(0, 0),
            QPoint(0, 120),
            Qt.MouseButton.NoButton,
            Qt.KeyboardModifier.NoModifier,
            Qt.ScrollPhase.NoScrollPhase,
            False,
        )
        QApplication.sendEvent(vp, ev)
    assert viewer.slice_index() == (k + 3, j, i)
    viewer.scroll("coronal", -2)
    assert viewer.slice_index() == (k + 3, j - 2, i)
    # Up/PageDown scroll the plane that was clicked (the click also moves the crosshair)
    sag = viewer.planes["sagittal"]
    svp = sag.view.viewport()
    qtbot.mouseClick(svp, Qt.MouseButton.LeftButton, pos=svp.rect().center())
    k2, j2, i2 = viewer.slice_index()
    assert i2 == i
    # (sent to the plane's graphics view, which has the focus after a click in a real session)
    qtbot.keyClick(sag.view, Qt.Key.Key_Up)
    assert viewer.slice_index() == (k2, j2, i + 1)
    qtbot.keyClick(sag.view, Qt.Key.Key_PageDown)
    assert viewer.slice_index() == (k2, j2, i - 4)


def test_mip_click_jumps_to_the_hottest_voxel_along_the_line(viewer):
    ct, spect = synthetic_ct(), synthetic_spect(0)
    viewer.set_time_point(ct, spect)
    cx, cy, cz = LESION_CENTRES[0]
    viewer.pick(MIP, cx, cz)
    overlay = fused_overlay(ct, spect).array
    k, j, i = viewer.slice_index()
    assert j == int(np.argmax(overlay[k, :, i]))
    assert abs(ct.geometry.index_to_world([k, j, i])[1] - cy) <= ct.geometry.spacing_mm[1]


# ----------------------------------------------------- orientation, aspect
def test_radiological_orientation_and_labels(viewer):
    viewer.set_time_point(synthetic_ct(), synthetic_spect(0))
    ax = viewer.planes["axial"]
    labels = {k: v.text() for k, v in ax.orientation_labels.items()}
    assert labels == {"left": "R", "right": "L", "top": "A", "bottom": "P"}
    # patient's right (LPS -x) on the screen's left; anterior (-y) at the top
    assert ax.view_to_widget(-100, 0).x() < ax.view_to_widget(100, 0).x()
    assert ax.view_to_widget(0, -100).y() < ax.view_to_widget(0, 100).y()
    co = viewer.planes["coronal"]
    assert {k: v.text() for k, v in co.orientation_labels.items()} == {
        "left": "R",
        "right": "L",
        "top": "S",
        "bottom": "I",
    }
    assert co.view_to_widget(-100, 0).x() < co.view_to_widget(100, 0).x()
    assert co.view_to_widget(0, 100).y() < co.view_to_widget(0, -100).y()  # superior up
    sa = viewer.planes["sagittal"]
    assert {k: v.text() for k, v in sa.orientation_labels.items()} == {
        "left": "A",
        "right": "P",
        "top": "S",
        "bottom": "I",
    }
    assert sa.view_to_widget(-100, 0).x() < sa.view_to_widget(100, 0).x()  # anterior left
    assert "mm" in ax.position_label.text()


def test_anisotropic_voxels_keep_their_aspect_ratio(viewer):
    ct = synthetic_ct()  # 6 x 6 mm in plane, 8 mm slices
    viewer.set_time_point(ct, synthetic_spect(0))
    nz, ny, nx = ct.geometry.shape_zyx
    sx, sy, sz = ct.geometry.spacing_mm
    for plane, (w_mm, h_mm) in {
        "axial": (nx * sx, ny * sy),
        "coronal": (nx * sx, nz * sz),
        "sagittal": (ny * sy, nz * sz),
    }.items():
        item = viewer.planes[plane].ct_item
        r = item.mapRectToView(item.boundingRect())
        assert (r.width(), r.height()) == pytest.approx((w_mm, h_mm))
        on_screen = item.sceneBoundingRect()  # pixels
        assert on_screen.width() / on_screen.height() == pytest.approx(w_mm / h_mm, rel=0.01)


def test_feet_first_grid_is_shown_superior_up(viewer):
    g = CT_GEOMETRY
    nz = g.shape_zyx[0]
    # same voxels stored in the opposite slice order (direction of k = -z)
    ff = Geometry(
        g.shape_zyx,
        g.spacing_mm,
        (g.origin_mm[0], g.origin_mm[1], g.origin_mm[2] + (nz - 1) * g.spacing_mm[2]),
        ((1, 0, 0), (0, 1, 0), (0, 0, -1)),
        g.frame_of_reference_uid,
    )
    ct_hf = synthetic_ct()
    ct_ff = ct_hf.with_array(ct_hf.array[::-1].copy())
    ct_ff = type(ct_hf)(ct_ff.array, ff, ct_hf.units, ct_hf.description)
    world = np.array([10.0, -30.0, 60.0])
    viewer.set_time_point(ct_hf, None)
    viewer.set_world_position(world)
    hf = viewer.current_slices()
    viewer.set_time_point(ct_ff, None)
    ff_slices = viewer.current_slices()
    for plane in ("axial", "coronal", "sagittal"):
        np.testing.assert_array_equal(ff_slices[plane].ct, hf[plane].ct)
    assert viewer.slice_index() == _voxel(ff, world)


# ----------------------------------------------------- windows and opacity
def test_ct_window_presets_change_the_rendered_ct(viewer):
    ct = synthetic_ct()
    viewer.set_time_point(ct, None)
    viewer.set_world_position([0.0, -5.0, 90.0])  # through the lungs
    item = viewer.planes["axial"].ct_item
    assert tuple(item.levels) == pytest.approx((-160.0, 240.0))  # soft tissue W400/L40
    lung_px = viewer.planes["axial"].view_to_widget(70.0, -5.0)
    before = _rgb(_grab(viewer.planes["axial"]), lung_px)
    viewer.preset_combo.setCurrentText("Lung")
    w, lvl = CT_PRESETS["Lung"]
    assert tuple(item.levels) == pytest.approx((lvl - w / 2, lvl + w / 2))
    assert viewer.width_spin.value() == w and viewer.level_spin.value() == lvl
    after = _rgb(_grab(viewer.planes["axial"]), lung_px)
    assert after[0] > before[0] + 40  # lung tissue becomes visible grey
    viewer.width_spin.setValue(1000)
    assert viewer.preset_combo.currentText() == "Custom"


def test_spect_window_and_opacity_change_the_rendered_overlay(viewer):
    ct, spect = synthetic_ct(), synthetic_spect(0)
    viewer.set_time_point(ct, spect)
    centre = LESION_CENTRES[0]
    viewer.set_world_position(centre)
    plane = viewer.planes["axial"]
    px = plane.view_to_widget(centre[0], centre[1])
    vmax = float(spect.array.max())

    viewer.set_opacity(0.0)
    grey = _rgb(_grab(plane), px)
    assert grey[0] == grey[1] == grey[2]  # CT only
    viewer.opacity_slider.setValue(100)
    assert viewer.opacity() == pytest.approx(1.0)
    viewer.set_overlay_window(0.0, 100.0, FusedViewer.MODE_PERCENT)
    colour = _rgb(_grab(plane), px)
    assert max(colour) - min(colour) > 60  # the colour map shows

    viewer.lo_spin.setValue(10.0)
    viewer.hi_spin.setValue(50.0)
    assert tuple(plane.overlay_item.levels) == pytest.approx((0.1 * vmax, 0.5 * vmax), rel=1e-5)
    saturated = _rgb(_grab(plane), px)
    assert saturated != colour

    # below the lower limit the overlay is transparent: the CT shows through
    viewer.set_overlay_window(2 * vmax, 3 * vmax, FusedViewer.MODE_ABSOLUTE)
    assert _rgb(_grab(plane), px) == grey
    assert tuple(plane.overlay_item.levels) == pytest.approx((2 * vmax, 3 * vmax))


def test_absolute_window_stays_when_the_time_point_changes(viewer):
    ct = synthetic_ct()
    viewer.set_time_point(ct, synthetic_spect(0))
    viewer.set_overlay_window(10.0, 60.0)
    pct_levels_tp1 = viewer.overlay_levels()
    viewer.mode_combo.setCurrentText(FusedViewer.MODE_ABSOLUTE)
    assert viewer.overlay_levels() == pytest.approx(pct_levels_tp1)
    viewer.set_time_point(ct, synthetic_spect(2))
    assert viewer.overlay_levels() == pytest.approx(pct_levels_tp1)
    viewer.mode_combo.setCurrentText(FusedViewer.MODE_PERCENT)
    m = float(synthetic_spect(2).array.max())
    lo, hi, mode = viewer.overlay_window()
    assert mode == FusedViewer.MODE_PERCENT
    assert (lo, hi) == pytest.approx((100 * pct_levels_tp1[0] / m, 100 * pct_levels_tp1[1] / m))


def test_colour_map_choice_changes_the_lookup_table(viewer):
    viewer.set_time_point(synthetic_ct(), synthetic_spect(0))
    viewer.cmap_combo.setCurrentText("Hot")
    assert viewer.colormap_name() == "Hot"
    lut = viewer.planes["coronal"].overlay_item.lut
    np.testing.assert_array_equal(lut, overlay_lookup_table("Hot"))
    assert lut[0, 3] == 0 and lut[-1, 3] == 255  # low values transparent
    with pytest.raises(KeyError):
        viewer.set_colormap("no such map")


def test_cursor_reports_hu_and_bq_per_ml(viewer, qtbot):
    ct, spect = synthetic_ct(), synthetic_spect(0)
    viewer.set_time_point(ct, spect)
    centre = np.array(LESION_CENTRES[0])
    viewer.set_world_position(centre)
    plane = viewer.planes["axial"]
    infos = []
    viewer.cursorInfo.connect(infos.append)
    pos = plane.view_to_widget(centre[0], centre[1]).toPoint()
    vp = plane.view.viewport()
    qtbot.mouseMove(vp, vp.mapFrom(plane, pos))
    qtbot.waitUntil(lambda: "Bq/mL" in viewer.cursor_text(), timeout=2000)
    text = viewer.cursor_text()
    k, j, i = _voxel(ct.geometry, centre)
    sk, sj, si = _voxel(spect.geometry, ct.geometry.index_to_world([k, j, i]))
    assert f"CT {ct.array[k, j, i]:.0f} HU" in text
    assert f"{spect.array[sk, sj, si]:,.0f} Bq/mL" in text
    assert infos and infos[-1] == text
    assert "HU" in viewer.crosshair_text() and "Bq/mL" in viewer.crosshair_text()


def test_reset_view_and_clear(viewer):
    ct = synthetic_ct()
    viewer.set_time_point(ct, synthetic_spect(0))
    viewer.pick("axial", 150.0, 150.0)
    viewer.reset_view()
    np.testing.assert_allclose(viewer.world_position(), ct.geometry.center_world())
    viewer.clear()
    assert not viewer.has_image()
    assert viewer.current_slices()["axial"].ct is None
