"""The import step as a user sees it: import a small demo folder, read the summary, open the case;
who may import; refused input highlighted; Cancel."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from app.session import CaseSession
from app.steps.importing.view import ImportStepView
from dosimetry_core.store import CaseStore

IMPORT_TIMEOUT_MS = 120_000
PASSWORDS = {"root": "admin-pass-1234", "tom": "tech-pass-1234", "dora": "md-pass-12345"}


@pytest.fixture()
def store(tmp_path: Any) -> Any:
    s = CaseStore(tmp_path / "store")
    yield s
    s.close()


def _accounts(store: Any) -> None:
    from dosimetry_core.store.users import bootstrap_admin, create_user

    admin = bootstrap_admin(store, "root", PASSWORDS["root"])
    create_user(store, admin, "tom", PASSWORDS["tom"], "technologist")
    create_user(store, admin, "dora", PASSWORDS["dora"], "physician")


def _view(qtbot: Any, session: CaseSession) -> ImportStepView:
    view = ImportStepView(session)
    qtbot.addWidget(view)
    view.resize(900, 600)
    view.show()
    return view


def _wait_done(qtbot: Any, view: ImportStepView) -> None:
    qtbot.waitUntil(lambda: not view.model.running and view.task is None, timeout=IMPORT_TIMEOUT_MS)


def test_a_technologist_imports_the_demo_and_sees_series_and_hours(
    qtbot, store, small_demo_dirs, small_demo_truth, shown_errors
):
    _accounts(store)
    session = CaseSession(store)
    session.login("tom", PASSWORDS["tom"])
    view = _view(qtbot, session)
    assert view.import_button.isEnabled() and not view.permission_label.isVisible()
    assert not view.open_button.isEnabled()  # nothing imported yet
    with qtbot.waitSignal(session.caseListChanged, timeout=IMPORT_TIMEOUT_MS):
        view.import_folder(small_demo_dirs["siemens-bqml"])
        assert view.model.running and view.cancel_button.isEnabled()
        assert not view.import_button.isEnabled()
    _wait_done(qtbot, view)
    assert shown_errors == []
    assert view.progress.value() == 1000
    assert "15 draft VOI(s)" in view.status_label.text()
    tps = view.shown_lines("time-point")
    assert len(tps) == 4
    for text, truth in zip(tps, small_demo_truth["time_points"], strict=True):
        hours = truth["hours_after_administration"]
        assert f"{hours:.1f} h" in text and f"'Lu-177 SPECT {hours:g} h p.i. (demo)'" in text
    assert tps[1].startswith("TP2 · 24.0 h · NM 'Lu-177 SPECT 24 h p.i. (demo)'")
    (case_line,) = view.shown_lines("case")
    assert "Demo^Lutetium (MRT-DEMO-001)" in case_line
    (vois,) = view.shown_lines("vois")
    assert "Liver" in vois and "Kidney_L" in vois
    assert view.shown_lines("skipped") == ["ground_truth.json: not a DICOM file"]
    # Open case: the session opens the imported case with its draft VOIs
    assert view.open_button.isEnabled()
    QTest.mouseClick(view.open_button, Qt.MouseButton.LeftButton)
    assert session.case is not None and session.case.case_id == view.model.case_ids[0]
    assert len(session.case.vois) == 15
    assert {str(v.status) for v in session.case.vois} == {"draft"}


def test_a_physician_sees_the_import_disabled(qtbot, store, small_demo_dirs, shown_errors):
    _accounts(store)
    session = CaseSession(store)
    session.login("dora", PASSWORDS["dora"])
    view = _view(qtbot, session)
    assert not view.import_button.isEnabled()
    assert not view.choose_button.isEnabled() and not view.folder_edit.isEnabled()
    assert view.permission_label.isVisible()
    assert "dora (physician) may not import" in view.permission_label.text()
    view.import_folder(small_demo_dirs["siemens-bqml"])  # File › Import path: does nothing
    assert view.task is None and not view.model.running and store.list_cases() == []
    # log-out and log-in as a technologist: the controls come alive
    session.logout()
    assert not view.import_button.isEnabled()  # nobody logged in
    session.login("tom", PASSWORDS["tom"])
    assert view.import_button.isEnabled() and not view.permission_label.isVisible()


def test_the_step_offers_the_pacs_beside_the_folder(qtbot, store, shown_errors):
    """A 'Receive from PACS' tab beside 'From a folder', gated by the import permission."""
    _accounts(store)
    session = CaseSession(store)
    view = _view(qtbot, session)
    tabs = view.tabs
    assert [tabs.tabText(i) for i in range(tabs.count())] == ["From a folder", "Receive from PACS"]
    assert tabs.currentIndex() == 0  # the folder import stays what the step opens on
    session.login("dora", PASSWORDS["dora"])
    tabs.setCurrentIndex(1)
    assert not view.pacs_panel.retrieve.isEnabled()
    assert view.pacs_panel.retrieve.toolTip() == "your role may not import"
    session.logout()
    session.login("tom", PASSWORDS["tom"])
    assert view.pacs_panel.retrieve.toolTip() == ""
    assert not view.pacs_panel.find_button.isEnabled()  # no Patient ID typed yet
    qtbot.keyClicks(view.pacs_panel.patient_id, "MRT-DEMO-001")
    assert view.pacs_panel.find_button.isEnabled()


def test_refused_input_highlights_its_field_and_starts_nothing(
    qtbot, store, tmp_path, shown_errors
):
    session = CaseSession(store)
    view = _view(qtbot, session)
    QTest.keyClicks(view.calibration_edit, "-3")
    assert "border" in view.calibration_edit.styleSheet()
    assert "positive" in view.status_label.text() and not view.import_button.isEnabled()
    view.calibration_edit.clear()
    QTest.keyClicks(view.calibration_edit, "9")
    assert view.calibration_edit.styleSheet() == "" and view.import_button.isEnabled()
    view.import_folder(tmp_path / "nowhere")
    assert view.task is None
    assert "border" in view.folder_edit.styleSheet()
    assert (
        shown_errors and shown_errors[-1][0] == "Import" and "no such folder" in shown_errors[-1][1]
    )
    QTest.keyClicks(view.folder_edit, "x")  # typing clears the mark
    assert view.folder_edit.styleSheet() == ""


def test_cancel_stops_the_import_and_saves_nothing(qtbot, store, small_demo_dirs, shown_errors):
    session = CaseSession(store)
    view = _view(qtbot, session)
    view.import_folder(small_demo_dirs["siemens-bqml"])
    QTest.mouseClick(view.cancel_button, Qt.MouseButton.LeftButton)
    _wait_done(qtbot, view)
    assert "cancelled" in view.status_label.text()
    assert view.tree.topLevelItemCount() == 0 and store.list_cases() == []
    assert shown_errors == []
    assert view.import_button.isEnabled() and not view.cancel_button.isEnabled()


def test_importing_into_the_open_case_refreshes_it(
    qtbot, store, small_demo_dirs, tmp_path, shown_errors
):
    """The RTSTRUCT alone, imported later, adds its VOIs to the case that is open."""
    import shutil

    from dosimetry_core.pipeline.importing import import_directory

    demo = small_demo_dirs["siemens-bqml"]
    images = tmp_path / "images"
    for d in sorted(demo.glob("tp*")):
        shutil.copytree(d, images / d.name, ignore=shutil.ignore_patterns("RTSTRUCT"))
    case_id = import_directory(store, images).cases[0].case_id
    session = CaseSession(store)
    session.open_case(case_id)
    assert session.case.vois == []
    changed: list[Any] = []
    session.caseChanged.connect(changed.append)
    view = _view(qtbot, session)
    view.import_folder(next(demo.glob("tp1*/RTSTRUCT")))
    _wait_done(qtbot, view)
    assert len(session.case.vois) == 15 and changed and changed[-1] is session.case
    (case_line,) = view.shown_lines("case")
    assert "0 new" in case_line and "15 draft VOI(s) attached" in case_line
    assert all("already in the case" in t for t in view.shown_lines("time-point"))


class _Ctx:
    """The part of the tour runner's context the import driver uses."""

    def __init__(self, qtbot: Any, window: Any) -> None:
        self.qtbot = qtbot
        self.window = window

    def wait_until(self, predicate: Any, timeout_s: float, what: str) -> None:
        self.qtbot.waitUntil(predicate, timeout=int(timeout_s * 1000))

    def settle(self, seconds: float = 0.3) -> None:
        self.qtbot.wait(int(seconds * 1000))


