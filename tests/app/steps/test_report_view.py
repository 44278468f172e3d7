"""The report and sign-off step in a window (pytest-qt), driven by a physicist and a physician.

One store per module: a copy of the analysis demo store on which the core ran the
demo's protocol once (``run_protocol``, lu177-dotatate), then accounts with personal
keys (an admin, technologist ``tom``, physicist ``pia``, physician ``dora``).  The
tests follow the life of the report IN FILE ORDER on that store (a technologist looks;
the physicist makes the report; a wrong password changes nothing; MPE then
practitioner sign; the signed PDF and the CA certificate are saved through the
buttons and validated by pyHanko's own API; the drop zone verifies the file and a
tampered copy; an amendment makes version 2).  They read what the user sees: table
cells, labels, the preview's page count, button states.
"""

from __future__ import annotations

import shutil
import time
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QLineEdit

from app.common import error_display
from app.session import CaseSession
from app.steps.report.model import NUMBER_COLUMNS, PROTOCOL_STEP_TITLE
from app.steps.report.tour import answer_file_dialog, drop_file
from app.steps.report.view import ReportStepView
from dosimetry_core.reporting.content import build_report_content
from dosimetry_core.reporting.records import list_reports, load_report, report_pdf
from dosimetry_core.store import CaseStore, audit

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PW = {
    "root": "root-otter-maple-42",
    "tom": "tom-otter-maple-42",
    "pia": "pia-otter-maple-42",
    "dora": "dora-otter-maple-42",
}
PROTOCOL = "lu177-dotatate"
TIMEOUT_S = 240.0


