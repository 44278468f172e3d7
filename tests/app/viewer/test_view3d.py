"""The VTK 3D view: axis conversion, drawing, the crosshair linked both ways, reset.

VTK draws only on a real X server (PLATFORM.md).  Run with
``QT_QPA_PLATFORM=xcb xvfb-run -a -s "-screen 0 1280x1024x24" python -m pytest ...``;
under the default offscreen platform the drawing tests are re-run in a
subprocess on xcb when a DISPLAY exists (``test_3d_tests_run_on_xcb``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from vtkmodules.util.numpy_support import vtk_to_numpy

from app.session import CaseSession
from app.viewer.view3d import to_vtk_image
from dosimetry_core.model import Geometry
from tests.app.conftest import CT_GEOMETRY
from tests.app.viewer.conftest import DOSE_CENTRE, SPHERE_RADIUS_MM

ROOT = Path(__file__).resolve().parents[3]


# ------------------------------------------------------ axis conversion
@pytest.mark.parametrize(
    "direction",
    [
        ((1, 0, 0), (0, 1, 0), (0, 0, 1)),  # head first, axial
        ((1, 0, 0), (0, 1, 0), (0, 0, -1)),  # slices stored feet to head
        ((0, 1, 0), (0, 0, -1), (-1, 0, 0)),  # a permuted, flipped (sagittal-like) grid
    ],
)
@pytest.mark.parametrize("stride", [1, 2])
def test_voxel_zyx_lands_at_its_lps_point_in_vtk(direction, stride):
    # asymmetric grid, every voxel value unique: find each value's VTK point
    geom = Geometry((4, 5, 6), (1.5, 2.0, 3.0), (10.0, -20.0, 30.0), direction)
    arr = np.arange(120, dtype=np.float32).reshape(4, 5, 6)
    image = to_vtk_image(arr, geom, stride)
    values = vtk_to_numpy(image.GetPointData().GetScalars())
    assert values.size == int(np.prod(image.GetDimensions()))
    checked = 0
    for k, j, i in np.ndindex(arr.shape):
        hits = np.flatnonzero(values == arr[k, j, i])
        if hits.size:
            np.testing.assert_allclose(
                image.GetPoint(int(hits[0])), geom.index_to_world([k, j, i]), atol=1e-9
            )
            checked += 1
    expected = int(np.prod([len(range(0, n, stride)) for n in arr.shape]))
    assert checked == expected
    # x is VTK's fastest axis: for the identity grid the second value is voxel [0, 0, 1]
    if direction[0] == (1, 0, 0) and direction[2] == (0, 0, 1) and stride == 1:
        assert image.GetDimensions() == (6, 5, 4)
        assert values[1] == arr[0, 0, 1] and values[6] == arr[0, 1, 0]


# ------------------------------------------------------------- drawing
needs_gl = pytest.mark.skipif(
    os.environ.get("QT_QPA_PLATFORM") != "xcb",
    reason="VTK draws on a real X server only (run under xvfb-run with QT_QPA_PLATFORM=xcb)",
)


@pytest.mark.xvfb
@pytest.mark.skipif(
    not os.environ.get("DISPLAY") or os.environ.get("QT_QPA_PLATFORM") == "xcb",
    reason="needs an X display; on xcb the tests below run directly",
)
def test_3d_tests_run_on_xcb():
    env = dict(os.environ, QT_QPA_PLATFORM="xcb")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-x", __file__],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    assert "1 skipped" in last, last  # only this runner skips itself there


@pytest.fixture()
def panel3d(qtbot, case_with_maps, shown_errors):
    from app.viewer.panel import ViewerPanel

    store, case = case_with_maps
    session = CaseSession(store)
    p = ViewerPanel(session)
    qtbot.addWidget(p)
    p.resize(1300, 950)
    p.show()
    qtbot.waitExposed(p)
    with qtbot.waitSignal(p.timePointShown, timeout=20_000):
        session.open_case(case.case_id)
    qtbot.waitUntil(p.is_ready, timeout=20_000)
    assert p.view3d is not None
    yield p
    p.close()


@pytest.mark.xvfb
@needs_gl
def test_3d_view_draws_the_volume_and_the_voi_surface(panel3d):
    v = panel3d.view3d
    assert v.has_rendered and v.first_render_s is not None
    composite = v.capture()
    assert v.nonblank_fraction() > 0.005
    x, y = v.display_point_of_world(DOSE_CENTRE)
    h = composite.shape[0]
    bg = np.round(np.asarray(v.renderer.GetBackground()) * 255)
    assert np.abs(composite[int(h - 1 - y), int(x)].astype(float) - bg).sum() > 60
    v.mode_combo.setCurrentText("MIP")
    assert v.mode() == "mip"
    mip = v.capture()
    assert v.nonblank_fraction() > 0.005
    assert not np.array_equal(mip, composite)
    v.source_combo.setCurrentText("Dose")
    assert v.source() == "dose" and v.info_label.text() == "MIP of Dose"
    # hiding the VOI in the list hides its surface
    panel3d.voi_list_widget.checks[0].setChecked(False)
    (actor,) = [a for _p, a in v._surfaces.values()]
    assert not actor.GetVisibility()


@pytest.mark.xvfb
@needs_gl
def test_2d_crosshair_moves_the_3d_cursor(panel3d):
    target = np.array([-60.0, 10.0, -30.0])
    panel3d.set_world_position(target)
    np.testing.assert_allclose(panel3d.view3d.cursor_position(), target)
    # a click in the axial plane moves it too
    plane = panel3d.viewer.planes["axial"]
    panel3d.viewer.pick("axial", 30.0, -40.0)
    np.testing.assert_allclose(panel3d.view3d.cursor_position(), panel3d.world_position())
    assert plane is not None


@pytest.mark.xvfb
@needs_gl
def test_click_in_3d_moves_the_2d_crosshair_to_the_surface_point(panel3d, qtbot):
    v = panel3d.view3d
    v.reset_camera()  # anterior view: the ray through the centre meets the sphere's front
    x, y = v.display_point_of_world(DOSE_CENTRE)
    w = v.vtk_widget
    ratio = w.devicePixelRatioF()
    pos = QPoint(int(round(x / ratio)), int(round((w.height() * ratio - 1 - y) / ratio)))
    with qtbot.waitSignal(v.positionPicked, timeout=2000):
        qtbot.mousePress(w, Qt.MouseButton.LeftButton, pos=pos)
        qtbot.mouseRelease(w, Qt.MouseButton.LeftButton, pos=pos)
    expected = DOSE_CENTRE - np.array([0.0, SPHERE_RADIUS_MM, 0.0])  # anterior = -y
    voxel = max(CT_GEOMETRY.spacing_mm) * 2  # the surface is drawn on a 2x-strided grid at most
    np.testing.assert_allclose(panel3d.world_position(), expected, atol=voxel)
    np.testing.assert_allclose(v.cursor_position(), panel3d.world_position())


@pytest.mark.xvfb
@needs_gl
def test_reset_view_restores_the_3d_camera(panel3d, qtbot):
    v = panel3d.view3d
    initial = v.camera_state()
    v.renderer.GetActiveCamera().Azimuth(70)
    v.renderer.GetActiveCamera().Dolly(1.8)
    assert v.camera_state() != initial
    qtbot.mouseClick(panel3d.reset_button, Qt.MouseButton.LeftButton)
    np.testing.assert_allclose(np.concatenate(v.camera_state()), np.concatenate(initial), atol=1e-6)


class _Ctx:
    """A minimal tour context (the real one is app.tour's)."""

    def __init__(self, qtbot, window):
        self.qtbot, self.window = qtbot, window

    def wait_until(self, predicate, timeout_s, what):
        self.qtbot.waitUntil(predicate, timeout=int(timeout_s * 1000))

    def settle(self, seconds=0.3):
        self.qtbot.wait(int(seconds * 1000))


@pytest.mark.xvfb
@needs_gl
def test_tour_driver_reports_what_the_viewer_shows(panel3d, qtbot):
    from app.viewer.tour import drive

    shown = drive(panel3d, _Ctx(qtbot, panel3d))
    assert shown["time_point"] == "TP2 · 24.0 h · NM"
    assert [layer["name"] for layer in shown["layers"]] == [
        "CT (HU)",
        "SPECT (Bq/mL)",
        "TIA (MBq·h/mL)",
        "Dose (Gy)",
    ]
    assert shown["layer_toggled"]["layer"] == "dose"
    assert "Dose" not in shown["layer_toggled"]["off"] and "Gy" in shown["layer_toggled"]["on"]
    assert shown["readout"] == panel3d.readout() and "Bq/mL" in shown["readout"]
    assert shown["vois"][0]["name"] == "Lesion" and shown["vois"][0]["volume_ml"] > 0
    assert shown["view3d"]["mode"] == "mip" and shown["view3d"]["rendered"]
    assert shown["view3d"]["nonblank_fraction"] > 0.005
    np.testing.assert_allclose(
        shown["view3d"]["cursor_lps_mm"], shown["crosshair_lps_mm"], atol=0.1
    )
