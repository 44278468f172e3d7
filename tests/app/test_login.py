"""Log-in, log-out and change password through the dialogs, on a real store with accounts.

What the user sees: a wrong password shows the core's message in the dialog and
the status bar still says "not logged in"; the right one shows "user (role)";
five wrong passwords lock the account and the dialog says until when; a
physician sees the data-entry and registration steps disabled; the password
policy's refusal appears in the change-password dialog.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from app.common.login import ChangePasswordDialog, LoginDialog
from app.main_window import MainWindow
from dosimetry_core.store import CaseStore
from dosimetry_core.store.permissions import Actor
from dosimetry_core.store.users import MAX_FAILED_ATTEMPTS, bootstrap_admin, create_user

PASSWORDS = {"admin": "admin-pass-1234", "tom": "tom-pass-12345", "doc": "doc-pass-12345"}


@pytest.fixture()
def store(tmp_path):
    s = CaseStore(tmp_path / "s")
    admin = bootstrap_admin(s, "admin", PASSWORDS["admin"])
    create_user(s, admin, "tom", PASSWORDS["tom"], "technologist")
    create_user(s, admin, "doc", PASSWORDS["doc"], "physician")
    s.actor = None
    yield s
    s.close()


@pytest.fixture()
def window(qtbot, store, shown_errors):
    w = MainWindow(store, store_path="(accounts store)")
    w.ask = lambda title, text: True
    qtbot.addWidget(w)
    w.show()
    return w


def _login(qtbot, window, user, password) -> LoginDialog:
    window.action_login.trigger()
    dialog = window.login_dialog
    assert isinstance(dialog, LoginDialog) and dialog.isVisible()
    dialog.user_edit.clear()
    qtbot.keyClicks(dialog.findChild(type(dialog.user_edit), "loginUser"), user)
    qtbot.keyClicks(dialog.findChild(type(dialog.password_edit), "loginPassword"), password)
    qtbot.mouseClick(dialog.findChild(type(dialog.login_button), "loginButton"), Qt.LeftButton)
    return dialog


def test_wrong_password_is_shown_in_the_dialog(qtbot, window):
    assert window.user_label.text() == "not logged in"
    dialog = _login(qtbot, window, "tom", "not-my-password")
    assert dialog.isVisible()
    assert dialog.error_text() == "wrong user name or password for 'tom'"
    assert dialog.password_edit.text() == ""  # cleared for the next try
    assert window.user_label.text() == "not logged in"
    assert window.case_list.visible_case_ids() == []
    # the right password logs in; the status bar says who and in which role
    dialog.password_edit.clear()
    qtbot.keyClicks(dialog.password_edit, PASSWORDS["tom"])
    qtbot.mouseClick(dialog.login_button, Qt.LeftButton)
    assert not dialog.isVisible()
    assert window.user_label.text() == "tom (technologist)"
    assert window.action_logout.isEnabled()
    window.action_logout.trigger()
    assert window.user_label.text() == "not logged in"


def test_lockout_message_comes_from_the_core(qtbot, window):
    for _ in range(MAX_FAILED_ATTEMPTS):
        dialog = _login(qtbot, window, "doc", "wrong-wrong")
        dialog.reject()
    dialog = _login(qtbot, window, "doc", PASSWORDS["doc"])  # right password, but locked
    assert "is locked until" in dialog.error_text()
    assert window.user_label.text() == "not logged in"
    dialog.reject()


def test_a_physician_sees_the_entry_and_registration_steps_disabled(qtbot, window):
    _login(qtbot, window, "doc", PASSWORDS["doc"])
    assert window.user_label.text() == "doc (physician)"
    doc = Actor("doc", "physician")
    for step_id in ("entry", "registration", "importing"):
        if step_id in window.step_buttons:
            assert not window.step_buttons[step_id].isEnabled()
            assert not doc.may(window.step_views[step_id].action)
    assert not window.action_new_case.isEnabled()
    window.action_logout.trigger()
    _login(qtbot, window, "tom", PASSWORDS["tom"])
    if "entry" in window.step_buttons:
        assert window.step_buttons["entry"].isEnabled()
    assert window.action_new_case.isEnabled()


def test_change_password_shows_the_policy_and_works(qtbot, window, store):
    _login(qtbot, window, "tom", PASSWORDS["tom"])
    dialog = ChangePasswordDialog(window.session, window)
    qtbot.addWidget(dialog)
    qtbot.keyClicks(dialog.old_edit, PASSWORDS["tom"])
    qtbot.keyClicks(dialog.new_edit, "short")
    qtbot.keyClicks(dialog.repeat_edit, "short")
    assert not dialog.try_change()
    assert "too short: use at least 12 characters" in dialog.error_text()
    for edit in (dialog.new_edit, dialog.repeat_edit):
        edit.clear()
        qtbot.keyClicks(edit, "a-much-longer-one-42")
    qtbot.mouseClick(dialog.change_button, Qt.LeftButton)
    assert dialog.result() == dialog.DialogCode.Accepted
    window.action_logout.trigger()
    dialog = _login(qtbot, window, "tom", PASSWORDS["tom"])
    assert dialog.error_text().startswith("wrong user name or password")
    dialog.reject()
    _login(qtbot, window, "tom", "a-much-longer-one-42")
    assert window.user_label.text() == "tom (technologist)"


def test_new_case_dialog_highlights_the_refused_field(qtbot, window, store):
    from app.common.new_case import NewCaseDialog

    _login(qtbot, window, "tom", PASSWORDS["tom"])
    dialog = NewCaseDialog(window.session, window)
    qtbot.addWidget(dialog)
    qtbot.keyClicks(dialog.patient_id_edit, "   ")
    qtbot.mouseClick(dialog.create_button, Qt.LeftButton)
    assert dialog.invalid_field() == "patient_id"
    assert "patient ID is required" in dialog.error_label.text()
    assert store.list_cases() == []
    dialog.patient_id_edit.clear()
    qtbot.keyClicks(dialog.patient_id_edit, "P-NEW-1")
    qtbot.keyClicks(dialog.birth_edit, "31.12.1960")
    qtbot.mouseClick(dialog.create_button, Qt.LeftButton)
    assert dialog.invalid_field() == "birth_date" and store.list_cases() == []
    dialog.birth_edit.clear()
    dialog.protocol_combo.setCurrentIndex(dialog.protocol_combo.findData("lu177-dotatate"))
    qtbot.mouseClick(dialog.create_button, Qt.LeftButton)
    assert dialog.invalid_field() is None and dialog.created_case_id
    # the new case is listed and open; its header shows the protocol's checklist
    assert dialog.created_case_id in window.case_list.visible_case_ids()
    assert window.header.value("protocol") == "lu177-dotatate"
    assert "administration" in window.header.checklist_label.text()
