"""The report and sign-off step: make the report, preview it, sign it, amend it, verify a file.

* "Make report" (``session.may("report")``, a physicist) runs
  :func:`dosimetry_core.reporting.records.create_report` in a worker
  (``session.run``); without a protocol run on the case the step says so and
  names the protocol step;
* the preview shows the stored PDF's pages (QtPdf) with the page count, beside
  a table of the report content's numbers: dose (Gy) per organ and VOI, the
  limits with PASS/FAIL, and the contour review flag (amber when not approved);
* "Sign…" opens :class:`SignDialog`: the roles the logged-in user may sign as,
  the password asked every time (never kept: it is handed to the worker in a
  one-shot holder that the call empties); a refusal (wrong password) is shown in
  the dialog and changes nothing (the core refuses before it writes);
* the signatures of the shown version (signer, role, time, valid, chain to the
  department CA) from the core's check of the stored PDF against the store's CA;
* the version list (every version; select one to preview it, a superseded one is
  marked); "Amend" with a required reason makes the next version;
* "Verify a file": a drop zone for a PDF (or "Choose file…") and an optional CA
  certificate (default: the store's CA), checked by
  :func:`dosimetry_core.reporting.file_check.verify_report_path` and explained;
* "Save signed PDF…" writes the stored PDF; "Export CA certificate…" writes the
  department CA (PEM), as ``mrtdose user ca-cert --out FILE``.

File dialogs open without blocking (``QFileDialog.open``; Qt's own dialog, so
the tour and the tests type into it as a user does): :attr:`ReportStepView.file_dialog`.
"""

from __future__ import annotations

import getpass
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt, Signal
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent
from PySide6.QtPdf import QPdfDocument
from PySide6.QtPdfWidgets import QPdfView
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.common import error_display
from app.common.widgets import named, read_only_table
from app.session import CaseSession
from app.steps.base import StepView
from app.steps.report.model import (
    NUMBER_COLUMNS,
    ROLE_LABELS,
    SIGNATURE_COLUMNS,
    VERSION_COLUMNS,
    ReportModel,
    ReportState,
    explain_file_check,
    load_state,
)
from dosimetry_core.errors import DosimetryError, InvalidInputError
from dosimetry_core.store.permissions import Actor

__all__ = ["DropZone", "ReportStepView", "SignDialog"]

DIALOG_ROLES = {"mpe": "MPE (medical physics expert)", "practitioner": "Practitioner"}
ACTIONS = ("report", "sign-mpe", "sign-practitioner", "amend-report", "verify")
AMBER = QColor("#ffcc66")
PASS_GREEN = QColor("#7bd88f")
FAIL_RED = QColor("#ff6b6b")
OK_STYLE = "color: #2e7d32; font-weight: bold;"
BAD_STYLE = "color: #c62828; font-weight: bold;"


def _sign_with_password(
    store: Any, actor: Actor, report_id: str, as_: str, secret: list[str], need_password: bool
) -> Any:
    """Worker body of a sign-off: the password is taken out of ``secret`` (emptied) first.

    In a store with personal keys the password is required every time (the key
    unlocked at log-in is not used).
    """
    from dosimetry_core.reporting.records import sign

    password = secret.pop() if secret else None
    secret.clear()
    if need_password and not password:
        raise InvalidInputError("type your password to sign", field="password")
    try:
        return sign(store, actor, report_id, as_, password=password)
    finally:
        password = None


