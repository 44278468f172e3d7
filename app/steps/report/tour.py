"""Tour drivers of the report and sign-off step (protocol: :class:`app.steps.base.TourContext`).

Three tour steps work this view through its widgets, as a user would:

* :func:`drive` (tour step ``report``, the physicist): clicks "Make report",
  waits for the preview, returns the page count and the kidney dose read from the
  number table beside it;
* :func:`drive_sign` (tour step ``sign``, once per signer): clicks "Sign…", types
  the logged-in user's password into the dialog (``ctx.password``), clicks "Sign",
  returns the signature table (signer, role, valid, chain);
* :func:`drive_verify` (tour step ``verify``): "Save signed PDF…" and "Export CA
  certificate…" into ``out_dir`` (typed into Qt's file dialog), chooses that CA
  certificate for verification and drops the saved PDF on the drop zone; returns
  the result shown.

:func:`answer_file_dialog` and :func:`drop_file` are the user's gestures (a path
in the file dialog's name field and its Save/Open button clicked; a file's URL
dropped on a widget); the tests use them too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QDialogButtonBox, QFileDialog, QLineEdit, QWidget

from app.steps.base import TourContext, TourError
from app.steps.report.model import NUMBER_COLUMNS
from app.steps.report.view import ReportStepView

__all__ = ["answer_file_dialog", "drive", "drive_sign", "drive_verify", "drop_file"]

TIMEOUT_S = 300.0
KIDNEY_ROW = "Kidneys"


def drop_file(widget: QWidget, path: str | Path) -> None:
    """Drag ``path`` over ``widget`` and drop it (the events a file manager's drag sends)."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    centre = widget.rect().center()
    enter = QDragEnterEvent(
        centre,
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(widget, enter)
    if not enter.isAccepted():
        raise TourError(f"the drop zone refused {Path(path).name}")
    drop = QDropEvent(
        QPointF(centre),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(widget, drop)


def answer_file_dialog(view: ReportStepView, path: str | Path) -> None:
    """Put ``path`` in the open file dialog's name field and click its Save/Open button.

    (Typed key by key, the dialog's completer pops up over the field and takes the
    Enter key; the user clicks the button in that case too.)
    """
    dialog = view.file_dialog
    if dialog is None or not dialog.isVisible():
        raise TourError("report: no file dialog is open")
    edit = dialog.findChild(QLineEdit, "fileNameEdit")
    box = dialog.findChild(QDialogButtonBox, "buttonBox")
    if edit is None or box is None:
        raise TourError("report: the file dialog has no file name field or buttons")
    edit.setFocus()
    edit.setText(str(path))
    which = (
        QDialogButtonBox.StandardButton.Save
        if dialog.acceptMode() == QFileDialog.AcceptMode.AcceptSave
        else QDialogButtonBox.StandardButton.Open
    )
    button = box.button(which)
    if button is None or not button.isEnabled():
        raise TourError(f"report: the file dialog's {which.name} button is not available")
    QTest.mouseClick(button, Qt.MouseButton.LeftButton)


def _click(button: QWidget) -> None:
    if not button.isEnabled():
        raise TourError(f"report: {button.objectName()} is disabled ({button.toolTip()})")
    QTest.mouseClick(button, Qt.MouseButton.LeftButton, pos=QPoint(8, button.height() // 2))


def _cell(view: ReportStepView, row_name: str, column: str) -> str:
    for row in view.numbers_as_shown():
        if row[NUMBER_COLUMNS[0]].strip() == row_name:
            return row[column]
    raise TourError(f"report: no row {row_name!r} in the number table")


def _idle(view: ReportStepView, ctx: TourContext, what: str) -> None:
    ctx.wait_until(lambda: not view.is_loading(), TIMEOUT_S, what)


def drive(view: ReportStepView, ctx: TourContext) -> dict[str, Any]:
    """Make the report as the physicist (module docstring)."""
    if view.session.case is None:
        raise TourError("report: no case is open")
    view.activated()
    _idle(view, ctx, "the reports read")
    _click(view.make_button)
    ctx.wait_until(lambda: view.is_loading(), 10, "the report started")
    _idle(view, ctx, "the report made")
    shown = view.state.shown
    if shown is None or view.page_count() == 0:
        raise TourError(f"report: no report in the preview ({view.message_label.text()})")
    ctx.settle(1.0)  # the preview draws its pages
    flagged = [
        r[NUMBER_COLUMNS[0]].strip()
        for r in view.numbers_as_shown()
        if r["Review flag"] != "approved"
    ]
    return {
        "report_id": shown.report_id,
        "version": shown.version,
        "status": shown.status,
        "pages": view.page_count(),
        "pages_label": view.pages_label.text(),
        "kidney_gy": float(_cell(view, KIDNEY_ROW, "Dose (Gy)")),
        "kidney_result": _cell(view, KIDNEY_ROW, "Result"),
        "flagged": flagged,
    }


def drive_sign(view: ReportStepView, ctx: TourContext) -> dict[str, Any]:
    """Sign the shown report as the logged-in user, password typed into the dialog."""
    actor = view.session.actor
    if actor is None:
        raise TourError("sign: nobody is logged in")
    view.activated()
    _idle(view, ctx, "the reports read")
    n_before = len(view.state.shown.signatures) if view.state.shown else 0
    _click(view.sign_button)
    ctx.wait_until(lambda: view.sign_dialog is not None, 10, "the sign dialog")
    dialog = view.sign_dialog
    assert dialog is not None
    role = dialog.role()
    dialog.password_edit.setFocus()
    QTest.keyClicks(dialog.password_edit, ctx.password(actor.username))
    ctx.settle(0.5)  # the dialog on screen with its (hidden) password
    QTest.mouseClick(dialog.sign_button, Qt.MouseButton.LeftButton)
    ctx.wait_until(
        lambda: view.sign_dialog is None or dialog.error_label.isVisible(),
        TIMEOUT_S,
        f"the signature of {actor.username}",
    )
    if view.sign_dialog is not None:
        raise TourError(f"sign: {dialog.error_label.text()}")
    ctx.wait_until(
        lambda: view.state.shown is not None and len(view.state.shown.signatures) > n_before,
        TIMEOUT_S,
        "the signature listed",
    )
    _idle(view, ctx, "the reports read again")
    view.tabs.setCurrentIndex(0)  # Signatures
    shown = view.state.shown
    assert shown is not None
    return {
        "signed_as": role,
        "status": shown.status,
        "signatures": [
            {
                "signer": r["Signer"],
                "role": r["Role"],
                "signed_as": r["Signed as"],
                "valid": r["Valid"],
                "chain": r["Chain to department CA"],
            }
            for r in view.signatures_as_shown()
        ],
    }


def drive_verify(view: ReportStepView, ctx: TourContext, out_dir: Path) -> dict[str, Any]:
    """Save the signed PDF and the CA certificate, then verify the PDF against that CA."""
    view.activated()
    _idle(view, ctx, "the reports read")
    shown = view.state.shown
    if shown is None:
        raise TourError("verify: no report")
    folder = out_dir / "report"
    folder.mkdir(parents=True, exist_ok=True)
    pdf_path = folder / f"{shown.report_id}.pdf"
    ca_path = out_dir / "department-ca.pem"
    for p in (pdf_path, ca_path):
        p.unlink(missing_ok=True)  # no overwrite question
    for button, path in ((view.save_button, pdf_path), (view.ca_button, ca_path)):
        _click(button)
        ctx.wait_until(lambda: view.file_dialog is not None, 10, "the file dialog")
        ctx.settle(0.3)
        answer_file_dialog(view, path)
        ctx.wait_until(path.is_file, 30, f"{path.name} written")
    view.tabs.setCurrentIndex(2)  # Verify a file
    _click(view.choose_ca_button)
    ctx.wait_until(lambda: view.file_dialog is not None, 10, "the CA file dialog")
    ctx.settle(0.3)
    answer_file_dialog(view, ca_path)
    ctx.wait_until(lambda: view.ca_file == str(ca_path), 10, "the CA certificate chosen")
    view.verify_result.clear()
    drop_file(view.drop_zone, pdf_path)
    ctx.wait_until(lambda: bool(view.verify_result.text()), TIMEOUT_S, "the verification")
    verdict = view.last_verdict
    return {
        "pdf": str(pdf_path),
        "ca_certificate": str(ca_path),
        "intact": bool(verdict is not None and verdict.intact),
        "result": view.verify_result.text().splitlines()[0],
        "signatures": len(verdict.lines) if verdict is not None else 0,
    }
