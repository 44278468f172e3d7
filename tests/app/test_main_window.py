"""MainWindow: open a case, switch time points, errors, demo import, menus."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractButton, QPushButton

import dosimetry_core
from app.main_window import MainWindow
from dosimetry_core.errors import DosimetryError, StoreError
from dosimetry_core.imaging.resample import resample
from dosimetry_core.progress import check_cancel, report
from tests.app.conftest import LESION_CENTRES, build_synthetic_case


@pytest.fixture()
def window(qtbot, fake_store, shown_errors) -> MainWindow:
    w = MainWindow(fake_store, store_path="(test store)")
    qtbot.addWidget(w)
    w.resize(1280, 900)
    w.show()
    qtbot.waitExposed(w)
    return w


def _open(qtbot, window: MainWindow, case_id: str) -> None:
    with qtbot.waitSignal(window.timePointDisplayed, timeout=10_000):
        assert window.open_case(case_id)


def _select(qtbot, window: MainWindow, index: int) -> None:
    with qtbot.waitSignal(window.timePointDisplayed, timeout=10_000) as blocker:
        qtbot.mouseClick(window.time_point_selector.button(index), Qt.MouseButton.LeftButton)
    assert blocker.args == [index]


def test_opening_a_case_lists_its_time_points(qtbot, window, synthetic_case):
    _open(qtbot, window, synthetic_case.case_id)
    assert window.time_point_labels() == [
        "TP1 · 4.0 h · NM",
        "TP2 · 24.0 h · NM",
        "TP3 · 96.0 h · NM",
    ]
    # the labels follow the model, not a hard-coded list
    for label, tp in zip(
        window.time_point_labels(), synthetic_case.sorted_time_points(), strict=True
    ):
        assert f"{synthetic_case.hours_after_administration(tp):.1f} h" in label
    assert window.current_time_point_index() == 0
    assert window.displayed_time_point_index() == 0
    assert window.viewer.has_image()
    h = window.header
    assert h.value("patient") == "Synthetic, Patient  (SYN-0001)"
    assert h.value("administration").startswith("Lu-177 DOTATATE · 2024-05-06 09:30")
    assert h.value("activity") == "7,400.0 MBq"
    tp1 = synthetic_case.sorted_time_points()[0]
    assert h.value("acquired") == "2024-05-06 13:30 (4.0 h p.i.) · NM"
    assert h.value("calibration") == "vendor Bq/mL"
    assert h.value("units") == "Bq/mL"
    assert h.value("total") == f"{tp1.total_activity_mbq:,.1f} MBq"
    assert "SYN-0001" in window.windowTitle()


def test_changing_the_time_point_changes_the_spect_and_keeps_the_position(
    qtbot, window, fake_store, synthetic_case
):
    _open(qtbot, window, synthetic_case.case_id)
    viewer = window.viewer
    target = np.array(LESION_CENTRES[0])
    viewer.set_world_position(target)
    index_before = viewer.slice_index()
    before = {p: s.overlay.copy() for p, s in viewer.current_slices().items()}
    ct_before = {p: s.ct.copy() for p, s in viewer.current_slices().items()}

    _select(qtbot, window, 1)

    tp2 = synthetic_case.sorted_time_points()[1]
    ct2 = fake_store.load_volume(tp2.anatomical.volume)
    spect2 = fake_store.load_volume(tp2.functional.volume)
    expected = resample(spect2, ct2.geometry, order=1, fill_value=0.0).array
    np.testing.assert_allclose(viewer.world_position(), target)
    k, j, i = viewer.slice_index()
    assert (k, j, i) == index_before  # same CT grid in this case: same slices
    now = viewer.current_slices()
    for plane, cut in (
        ("axial", expected[k]),
        ("coronal", expected[:, j, :]),
        ("sagittal", expected[:, :, i]),
    ):
        assert not np.allclose(now[plane].overlay, before[plane])
        np.testing.assert_allclose(now[plane].overlay, cut, rtol=1e-6)
        np.testing.assert_array_equal(now[plane].ct, ct_before[plane])
    assert window.header.value("acquired").startswith("2024-05-07 09:30 (24.0 h p.i.)")
    assert window.header.value("total") == f"{tp2.total_activity_mbq:,.1f} MBq"


def test_time_points_are_cached(qtbot, window, fake_store, synthetic_case, monkeypatch):
    calls = []
    real = fake_store.load_volume
    monkeypatch.setattr(fake_store, "load_volume", lambda ref: calls.append(ref) or real(ref))
    _open(qtbot, window, synthetic_case.case_id)
    _select(qtbot, window, 1)
    n = len(calls)
    _select(qtbot, window, 0)
    _select(qtbot, window, 1)
    assert len(calls) == n == 4  # CT + SPECT of two time points, each loaded once


def test_case_list_opens_the_case_on_enter(qtbot, window, synthetic_case):
    cl = window.case_list
    assert sorted(r[0] for r in cl.visible_rows()) == ["P-1002", "P-1003", "SYN-0001"]
    cl.set_filter_text("SYN-0001")
    cl.table.setCurrentIndex(cl.proxy.index(0, 0))
    cl.table.setFocus()
    with qtbot.waitSignal(window.timePointDisplayed, timeout=10_000):
        qtbot.keyClick(cl.table, Qt.Key.Key_Return)
    assert window.case.case_id == synthetic_case.case_id
    assert window.time_point_selector.count() == 3


def test_missing_case_is_reported_not_raised(window, shown_errors):
    assert not window.open_case("case-does-not-exist")
    ((title, message, details),) = shown_errors
    assert "case-does-not-exist" in message and details == ""
    assert window.case is None


def test_store_error_while_loading_a_time_point_is_shown(
    qtbot, window, fake_store, synthetic_case, shown_errors, monkeypatch
):
    _open(qtbot, window, synthetic_case.case_id)

    def broken(ref):
        raise StoreError(f"blob {ref.key[:12]} is corrupt (checksum mismatch)")

    monkeypatch.setattr(fake_store, "load_volume", broken)
    window.time_point_selector.button(2).click()
    qtbot.waitUntil(lambda: bool(shown_errors), timeout=10_000)
    title, message, details = shown_errors[0]
    assert "checksum mismatch" in message and details == ""
    assert window.displayed_time_point_index() == 0  # the previous image stays...
    qtbot.waitUntil(
        lambda: window.current_time_point_index() == 0, timeout=2000
    )  # ...and is selected
    assert window.header.value("acquired").startswith("2024-05-06 13:30 (4.0 h p.i.)")


def test_demo_case_is_imported_with_progress_then_opened(qtbot, window, fake_store, monkeypatch):
    from dosimetry_core.pipeline import demo

    progress_seen = []

    def fake_ensure_demo_case(store, progress=None, cancel=None):
        for i in range(5):
            check_cancel(cancel)
            report(progress, i / 4, f"writing demo DICOM {i}/4")
        progress_seen.append(True)
        return build_synthetic_case(store, "DEMO-LU177", "Demo^Patient").case_id

    monkeypatch.setattr(demo, "ensure_demo_case", fake_ensure_demo_case)
    with qtbot.waitSignal(window.timePointDisplayed, timeout=10_000):
        window.open_demo_case()
        assert window.demo_dialog is not None and window.demo_dialog.isVisible()
    assert progress_seen == [True]
    assert window.case.patient.patient_id == "DEMO-LU177"
    assert "DEMO-LU177" in [r[0] for r in window.case_list.visible_rows()]
    qtbot.waitUntil(lambda: window.demo_dialog is None, timeout=5000)


def test_demo_import_error_reaches_the_user(qtbot, window, shown_errors, monkeypatch):
    from dosimetry_core.pipeline import demo

    def failing(store, progress=None, cancel=None):
        raise DosimetryError("the demo patient could not be imported: disk full")

    monkeypatch.setattr(demo, "ensure_demo_case", failing)
    window.open_demo_case()
    qtbot.waitUntil(lambda: bool(shown_errors), timeout=10_000)
    assert shown_errors[0][1] == "the demo patient could not be imported: disk full"
    qtbot.waitUntil(lambda: window.demo_dialog is None, timeout=5000)
    assert window.case is None


def test_demo_import_can_be_cancelled(qtbot, window, shown_errors, monkeypatch):
    import threading

    from dosimetry_core.pipeline import demo

    started = threading.Event()

    def slow(store, progress=None, cancel=None):
        started.set()
        for _ in range(2000):
            check_cancel(cancel)
            threading.Event().wait(0.005)
        return "never"

    monkeypatch.setattr(demo, "ensure_demo_case", slow)
    window.open_demo_case()
    assert started.wait(5)
    cancel_button = window.demo_dialog.findChild(QPushButton)
    assert cancel_button.text() == "Cancel"
    qtbot.mouseClick(cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.demo_dialog is None, timeout=10_000)
    assert window.case is None and shown_errors == []
    assert "cancelled" in window.statusBar().currentMessage()


def test_open_store_failure_keeps_the_current_store(qtbot, fake_store, shown_errors, tmp_path):
    def opener(path):
        raise StoreError("the store database is newer than this program (schema 7 > 5)")

    w = MainWindow(fake_store, store_path="(test store)", store_opener=opener)
    qtbot.addWidget(w)
    assert not w.open_store(tmp_path)
    assert "schema 7 > 5" in shown_errors[0][1] and str(tmp_path) in shown_errors[0][1]
    assert w.store is fake_store


def test_window_without_store(qtbot, shown_errors):
    w = MainWindow(None)
    qtbot.addWidget(w)
    assert not w.action_open_demo.isEnabled()
    assert not w.open_case("anything")
    assert "No case store" in shown_errors[0][1]


def test_menus_offer_only_working_actions(window, shown_infos):
    menus = {a.text().replace("&", ""): a.menu() for a in window.menuBar().actions()}
    assert list(menus) == ["File", "View", "Help"]
    file_items = [a.text() for a in menus["File"].actions() if a.text()]
    assert file_items[:3] == ["Open store…", "Import DICOM folder…", "Open demo case"]
    assert file_items[-1] == "Quit"
    view_items = [a.text() for a in menus["View"].actions() if a.text()]
    assert "Reset view" in view_items and "Colour map" in view_items
    # later workflow steps are not faked
    texts = [a.text() for a in window.findChildren(type(window.action_quit))]
    texts += [b.text() for b in window.findChildren(QAbstractButton)]
    for step in ("Register", "Contour", "Kinetics", "Dose", "Review", "Sign"):
        assert not any(step in t for t in texts), step
    window.action_about.trigger()
    ((title, message),) = shown_infos
    assert dosimetry_core.__version__ in message


def test_colour_map_menu_drives_the_viewer(qtbot, window, fake_store, synthetic_case):
    _open(qtbot, window, synthetic_case.case_id)
    window.colormap_actions["Hot"].trigger()
    assert window.viewer.colormap_name() == "Hot"
    window.viewer.cmap_combo.setCurrentText("Viridis")
    assert window.colormap_actions["Viridis"].isChecked()
    window.viewer.pick("axial", 150.0, 150.0)
    window.action_reset_view.trigger()
    tp1 = synthetic_case.sorted_time_points()[0]
    ct_geom = fake_store.load_volume(tp1.anatomical.volume).geometry
    np.testing.assert_allclose(window.viewer.world_position(), ct_geom.center_world())


def test_status_bar_shows_the_voxel_under_the_cursor(qtbot, window, synthetic_case):
    _open(qtbot, window, synthetic_case.case_id)
    plane = window.viewer.planes["axial"]
    centre = LESION_CENTRES[0]
    window.viewer.set_world_position(centre)
    vp = plane.view.viewport()
    qtbot.mouseMove(vp, vp.mapFrom(plane, plane.view_to_widget(centre[0], centre[1]).toPoint()))
    qtbot.waitUntil(lambda: "Bq/mL" in window.cursor_label.text(), timeout=2000)
    assert "HU" in window.cursor_label.text()
