"""The single path through which the application shows errors to the user.

Every view and worker outcome that reaches the user goes through
:func:`show_error` (STYLE 3: "shows the result or the error through one
error-display path").  Messages of :class:`~dosimetry_core.errors.DosimetryError`
are written for a physicist and are shown as they are; tracebacks of
unexpected errors go into the expandable details, never into the main text.
"""

from __future__ import annotations

import logging

from PySide6.QtWidgets import QLabel, QMessageBox, QWidget

log = logging.getLogger(__name__)

__all__ = ["inline_error_label", "show_error", "show_info"]


def show_error(parent: QWidget | None, title: str, message: str, details: str = "") -> None:
    """Show ``message`` in a modal warning box; ``details`` go behind "Show Details..."."""
    log.warning("%s: %s", title, message)
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle(title)
    box.setText(message)
    if details:
        box.setDetailedText(details)
    box.setStandardButtons(QMessageBox.StandardButton.Ok)
    box.exec()


def show_info(parent: QWidget | None, title: str, message: str) -> None:
    """Show a modal information box (used for About and similar)."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Information)
    box.setWindowTitle(title)
    box.setText(message)
    box.setStandardButtons(QMessageBox.StandardButton.Ok)
    box.exec()


def inline_error_label(parent: QWidget, name: str) -> QLabel:
    """A hidden, word-wrapped red label for a dialog's refusal text (shown beside the form)."""
    label = QLabel("", parent)
    label.setObjectName(name)
    label.setWordWrap(True)
    label.setStyleSheet("color: #ff8a80;")
    label.hide()
    return label
