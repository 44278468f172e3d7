"""The PACS panels (pytest-qt) against loopback dcmtk peers, driven like a user.

Known answers: typing the demo Patient ID and clicking Find lists the one study that
dcmqrscp holds (its Study Instance UID in the table); Retrieve imports it and the
store then holds the case with that time point; Send results delivers the SEG to
dcmtk storescp and the panel lists the sent instance; an unreachable PACS is named
in the red line; a physician cannot retrieve (import) and a technologist cannot send
(export): the buttons are disabled.
"""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from app.common.pacs import ReceivePanel, SendPanel
from app.session import CaseSession
from dosimetry_core.store import CaseStore
from tests.conftest import copy_store
from tests.core.net_peers import PATIENT_ID, free_port, start_dcmqrscp, start_storescp

TIMEOUT_MS = 120_000
PASSWORDS = {"root": "Root-pass-123!", "tom": "Tom-pass-123!", "dora": "Dora-pass-123!"}


@pytest.fixture(scope="module")
def tp1_dir(small_demo_dirs) -> Path:
    return next(small_demo_dirs["siemens-bqml"].glob("tp1*"))


@pytest.fixture(scope="module")
def qr(tmp_path_factory, tp1_dir):
    yield from start_dcmqrscp(tmp_path_factory.mktemp("gui-dcmqrscp"), tp1_dir)


@pytest.fixture()
def session(qapp, tmp_path):
    store = CaseStore(tmp_path / "store")
    s = CaseSession(store, store.path)
    yield s
    s.cancel_jobs()
    store.close()


def _peer(panel, port: int, called: str) -> None:
    f = panel.peer_form
    f.host.setText("")
    QTest.keyClicks(f.host, "127.0.0.1")
    f.port.setValue(port)
    f.called_ae.setText("")
    QTest.keyClicks(f.called_ae, called)


def test_find_then_retrieve_imports_the_study(qtbot, session, qr):
    panel = ReceivePanel(session)
    qtbot.addWidget(panel)
    panel.show()
    _peer(panel, qr.port, "PACS")
    assert not panel.find_button.isEnabled()  # no Patient ID yet
    QTest.keyClicks(panel.patient_id, PATIENT_ID)
    QTest.mouseClick(panel.find_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.studies.rowCount() == 1, timeout=TIMEOUT_MS)
    assert panel.studies.item(0, 4).text() == qr.study_uid
    assert panel.status.text() == f"1 study(ies) of patient {PATIENT_ID}"
    assert panel.retrieve.isEnabled()
    listed = []
    session.caseListChanged.connect(lambda: listed.append(True))
    QTest.mouseClick(panel.retrieve, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.task is None and bool(listed), timeout=TIMEOUT_MS)
    assert f"{qr.n_instances} instance(s) received" in panel.status.text()
    assert "created" in panel.status.text()
    [case] = session.store.list_cases()
    assert (case.patient_id, case.n_time_points) == (PATIENT_ID, 1)
    # the peer is saved for the next time
    QTest.mouseClick(panel.peer_form.save, Qt.MouseButton.LeftButton)
    assert panel.status.text() == f"PACS peer saved to {session.store.path / 'pacs.json'}"
    again = ReceivePanel(session)
    qtbot.addWidget(again)
    assert (again.peer_form.host.text(), again.peer_form.port.value()) == ("127.0.0.1", qr.port)


def test_unreachable_pacs_named_in_the_red_line(qtbot, session):
    panel = ReceivePanel(session)
    qtbot.addWidget(panel)
    panel.show()
    port = free_port()
    _peer(panel, port, "PACS")
    QTest.keyClicks(panel.patient_id, PATIENT_ID)
    QTest.mouseClick(panel.find_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.error.isVisible(), timeout=TIMEOUT_MS)
    assert f"PACS PACS@127.0.0.1:{port}" in panel.error.text()
    assert "unreachable" in panel.error.text()
    assert panel.studies.rowCount() == 0
    # a bad AE title is refused before anything is asked, naming the field
    panel.peer_form.called_ae.setText("BAD\\AE")
    QTest.mouseClick(panel.find_button, Qt.MouseButton.LeftButton)
    assert "--called-ae" in panel.error.text() and panel.task is None
    panel.error.hide()
    QTest.mouseClick(panel.peer_form.save, Qt.MouseButton.LeftButton)  # not saved either
    assert panel.error.isVisible() and "--called-ae" in panel.error.text()
    assert not (session.store.path / "pacs.json").exists()


def test_send_results_delivers_the_seg(qtbot, qapp, small_demo_imported_store, tmp_path, tp1_dir):
    template, case_id = small_demo_imported_store
    store = CaseStore(copy_store(template, tmp_path / "store"))
    session = CaseSession(store, store.path)
    session.open_case(case_id)
    try:
        for scp in start_storescp(tmp_path / "received"):
            panel = SendPanel(session)
            qtbot.addWidget(panel)
            panel.show()
            _peer(panel, scp.port, scp.ae_title)
            assert panel.case_label.text().startswith(f"Case {case_id} · ")
            QTest.keyClicks(panel.ct_dir, str(tp1_dir / "CT"))
            assert panel.send.isEnabled()
            QTest.mouseClick(panel.send, Qt.MouseButton.LeftButton)
            qtbot.waitUntil(lambda p=panel: p.task is None, timeout=TIMEOUT_MS)
            assert not panel.error.isVisible(), panel.error.text()
            text = panel.status.text()
            assert text.startswith(f"sent 1 instance(s) to {scp.ae_title}@127.0.0.1")
            assert "SEG " in text and "no signed report" in text and "no dose map" in text
            [got] = list(scp.folder.glob("*.dcm"))
            assert pydicom.dcmread(got).Modality == "SEG"
            assert pydicom.dcmread(got).SOPInstanceUID in text
    finally:
        session.cancel_jobs()
        store.close()


def test_roles_disable_retrieve_and_send(qtbot, qapp, small_demo_imported_store, tmp_path):
    from dosimetry_core.store.users import bootstrap_admin, create_user

    template, case_id = small_demo_imported_store
    store = CaseStore(copy_store(template, tmp_path / "store"))
    admin = bootstrap_admin(store, "root", PASSWORDS["root"])
    create_user(store, admin, "tom", PASSWORDS["tom"], "technologist")
    create_user(store, admin, "dora", PASSWORDS["dora"], "physician")
    session = CaseSession(store, store.path)
    try:
        receive, send = ReceivePanel(session), SendPanel(session)
        qtbot.addWidget(receive)
        qtbot.addWidget(send)
        receive._found([_match()])
        session.login("dora", PASSWORDS["dora"])  # physician: may export, not import
        session.open_case(case_id)
        assert receive.selected_study() is not None
        assert not receive.retrieve.isEnabled()
        assert receive.retrieve.toolTip() == "your role may not import"
        assert send.send.isEnabled()
        session.login("tom", PASSWORDS["tom"])  # technologist: may import, not export
        assert receive.retrieve.isEnabled()
        assert not send.send.isEnabled() and send.send.toolTip() == "your role may not export"
        session.logout()  # the case is closed with the log-out
        assert send.case_label.text() == "No case open" and not send.send.isEnabled()
    finally:
        session.cancel_jobs()
        store.close()


def _match():
    from dosimetry_core.pipeline.pacs import StudyMatch

    return StudyMatch("1.2.3.4", PATIENT_ID, "Demo^Lutetium", "20260302", "133000", "d", "")