class DropZone(QFrame):
    """A framed area that accepts a dropped ``.pdf`` file (emits its path)."""

    fileDropped = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("reportDropZone")
        self.setAcceptDrops(True)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setMinimumHeight(56)
        lay = QVBoxLayout(self)
        self.label = named(QLabel("Drop a report PDF here to verify it", self), "reportDropLabel")
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.label.setWordWrap(True)
        lay.addWidget(self.label)
        self._normal_style()

    def _normal_style(self) -> None:
        self.setStyleSheet("#reportDropZone { border: 2px dashed #888; border-radius: 6px; }")

    @staticmethod
    def pdf_path(event: QDragEnterEvent | QDropEvent) -> str | None:
        mime = event.mimeData()
        if mime is None or not mime.hasUrls():
            return None
        for url in mime.urls():
            if url.isLocalFile() and url.toLocalFile().lower().endswith(".pdf"):
                return str(url.toLocalFile())
        return None

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self.pdf_path(event) is not None:
            self.setStyleSheet(
                "#reportDropZone { border: 2px dashed #4fc3f7; border-radius: 6px; }"
            )
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragLeaveEvent(self, event: Any) -> None:
        self._normal_style()
        super().dragLeaveEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:
        self._normal_style()
        path = self.pdf_path(event)
        if path is None:
            event.ignore()
            return
        event.acceptProposedAction()
        self.fileDropped.emit(path)


class SignDialog(QDialog):
    """Sign the shown report: role (as the user may), password asked again (module docstring)."""

    def __init__(
        self,
        parent: QWidget,
        *,
        report_label: str,
        signer: str,
        roles: list[str],
        need_password: bool,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("reportSignDialog")
        self.setWindowTitle("Sign the report")
        self.setModal(True)
        self.need_password = need_password
        lay = QVBoxLayout(self)
        lay.addWidget(named(QLabel(f"Sign {report_label} as {signer}", self), "signWhat"))
        row = QHBoxLayout()
        row.addWidget(QLabel("Sign as", self))
        self.role_box = named(QComboBox(self), "signRole")
        for role in roles:
            self.role_box.addItem(DIALOG_ROLES.get(role, role), role)
        row.addWidget(self.role_box, 1)
        lay.addLayout(row)
        self.password_edit = named(QLineEdit(self), "signPassword")
        self.password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.password_edit.setPlaceholderText("Your password (asked again for every signature)")
        self.password_edit.textChanged.connect(lambda _t: self._update())
        if need_password:
            lay.addWidget(QLabel("Password", self))
            lay.addWidget(self.password_edit)
        else:
            self.password_edit.hide()
            lay.addWidget(
                QLabel("Single-user store: no personal key; the signature is a hash record.", self)
            )
        self.error_label = error_display.inline_error_label(self, "signError")
        lay.addWidget(self.error_label)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.sign_button = named(QPushButton("Sign", self), "signButton")
        self.sign_button.setDefault(True)
        self.cancel_button = named(QPushButton("Cancel", self), "signCancel")
        self.cancel_button.clicked.connect(self.reject)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.sign_button)
        lay.addLayout(buttons)
        self.password_edit.returnPressed.connect(self.sign_button.click)
        self._busy = False
        self._update()

    def role(self) -> str:
        return str(self.role_box.currentData())

    def take_password(self) -> list[str]:
        """The typed password in a one-shot holder; the field is cleared at once."""
        text = self.password_edit.text()
        self.password_edit.clear()
        return [text] if text else []

    def set_busy(self, busy: bool) -> None:
        self._busy = busy
        self.role_box.setEnabled(not busy)
        self.password_edit.setEnabled(not busy)
        self.cancel_button.setEnabled(not busy)
        if busy:
            self.error_label.hide()
        self._update()

    def show_refusal(self, message: str) -> None:
        self.error_label.setText(message)
        self.error_label.show()
        self.password_edit.setFocus()

    def _update(self) -> None:
        typed = bool(self.password_edit.text()) or not self.need_password
        self.sign_button.setEnabled(typed and not self._busy and self.role_box.count() > 0)

    def reject(self) -> None:
        if self._busy:
            return
        self.password_edit.clear()
        super().reject()


