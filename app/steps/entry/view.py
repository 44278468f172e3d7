"""The data-entry step: administrations, measurements and scan-time corrections.

The view gathers what the user types and hands it to
:class:`app.steps.entry.model.EntryModel`, which asks the core's checkers; the
view shows what the model announces: red boxes with the core's refusal, amber
with its warnings, the net administered activity at once.  Save calls the core
through ``session.change`` (role check, validation, one audited transaction);
a refusal at save highlights its field and is shown through the one error
display.  The step is disabled without an open case; each form is disabled when
``session.may`` refuses its action (``enter-administration``,
``enter-measurement``).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QScrollArea,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.common import error_display
from app.common.inputs import FieldRow, QuantityInput, TextInput, TimeInput
from app.session import CaseSession
from app.steps.base import StepView
from app.steps.entry.model import (
    ADMINISTRATION_COLUMNS,
    ADMINISTRATION_FIELDS,
    KIND_LABELS,
    MEASUREMENT_COLUMNS,
    MEASUREMENT_FIELDS,
    EntryModel,
    FieldSpec,
    Row,
)
from dosimetry_core.errors import DosimetryError, InvalidInputError
from dosimetry_core.pipeline.entry import EntryKind

__all__ = ["EntryStepView"]


def _editor(spec: FieldSpec, prefix: str) -> Any:
    name = f"{prefix}{spec.name}"
    if spec.kind == "quantity":
        return QuantityInput(name, spec.unit_choices)
    if spec.kind == "time":
        return TimeInput(name)
    return TextInput(name)


def _fill(table: QTableWidget, rows: list[Row]) -> None:
    table.setRowCount(len(rows))
    for i, row in enumerate(rows):
        for j, text in enumerate(row.cells):
            item = QTableWidgetItem(text)
            if j == 0:
                item.setData(256, row.record_id)  # Qt.UserRole
            table.setItem(i, j, item)


def _selected_id(table: QTableWidget) -> str | None:
    """The record id of the selected row (None: nothing selected)."""
    items = table.selectedItems()
    first = table.item(items[0].row(), 0) if items else None
    return str(first.data(256)) if first is not None else None


def _table(name: str, columns: tuple[str, ...]) -> QTableWidget:
    t = QTableWidget(0, len(columns))
    t.setObjectName(name)
    t.setHorizontalHeaderLabels(list(columns))
    t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    t.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    t.verticalHeader().setVisible(False)
    return t


class EntryStepView(StepView):
    """Forms and lists of the technologist's data entry (module docstring)."""

    step_id = "entry"
    title = "Data entry"
    action = "enter-administration"

    def __init__(self, session: CaseSession, parent: QWidget | None = None) -> None:
        super().__init__(session, parent)
        self.model = EntryModel()
        self._updating = False

        # ---------------------------------------------------- administration
        self.admin_rows: dict[str, FieldRow] = {}
        admin_box = QGroupBox("Administration")
        admin_box.setObjectName("administrationGroup")
        form = QVBoxLayout(admin_box)
        self.admin_mode_label = QLabel("")
        self.admin_mode_label.setObjectName("administrationModeLabel")
        form.addWidget(self.admin_mode_label)
        for spec in ADMINISTRATION_FIELDS:
            row = FieldRow(spec.label, _editor(spec, ""))
            row.editor.edited.connect(lambda n=spec.name: self._admin_edited(n))
            self.admin_rows[spec.name] = row
            form.addWidget(row)
        self.net_label = QLabel("")
        self.net_label.setObjectName("netActivityLabel")
        self.net_label.setStyleSheet("font-weight: bold;")
        form.addWidget(self.net_label)
        buttons = QHBoxLayout()
        self.new_admin_button = QPushButton("New administration")
        self.new_admin_button.setObjectName("newAdministrationButton")
        self.new_admin_button.clicked.connect(self.model.new_administration)
        self.save_admin_button = QPushButton("Save administration")
        self.save_admin_button.setObjectName("saveAdministrationButton")
        self.save_admin_button.clicked.connect(self._save_administration)
        buttons.addWidget(self.new_admin_button)
        buttons.addStretch(1)
        buttons.addWidget(self.save_admin_button)
        form.addLayout(buttons)
        self.admin_table = _table("administrationTable", ADMINISTRATION_COLUMNS)
        self.admin_table.itemSelectionChanged.connect(self._admin_selected)
        form.addWidget(QLabel("Recorded administrations (select one to edit it):"))
        form.addWidget(self.admin_table)

        # ------------------------------------------------------- scan time
        scan_box = QGroupBox("Scan-time correction")
        scan_box.setObjectName("scanTimeGroup")
        scan = QVBoxLayout(scan_box)
        self.time_point_box = QComboBox()
        self.time_point_box.setObjectName("timePointBox")
        self.time_point_box.currentIndexChanged.connect(self._time_point_chosen)
        scan.addWidget(self.time_point_box)
        self.scan_row = FieldRow("Acquisition start", TimeInput("acquired_at"))
        self.scan_row.editor.edited.connect(
            lambda: self.model.set_scan_time(text=self.scan_row.editor.text())
        )
        self.reason_row = FieldRow("Reason", TextInput("reason"))
        self.reason_row.editor.edited.connect(
            lambda: self.model.set_scan_time(reason=self.reason_row.editor.text())
        )
        self.scan_original_label = QLabel("")
        self.scan_original_label.setObjectName("scanOriginalLabel")
        self.save_scan_button = QPushButton("Correct acquisition time")
        self.save_scan_button.setObjectName("saveScanTimeButton")
        self.save_scan_button.clicked.connect(self._save_scan_time)
        for w in (self.scan_row, self.reason_row, self.scan_original_label):
            scan.addWidget(w)
        scan.addWidget(self.save_scan_button)

        # ----------------------------------------------------- measurements
        meas_box = QGroupBox("Measurements")
        meas_box.setObjectName("measurementGroup")
        meas = QVBoxLayout(meas_box)
        self.kind_box = QComboBox()
        self.kind_box.setObjectName("measurementKindBox")
        for kind in EntryKind:
            self.kind_box.addItem(KIND_LABELS[kind], str(kind))
        self.kind_box.currentIndexChanged.connect(self._kind_chosen)
        meas.addWidget(self.kind_box)
        self.meas_stack = QStackedWidget()
        self.meas_rows: dict[EntryKind, dict[str, FieldRow]] = {}
        for kind in EntryKind:
            page = QWidget()
            lay = QVBoxLayout(page)
            lay.setContentsMargins(0, 0, 0, 0)
            rows: dict[str, FieldRow] = {}
            for spec in MEASUREMENT_FIELDS[kind]:
                row = FieldRow(spec.label, _editor(spec, f"{kind.name.lower()}_"))
                row.editor.edited.connect(lambda k=kind, n=spec.name: self._measure_edited(k, n))
                rows[spec.name] = row
                lay.addWidget(row)
            lay.addStretch(1)
            self.meas_rows[kind] = rows
            self.meas_stack.addWidget(page)
        meas.addWidget(self.meas_stack)
        self.save_meas_button = QPushButton("Save measurement")
        self.save_meas_button.setObjectName("saveMeasurementButton")
        self.save_meas_button.clicked.connect(self._save_measurement)
        meas.addWidget(self.save_meas_button)
        self.patient_label = QLabel("")
        self.patient_label.setObjectName("patientLabel")
        meas.addWidget(self.patient_label)
        self.meas_table = _table("measurementTable", MEASUREMENT_COLUMNS)
        meas.addWidget(self.meas_table)
        self.delete_meas_button = QPushButton("Delete selected measurement")
        self.delete_meas_button.setObjectName("deleteMeasurementButton")
        self.delete_meas_button.clicked.connect(self._delete_measurement)
        meas.addWidget(self.delete_meas_button)

        # ----------------------------------------------------------- layout
        self.case_label = QLabel("")
        self.case_label.setObjectName("entryCaseLabel")
        self.saved_label = QLabel("")
        self.saved_label.setObjectName("savedLabel")
        left = QVBoxLayout()
        left.addWidget(admin_box)
        left.addWidget(scan_box)
        left.addStretch(1)
        columns = QHBoxLayout()
        columns.addLayout(left, 1)
        columns.addWidget(meas_box, 1)
        inner = QWidget()
        inner_layout = QVBoxLayout(inner)
        inner_layout.addWidget(self.case_label)
        inner_layout.addLayout(columns)
        scroll = QScrollArea()
        scroll.setObjectName("entryScroll")
        scroll.setWidgetResizable(True)
        scroll.setWidget(inner)
        self.scroll_area = scroll
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll, 1)
        outer.addWidget(self.saved_label)
        self.admin_box, self.scan_box, self.meas_box = admin_box, scan_box, meas_box

        self.model.subscribe(self._model_changed)
        session.caseChanged.connect(self._case_changed)
        session.userChanged.connect(self._update_enabled)
        session.message.connect(self._session_message)
        self._case_changed(session.case)

    # ------------------------------------------------------------ session
    def activated(self) -> None:
        self._update_enabled()

    def _case_changed(self, case: Any) -> None:
        self.model.set_case(case)
        self._update_enabled()

    def _session_message(self, text: str) -> None:
        if text.startswith("Saved by"):
            self.saved_label.setText(text)

    def _update_enabled(self) -> None:
        has_case = self.session.case is not None
        self.setEnabled(has_case)
        self.admin_box.setEnabled(has_case and self.session.may("enter-administration"))
        may_measure = has_case and self.session.may("enter-measurement")
        self.meas_box.setEnabled(may_measure)
        self.scan_box.setEnabled(may_measure)
        if not has_case:
            self.case_label.setText("Open a case to enter its administration and measurements.")
        else:
            case = self.session.case
            assert case is not None
            who = self.session.user_label()
            self.case_label.setText(
                f"Case {case.case_id} – {case.patient.name or case.patient.patient_id} "
                f"(version {case.version}); you are {who}"
            )

    # ------------------------------------------------------------ model -> view
    def _model_changed(self, topic: str) -> None:
        unsaved = self.model.unsaved()
        self.session.set_dirty("entry", "; ".join(unsaved) if unsaved else None)
        self._updating = True
        try:
            if topic == "administration":
                self._show_administration()
            elif topic == "measurement":
                self._show_measurement()
            elif topic == "scan":
                self._show_scan()
            elif topic == "case":
                _fill(self.admin_table, self.model.administration_rows())
                _fill(self.meas_table, self.model.measurement_rows())
                self.patient_label.setText(self.model.patient_text())
                self.time_point_box.blockSignals(True)
                self.time_point_box.clear()
                for tp_id, text in self.model.time_point_choices():
                    self.time_point_box.addItem(text, tp_id)
                idx = self.time_point_box.findData(self.model.scan_time_point)
                self.time_point_box.setCurrentIndex(max(idx, 0))
                self.time_point_box.blockSignals(False)
        finally:
            self._updating = False

    @staticmethod
    def _show_problems(
        rows: dict[str, FieldRow], problems: dict[str, tuple[str | None, str | None]]
    ) -> None:
        for name, row in rows.items():
            row.show_problem(*problems.get(name, (None, None)))

    def _show_administration(self) -> None:
        m = self.model
        for name, row in self.admin_rows.items():
            row.editor.set_text(m.admin.text[name])
            if isinstance(row.editor, QuantityInput):
                row.editor.set_unit(m.admin.units[name])
        self._show_problems(self.admin_rows, m.administration_problems())
        self.net_label.setText(m.net_activity_text())
        if m.editing_id is None:
            self.admin_mode_label.setText("New administration")
            self.save_admin_button.setText("Save administration")
        else:
            self.admin_mode_label.setText(f"Editing administration {m.editing_id}")
            self.save_admin_button.setText("Save changes")

    def _show_measurement(self) -> None:
        m = self.model
        idx = self.kind_box.findData(str(m.kind))
        if idx != self.kind_box.currentIndex():
            self.kind_box.blockSignals(True)
            self.kind_box.setCurrentIndex(idx)
            self.kind_box.blockSignals(False)
        self.meas_stack.setCurrentIndex(list(EntryKind).index(m.kind))
        rows = self.meas_rows[m.kind]
        for name, row in rows.items():
            row.editor.set_text(m.measure.text[name])
            if isinstance(row.editor, QuantityInput):
                row.editor.set_unit(m.measure.units[name])
        self._show_problems(rows, m.measurement_problems())

    def _show_scan(self) -> None:
        self.scan_row.editor.set_text(self.model.scan_text)
        self.reason_row.editor.set_text(self.model.scan_reason)
        self._show_problems(
            {"acquired_at": self.scan_row, "reason": self.reason_row}, self.model.scan_problems()
        )
        self.scan_original_label.setText(self.model.scan_original_text())

    # ------------------------------------------------------------ view -> model
    def _admin_edited(self, name: str) -> None:
        if self._updating:
            return
        editor = self.admin_rows[name].editor
        unit = editor.unit() if isinstance(editor, QuantityInput) else None
        self.model.set_administration(name, editor.text(), unit)

    def _measure_edited(self, kind: EntryKind, name: str) -> None:
        if self._updating or kind != self.model.kind:
            return
        editor = self.meas_rows[kind][name].editor
        unit = editor.unit() if isinstance(editor, QuantityInput) else None
        self.model.set_measurement(name, editor.text(), unit)

    def _admin_selected(self) -> None:
        if self._updating:
            return
        record_id = _selected_id(self.admin_table)
        if record_id is not None:
            self.model.load_administration(record_id)

    def _kind_chosen(self, index: int) -> None:
        if not self._updating and index >= 0:
            self.model.set_measurement_kind(self.kind_box.itemData(index))

    def _time_point_chosen(self, index: int) -> None:
        if not self._updating and index >= 0:
            self.model.select_time_point(self.time_point_box.itemData(index))

    # --------------------------------------------------------------- saving
    def _change(self, title: str, call: tuple[Any, ...], rows: dict[str, FieldRow]) -> Any:
        """``session.change`` the core call; a refusal highlights its field and is shown."""
        fn, args, kwargs = call
        try:
            return self.session.change(fn, *args, **kwargs)
        except InvalidInputError as exc:
            row = rows.get(exc.field or "")
            if row is not None:
                row.show_problem(str(exc), None)
            error_display.show_error(self, title, str(exc))
        except DosimetryError as exc:
            error_display.show_error(self, title, str(exc))
        return None

    def _save_administration(self) -> None:
        result = self._change(
            "Administration", self.model.administration_save_call(), self.admin_rows
        )
        if result is not None:
            self.model.administration_saved(result)

    def _save_measurement(self) -> None:
        result = self._change(
            "Measurement", self.model.measurement_save_call(), self.meas_rows[self.model.kind]
        )
        if result is not None:
            self.model.measurement_saved()

    def _save_scan_time(self) -> None:
        rows = {"acquired_at": self.scan_row, "reason": self.reason_row}
        if self._change("Scan time", self.model.scan_save_call(), rows) is not None:
            self.model.scan_saved()

    def _delete_measurement(self) -> None:
        record_id = _selected_id(self.meas_table)
        if record_id is None:
            error_display.show_error(self, "Measurement", "select the measurement to delete")
            return
        self._change("Measurement", self.model.delete_call(record_id, "deleted in data entry"), {})
