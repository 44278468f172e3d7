"""MainWindow, the shell: case header and checklist, step navigation, menus, demo, closing.

The viewer's own behaviour (planes, layers, time points) is tested in
``tests/app/viewer``; here what the shell shows around it.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPushButton

from app.main_window import MainWindow, discover_steps
from app.steps.base import STEP_ORDER
from dosimetry_core.errors import DosimetryError
from dosimetry_core.progress import check_cancel, report
from dosimetry_core.store.permissions import Actor
from tests.app.conftest import build_synthetic_case


@pytest.fixture()
def window(qtbot, fake_store, shown_errors) -> MainWindow:
    w = MainWindow(fake_store, store_path="(test store)")
    w.ask = lambda title, text: True  # closing at teardown: no question box
    qtbot.addWidget(w)
    w.resize(1280, 900)
    w.show()
    qtbot.waitExposed(w)
    return w


def _open(qtbot, window: MainWindow, case_id: str) -> None:
    with qtbot.waitSignal(window.viewer.timePointShown, timeout=20_000):
        assert window.open_case(case_id)


def test_opening_a_case_fills_the_header_and_the_viewer(qtbot, window, synthetic_case):
    assert window.header.value("patient") == "No case open"
    _open(qtbot, window, synthetic_case.case_id)
    assert window.header.value("patient") == "Synthetic, Patient  (SYN-0001)"
    assert window.header.value("administration").startswith("Lu-177")
    # the header follows the time point the viewer shows
    assert "h p.i." in window.header.value("acquired")
    assert window.windowTitle().startswith("Synthetic, Patient (SYN-0001)")
    assert window.case_list.selected_case_id() == synthetic_case.case_id


def test_header_shows_the_protocols_checklist(qtbot, window, fake_store):
    case = build_synthetic_case(fake_store, "P-CHK", "Check^List", protocol="lu177-dotatate")
    window.refresh_cases()
    _open(qtbot, window, case.case_id)
    assert window.header.value("protocol") == "lu177-dotatate"
    text = window.header.checklist_label.text()
    missing = [i["item"] for i in window.header.checklist if not i["present"]]
    assert missing, "a case without VOIs lacks the protocol's organs"
    assert text.startswith("Lu-177") or "needs" in text
    for item in missing[:2]:
        assert item in text
    assert "administration" not in missing  # the synthetic case has one


def test_unknown_protocol_is_said_not_hidden(qtbot, window, synthetic_case):
    _open(qtbot, window, synthetic_case.case_id)
    assert "is not a protocol of this installation" in window.header.checklist_label.text()


def test_case_list_opens_the_case_on_enter(qtbot, window, synthetic_case):
    window.case_list.select_case(synthetic_case.case_id)
    with qtbot.waitSignal(window.caseOpened, timeout=10_000) as blocker:
        qtbot.keyClick(window.case_list.table, Qt.Key.Key_Return)
    assert blocker.args == [synthetic_case.case_id]
    assert window.session.case.case_id == synthetic_case.case_id


def test_missing_case_is_reported_not_raised(window, shown_errors):
    assert not window.open_case("case-does-not-exist")
    assert shown_errors and "case-does-not-exist" in shown_errors[-1][1]


def test_step_navigation_shows_exactly_the_steps_that_exist(window):
    views, problems = discover_steps()
    assert problems == []
    ids = [v.step_id for v in views]
    assert ids == [s for s in STEP_ORDER if s in ids]  # workflow order
    assert list(window.step_buttons) == ids
    for step_id, button in window.step_buttons.items():
        assert button.isEnabled()  # single-user store: every step may be used
        view = window.show_step(step_id)
        assert view is window.step_views[step_id]
        assert window.current_step() == step_id and button.isChecked()
        assert view.isVisible()


def test_steps_follow_the_role(qtbot, window, fake_store):
    fake_store.has_users = lambda: True
    fake_store.actor = Actor("dr.md", "physician")
    window.session.userChanged.emit()
    assert window.user_label.text() == "dr.md (physician)"
    for step_id, view in window.step_views.items():
        allowed = view.action is None or Actor("dr.md", "physician").may(view.action)
        assert window.step_buttons[step_id].isEnabled() == allowed
        if not allowed:
            assert "physician" in window.step_buttons[step_id].toolTip()
            assert window.show_step(step_id) is None
    if "registration" in window.step_views:
        assert not window.step_buttons["registration"].isEnabled()
    # a physician may not import: the demo and new-case actions are disabled
    assert not window.action_open_demo.isEnabled()
    assert not window.action_new_case.isEnabled()
    fake_store.actor = Actor("tom", "technologist")
    window.session.userChanged.emit()
    assert window.action_open_demo.isEnabled() and window.action_new_case.isEnabled()


def test_nobody_logged_in_sees_no_case(qtbot, window, fake_store):
    fake_store.has_users = lambda: True
    window.session.userChanged.emit()
    assert window.user_label.text() == "not logged in"
    assert window.case_list.visible_case_ids() == []
    assert "Log in" in window.case_list.placeholder_text()
    assert all(not b.isEnabled() for b in window.step_buttons.values())
    assert window.action_login.isEnabled() and not window.action_logout.isEnabled()


def test_demo_case_is_imported_with_progress_then_opened(qtbot, window, fake_store, monkeypatch):
    from dosimetry_core.pipeline import demo

    seen = []

    def ensure(store, progress=None, cancel=None):
        report(progress, 0.5, "writing DICOM")
        seen.append(True)
        return build_synthetic_case(store, "DEMO-1", "Demo^Patient").case_id

    monkeypatch.setattr(demo, "ensure_demo_case", ensure)
    with qtbot.waitSignal(window.caseOpened, timeout=10_000):
        window.action_open_demo.trigger()
    assert seen and window.header.value("patient") == "Demo, Patient  (DEMO-1)"
    assert "DEMO-1" in [r[0] for r in window.case_list.visible_rows()]
    qtbot.waitUntil(lambda: window.demo_dialog is None and not window.busy_bar.isVisible())


def test_demo_import_error_reaches_the_user(qtbot, window, shown_errors, monkeypatch):
    from dosimetry_core.pipeline import demo

    def ensure(store, progress=None, cancel=None):
        raise DosimetryError("the demo patient could not be imported: disk full")

    monkeypatch.setattr(demo, "ensure_demo_case", ensure)
    window.action_open_demo.trigger()
    qtbot.waitUntil(lambda: bool(shown_errors), timeout=10_000)
    assert shown_errors[-1][:2] == (
        "Demo case",
        "the demo patient could not be imported: disk full",
    )
    assert window.session.case is None


def test_demo_import_can_be_cancelled(qtbot, window, shown_errors, monkeypatch):
    import threading

    from dosimetry_core.pipeline import demo

    started = threading.Event()

    def ensure(store, progress=None, cancel=None):
        started.set()
        while True:
            check_cancel(cancel)
            threading.Event().wait(0.01)

    monkeypatch.setattr(demo, "ensure_demo_case", ensure)
    window.action_open_demo.trigger()
    assert started.wait(5)
    assert window.busy_bar.isVisible()
    cancel_button = window.demo_dialog.findChild(QPushButton)
    qtbot.mouseClick(cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.session.busy, timeout=10_000)
    assert window.session.case is None and shown_errors == []
    assert window.statusBar().currentMessage() == "Demo import cancelled"


def test_open_store_failure_keeps_the_current_store(qtbot, fake_store, shown_errors, tmp_path):
    def opener(path):
        raise DosimetryError("database disk image is malformed")

    w = MainWindow(fake_store, store_path="(test)", store_opener=opener)
    qtbot.addWidget(w)
    assert not w.open_store(tmp_path)
    assert w.store is fake_store and "malformed" in shown_errors[-1][1]


def test_window_without_store(qtbot, shown_errors):
    w = MainWindow(None)
    qtbot.addWidget(w)
    assert w.user_label.text() == "no store"
    assert "No case store" in w.case_list.placeholder_text()
    assert not w.action_open_demo.isEnabled() and not w.action_new_case.isEnabled()
    assert shown_errors == []


def test_menus_offer_only_working_actions(window, shown_infos):
    titles = [a.text().replace("&", "") for a in window.menuBar().actions()]
    assert titles[:4] == ["File", "User", "View", "Help"]
    file_texts = [a.text() for a in window.menuBar().actions()[0].menu().actions()]
    assert "New case from protocol…" in file_texts and "Open demo case" in file_texts
    assert ("Import DICOM folder…" in file_texts) == ("importing" in window.step_views)
    view_actions = window.menuBar().actions()[2].menu().actions()
    assert window.viewer.reset_action in view_actions  # the same QAction as the viewer's button
    window.action_about.trigger()
    assert shown_infos and "(test store)" in shown_infos[-1][1]


def test_closing_with_unsaved_edits_asks(qtbot, window, monkeypatch):
    asked = []
    monkeypatch.setattr(window, "ask", lambda title, text: asked.append(text) or False)
    window.session.set_dirty("entry", "administration form: residual activity")
    assert not window.close()
    assert window.isVisible() and "residual activity" in asked[-1]
    monkeypatch.setattr(window, "ask", lambda title, text: True)
    assert window.close()


def test_closing_while_a_job_runs_asks_and_cancels_it(qtbot, window, monkeypatch):
    import threading

    started, stopped = threading.Event(), threading.Event()

    def job(progress=None, cancel=None):
        started.set()
        try:
            while True:
                check_cancel(cancel)
                threading.Event().wait(0.01)
        finally:
            stopped.set()

    window.session.run(job, description="long fit", reload_case=False)
    assert started.wait(5)
    asked = []
    monkeypatch.setattr(window, "ask", lambda title, text: asked.append(text) or False)
    assert not window.close() and "long fit" in asked[-1] and not stopped.is_set()
    monkeypatch.setattr(window, "ask", lambda title, text: True)
    assert window.close()
    assert stopped.wait(5)