def test_the_tour_driver_imports_its_own_patient_through_the_widgets(qtbot, store, shown_errors):
    from app.steps.importing.tour import TOUR_PATIENT_ID, drive

    _accounts(store)
    session = CaseSession(store)
    session.login("tom", PASSWORDS["tom"])
    view = _view(qtbot, session)
    shown = drive(view, _Ctx(qtbot, view))
    assert shown["cases"] == 1 and TOUR_PATIENT_ID in shown["case_lines"][0]
    assert len(shown["time_points"]) == 4
    assert shown["time_points"][0].startswith("TP1 · 4.0 h · NM 'Lu-177 SPECT 4 h p.i. (demo)'")
    assert "Liver" in shown["vois_attached"] and len(shown["vois_attached"]) == 15
    assert shown["skipped"] == 1  # ground_truth.json
    assert view.folder_edit.text().startswith(tempfile_prefix())
    (summary,) = store.find_cases(patient_id=TOUR_PATIENT_ID)
    assert len(store.load_case(summary.case_id).vois) == 15
    assert session.case is None  # the driver does not change the open case


def tempfile_prefix() -> str:
    import tempfile
    from pathlib import Path

    return str(Path(tempfile.gettempdir()) / "mrt-tour-import-")


def test_the_tour_driver_names_the_user_who_may_not_import(qtbot, store, shown_errors):
    from app.steps.base import TourError
    from app.steps.importing.tour import drive

    _accounts(store)
    session = CaseSession(store)
    session.login("dora", PASSWORDS["dora"])
    view = _view(qtbot, session)
    with pytest.raises(TourError, match=r"dora \(physician\)"):
        drive(view, _Ctx(qtbot, view))