class ReportStepView(StepView):
    """Report, preview, sign-off, versions and file verification (module docstring)."""

    step_id = "report"
    title = "Report and sign-off"
    nav_title = "Report && sign"
    action = None

    def __init__(self, session: CaseSession, parent: QWidget | None = None) -> None:
        super().__init__(session, parent)
        self.state = ReportState(None, False)
        self.model = ReportModel(self.state, {})
        self.sign_dialog: SignDialog | None = None
        """The open sign dialog (None when none is open)."""
        self.file_dialog: QFileDialog | None = None
        self.ca_file: str | None = None
        self.last_verdict: Any = None
        self._generation = 0
        self._loading = False
        self._job: Any = None
        self._shown_id: str | None = None
        self._pdf_buffer: QBuffer | None = None
        # preview and numbers side by side need room: the main window gives a step its
        # minimum width first (hiding the case list and the viewer's layer column)
        self.setMinimumWidth(620)

        layout = QVBoxLayout(self)
        self.summary_label = named(QLabel("", self), "reportSummary")
        self.summary_label.setWordWrap(True)
        self.summary_label.setStyleSheet("font-weight: bold;")
        layout.addWidget(self.summary_label)
        self.hint_label = named(QLabel("", self), "reportHint")
        self.hint_label.setWordWrap(True)
        layout.addWidget(self.hint_label)

        buttons = QHBoxLayout()
        self.make_button = named(QPushButton("Make report", self), "reportMake")
        self.make_button.clicked.connect(self.make_report)
        self.sign_button = named(QPushButton("Sign…", self), "reportSign")
        self.sign_button.clicked.connect(self.open_sign_dialog)
        self.save_button = named(QPushButton("Save signed PDF…", self), "reportSavePdf")
        self.save_button.clicked.connect(lambda: self.ask_path("pdf"))
        self.ca_button = named(QPushButton("Export CA certificate…", self), "reportExportCa")
        self.ca_button.clicked.connect(lambda: self.ask_path("ca"))
        for b in (self.make_button, self.sign_button, self.save_button, self.ca_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        self.progress = named(QProgressBar(self), "reportProgress")
        self.progress.setRange(0, 0)
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.message_label = named(QLabel("", self), "reportMessage")
        self.message_label.setWordWrap(True)
        layout.addWidget(self.progress)
        layout.addWidget(self.message_label)

        split = named(QSplitter(Qt.Orientation.Horizontal, self), "reportSplit")
        preview = QWidget(split)
        pl = QVBoxLayout(preview)
        pl.setContentsMargins(0, 0, 0, 0)
        self.pages_label = named(QLabel("No report to preview", preview), "reportPages")
        pl.addWidget(self.pages_label)
        self.pdf_document = QPdfDocument(self)
        self.pdf_view = named(QPdfView(preview), "reportPreview")
        self.pdf_view.setDocument(self.pdf_document)
        self.pdf_view.setPageMode(QPdfView.PageMode.MultiPage)
        self.pdf_view.setZoomMode(QPdfView.ZoomMode.FitToWidth)
        self.pdf_view.setMinimumWidth(220)
        pl.addWidget(self.pdf_view, 1)
        numbers = QWidget(split)
        nl = QVBoxLayout(numbers)
        nl.setContentsMargins(0, 0, 0, 0)
        title = QLabel("Numbers of the report: dose, limit, contour review", numbers)
        title.setWordWrap(True)
        nl.addWidget(title)
        self.numbers_table = read_only_table("reportNumbers", NUMBER_COLUMNS)
        self.numbers_table.setMinimumWidth(260)
        nl.addWidget(self.numbers_table, 1)
        self.integrity_label = named(QLabel("", numbers), "reportIntegrity")
        self.integrity_label.setWordWrap(True)
        nl.addWidget(self.integrity_label)
        split.addWidget(preview)
        split.addWidget(numbers)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        layout.addWidget(split, 3)

        self.tabs = named(QTabWidget(self), "reportTabs")
        # signatures
        sig_page = QWidget()
        sl = QVBoxLayout(sig_page)
        self.signature_table = read_only_table("reportSignatures", SIGNATURE_COLUMNS)
        self.signature_table.setWordWrap(True)
        sl.addWidget(self.signature_table)
        self.tabs.addTab(sig_page, "Signatures")
        # versions and amendment
        ver_page = QWidget()
        vl = QVBoxLayout(ver_page)
        self.version_table = read_only_table("reportVersions", VERSION_COLUMNS)
        self.version_table.itemSelectionChanged.connect(self._on_version_selected)
        vl.addWidget(self.version_table, 1)
        arow = QHBoxLayout()
        self.reason_edit = named(QLineEdit(ver_page), "reportAmendReason")
        self.reason_edit.setPlaceholderText("Reason for the amendment (required)")
        self.reason_edit.textChanged.connect(lambda _t: self._update_enabled())
        self.amend_button = named(QPushButton("Amend", ver_page), "reportAmend")
        self.amend_button.clicked.connect(self.amend_report)
        arow.addWidget(self.reason_edit, 1)
        arow.addWidget(self.amend_button)
        vl.addLayout(arow)
        self.tabs.addTab(ver_page, "Versions")
        # verify a file
        ver_box = QWidget()
        fl = QVBoxLayout(ver_box)
        self.drop_zone = DropZone(ver_box)
        self.drop_zone.fileDropped.connect(self.verify_file)
        fl.addWidget(self.drop_zone)
        frow = QHBoxLayout()
        self.choose_button = named(QPushButton("Choose file…", ver_box), "reportChooseFile")
        self.choose_button.clicked.connect(lambda: self.ask_path("verify"))
        self.choose_ca_button = named(QPushButton("CA certificate…", ver_box), "reportChooseCa")
        self.choose_ca_button.clicked.connect(lambda: self.ask_path("trust"))
        self.store_ca_button = named(QPushButton("Use the store's CA", ver_box), "reportStoreCa")
        self.store_ca_button.clicked.connect(lambda: self.set_ca_file(None))
        frow.addWidget(self.choose_button)
        frow.addWidget(self.choose_ca_button)
        frow.addWidget(self.store_ca_button)
        frow.addStretch(1)
        fl.addLayout(frow)
        self.ca_label = named(QLabel("", ver_box), "reportCaLabel")
        self.ca_label.setWordWrap(True)
        fl.addWidget(self.ca_label)
        self.verify_result = named(QLabel("", ver_box), "reportVerifyResult")
        self.verify_result.setWordWrap(True)
        self.verify_result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        fl.addWidget(self.verify_result, 1)
        self.tabs.addTab(ver_box, "Verify a file")
        layout.addWidget(self.tabs, 2)

        session.caseChanged.connect(lambda _c: self._refresh_if_visible())
        session.userChanged.connect(self._refresh_if_visible)
        self.set_ca_file(None)
        self.refresh()

    # ------------------------------------------------------------ state
    def _may(self) -> dict[str, bool]:
        return {a: self.session.may(a) for a in ACTIONS}

    def activated(self) -> None:
        self.refresh()

    def _refresh_if_visible(self) -> None:
        """Another case, a save or another user: read again now if shown, else when shown."""
        if self.isVisible():
            self.refresh()
        else:
            self._generation += 1  # a read under way is stale
            self._loading = False
            self._apply(ReportState(None, False))

    def is_loading(self) -> bool:
        """A read of the reports, or a report action, is running."""
        return self._loading or self._job is not None

    def refresh(self, shown_id: str | None = None) -> None:
        """Read the case's reports again (in a worker) and show them."""
        if shown_id is not None:
            self._shown_id = shown_id
        store, case = self.session.store, self.session.case
        self._generation += 1
        gen = self._generation
        if store is None or case is None or self.session.needs_login:
            self._loading = False
            self._apply(ReportState(None, False))
            return
        self._loading = True

        def done(state: ReportState) -> None:
            if gen == self._generation:
                self._loading = False
                self._apply(state)

        def failed(message: str, _details: str) -> None:
            if gen == self._generation:
                self._loading = False
                self._apply(ReportState(case.case_id, False, error=message))

        self.session.run(
            load_state,
            store,
            case.case_id,
            self._shown_id,
            description="read the reports",
            on_success=done,
            on_failure=failed,
            reload_case=False,
            with_progress=False,
        )

    def _apply(self, state: ReportState) -> None:
        self.state = state
        self.model = ReportModel(state, self._may())
        if state.shown_id is not None:
            self._shown_id = state.shown_id
        self.summary_label.setText(self.model.summary())
        self.integrity_label.setText(self.model.integrity())
        self.integrity_label.setStyleSheet(BAD_STYLE if state.problems else "")
        self._show_pdf(state.pdf)
        self._fill_numbers()
        self._fill(self.signature_table, self.model.signatures())
        self._fill_versions()
        self._update_enabled()

    def _show_pdf(self, pdf: bytes | None) -> None:
        self.pdf_document.close()
        old = self._pdf_buffer
        self._pdf_buffer = None
        if old is not None:
            old.close()
            old.deleteLater()
        if pdf is None:
            self.pages_label.setText("No report to preview")
            return
        buf = QBuffer(self)
        buf.setData(QByteArray(pdf))
        buf.open(QIODevice.OpenModeFlag.ReadOnly)
        self._pdf_buffer = buf  # QPdfDocument reads from it while it shows the pages
        self.pdf_document.load(buf)
        shown = self.state.shown
        n = self.pdf_document.pageCount()
        what = "" if shown is None else f"version {shown.version} ({shown.status})"
        self.pages_label.setText(f"{n} page(s) — {what}")
        superseded = shown is not None and shown.status == "superseded"
        self.pages_label.setStyleSheet(BAD_STYLE if superseded else "")

    def page_count(self) -> int:
        """Pages of the PDF in the preview (0: none)."""
        return int(self.pdf_document.pageCount()) if self._pdf_buffer is not None else 0

    def _fill_numbers(self) -> None:
        rows = self.model.numbers()
        t = self.numbers_table
        t.setRowCount(len(rows))
        flag_col = NUMBER_COLUMNS.index("Review flag")
        result_col = NUMBER_COLUMNS.index("Result")
        for r, row in enumerate(rows):
            for c, (text, tip) in enumerate(zip(row.cells(), row.tooltips(), strict=True)):
                item = QTableWidgetItem(text)
                item.setToolTip(tip)
                if c == NUMBER_COLUMNS.index("Dose (Gy)"):
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                if c == flag_col and row.flagged:
                    item.setBackground(AMBER)
                    item.setForeground(QColor("black"))
                if c == result_col and text:
                    item.setBackground(PASS_GREEN if text == "PASS" else FAIL_RED)
                    item.setForeground(QColor("black"))
                if row.level == "organ":
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                t.setItem(r, c, item)

    @staticmethod
    def _fill(table: Any, rows: list[list[str]]) -> None:
        table.setRowCount(len(rows))
        for r, cells in enumerate(rows):
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                table.setItem(r, c, item)
        table.resizeRowsToContents()

    def _fill_versions(self) -> None:
        t = self.version_table
        t.blockSignals(True)
        try:
            self._fill(t, self.model.versions())
            ids = self.model.version_ids()
            for r, rid in enumerate(ids):
                for c in range(t.columnCount()):
                    item = t.item(r, c)
                    if item is not None:
                        item.setData(Qt.ItemDataRole.UserRole, rid)
                        if self.state.reports[r].status == "superseded":
                            item.setForeground(QColor("#9e9e9e"))
            if self.state.shown_id in ids:
                t.selectRow(ids.index(self.state.shown_id))
        finally:
            t.blockSignals(False)

    def _on_version_selected(self) -> None:
        rows = self.version_table.selectionModel().selectedRows()
        if not rows:
            return
        ids = self.model.version_ids()
        rid = ids[rows[0].row()]
        if rid != self.state.shown_id:
            self.refresh(rid)

    def _update_enabled(self) -> None:
        m = self.model
        busy = self._job is not None
        self.make_button.setEnabled(m.can_make() and not busy)
        self.make_button.setToolTip(m.make_hint())
        roles = m.sign_roles()
        self.sign_button.setEnabled(bool(roles) and not busy)
        self.sign_button.setToolTip(m.sign_hint())
        self.amend_button.setEnabled(m.can_amend(self.reason_edit.text()) and not busy)
        self.reason_edit.setEnabled(m.amend_allowed())
        self.amend_button.setToolTip(
            ""
            if m.amend_allowed()
            else "Amend a signed newest version (physicist or physician), with a reason"
        )
        self.save_button.setEnabled(m.can_save_pdf())
        self.ca_button.setEnabled(self.state.has_ca)
        may_verify = self.session.may("verify")
        for w in (self.drop_zone, self.choose_button, self.choose_ca_button):
            w.setEnabled(may_verify)
        self.hint_label.setText(" ".join(m.hints()))

    # ------------------------------------------------------------ actor
    def _actor(self, role: str) -> Actor:
        """The logged-in user; in a single-user store the OS user in the role the action needs."""
        actor = self.session.actor
        if actor is not None:
            return actor
        try:
            name = re.sub(r"[^A-Za-z0-9._@-]", "", getpass.getuser()) or "workstation"
        except (OSError, KeyError):
            name = "workstation"
        return Actor(name, role)

    # ------------------------------------------------------------ jobs
    def _start(
        self,
        what: str,
        fn: Callable[..., Any],
        *args: Any,
        on_success: Callable[[Any], None],
        on_failure: Callable[[str, str], None] | None = None,
    ) -> None:
        self.progress.setFormat(what)
        self.progress.show()
        self.message_label.setText(what)
        self.message_label.setStyleSheet("")

        def finish() -> None:
            self._job = None
            self.progress.hide()
            self._update_enabled()

        def ok(result: Any) -> None:
            finish()
            on_success(result)

        def bad(message: str, details: str) -> None:
            finish()
            self.message_label.setText(f"{what.rstrip('…')} failed: {message}")
            self.message_label.setStyleSheet(BAD_STYLE)
            if on_failure is not None:
                on_failure(message, details)
            else:
                error_display.show_error(self, what.rstrip("…"), message, details)

        self._job = self.session.run(
            fn,
            *args,
            description=what,
            on_success=ok,
            on_failure=bad,
            reload_case=False,
            with_progress=False,
        )
        self._update_enabled()

    def _done(self, text: str, shown_id: str | None) -> None:
        self.message_label.setText(text)
        self.message_label.setStyleSheet(OK_STYLE)
        self.refresh(shown_id)

    # ------------------------------------------------------------ actions
    def make_report(self) -> None:
        """Make (or regenerate the unsigned draft of) the case's report, in a worker."""
        from dosimetry_core.reporting.records import create_report

        store, case = self.session.store, self.session.case
        if store is None or case is None or not self.model.can_make() or self._job:
            return
        self._start(
            "Making the report…",
            create_report,
            store,
            self._actor("physicist"),
            case.case_id,
            on_success=lambda rec: self._done(
                f"Report {rec.report_id} version {rec.version} made ({rec.status})",
                rec.report_id,
            ),
        )

    def open_sign_dialog(self) -> None:
        """Ask the role and the password for a signature (module docstring)."""
        shown = self.state.shown
        roles = self.model.sign_roles()
        if shown is None or not roles or self._job:
            return
        actor = self._actor("physician" if roles == ["practitioner"] else "physicist")
        dialog = SignDialog(
            self,
            report_label=f"report {shown.report_id} version {shown.version}",
            signer=f"{actor.username} ({actor.role})",
            roles=roles,
            need_password=self.state.has_ca,
        )
        self.sign_dialog = dialog
        dialog.sign_button.clicked.connect(lambda: self._sign(dialog, shown.report_id))
        dialog.finished.connect(lambda _r: self._dialog_closed(dialog))
        dialog.open()
        dialog.password_edit.setFocus()

    def _dialog_closed(self, dialog: SignDialog) -> None:
        dialog.password_edit.clear()
        if self.sign_dialog is dialog:
            self.sign_dialog = None
        dialog.deleteLater()

    def _sign(self, dialog: SignDialog, report_id: str) -> None:
        store = self.session.store
        if store is None or self._job is not None:
            return
        as_ = dialog.role()
        actor = self._actor("physician" if as_ == "practitioner" else "physicist")
        secret = dialog.take_password()
        dialog.set_busy(True)

        def signed(rec: Any) -> None:
            dialog.set_busy(False)
            dialog.accept()
            self._done(
                f"Signed as {ROLE_LABELS.get(as_, as_)} by {actor.username}: report "
                f"{rec.report_id} is {rec.status}",
                rec.report_id,
            )

        def refused(message: str, _details: str) -> None:
            dialog.set_busy(False)
            dialog.show_refusal(f"Not signed: {message}")

        self._start(
            "Signing…",
            _sign_with_password,
            store,
            actor,
            report_id,
            as_,
            secret,
            self.state.has_ca,
            on_success=signed,
            on_failure=refused,
        )

    def amend_report(self) -> None:
        """New version of the signed newest report with the typed reason, in a worker."""
        from dosimetry_core.reporting.records import amend

        store, shown = self.session.store, self.state.shown
        reason = self.reason_edit.text().strip()
        if store is None or shown is None or not self.model.can_amend(reason) or self._job:
            return
        actor = self._actor("physicist")

        def amended(rec: Any) -> None:
            self.reason_edit.clear()
            self._done(
                f"Version {rec.version} ({rec.report_id}) made; version "
                f"{rec.version - 1} is superseded",
                rec.report_id,
            )

        self._start(
            "Amending the report…",
            amend,
            store,
            actor,
            shown.report_id,
            reason,
            on_success=amended,
        )

    # ------------------------------------------------------------ files
    def ask_path(self, purpose: str) -> QFileDialog:
        """Open Qt's file dialog (not blocking) for ``pdf`` (save), ``ca`` (save),
        ``verify`` (open a report) or ``trust`` (open a CA certificate)."""
        shown = self.state.shown
        titles = {
            "pdf": (
                "Save signed PDF",
                f"{shown.report_id if shown else 'report'}.pdf",
                "PDF (*.pdf)",
            ),
            "ca": ("Export CA certificate", "department-ca.pem", "PEM certificate (*.pem *.crt)"),
            "verify": ("Verify a report file", "", "Report (*.pdf *.json)"),
            "trust": ("CA certificate to trust", "", "PEM certificate (*.pem *.crt *.cer)"),
        }
        title, name, filt = titles[purpose]
        dialog = QFileDialog(self, title, "", filt)
        dialog.setObjectName(f"reportFileDialog-{purpose}")
        dialog.setOption(QFileDialog.Option.DontUseNativeDialog, True)
        saving = purpose in ("pdf", "ca")
        dialog.setAcceptMode(
            QFileDialog.AcceptMode.AcceptSave if saving else QFileDialog.AcceptMode.AcceptOpen
        )
        dialog.setFileMode(
            QFileDialog.FileMode.AnyFile if saving else QFileDialog.FileMode.ExistingFile
        )
        if name:
            dialog.selectFile(name)
        handler = {
            "pdf": self.save_pdf,
            "ca": self.export_ca,
            "verify": self.verify_file,
            "trust": self.set_ca_file,
        }[purpose]
        dialog.fileSelected.connect(handler)
        dialog.finished.connect(lambda _r: self._file_dialog_closed(dialog))
        self.file_dialog = dialog
        dialog.open()
        return dialog

    def _file_dialog_closed(self, dialog: QFileDialog) -> None:
        if self.file_dialog is dialog:
            self.file_dialog = None
        dialog.deleteLater()

    def _write(self, what: str, path: str, data: bytes) -> bool:
        target = Path(path)
        if not target.parent.is_dir():
            error_display.show_error(self, what, f"the folder of {target} does not exist")
            return False
        try:
            target.write_bytes(data)
        except OSError as exc:
            error_display.show_error(self, what, f"cannot write {target}: {exc.strerror or exc}")
            return False
        return True

    def save_pdf(self, path: str) -> None:
        """Write the shown version's stored PDF (as signed so far) to ``path``."""
        pdf = self.state.pdf
        shown = self.state.shown
        if pdf is None or shown is None:
            return
        if self._write("Save signed PDF", path, pdf):
            self.message_label.setText(
                f"Saved report {shown.report_id} version {shown.version} ({shown.status}, "
                f"{len(shown.signatures)} signature(s)) to {path}"
            )
            self.message_label.setStyleSheet(OK_STYLE)

    def export_ca(self, path: str) -> None:
        """Write the department CA certificate (PEM), as ``mrtdose user ca-cert --out``."""
        from dosimetry_core.store.keys import fingerprint, load_cert
        from dosimetry_core.store.users import ca_certificate_pem

        store = self.session.store
        if store is None:
            return
        try:
            pem = ca_certificate_pem(store)
            digest = fingerprint(load_cert(pem))
        except DosimetryError as exc:
            error_display.show_error(self, "Export CA certificate", str(exc))
            return
        if self._write("Export CA certificate", path, pem.encode("ascii")):
            self.message_label.setText(
                f"Wrote the department CA certificate to {path} (SHA-256 {digest})"
            )
            self.message_label.setStyleSheet(OK_STYLE)

    def set_ca_file(self, path: str | None) -> None:
        """Trust this CA certificate file when verifying (None: the store's CA)."""
        self.ca_file = path or None
        self.ca_label.setText(
            f"Trusted CA: {self.ca_file}"
            if self.ca_file
            else "Trusted CA: the department CA of this store (and the file must be its record)"
        )

    def verify_file(self, path: str) -> None:
        """Check a report file from disk (in a worker) and explain the result."""
        from dosimetry_core.reporting.file_check import verify_report_path

        if not self.session.may("verify"):
            return
        store = self.session.store if self.ca_file is None else None
        if self.ca_file is None and store is None:
            self._verdict_text(False, "No store open: choose a CA certificate to trust.")
            return
        trust_label = f"the CA in {Path(self.ca_file).name}" if self.ca_file else "the store's CA"
        self.drop_zone.label.setText(f"Checking {Path(path).name}…")
        self.verify_result.setText("")

        def checked(result: dict[str, Any]) -> None:
            self.drop_zone.label.setText(
                f"{Path(path).name} — drop another report PDF here to verify it"
            )
            verdict = explain_file_check(result, trust_label=trust_label)
            self.last_verdict = verdict
            self._verdict_text(verdict.intact, f"{Path(path).name}: {verdict.text()}")

        def refused(message: str, _details: str) -> None:
            self.drop_zone.label.setText("Drop a report PDF here to verify it")
            self.last_verdict = None
            self._verdict_text(False, f"{Path(path).name}: NOT CHECKED: {message}")

        self.session.run(
            verify_report_path,
            path,
            trust=self.ca_file,
            store=store,
            description="verify a report file",
            on_success=checked,
            on_failure=refused,
            reload_case=False,
            with_progress=False,
        )

    def _verdict_text(self, ok: bool, text: str) -> None:
        self.verify_result.setText(text)
        self.verify_result.setStyleSheet(OK_STYLE if ok else BAD_STYLE)

    # ------------------------------------------------------------ read back
    def numbers_as_shown(self) -> list[dict[str, str]]:
        """The number table as the user sees it (header -> cell text)."""
        return self._rows(self.numbers_table, NUMBER_COLUMNS)

    def signatures_as_shown(self) -> list[dict[str, str]]:
        return self._rows(self.signature_table, SIGNATURE_COLUMNS)

    def versions_as_shown(self) -> list[dict[str, str]]:
        return self._rows(self.version_table, VERSION_COLUMNS)

    @staticmethod
    def _rows(table: Any, columns: tuple[str, ...]) -> list[dict[str, str]]:
        out = []
        for r in range(table.rowCount()):
            row = {}
            for c, name in enumerate(columns):
                item = table.item(r, c)
                row[name] = "" if item is None else item.text()
            out.append(row)
        return out
