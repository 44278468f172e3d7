"""The workstation on the demo patient: real DICOM, real import, real store.

The shell on a real case: the header follows the time point the viewer shows
(hours after administration, activity in the field of view against the demo's
ground truth); under Xvfb a screenshot shows the fused images; File › Import
DICOM folder… opens the importing step and lets it ask for the folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtGui import QImage

from app.main_window import MainWindow
from dosimetry_core.pipeline.importing import import_directory
from dosimetry_core.store import CaseStore

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def demo_store(tmp_path, small_demo_dirs):
    store = CaseStore(tmp_path / "store")
    rep = import_directory(store, small_demo_dirs["siemens-bqml"])
    yield store, rep.cases[0].case_id
    store.close()


def test_header_follows_the_time_point_shown(qtbot, demo_store, small_demo_truth, shown_errors):
    store, case_id = demo_store
    w = MainWindow(store, store_path="(demo test store)")
    w.ask = lambda title, text: True
    qtbot.addWidget(w)
    w.resize(1280, 900)
    w.show()
    with qtbot.waitSignal(w.viewer.timePointShown, timeout=30_000):
        assert w.open_case(case_id)
    assert w.viewer.time_point_labels()[:4] == [
        "TP1 · 4.0 h · NM",
        "TP2 · 24.0 h · NM",
        "TP3 · 96.0 h · NM",
        "TP4 · 168.0 h · NM",
    ]
    assert w.header.value("acquired").endswith("(4.0 h p.i.) · NM")
    with qtbot.waitSignal(w.viewer.timePointShown, timeout=30_000):
        w.viewer.select_time_point(3)
    assert w.header.value("acquired").endswith("(168.0 h p.i.) · NM")
    shown = float(w.header.value("total").replace(",", "").split()[0])
    expected = small_demo_truth["time_points"][3]["fov_activity_mbq"]
    assert shown == pytest.approx(expected, rel=0.02)
    assert shown_errors == []


def test_import_menu_shows_the_importing_step_and_asks_for_a_folder(
    qtbot, tmp_path, shown_errors, monkeypatch
):
    store = CaseStore(tmp_path / "store")
    w = MainWindow(store, store_path="(test)")
    w.ask = lambda title, text: True
    qtbot.addWidget(w)
    w.show()
    if "importing" not in w.step_views:
        assert w.action_import not in w.menuBar().actions()[0].menu().actions()
        return
    asked = []
    monkeypatch.setattr(w.step_views["importing"], "ask_folder", lambda: asked.append(True))
    w.action_import.trigger()
    assert asked == [True] and w.current_step() == "importing"
    assert w.step_views["importing"].isVisible()
    store.close()


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
    # the image planes sit between the case list and the viewer's layer/VOI column (whose
    # colour swatches are warm too): look there only (the small phantom's CT covers about
    # 20,000 grey pixels in its three planes at this window size)
    x0, x1 = int(0.18 * img.width()), int(0.52 * img.width())
    assert grey[:, x0:x1].sum() > 12_000, "no CT greyscale visible"
    assert warm[:, x0:x1].sum() > 2_000, "no SPECT colour overlay visible"
