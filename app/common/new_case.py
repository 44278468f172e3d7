"""The "New case from protocol…" dialog: patient, protocol, and what the protocol will need.

The dialog gathers the values and calls :meth:`app.session.CaseSession.create_case`
(the core's :func:`dosimetry_core.pipeline.cases.create_case` checks the role,
validates and audits).  A refused value is shown under the fields with the
core's message, and the box it names is highlighted; nothing is saved then.
"""

from __future__ import annotations

from datetime import date

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.common.error_display import inline_error_label
from app.session import CaseSession
from dosimetry_core.errors import DosimetryError, InvalidInputError

__all__ = ["NewCaseDialog"]

INVALID_STYLE = "border: 2px solid #ff6b6b;"


class NewCaseDialog(QDialog):
    """Patient ID (required), name, birth date, sex and protocol of a new case."""

    def __init__(self, session: CaseSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from dosimetry_core.protocols.registry import list_protocols

        self.session = session
        self.created_case_id: str | None = None
        self.setWindowTitle("New case from protocol")
        self.patient_id_edit = QLineEdit(self)
        self.patient_id_edit.setObjectName("newCasePatientId")
        self.patient_id_edit.setMaxLength(64)
        self.name_edit = QLineEdit(self)
        self.name_edit.setObjectName("newCaseName")
        self.name_edit.setPlaceholderText("Family^Given")
        self.birth_edit = QLineEdit(self)
        self.birth_edit.setObjectName("newCaseBirthDate")
        self.birth_edit.setPlaceholderText("YYYY-MM-DD (optional)")
        self.sex_combo = QComboBox(self)
        self.sex_combo.setObjectName("newCaseSex")
        for label, code in (("unknown", ""), ("F", "F"), ("M", "M"), ("O", "O")):
            self.sex_combo.addItem(label, code)
        self.protocol_combo = QComboBox(self)
        self.protocol_combo.setObjectName("newCaseProtocol")
        self.protocol_combo.addItem("(none yet)", "")
        for p in list_protocols():
            self.protocol_combo.addItem(f"{p.id} — {p.name}", p.id)
        self.fields: dict[str, QWidget] = {
            "patient_id": self.patient_id_edit,
            "name": self.name_edit,
            "birth_date": self.birth_edit,
            "sex": self.sex_combo,
            "protocol": self.protocol_combo,
        }
        self.error_label = inline_error_label(self, "newCaseError")
        self.create_button = QPushButton("Create case", self)
        self.create_button.setObjectName("newCaseCreate")
        self.create_button.setDefault(True)
        self.create_button.clicked.connect(self.try_create)
        buttons = QDialogButtonBox(self)
        buttons.addButton(self.create_button, QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton(QDialogButtonBox.StandardButton.Cancel).clicked.connect(self.reject)
        form = QFormLayout()
        form.addRow("Patient ID *", self.patient_id_edit)
        form.addRow("Name", self.name_edit)
        form.addRow("Birth date", self.birth_edit)
        form.addRow("Sex", self.sex_combo)
        form.addRow("Protocol", self.protocol_combo)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error_label)
        layout.addWidget(buttons)

    def invalid_field(self) -> str | None:
        """The field highlighted as refused, or None."""
        for key, widget in self.fields.items():
            if widget.property("invalid"):
                return key
        return None

    def try_create(self) -> bool:
        """Create the case through the session; on a refusal show why and highlight the field."""
        for widget in self.fields.values():
            widget.setProperty("invalid", False)
            widget.setStyleSheet("")
        try:
            text = self.birth_edit.text().strip()
            try:
                birth = date.fromisoformat(text) if text else None
            except ValueError:
                raise InvalidInputError(
                    f"birth date {text!r} is not a date YYYY-MM-DD", field="birth_date"
                ) from None
            case = self.session.create_case(
                self.patient_id_edit.text(),
                self.name_edit.text(),
                birth,
                str(self.sex_combo.currentData() or ""),
                str(self.protocol_combo.currentData() or ""),
            )
        except DosimetryError as exc:
            self.error_label.setText(str(exc))
            self.error_label.show()
            widget = self.fields.get(getattr(exc, "field", None) or "")
            if widget is not None:
                widget.setProperty("invalid", True)
                widget.setStyleSheet(INVALID_STYLE)
                widget.setFocus()
            return False
        self.created_case_id = case.case_id
        self.accept()
        return True
