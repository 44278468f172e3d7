"""The workstation on the demo patient: real DICOM, real import, real store.

Done-means of the foundation issue: the GUI opens the demo case, and the
displayed slices change when the time point changes; under Xvfb a screenshot
shows the fused images (CT in grey with the SPECT in colour on top).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from app.main_window import MainWindow
from dosimetry_core.imaging.resample import resample
from dosimetry_core.pipeline.importing import import_directory
from dosimetry_core.store import CaseStore

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def demo_store(tmp_path, small_demo_dirs):
    store = CaseStore(tmp_path / "store")
    rep = import_directory(store, small_demo_dirs["siemens-bqml"])
    yield store, rep.cases[0].case_id
    store.close()


def test_demo_case_slices_change_with_the_time_point(qtbot, demo_store, shown_errors):
    store, case_id = demo_store
    w = MainWindow(store, store_path="(demo test store)")
    qtbot.addWidget(w)
    w.resize(1280, 900)
    w.show()
    qtbot.waitExposed(w)
    with qtbot.waitSignal(w.timePointDisplayed, timeout=20_000):
        assert w.open_case(case_id)
    assert w.time_point_labels() == [
        "TP1 · 4.0 h · NM",
        "TP2 · 24.0 h · NM",
        "TP3 · 96.0 h · NM",
        "TP4 · 168.0 h · NM",
    ]
    case = store.load_case(case_id)
    viewer = w.viewer
    # put the crosshair on the hottest SPECT voxel of TP1 (the 50 mL tumour or a kidney)
    tp1 = case.sorted_time_points()[0]
    spect1 = store.load_volume(tp1.functional.volume)
    hot = np.unravel_index(np.argmax(spect1.array), spect1.array.shape)
    viewer.set_world_position(spect1.geometry.index_to_world(hot))
    before = {p: s.overlay.copy() for p, s in viewer.current_slices().items()}

    with qtbot.waitSignal(w.timePointDisplayed, timeout=20_000):
        qtbot.mouseClick(w.time_point_selector.button(3), Qt.MouseButton.LeftButton)

    tp4 = case.sorted_time_points()[3]
    ct4 = store.load_volume(tp4.anatomical.volume)
    expected = resample(store.load_volume(tp4.functional.volume), ct4.geometry).array
    k, j, i = viewer.slice_index()
    now = viewer.current_slices()
    for plane, cut in (
        ("axial", expected[k]),
        ("coronal", expected[:, j, :]),
        ("sagittal", expected[:, :, i]),
    ):
        np.testing.assert_allclose(now[plane].overlay, cut, rtol=1e-5, atol=1e-3)
        # a week later the activity has mostly cleared: the slices must differ, and drop
        assert now[plane].overlay.max() < 0.8 * before[plane].max()
    assert w.header.value("acquired").endswith("(168.0 h p.i.) · NM")
    assert shown_errors == []


@pytest.mark.xvfb
@pytest.mark.skipif(not os.environ.get("DISPLAY"), reason="needs an X display (run under xvfb-run)")
def test_screenshot_under_xvfb_shows_fused_images(tmp_path):
    out = tmp_path / "shot.png"
    env = dict(os.environ, QT_QPA_PLATFORM="xcb")
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.tools.screenshot",
            "--phantom",
            "small",
            "--time-point",
            "1",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    img = QImage(str(out)).convertToFormat(QImage.Format.Format_RGB888)
    assert img.width() >= 1000 and img.height() >= 700
    ptr = img.constBits()
    arr = np.frombuffer(ptr, dtype=np.uint8, count=img.sizeInBytes())
    arr = (
        arr.reshape(img.height(), img.bytesPerLine())[:, : img.width() * 3]
        .reshape(img.height(), img.width(), 3)
        .astype(int)
    )
    r, g, b = arr[..., 0], arr[..., 1], arr[..., 2]
    grey = (np.abs(r - g) < 6) & (np.abs(g - b) < 6) & (r > 60) & (r < 220)  # CT soft tissue
    warm = (r > 120) & (r - b > 60)  # colour-mapped SPECT (inferno/hot: red-yellow)
    # the image panels sit between the case list and the control panel (whose colour bar
    # is warm too): look there only
    x0, x1 = int(0.34 * img.width()), int(0.81 * img.width())
    assert grey[:, x0:x1].sum() > 20_000, "no CT greyscale visible"
    assert warm[:, x0:x1].sum() > 2_000, "no SPECT colour overlay visible"


def test_voi_outlines_of_the_displayed_time_point_are_drawn(
    qtbot, tmp_path, small_demo_dirs, shown_errors
):
    from dosimetry_core.pipeline.contour_io import import_rtstruct_into_case

    store = CaseStore(tmp_path / "store")
    case_id = import_directory(store, small_demo_dirs["siemens-bqml"]).cases[0].case_id
    case = store.load_case(case_id)
    rt = next(small_demo_dirs["siemens-bqml"].glob("tp1*/RTSTRUCT/*.dcm"))
    import_rtstruct_into_case(store, case, rt, names=["Kidney_L", "Liver"], user="t")
    store.save_case(case)
    w = MainWindow(store, store_path="(test)")
    qtbot.addWidget(w)
    w.show()
    with qtbot.waitSignal(w.timePointDisplayed, timeout=20_000):
        assert w.open_case(case_id)
    viewer = w.viewer
    assert sorted(viewer.voi_names()) == ["Kidney_L", "Liver"]
    kidney = next(v for v in store.load_case(case_id).vois if v.name == "Kidney_L")
    mask = store.load_volume(kidney.mask)
    centre = mask.geometry.index_to_world(np.argwhere(mask.array).mean(axis=0))
    viewer.set_world_position(centre)
    rgba = viewer.voi_outline_image("axial")
    drawn = rgba[..., 3] > 0
    assert drawn.any()
    colours = {tuple(int(c) for c in px) for px in rgba[drawn][:, :3]}
    assert tuple(kidney.color_rgb) in colours
    # the outline is a ring: its pixels are the kidney mask's in-plane border, not its inside
    k = viewer.slice_index()[0]
    area = viewer._cut(viewer._vois[viewer.voi_names().index("Kidney_L")].mask, "axial", (k, 0, 0))
    ring = np.all(rgba[..., :3] == np.array(kidney.color_rgb), axis=-1) & drawn
    assert 0 < ring.sum() < area.sum()
    # other time points have no VOIs drawn on them; hiding works
    with qtbot.waitSignal(w.timePointDisplayed, timeout=20_000):
        qtbot.mouseClick(w.time_point_selector.button(1), Qt.MouseButton.LeftButton)
    assert viewer.voi_names() == [] and viewer.voi_outline_image("axial") is None
    with qtbot.waitSignal(w.timePointDisplayed, timeout=20_000):
        qtbot.mouseClick(w.time_point_selector.button(0), Qt.MouseButton.LeftButton)
    assert viewer.voi_outline_image("axial") is not None
    w.action_show_vois.setChecked(False)
    assert viewer.voi_outline_image("axial") is None
    assert shown_errors == []


def test_import_dicom_folder_from_the_gui(
    qtbot, tmp_path, small_demo_dirs, shown_errors, shown_infos
):
    store = CaseStore(tmp_path / "store")
    w = MainWindow(store, store_path="(test)")
    qtbot.addWidget(w)
    w.show()
    truth = __import__("json").loads(
        (small_demo_dirs["ge-counts"] / "ground_truth.json").read_text()
    )
    with qtbot.waitSignal(w.timePointDisplayed, timeout=30_000):
        w.import_folder(small_demo_dirs["ge-counts"], truth["camera"]["cps_per_mbq"])
    (title, message), *_ = shown_infos
    assert title == "Import DICOM"
    assert "New case for patient MRT-DEMO-001: 4 time point(s) added" in message
    assert "RTSTRUCT" in message and "ground_truth.json" in message  # skipped, with reasons
    assert [r[0] for r in w.case_list.visible_rows()] == ["MRT-DEMO-001"]
    # counts converted with the factor: the header shows the activity in the field of view
    expected = truth["time_points"][0]["fov_activity_mbq"]
    shown = float(w.header.value("total").replace(",", "").split()[0])
    assert shown == pytest.approx(expected, rel=0.01)
    assert w.header.value("calibration").startswith("calibration factor")
    assert shown_errors == []
