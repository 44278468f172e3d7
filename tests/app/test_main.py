"""app.main: arguments, store resolution, friendly store errors, --case, --demo, log-in at start."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

import app.main as app_main
from app.main_window import MainWindow
from dosimetry_core.errors import StoreError
from tests.app.conftest import build_synthetic_case


@pytest.fixture()
def run_main(qtbot, monkeypatch, qapp):
    """Call main() with the event loop replaced by ``until`` and restore the app afterwards."""
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    style, sheet, palette = qapp.style().name(), qapp.styleSheet(), qapp.palette()
    windows: list[MainWindow] = []

    class RecordedWindow(MainWindow):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.ask = lambda title, text: True
            windows.append(self)

    monkeypatch.setattr(app_main, "MainWindow", RecordedWindow)

    def run(argv, until=lambda w: True):
        def loop(application):
            qtbot.waitUntil(lambda: until(windows[-1]), timeout=10_000)
            return 0

        monkeypatch.setattr(app_main, "_run_event_loop", loop)
        code = app_main.main(argv)
        return code, windows[-1]

    yield run
    for w in windows:
        w.close()
        w.deleteLater()
    qapp.setStyleSheet(sheet)
    qapp.setStyle(style)
    qapp.setPalette(palette)


def test_store_path_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("MRTDOSE_STORE", str(tmp_path / "env-store"))
    assert app_main.resolve_store_path(str(tmp_path / "arg")) == tmp_path / "arg"
    assert app_main.resolve_store_path(None) == tmp_path / "env-store"


def test_parser():
    args = app_main.build_parser().parse_args(["--store", "/s", "--case", "case-1"])
    assert (args.store, args.case, args.demo, args.tour) == ("/s", "case-1", False, None)
    args = app_main.build_parser().parse_args(["--demo", "--tour", "out"])
    assert (args.demo, args.tour) == (True, "out")
    with pytest.raises(SystemExit):
        app_main.build_parser().parse_args(["--demo", "--case", "x"])


def test_unopenable_store_gives_a_dialog_not_a_traceback(
    run_main, monkeypatch, shown_errors, tmp_path
):
    def broken(path: Path):
        raise StoreError("database disk image is malformed")

    monkeypatch.setattr(app_main, "open_store", broken)
    code, window = run_main(["--store", str(tmp_path / "s")])
    assert code == 0
    ((title, message, details),) = shown_errors
    assert str(tmp_path / "s") in message and "database disk image is malformed" in message
    assert "Traceback" not in message and details == ""
    assert window.store is None and QApplication.applicationName() == "MRT Dosimetry"


def test_unexpected_store_failure_is_short(run_main, monkeypatch, shown_errors, tmp_path):
    def broken(path: Path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(app_main, "open_store", broken)
    run_main(["--store", str(tmp_path / "locked")])
    message = shown_errors[0][1]
    assert "PermissionError" in message and "Traceback" not in message


def test_case_argument_opens_the_case(
    run_main, monkeypatch, fake_store, synthetic_case, shown_errors
):
    monkeypatch.setattr(app_main, "open_store", lambda path: fake_store)
    code, window = run_main(
        ["--store", "/unused", "--case", synthetic_case.case_id],
        until=lambda w: w.viewer.is_ready(),
    )
    assert code == 0 and shown_errors == []
    assert window.case.case_id == synthetic_case.case_id
    assert len(window.viewer.time_point_labels()) == 3


def test_demo_argument_imports_and_opens_the_demo(run_main, monkeypatch, fake_store, shown_errors):
    from dosimetry_core.pipeline import demo

    def ensure(store, progress=None, cancel=None):
        return build_synthetic_case(store, "DEMO-1", "Demo^Patient").case_id

    monkeypatch.setattr(demo, "ensure_demo_case", ensure)
    monkeypatch.setattr(app_main, "open_store", lambda path: fake_store)
    code, window = run_main(["--demo"], until=lambda w: w.viewer.is_ready())
    assert window.case.patient.patient_id == "DEMO-1" and shown_errors == []


def test_a_store_with_accounts_asks_for_a_log_in_first(
    run_main, monkeypatch, tmp_path, qtbot, shown_errors
):
    from dosimetry_core.store import CaseStore
    from dosimetry_core.store.users import bootstrap_admin, create_user

    store = CaseStore(tmp_path / "s")
    case = build_synthetic_case(store, "P-LOGIN")
    admin = bootstrap_admin(store, "admin", "admin-pass-1234")
    create_user(store, admin, "tom", "tom-pass-12345", "technologist")
    store.actor = None
    monkeypatch.setattr(app_main, "open_store", lambda path: store)
    seen: dict[str, str] = {}

    def log_in_when_asked(w) -> bool:
        # runs inside main()'s event loop: the store is open until it returns
        dialog = w.login_dialog
        if "before" not in seen and dialog is not None and dialog.isVisible():
            seen["before"] = w.user_label.text()
            seen["case_before"] = str(w.case)
            qtbot.keyClicks(dialog.user_edit, "tom")
            qtbot.keyClicks(dialog.password_edit, "tom-pass-12345")
            qtbot.mouseClick(dialog.login_button, Qt.MouseButton.LeftButton)
        return w.case is not None and w.viewer.is_ready()  # the store closes after main()

    code, window = run_main(["--store", "/unused", "--case", case.case_id], log_in_when_asked)
    assert seen["before"] == "not logged in" and seen["case_before"] == "None"
    # after the log-in the case asked for on the command line opened
    assert window.user_label.text() == "tom (technologist)"
    assert window.case.case_id == case.case_id
    assert shown_errors == []
