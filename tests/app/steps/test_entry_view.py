"""The data-entry step as the user sees it: red fields with the core's message, the net
activity at once, a save that says who and when, roles and no case."""

from __future__ import annotations

from datetime import timedelta

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QLabel, QLineEdit, QPushButton

from app.steps.entry.view import EntryStepView
from dosimetry_core.store import audit as audit_trail
from dosimetry_core.store.users import authenticate
from tests.app.steps.conftest import ENTRY_CASE_ID, ENTRY_PASSWORDS, ENTRY_T0, add_entry_accounts


@pytest.fixture()
def view(qtbot, entry_session):
    v = EntryStepView(entry_session)
    qtbot.addWidget(v)
    v.resize(1200, 900)
    v.show()
    return v


def _type(view, name: str, text: str) -> None:
    edit = view.findChild(QLineEdit, f"{name}Edit")
    assert edit is not None, name
    QTest.keyClick(edit, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    if text:
        QTest.keyClicks(edit, text)
    else:
        QTest.keyClick(edit, Qt.Key.Key_Delete)


def _message(view, name: str) -> QLabel:
    return view.findChild(QLabel, f"{name}Message")


def _click(view, name: str) -> None:
    QTest.mouseClick(view.findChild(QPushButton, name), Qt.MouseButton.LeftButton)


def test_negative_activity_turns_red_and_save_changes_nothing(view, entry_session, shown_errors):
    store = entry_session.store
    version = store.load_case(ENTRY_CASE_ID).version
    n_audit = len(audit_trail.entries(store, ENTRY_CASE_ID))
    row = view.admin_rows["activity_mbq"]
    assert row.state == "" and not _message(view, "activity_mbq").isVisible()
    _type(view, "activity_mbq", "-5")
    assert row.state == "error"
    assert view.findChild(QLineEdit, "activity_mbqEdit").property("state") == "error"
    msg = _message(view, "activity_mbq")
    assert msg.isVisible()
    assert msg.text() == "activity_mbq: administered activity (MBq) must be > 0 (got -5)"
    assert view.net_label.text().startswith("Net administered activity: –")
    _click(view, "saveAdministrationButton")
    # the core refused: its message in the dialog, the field still red, nothing stored
    assert shown_errors and shown_errors[-1][1] == msg.text()
    assert row.state == "error"
    assert store.load_case(ENTRY_CASE_ID).version == version
    assert store.load_case(ENTRY_CASE_ID).administrations[0].activity_mbq == 7400.0
    assert len(audit_trail.entries(store, ENTRY_CASE_ID)) == n_audit
    assert view.saved_label.text() == ""
    _type(view, "activity_mbq", "7400")
    assert row.state == "" and not msg.isVisible()


def test_residual_updates_net_activity_and_save_says_who(view, entry_session, shown_errors):
    net = view.findChild(QLabel, "netActivityLabel")
    assert net.text() == "Net administered activity: 7,400.0 MBq"
    _type(view, "residual_activity_mbq", "150")
    assert net.text() == "Net administered activity: 7,250.0 MBq"  # no time yet: not decayed
    _type(view, "residual_time", (ENTRY_T0 + timedelta(minutes=10)).strftime("%Y-%m-%d %H:%M"))
    assert net.text() == "Net administered activity: 7,249.9 MBq"
    assert entry_session.unsaved_changes == ["an administration typed in Data entry"]
    _click(view, "saveAdministrationButton")
    assert not shown_errors
    assert entry_session.unsaved_changes == []
    stored = entry_session.store.load_case(ENTRY_CASE_ID)
    adm = stored.administrations[0]
    assert adm.residual_activity_mbq == 150.0
    assert adm.residual_time == ENTRY_T0 + timedelta(minutes=10)
    saved = view.findChild(QLabel, "savedLabel")
    assert saved.text().startswith("Saved by single user at ")
    assert f"case version {stored.version}" in saved.text()
    table = view.admin_table
    assert table.rowCount() == 1 and table.item(0, 4).text() == "7,249.9"
    last = audit_trail.entries(entry_session.store, ENTRY_CASE_ID)[-1]
    assert last.action == "enter-administration" and last.details["operation"] == "edit"


def test_activity_in_gbq_is_stored_in_mbq(view, entry_session, shown_errors):
    _click(view, "newAdministrationButton")
    assert view.admin_mode_label.text() == "New administration"
    _type(view, "activity_mbq", "7.2")
    view.findChild(object, "activity_mbqUnit").setCurrentText("GBq")
    _type(view, "time", (ENTRY_T0 + timedelta(days=1)).strftime("%Y-%m-%d %H:%M"))
    assert view.net_label.text() == "Net administered activity: 7,200.0 MBq"
    _click(view, "saveAdministrationButton")
    assert not shown_errors
    adms = entry_session.store.load_case(ENTRY_CASE_ID).administrations
    assert sorted(a.activity_mbq for a in adms) == [7200.0, 7400.0]
    assert view.admin_table.rowCount() == 2
    assert view.admin_mode_label.text().startswith("Editing administration adm-")


def test_measurement_entry_list_and_delete(view, entry_session, shown_errors):
    kinds = view.kind_box
    kinds.setCurrentIndex(kinds.findData("blood"))
    _type(view, "blood_time", (ENTRY_T0 + timedelta(hours=3)).strftime("%Y-%m-%d %H:%M"))
    _type(view, "blood_concentration_bq_ml", "1500")
    _type(view, "blood_hematocrit", "42")
    hct = view.meas_rows[view.model.kind]["hematocrit"]
    assert hct.state == "error" and hct.message.text().startswith("hematocrit:")
    _type(view, "blood_hematocrit", "0.65")
    assert hct.state == "warning" and "usual 0.2-0.6" in hct.message.text()
    _click(view, "saveMeasurementButton")
    assert not shown_errors
    assert view.meas_table.rowCount() == 1
    assert view.meas_table.item(0, 1).text() == "blood sample"
    stored = entry_session.store.load_case(ENTRY_CASE_ID)
    assert stored.measurements[0].extra["hematocrit"] == 0.65
    # weight is a patient field
    kinds.setCurrentIndex(kinds.findData("weight"))
    _type(view, "weight_weight_kg", "82.5")
    _click(view, "saveMeasurementButton")
    assert view.patient_label.text() == "Patient weight 82.5 kg, height –"
    # delete the blood sample: gone from the list, kept in the audit trail
    view.meas_table.selectRow(0)
    _click(view, "deleteMeasurementButton")
    assert not shown_errors
    assert view.meas_table.rowCount() == 0
    last = audit_trail.entries(entry_session.store, ENTRY_CASE_ID)[-1]
    assert last.details["operation"] == "delete" and last.details["values"]["value"] == 1500.0


def test_scan_time_correction(view, entry_session, shown_errors):
    new = (ENTRY_T0 + timedelta(hours=23, minutes=30)).strftime("%Y-%m-%d %H:%M")
    assert view.reason_row.state == ""  # an empty field is not marked before it is used
    _type(view, "acquired_at", new)
    _click(view, "saveScanTimeButton")  # no reason: the core refuses, the field turns red
    assert view.reason_row.state == "error"
    assert shown_errors.pop()[1] == "reason: say why the acquisition time is corrected"
    _type(view, "reason", "scanner clock 30 min fast")
    assert view.reason_row.state == "" and view.scan_row.state == ""
    _click(view, "saveScanTimeButton")
    assert not shown_errors
    tp = entry_session.store.load_case(ENTRY_CASE_ID).time_points[0]
    assert tp.acquired_at == ENTRY_T0 + timedelta(hours=23, minutes=30)
    assert tp.acquired_at_original == ENTRY_T0 + timedelta(hours=24)
    assert view.scan_original_label.text().startswith("Corrected from ")


def test_disabled_without_case_and_for_a_physician(qtbot, entry_store):
    from app.session import CaseSession

    add_entry_accounts(entry_store)
    session = CaseSession(entry_store, entry_store.path)
    view = EntryStepView(session)
    qtbot.addWidget(view)
    assert not view.isEnabled()  # no case open
    session.login("dora", ENTRY_PASSWORDS["dora"])
    session.open_case(ENTRY_CASE_ID)
    assert view.isEnabled()
    assert not view.admin_box.isEnabled() and not view.meas_box.isEnabled()
    session.logout()
    assert not view.isEnabled()
    session.login("tom", ENTRY_PASSWORDS["tom"])
    session.open_case(ENTRY_CASE_ID)
    assert view.admin_box.isEnabled() and view.meas_box.isEnabled()


def test_a_refusal_at_save_is_shown_and_saves_nothing(view, entry_session, shown_errors):
    """The role is the core's: a physician who somehow reaches Save is refused by the core."""
    add_entry_accounts(entry_session.store)
    entry_session.store.actor = authenticate(entry_session.store, "dora", ENTRY_PASSWORDS["dora"])
    version = entry_session.store.load_case(ENTRY_CASE_ID).version
    _type(view, "residual_activity_mbq", "100")
    _click(view, "saveAdministrationButton")
    assert shown_errors and "dora (physician) may not enter administrations" in shown_errors[-1][1]
    assert entry_session.store.load_case(ENTRY_CASE_ID).version == version


class _Ctx:
    """The part of the tour context a step driver uses, on pytest-qt."""

    def __init__(self, qtbot, window) -> None:
        self.qtbot = qtbot
        self.window = window

    def wait_until(self, predicate, timeout_s, what) -> None:
        self.qtbot.waitUntil(predicate, timeout=int(timeout_s * 1000))

    def settle(self, seconds: float = 0.3) -> None:
        self.qtbot.wait(int(seconds * 1000))


def test_tour_driver_enters_a_residual_through_the_widgets(qtbot, view, entry_session):
    from app.steps.entry.tour import drive

    shown = drive(view, _Ctx(qtbot, view))
    assert shown["administered_activity_mbq"] == 7400.0
    assert shown["residual_activity_mbq"] == 150.0
    assert shown["net_administered_activity_mbq"] == 7249.9
    assert shown["saved_by"] == "single user"
    adm = entry_session.store.load_case(ENTRY_CASE_ID).administrations[0]
    assert adm.residual_activity_mbq == 150.0
    assert adm.residual_time == ENTRY_T0 + timedelta(minutes=10)
