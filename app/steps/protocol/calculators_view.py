"""The calculators forms: one tab per calculator, inputs with units, results with their source.

:class:`CalculatorsPanel` is embedded by the protocol step as its
"Calculators" tab.  Each tab (:class:`CalculatorPage`) is built from a
:class:`~app.steps.protocol.calculators_model.CalculatorForm`: a box per input
with its unit, the method choices that show the inputs they need, a Compute
button, and the results (each with its unit), the formula's source and the
core's warnings.  Compute runs the form's core call through
``session.run`` (a worker thread: the window stays live, Cancel stops
waiting); a refusal of the core is shown under the box it names and above the
results, and nothing typed is lost.  Computing needs ``session.may("compute")``.

The open case fills in what it knows (patient weight, height and sex, the
nuclide and net administered activity) when a case is opened; a reload of the
same case keeps what the user typed.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.common import error_display
from app.common.inputs import WARNING_COLOUR, FieldRow, QuantityInput, TextInput
from app.session import CaseSession
from app.steps.protocol.calculators_model import (
    FORMS,
    CalcOutcome,
    CalculatorForm,
    choices_of,
    prefill,
    unit_key,
)
from app.workers import Task
from dosimetry_core.model.case import Case

__all__ = ["CalculatorPage", "CalculatorsPanel"]

ACTION = "compute"
"""Permission needed to compute (store.permissions.ACTIONS)."""
LABEL_WIDTH = 235
UNIT_WIDTH = 72
"""Pixel widths of the input labels and unit labels (the boxes line up)."""


class _ChoiceRow(QWidget):
    """A label and a menu of (value, label) choices (objectName ``<form>_<name>Box``)."""

    def __init__(self, label: str, box: QComboBox, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.box = box
        self.label = QLabel(label, self)
        self.label.setFixedWidth(LABEL_WIDTH)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 2)
        lay.addWidget(self.label)
        lay.addWidget(box, 1)
        lay.addSpacing(UNIT_WIDTH + lay.spacing())  # boxes end where the number boxes end
        box.setParent(self)


class CalculatorPage(QWidget):
    """One calculator form (module docstring)."""

    def __init__(
        self, session: CaseSession, form: CalculatorForm, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.session = session
        self.form = form
        self.setObjectName(f"calc-{form.form_id}")
        self.rows: dict[str, QWidget] = {}
        self.inputs: dict[str, QuantityInput | TextInput] = {}
        self.boxes: dict[str, QComboBox] = {}
        self.result_labels: dict[str, QLabel] = {}
        self.outcome: CalcOutcome | None = None
        self.results_placeholder: QLabel | None = None
        self._task: Task | None = None
        fid = form.form_id

        # ---- inputs
        inputs = QVBoxLayout()
        inputs.setSpacing(2)
        for f in form.fields:
            row: QWidget
            if f.kind == "choice":
                box = QComboBox()
                box.setObjectName(f"{fid}_{f.name}Box")
                for value, text in choices_of(form, f.name):
                    box.addItem(text, value)
                box.currentIndexChanged.connect(self._on_choice)
                row = _ChoiceRow(f.label, box, self)
                self.boxes[f.name] = box
            else:
                editor: QuantityInput | TextInput
                if f.kind == "text":
                    editor = TextInput(f"{fid}_{f.name}")
                else:
                    units = f.units or ((f.unit,) if f.unit else ())
                    editor = QuantityInput(f"{fid}_{f.name}", units)
                if f.tip:
                    editor.edit.setPlaceholderText(f.tip)
                    editor.edit.setToolTip(f.tip)
                editor.edited.connect(self._on_edited)
                row = FieldRow(f.label, editor, self)
                row.label.setFixedWidth(LABEL_WIDTH)
                unit = editor.findChild(QLabel, f"{fid}_{f.name}UnitLabel")
                if unit is not None:
                    unit.setFixedWidth(UNIT_WIDTH)
                if isinstance(editor, QuantityInput) and editor.unit_box is not None:
                    editor.unit_box.setFixedWidth(UNIT_WIDTH)
                self.inputs[f.name] = editor
            self.rows[f.name] = row
            inputs.addWidget(row)
        buttons = QHBoxLayout()
        self.compute_button = QPushButton("Compute", self)
        self.compute_button.setObjectName(f"{fid}Compute")
        self.compute_button.setDefault(True)
        self.compute_button.clicked.connect(self.compute)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setObjectName(f"{fid}Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.setVisible(False)
        self.reset_button = QPushButton("Reset to case values", self)
        self.reset_button.setObjectName(f"{fid}Reset")
        self.reset_button.clicked.connect(self.reset)
        buttons.addWidget(self.compute_button)
        buttons.addWidget(self.cancel_button)
        buttons.addStretch(1)
        buttons.addWidget(self.reset_button)
        inputs.addLayout(buttons)
        self.busy_bar = QProgressBar(self)
        self.busy_bar.setRange(0, 0)
        self.busy_bar.setMaximumHeight(8)
        self.busy_bar.setTextVisible(False)
        self.busy_bar.setVisible(False)
        inputs.addWidget(self.busy_bar)
        self.status_label = QLabel("", self)
        self.status_label.setObjectName(f"{fid}Status")
        self.status_label.setWordWrap(True)
        inputs.addWidget(self.status_label)
        inputs.addStretch(1)
        left = QWidget(self)
        left.setLayout(inputs)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setWidget(left)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(  # the inputs never need a sideways scroll
            left.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width()
        )

        # ---- results
        self.error_label = error_display.inline_error_label(self, f"{fid}Error")
        self.error_label.setStyleSheet("color: #c62828; font-weight: bold;")
        self.results_box = QGroupBox("Results", self)
        self.results_grid = QGridLayout(self.results_box)
        self.results_grid.setColumnStretch(1, 1)
        self.warnings_label = QLabel("", self)
        self.warnings_label.setObjectName(f"{fid}Warnings")
        self.warnings_label.setWordWrap(True)
        self.warnings_label.setStyleSheet(f"color: {WARNING_COLOUR};")
        self.warnings_label.hide()
        self.source_label = QLabel(f"Method and source: {form.source}", self)
        self.source_label.setObjectName(f"{fid}Source")
        self.source_label.setWordWrap(True)
        self.source_label.setStyleSheet("color: #616161;")
        right = QVBoxLayout()
        right.addWidget(self.error_label)
        right.addWidget(self.results_box)
        right.addWidget(self.warnings_label)
        right.addWidget(self.source_label)
        right.addStretch(1)

        lay = QHBoxLayout(self)
        lay.addWidget(scroll, 5)
        lay.addLayout(right, 4)

        self.reset()

    # ------------------------------------------------------------ values
    def texts(self) -> dict[str, str]:
        """What the user typed and chose, by field name (choice: its value)."""
        out = {name: ed.text() for name, ed in self.inputs.items()}
        for f in self.form.fields:
            editor = self.inputs.get(f.name)
            if f.units and isinstance(editor, QuantityInput):
                out[unit_key(f.name)] = editor.unit()
        for name, box in self.boxes.items():
            out[name] = str(box.currentData() or "")
        return out

    def set_texts(self, texts: dict[str, str]) -> None:
        """Show ``texts`` in the boxes without announcing edits (the view writes, not the user)."""
        for name, text in texts.items():
            field_name = name.removesuffix(unit_key(""))
            editor = self.inputs.get(field_name)
            if name != field_name and isinstance(editor, QuantityInput):
                editor.set_unit(text)
            elif name in self.inputs:
                self.inputs[name].set_text(text)
            elif name in self.boxes:
                box = self.boxes[name]
                i = box.findData(text)
                if i >= 0:
                    box.blockSignals(True)
                    box.setCurrentIndex(i)
                    box.blockSignals(False)
        self._update_visibility()

    def reset(self) -> None:
        """Defaults, then what the open case supplies."""
        self.set_texts({**self.form.defaults(), **prefill(self.session.case)[self.form.form_id]})
        self._clear_problems()
        self.outcome = None
        self._clear_results("Fill in the inputs and press Compute.")
        self.status_label.setText("")

    def _update_visibility(self) -> None:
        shown = set(self.form.visible_fields(self.texts()))
        for name, row in self.rows.items():
            row.setVisible(name in shown)

    def _on_choice(self, _i: int) -> None:
        self._update_visibility()
        self._on_edited()

    def _on_edited(self) -> None:
        if self.result_labels and self._task is None:
            self.status_label.setText("Inputs changed since the results: press Compute.")
            self.results_box.setTitle("Results of the inputs before your last change")

    def _clear_problems(self) -> None:
        for row in self.rows.values():
            if isinstance(row, FieldRow):
                row.show_problem(None, None)
        self.error_label.hide()

    # ------------------------------------------------------------ permission
    def update_permission(self) -> None:
        allowed = self.session.may(ACTION)
        self.compute_button.setEnabled(allowed and self._task is None)
        self.compute_button.setToolTip(
            "" if allowed else "Computing needs the permission to compute (a physicist's role)"
        )

    # ------------------------------------------------------------ compute
    def compute(self) -> None:
        """Run the form's core call in a worker with what is typed."""
        if self._task is not None or not self.session.may(ACTION):
            return
        self._clear_problems()
        self.status_label.setText("Computing…")
        self.busy_bar.setVisible(True)
        self.cancel_button.setVisible(True)
        self._task = self.session.run(
            self.form.compute,
            self.texts(),
            description=f"{self.form.title} calculator",
            on_success=self._show,
            on_failure=self._failed,
            on_cancelled=self._cancelled,
            reload_case=False,
            with_progress=False,
        )
        self._task.finished.connect(self._finished)
        self.update_permission()

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self.status_label.setText("Cancelling…")

    def is_running(self) -> bool:
        return self._task is not None

    def _finished(self) -> None:
        self._task = None
        self.busy_bar.setVisible(False)
        self.cancel_button.setVisible(False)
        self.update_permission()

    def _cancelled(self) -> None:
        self.status_label.setText("Cancelled: the results below are those of the last run.")

    def _failed(self, message: str, details: str) -> None:
        self.status_label.setText("The calculation failed; your inputs are kept.")
        error_display.show_error(self, self.form.title, message, details)

    def _clear_results(self, placeholder: str) -> None:
        """Remove the shown results (a refused or changed input must not leave old numbers)."""
        while self.results_grid.count():
            item = self.results_grid.takeAt(0)
            w = item.widget() if item is not None else None
            if w is not None:  # gone at once: findChild must not find an old result
                w.hide()
                w.setParent(None)
                w.deleteLater()
        self.result_labels.clear()
        self.results_box.setTitle("Results")
        self.warnings_label.hide()
        if placeholder:
            self.results_placeholder = QLabel(placeholder, self.results_box)
            self.results_placeholder.setObjectName(f"{self.form.form_id}NoResult")
            self.results_grid.addWidget(self.results_placeholder, 0, 0, 1, 2)
            self.results_placeholder.show()

    def _show(self, outcome: Any) -> None:
        assert isinstance(outcome, CalcOutcome)
        if not outcome.ok:
            self.status_label.setText("Refused: correct the value and press Compute again.")
            self.error_label.setText(outcome.error or "")
            self.error_label.show()
            row = self.rows.get(outcome.error_field or "")
            if isinstance(row, FieldRow):
                row.show_problem(outcome.error, None)
            self.outcome = None
            self._clear_results("No result: the core refused an input (message above).")
            return
        self.outcome = outcome
        self.status_label.setText("")
        self._clear_results("")
        for i, r in enumerate(outcome.rows):
            name = QLabel(r.label, self.results_box)
            value = QLabel(r.text(), self.results_box)
            value.setObjectName(f"{self.form.form_id}_{r.key}Result")
            value.setWordWrap(True)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            if i == 0:
                value.setStyleSheet("font-weight: bold;")
                name.setStyleSheet("font-weight: bold;")
            self.results_grid.addWidget(name, i, 0, Qt.AlignmentFlag.AlignTop)
            self.results_grid.addWidget(value, i, 1)
            name.show()
            value.show()
            self.result_labels[r.key] = value
        self.source_label.setText(f"Method and source: {outcome.source or self.form.source}")
        self.warnings_label.setText("\n".join(f"⚠ {w}" for w in outcome.warnings))
        self.warnings_label.setVisible(bool(outcome.warnings))