def _wait(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        QApplication.processEvents()
        time.sleep(0.01)


@pytest.fixture(scope="module")
def report_store_dir(
    analysis_store_dir: Path, shared_kernel_cache: Path, tmp_path_factory: Any
) -> tuple[Path, str]:
    """The analysis store with the demo protocol run by the core, then keyed accounts."""
    from dosimetry_core.pipeline.protocol_run import run_protocol
    from dosimetry_core.store.users import bootstrap_admin, create_user

    folder = tmp_path_factory.mktemp("report-view") / "store"
    shutil.copytree(analysis_store_dir, folder)
    case_id = (folder / "CASE_ID").read_text()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MRTDOSE_KERNEL_CACHE", str(shared_kernel_cache))
        with CaseStore(folder) as store:
            run_protocol(store, case_id, PROTOCOL, user="pia")
            admin = bootstrap_admin(store, "root", PW["root"], hasher=FAST)
            for name, role in (
                ("tom", "technologist"),
                ("pia", "physicist"),
                ("dora", "physician"),
            ):
                create_user(store, admin, name, PW[name], role, hasher=FAST)
    return folder, case_id


class Gui:
    """The module's store, session and report view (one window, several users)."""

    def __init__(self, folder: Path, case_id: str, out: Path) -> None:
        self.store = CaseStore(folder)
        self.case_id = case_id
        self.out = out
        self.session = CaseSession(self.store, self.store.path)
        self.view = ReportStepView(self.session)
        self.view.resize(1100, 950)
        self.view.show()
        self.errors: list[str] = []

    def as_user(self, name: str) -> None:
        if self.session.actor is not None:
            self.session.logout()
        self.session.login(name, PW[name])
        self.session.open_case(self.case_id)
        self.view.activated()
        self.idle()

    def idle(self) -> None:
        _wait(lambda: not self.view.is_loading(), TIMEOUT_S, "the report step idle")

    def audit_count(self) -> int:
        return len(audit.entries(self.store))


@pytest.fixture(scope="module")
def gui(qapp: Any, report_store_dir: tuple[Path, str], tmp_path_factory: Any) -> Any:
    folder, case_id = report_store_dir
    g = Gui(folder, case_id, tmp_path_factory.mktemp("report-out"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(error_display, "show_error", lambda p, t, m, d="": g.errors.append(f"{t}: {m}"))
        yield g
    g.view.close()
    g.session.cancel_jobs()
    g.store.close()


def _sign(gui: Gui, password: str) -> Any:
    view = gui.view
    QTest.mouseClick(view.sign_button, Qt.MouseButton.LeftButton)
    _wait(lambda: view.sign_dialog is not None, 10, "the sign dialog")
    dialog = view.sign_dialog
    assert dialog is not None and dialog.isVisible()
    edit = dialog.findChild(QLineEdit, "signPassword")
    assert edit is dialog.password_edit
    assert edit.echoMode() == QLineEdit.EchoMode.Password
    assert not dialog.sign_button.isEnabled()  # nothing typed
    QTest.keyClicks(edit, password)
    assert dialog.sign_button.isEnabled()
    QTest.mouseClick(dialog.sign_button, Qt.MouseButton.LeftButton)
    assert edit.text() == ""  # the field is emptied at once
    _wait(lambda: view.sign_dialog is None or dialog.error_label.isVisible(), TIMEOUT_S, "signing")
    gui.idle()
    return dialog


# ---------------------------------------------------------------------- tests (in order)
def test_no_protocol_run_says_so_and_names_the_step(qtbot: Any, analysis_session: Any) -> None:
    view = ReportStepView(analysis_session)
    qtbot.addWidget(view)
    view.show()
    qtbot.waitUntil(lambda: not view.is_loading(), timeout=30_000)
    text = view.summary_label.text()
    assert "no protocol run" in text and PROTOCOL_STEP_TITLE in text
    assert not view.make_button.isEnabled() and not view.sign_button.isEnabled()
    assert view.page_count() == 0 and view.numbers_table.rowCount() == 0


def test_a_technologist_may_look_but_not_make_or_sign(gui: Gui) -> None:
    gui.as_user("tom")
    v = gui.view
    assert "No report" in v.summary_label.text()
    assert not v.make_button.isEnabled() and "physicist" in v.make_button.toolTip()
    assert not v.sign_button.isEnabled()
    assert "Only a physicist makes the report" in v.hint_label.text()


def test_physicist_makes_the_report_preview_beside_the_core_numbers(gui: Gui) -> None:
    gui.as_user("pia")
    v = gui.view
    assert v.make_button.isEnabled() and not v.sign_button.isEnabled()
    QTest.mouseClick(v.make_button, Qt.MouseButton.LeftButton)
    assert v.is_loading() and not v.make_button.isEnabled() and v.progress.isVisible()
    gui.idle()
    assert not gui.errors, gui.errors
    recs = list_reports(gui.store, gui.case_id)
    assert [(r.version, r.status) for r in recs] == [(1, "draft")]
    # the preview holds the stored PDF: its page count as QtPdf reads it, and said so
    from pyhanko.pdf_utils.reader import PdfFileReader

    pages = PdfFileReader(BytesIO(report_pdf(gui.store, recs[0].report_id))).root["/Pages"]
    n = int(pages["/Count"])
    assert n >= 2 and v.page_count() == n
    assert v.pages_label.text().startswith(f"{n} page(s)")
    # the number table shows the kidney dose of the core's content (3 decimals, Gy)
    content = build_report_content(gui.store, gui.case_id, population=False)
    kidney_gy = content["organs"]["kidneys"]["dose_gy"]
    rows = {r["Organ / VOI"].strip(): r for r in v.numbers_as_shown()}
    assert rows["Kidneys"]["Dose (Gy)"] == f"{kidney_gy:.3f}"
    assert rows["Kidneys"]["Result"] in ("PASS", "FAIL") and "Gy" in rows["Kidneys"]["Limit"]
    # the demo's contours are drafts: flagged, in an amber cell
    flag_col = NUMBER_COLUMNS.index("Review flag")
    k = next(
        i
        for i in range(v.numbers_table.rowCount())
        if "Kidney_L" in v.numbers_table.item(i, 0).text()
    )
    assert v.numbers_table.item(k, flag_col).text().endswith("- not approved")
    assert v.numbers_table.item(k, flag_col).toolTip().startswith("contour not approved")
    assert v.numbers_table.item(k, flag_col).background().color().name() == "#ffcc66"
    assert v.sign_button.isEnabled()  # the physicist may sign as MPE


def test_a_wrong_password_fails_visibly_and_changes_nothing(gui: Gui) -> None:
    v = gui.view
    rid = v.state.shown.report_id  # type: ignore[union-attr]
    before = load_report(gui.store, rid)
    pdf_before = report_pdf(gui.store, rid)
    n_audit = gui.audit_count()
    dialog = _sign(gui, "not-the-password-1")
    assert v.sign_dialog is dialog and dialog.error_label.isVisible()
    assert "cannot be unlocked with this password" in dialog.error_label.text()
    assert "Signing failed" in v.message_label.text()
    after = load_report(gui.store, rid)
    assert (after.status, after.signatures, after.pdf_blob_key) == (
        before.status,
        before.signatures,
        before.pdf_blob_key,
    )
    assert report_pdf(gui.store, rid) == pdf_before
    assert gui.audit_count() == n_audit  # no audit row
    QTest.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    _wait(lambda: v.sign_dialog is None, 5, "the dialog closed")
    assert v.signature_table.rowCount() == 0


def test_mpe_then_practitioner_sign_and_both_signatures_are_valid(gui: Gui) -> None:
    v = gui.view
    _sign(gui, PW["pia"])
    assert v.sign_dialog is None  # accepted and closed (a refusal keeps it open)
    rid = v.state.shown.report_id  # type: ignore[union-attr]
    assert load_report(gui.store, rid).status == "mpe-signed"
    assert "mpe-signed" in v.summary_label.text()
    assert not v.sign_button.isEnabled()  # the MPE signed; the practitioner is next
    gui.as_user("dora")
    assert v.sign_button.isEnabled()
    _sign(gui, PW["dora"])
    rec = load_report(gui.store, rid)
    assert rec.status == "signed"
    assert "signed (final" in v.summary_label.text()
    rows = v.signatures_as_shown()
    assert [(r["Signer"], r["Role"], r["Valid"]) for r in rows] == [
        ("pia", "physicist", "yes"),
        ("dora", "physician", "yes"),
    ]
    assert all(r["Chain to department CA"].startswith("yes") for r in rows)
    assert not v.sign_button.isEnabled() and not gui.errors


def test_the_pdf_signed_in_the_gui_validates_in_pyhanko_against_the_exported_ca(gui: Gui) -> None:
    from pyhanko.keys import load_cert_from_pemder
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.status import SignatureCoverageLevel
    from pyhanko_certvalidator import ValidationContext

    v = gui.view
    pdf_path, ca_path = gui.out / "signed.pdf", gui.out / "ca.pem"
    for button, path in ((v.save_button, pdf_path), (v.ca_button, ca_path)):
        QTest.mouseClick(button, Qt.MouseButton.LeftButton)
        _wait(lambda: v.file_dialog is not None and v.file_dialog.isVisible(), 10, "file dialog")
        answer_file_dialog(v, path)
        _wait(path.is_file, 10, f"{path.name} written")
    assert "Wrote the department CA certificate" in v.message_label.text()
    ca = load_cert_from_pemder(str(ca_path))
    vc = ValidationContext(trust_roots=[ca])
    sigs = PdfFileReader(BytesIO(pdf_path.read_bytes())).embedded_signatures
    assert [s.field_name for s in sigs] == ["MPE", "Practitioner"]
    statuses = [validate_pdf_signature(s, vc) for s in sigs]
    assert all(st.intact and st.valid and st.trusted and st.bottom_line for st in statuses)
    assert statuses[-1].coverage == SignatureCoverageLevel.ENTIRE_FILE


def test_the_drop_zone_verifies_the_file_and_finds_a_flipped_byte(gui: Gui) -> None:
    v = gui.view
    pdf_path, ca_path = gui.out / "signed.pdf", gui.out / "ca.pem"
    v.tabs.setCurrentIndex(2)
    drop_file(v.drop_zone, pdf_path)  # against the store's CA (default)
    _wait(lambda: bool(v.verify_result.text()), TIMEOUT_S, "the verification")
    assert "INTACT: report" in v.verify_result.text() and "2 signature(s)" in v.verify_result.text()
    # the exported CA chosen through its file dialog
    QTest.mouseClick(v.choose_ca_button, Qt.MouseButton.LeftButton)
    _wait(lambda: v.file_dialog is not None and v.file_dialog.isVisible(), 10, "file dialog")
    answer_file_dialog(v, ca_path)
    _wait(lambda: v.ca_file == str(ca_path), 10, "the CA chosen")
    assert "ca.pem" in v.ca_label.text()
    data = bytearray(pdf_path.read_bytes())
    data[len(data) // 2] ^= 0x01
    bad = gui.out / "tampered.pdf"
    bad.write_bytes(bytes(data))
    v.verify_result.clear()
    drop_file(v.drop_zone, bad)
    _wait(lambda: bool(v.verify_result.text()), TIMEOUT_S, "the verification")
    text = v.verify_result.text()
    assert "NOT INTACT" in text and "tampered.pdf" in text
    assert v.last_verdict is not None and not v.last_verdict.intact
    # the same file chosen with "Choose file..." says the same
    v.verify_result.clear()
    QTest.mouseClick(v.choose_button, Qt.MouseButton.LeftButton)
    _wait(lambda: v.file_dialog is not None and v.file_dialog.isVisible(), 10, "file dialog")
    answer_file_dialog(v, bad)
    _wait(lambda: bool(v.verify_result.text()), TIMEOUT_S, "the verification")
    assert "NOT INTACT" in v.verify_result.text()


def test_the_drop_zone_refuses_what_is_not_a_report(gui: Gui) -> None:
    """A text file is not taken; a fake .pdf and a folder named .pdf are explained, not crashed."""
    from app.steps.base import TourError

    v = gui.view
    txt = gui.out / "notes.txt"
    txt.write_text("hello")
    with pytest.raises(TourError, match="refused"):
        drop_file(v.drop_zone, txt)
    fake = gui.out / "fake.pdf"
    fake.write_bytes(b"not a pdf at all")
    v.verify_result.clear()
    drop_file(v.drop_zone, fake)
    _wait(lambda: bool(v.verify_result.text()), TIMEOUT_S, "the verification")
    assert "NOT INTACT" in v.verify_result.text() and "neither a PDF" in v.verify_result.text()
    folder = gui.out / "folder.pdf"
    folder.mkdir()
    v.verify_result.clear()
    drop_file(v.drop_zone, folder)
    _wait(lambda: bool(v.verify_result.text()), TIMEOUT_S, "the verification")
    assert "NOT CHECKED" in v.verify_result.text() and "folder.pdf" in v.verify_result.text()
    assert not gui.errors


def test_the_password_holder_is_emptied_by_the_call(gui: Gui) -> None:
    """The worker takes the password out of its one-shot holder, even when signing fails."""
    from app.steps.report.view import _sign_with_password
    from dosimetry_core.errors import AuthenticationError, InvalidInputError
    from dosimetry_core.store.permissions import Actor

    rid = gui.view.state.shown.report_id  # type: ignore[union-attr]
    secret = ["wrong-password-123"]
    with pytest.raises((AuthenticationError, InvalidInputError)):
        _sign_with_password(gui.store, Actor("pia", "physicist"), rid, "mpe", secret, True)
    assert secret == []
    with pytest.raises(InvalidInputError, match="type your password"):  # no silent key reuse
        _sign_with_password(gui.store, Actor("pia", "physicist"), rid, "mpe", [], True)


def test_amend_needs_a_reason_and_makes_version_2(gui: Gui) -> None:
    v = gui.view
    v.tabs.setCurrentIndex(1)
    assert v.reason_edit.isEnabled() and not v.amend_button.isEnabled()
    QTest.keyClicks(v.reason_edit, "   ")
    assert not v.amend_button.isEnabled()
    v.reason_edit.clear()
    QTest.keyClicks(v.reason_edit, "weight corrected")
    assert v.amend_button.isEnabled()
    QTest.mouseClick(v.amend_button, Qt.MouseButton.LeftButton)
    gui.idle()
    _wait(lambda: v.version_table.rowCount() == 2, TIMEOUT_S, "version 2 listed")
    rows = v.versions_as_shown()
    assert [(r["Version"], r["Status"], r["By"]) for r in rows] == [
        ("1", "superseded", "pia"),
        ("2", "draft", "dora"),
    ]
    assert rows[1]["Supersedes"] == "version 1" and rows[1]["Reason"] == "weight corrected"
    assert "version 2" in v.pages_label.text() and v.page_count() >= 2
    # the old version is still readable in the preview, marked superseded
    QTest.mouseClick(
        v.version_table.viewport(),
        Qt.MouseButton.LeftButton,
        pos=v.version_table.visualItemRect(v.version_table.item(0, 0)).center(),
    )
    gui.idle()
    assert "version 1 (superseded)" in v.pages_label.text() and v.page_count() >= 2
    assert "SUPERSEDED by version 2" in v.summary_label.text()
    assert len(v.signatures_as_shown()) == 2 and not v.sign_button.isEnabled()
    assert not gui.errors, gui.errors
