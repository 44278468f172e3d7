"""Log-in and change-password dialogs.

Both only gather what the user types and hand it to the session, which asks
the core (:func:`dosimetry_core.store.users.authenticate`,
:func:`~dosimetry_core.store.users.set_password`).  The core's messages (wrong
user name or password, account locked until …, password policy) are shown in
the dialog itself, under the fields, so the user can try again without losing
what they typed; the password box is cleared after a refusal.
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.common.error_display import inline_error_label
from app.session import CaseSession
from dosimetry_core.errors import DosimetryError

__all__ = ["ChangePasswordDialog", "LoginDialog"]


class LoginDialog(QDialog):
    """User name and password; accepted once the core has authenticated the user.

    Parameters
    ----------
    session
        The workstation session; :meth:`CaseSession.login` is called with what was typed.
    username
        Pre-filled user name (the password box then has the focus).
    """

    def __init__(
        self, session: CaseSession, parent: QWidget | None = None, username: str = ""
    ) -> None:
        super().__init__(parent)
        self.session = session
        self.setWindowTitle("Log in")
        self.setObjectName("loginDialog")
        store = session.store_path or "this store"
        intro = QLabel(f"The case store {store} has user accounts: log in to work on it.", self)
        intro.setWordWrap(True)
        self.user_edit = QLineEdit(username, self)
        self.user_edit.setObjectName("loginUser")
        self.user_edit.setMaxLength(64)
        self.password_edit = QLineEdit(self)
        self.password_edit.setObjectName("loginPassword")
        self.password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.error_label = inline_error_label(self, "loginError")
        self.login_button = QPushButton("Log in", self)
        self.login_button.setObjectName("loginButton")
        self.login_button.setDefault(True)
        self.login_button.clicked.connect(self.try_login)
        buttons = QDialogButtonBox(self)
        buttons.addButton(self.login_button, QDialogButtonBox.ButtonRole.AcceptRole)
        cancel = buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        cancel.clicked.connect(self.reject)
        form = QFormLayout()
        form.addRow("User name", self.user_edit)
        form.addRow("Password", self.password_edit)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.error_label)
        layout.addWidget(buttons)
        (self.password_edit if username else self.user_edit).setFocus()

    def error_text(self) -> str:
        """The refusal shown in the dialog ('' when none)."""
        return self.error_label.text() if not self.error_label.isHidden() else ""

    def try_login(self) -> bool:
        """Ask the core; accept on success, show its message on a refusal."""
        username = self.user_edit.text().strip()
        if not username:
            self._refuse("Type your user name.", self.user_edit)
            return False
        try:
            self.session.login(username, self.password_edit.text())
        except DosimetryError as exc:
            self.password_edit.clear()
            self._refuse(str(exc), self.password_edit)
            return False
        self.error_label.hide()
        self.accept()
        return True

    def _refuse(self, message: str, field: QLineEdit) -> None:
        self.error_label.setText(message)
        self.error_label.show()
        field.setFocus()


class ChangePasswordDialog(QDialog):
    """Old password, new password twice; the core's password policy decides."""

    def __init__(self, session: CaseSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.setWindowTitle("Change password")
        actor = session.actor
        who = QLabel(f"Password of {actor.username if actor else '(nobody logged in)'}", self)
        self.old_edit = QLineEdit(self)
        self.old_edit.setObjectName("oldPassword")
        self.new_edit = QLineEdit(self)
        self.new_edit.setObjectName("newPassword")
        self.repeat_edit = QLineEdit(self)
        self.repeat_edit.setObjectName("repeatPassword")
        for edit in (self.old_edit, self.new_edit, self.repeat_edit):
            edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.error_label = inline_error_label(self, "passwordError")
        self.change_button = QPushButton("Change password", self)
        self.change_button.setObjectName("changePasswordButton")
        self.change_button.setDefault(True)
        self.change_button.clicked.connect(self.try_change)
        buttons = QDialogButtonBox(self)
        buttons.addButton(self.change_button, QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton(QDialogButtonBox.StandardButton.Cancel).clicked.connect(self.reject)
        form = QFormLayout()
        form.addRow("Current password", self.old_edit)
        form.addRow("New password", self.new_edit)
        form.addRow("Repeat new password", self.repeat_edit)
        layout = QVBoxLayout(self)
        layout.addWidget(who)
        layout.addLayout(form)
        layout.addWidget(self.error_label)
        layout.addWidget(buttons)

    def error_text(self) -> str:
        return self.error_label.text() if not self.error_label.isHidden() else ""

    def try_change(self) -> bool:
        if self.new_edit.text() != self.repeat_edit.text():
            self._refuse("The two new passwords differ.", self.repeat_edit)
            return False
        try:
            self.session.change_password(self.old_edit.text(), self.new_edit.text())
        except DosimetryError as exc:
            self._refuse(str(exc), self.new_edit)
            return False
        self.accept()
        return True

    def _refuse(self, message: str, field: QLineEdit) -> None:
        self.error_label.setText(message)
        self.error_label.show()
        field.selectAll()
        field.setFocus()