class CalculatorsPanel(QWidget):
    """The calculators, one tab each (module docstring); built as ``CalculatorsPanel(session)``."""

    def __init__(self, session: CaseSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.setObjectName("calculators")
        self.tabs = QTabWidget(self)
        self.tabs.setObjectName("calculatorTabs")
        self.pages: dict[str, CalculatorPage] = {}
        for form in FORMS:
            page = CalculatorPage(session, form, self.tabs)
            self.pages[form.form_id] = page
            self.tabs.addTab(page, form.title)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.tabs)
        self._case_id: str | None = session.case.case_id if session.case is not None else None
        session.caseChanged.connect(self._on_case_changed)
        session.userChanged.connect(self._update_permission)
        self._update_permission()

    def page(self, form_id: str) -> CalculatorPage:
        return self.pages[form_id]

    def show_form(self, form_id: str) -> CalculatorPage:
        """Bring a calculator's tab to the front."""
        page = self.pages[form_id]
        self.tabs.setCurrentWidget(page)
        return page

    def _update_permission(self) -> None:
        for page in self.pages.values():
            page.update_permission()

    def _on_case_changed(self, case: Case | None) -> None:
        case_id = case.case_id if case is not None else None
        if case_id != self._case_id:  # another case: its values; a reload keeps what is typed
            self._case_id = case_id
            for page in self.pages.values():
                page.reset()
        self._update_permission()
