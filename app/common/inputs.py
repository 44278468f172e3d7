"""Unit-aware inputs with a message line: what every data-entry form is built from.

:class:`QuantityInput` is a number box with its unit beside it (a unit menu when
the quantity has several, e.g. MBq / GBq / mCi for activity; the conversion to
the stored unit is the core's, :mod:`dosimetry_core.model.quantities`, done by
the view-model).  :class:`TimeInput` takes a local date and time as
``YYYY-MM-DD HH:MM``.  :class:`TextInput` is a plain line.  :class:`FieldRow`
puts a label, one of these and a message line under it: a refusal shows in red
(red border on the box) and a warning in amber, with the core's wording.

The boxes hold what the user typed (text); they do not judge it.  The view-model
turns the text into values and asks the core, so the GUI refuses exactly what
the core refuses.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QLineEdit, QVBoxLayout, QWidget

__all__ = [
    "ERROR_COLOUR",
    "WARNING_COLOUR",
    "FieldRow",
    "QuantityInput",
    "TextInput",
    "TimeInput",
]

ERROR_COLOUR = "#c62828"
WARNING_COLOUR = "#b26a00"
TIME_FORMAT = "%Y-%m-%d %H:%M"


class _LineInput(QWidget):
    """A line edit (objectName ``<name>Edit``) whose text changes are announced by ``edited``."""

    edited = Signal()

    def __init__(self, name: str, placeholder: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.edit = QLineEdit(self)
        self.edit.setObjectName(f"{name}Edit")
        self.edit.setPlaceholderText(placeholder)
        self.edit.textEdited.connect(lambda _t: self.edited.emit())
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.addWidget(self.edit, 1)

    def text(self) -> str:
        return self.edit.text()

    def set_text(self, text: str) -> None:
        """Show ``text`` (from the model) without announcing an edit."""
        if self.edit.text() != text:
            self.edit.blockSignals(True)
            self.edit.setText(text)
            self.edit.blockSignals(False)

    def set_state(self, state: str) -> None:
        """``"error"`` (red border), ``"warning"`` (amber border) or ``""``."""
        colour = {"error": ERROR_COLOUR, "warning": WARNING_COLOUR}.get(state)
        self.edit.setProperty("state", state)
        self.edit.setStyleSheet(f"border: 2px solid {colour};" if colour else "")


class TextInput(_LineInput):
    """A line of text (a name, an id, a reason)."""


class TimeInput(_LineInput):
    """A local date and time typed as ``YYYY-MM-DD HH:MM`` (empty: not given)."""

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(name, "YYYY-MM-DD HH:MM", parent)


class QuantityInput(_LineInput):
    """A number with its unit: a unit menu (objectName ``<name>Unit``) or a fixed unit label.

    ``unitChanged`` is announced as an edit too: the same digits in another unit
    are another value.
    """

    def __init__(self, name: str, units: tuple[str, ...], parent: QWidget | None = None) -> None:
        super().__init__(name, "", parent)
        self.units = units
        self.unit_box: QComboBox | None = None
        if len(units) > 1:
            self.unit_box = QComboBox(self)
            self.unit_box.setObjectName(f"{name}Unit")
            self.unit_box.addItems(list(units))
            self.unit_box.currentTextChanged.connect(lambda _u: self.edited.emit())
            self._layout.addWidget(self.unit_box)
        else:
            label = QLabel(units[0] if units else "", self)
            label.setObjectName(f"{name}UnitLabel")
            self._layout.addWidget(label)

    def unit(self) -> str:
        if self.unit_box is not None:
            return self.unit_box.currentText()
        return self.units[0] if self.units else ""

    def set_unit(self, unit: str) -> None:
        if self.unit_box is not None and self.unit_box.currentText() != unit:
            self.unit_box.blockSignals(True)
            self.unit_box.setCurrentText(unit)
            self.unit_box.blockSignals(False)


class FieldRow(QWidget):
    """A label, an input and a message line (objectName ``<name>Message``) under it."""

    def __init__(self, label: str, editor: _LineInput, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.editor = editor
        self.name = editor.name
        self.label = QLabel(label, self)
        self.message = QLabel("", self)
        self.message.setObjectName(f"{editor.name}Message")
        self.message.setWordWrap(True)
        self.message.hide()
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        self.label.setMinimumWidth(170)
        top.addWidget(self.label)
        top.addWidget(editor, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 2)
        layout.setSpacing(1)
        layout.addLayout(top)
        layout.addWidget(self.message)
        editor.setParent(self)
        self.state = ""

    def show_problem(self, error: str | None, warning: str | None) -> None:
        """Red border and the refusal, or amber border and the warning, or neither."""
        if error:
            self.state, text, colour = "error", error, ERROR_COLOUR
        elif warning:
            self.state, text, colour = "warning", warning, WARNING_COLOUR
        else:
            self.state, text, colour = "", "", ""
        self.editor.set_state(self.state)
        self.message.setText(text)
        self.message.setStyleSheet(f"color: {colour};" if colour else "")
        self.message.setVisible(bool(text))
