"""The exports step: DICOM export of the case's results and the population ranges.

* **DICOM export** -- tick what goes out: RT Dose (each current dose map),
  RTSTRUCT and/or SEG (the VOIs), the report as Encapsulated PDF (which version
  and its status shown; a draft is labelled unsigned); a destination folder;
  optionally anonymised (DICOM PS3.15 Basic Profile through the core) with the
  project secret typed into a password field or read from a chosen file, a date
  shift, "keep patient characteristics" and "keep structure names" as
  ``mrtdose export`` offers.  Export runs
  :func:`~app.steps.export.model.run_export` through ``session.run`` with
  progress and cancel; afterwards the files written (type, file name, SOP Class)
  and a summary.  The secret is never shown, and the password field is emptied
  as soon as the export starts.
* **Population ranges** -- one organ's Gy/GBq among the other patients of the
  protocol (:mod:`dosimetry_core.reporting.population_histogram`) as a histogram,
  this patient marked by a vertical line labelled with the value and unit, the
  percentile rank and the number of patients; a population too small is said so
  instead of drawn.

The export controls are enabled by ``session.may("export")``; without it they
are disabled with a tooltip saying why.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import pyqtgraph as pg
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.common import error_display
from app.common.pacs import SendPanel
from app.common.widgets import named, read_only_table
from app.session import CaseSession
from app.steps.base import StepView
from app.steps.export.model import (
    FILE_COLUMNS,
    ExportForm,
    ExportModel,
    ExportOutcome,
    destination_note,
    percentile_text,
    population_histogram,
    run_export,
    summary_lines,
)
from app.workers import Task
from dosimetry_core.errors import DosimetryError, InvalidInputError
from dosimetry_core.model import Case

__all__ = ["ExportStepView"]


class ExportStepView(StepView):
    """DICOM export and population ranges (module docstring)."""

    step_id = "export"
    title = "Exports"
    action = None

    def __init__(self, session: CaseSession, parent: QWidget | None = None) -> None:
        super().__init__(session, parent)
        self.model = ExportModel(None, False)
        self.outcome: ExportOutcome | None = None
        self._task: Task | None = None
        self._stop = threading.Event()
        self._pop_task: Task | None = None
        self._pop_stale = True
        self.population: dict[str, Any] = {}
        self._tips: dict[str, str] = {}
        """Tooltips of the export widgets when the user may export (object name -> text)."""

        layout = QVBoxLayout(self)
        self.tabs = named(QTabWidget(self), "exportTabs")
        layout.addWidget(self.tabs)
        self.tabs.addTab(self._build_export(), "DICOM export")
        self.tabs.addTab(self._build_population(), "Population ranges")
        # the same results sent to the hospital's PACS (C-STORE)
        self.send_panel = SendPanel(session)
        self.tabs.addTab(self.send_panel, "Send results to PACS")

        session.caseChanged.connect(self._on_case_changed)
        session.userChanged.connect(self._on_user_changed)
        self.refresh()

    # ================================================================ build
    def _build_export(self) -> QWidget:
        page = QWidget()
        v = QVBoxLayout(page)
        self.denied_label = named(QLabel(""), "exportDenied")
        self.denied_label.setWordWrap(True)
        self.denied_label.setStyleSheet("color: #b26a00; font-weight: bold;")
        self.denied_label.hide()
        v.addWidget(self.denied_label)

        what = QGroupBox("What to export", page)
        wf = QFormLayout(what)
        self.dose_check = named(QCheckBox("RT Dose (each current dose map)"), "exportDoseCheck")
        self.dose_check.setChecked(True)
        self.doses_label = named(QLabel(""), "exportDoses")
        self.doses_label.setWordWrap(True)
        wf.addRow(self.dose_check, self.doses_label)
        row = QHBoxLayout()
        self.rtstruct_check = named(QCheckBox("RTSTRUCT"), "exportRtstructCheck")
        self.seg_check = named(QCheckBox("SEG"), "exportSegCheck")
        row.addWidget(self.rtstruct_check)
        row.addWidget(self.seg_check)
        self.vois_label = named(QLabel(""), "exportVois")
        row.addWidget(self.vois_label, 1)
        wf.addRow("VOIs as", row)
        self.report_check = named(QCheckBox("Report as Encapsulated PDF"), "exportReportCheck")
        self.report_label = named(QLabel(""), "exportReportLabel")
        self.report_label.setWordWrap(True)
        wf.addRow(self.report_check, self.report_label)
        self.images_check = named(
            QCheckBox("Re-write the SPECT and CT images from the store"), "exportImagesCheck"
        )
        self._tips[self.images_check.objectName()] = (
            "RTSTRUCT/SEG reference these CT files.  Not anonymised, they carry the original "
            "series UIDs with new instance UIDs: do not send them back to the source PACS."
        )
        wf.addRow(self.images_check)
        ct_row = QHBoxLayout()
        self.ct_dir_edit = named(QLineEdit(), "exportCtDirEdit")
        self.ct_dir_edit.setPlaceholderText("or the folder of the original CT files")
        self.ct_dir_button = named(QPushButton("Choose…"), "exportCtDirButton")
        self.ct_dir_button.clicked.connect(lambda: self._choose_dir(self.ct_dir_edit, "CT folder"))
        ct_row.addWidget(self.ct_dir_edit, 1)
        ct_row.addWidget(self.ct_dir_button)
        wf.addRow("CT folder", ct_row)
        out_row = QHBoxLayout()
        self.out_dir_edit = named(QLineEdit(), "exportOutDirEdit")
        self.out_dir_edit.setPlaceholderText("destination folder")
        self.out_dir_button = named(QPushButton("Choose…"), "exportOutDirButton")
        self.out_dir_button.clicked.connect(
            lambda: self._choose_dir(self.out_dir_edit, "Destination folder")
        )
        out_row.addWidget(self.out_dir_edit, 1)
        out_row.addWidget(self.out_dir_button)
        wf.addRow("Destination", out_row)
        self.dest_note = named(QLabel(""), "exportDestinationNote")
        self.dest_note.setStyleSheet("color: #b26a00;")
        self.dest_note.setWordWrap(True)
        self.dest_note.hide()
        wf.addRow(self.dest_note)
        self.out_dir_edit.editingFinished.connect(self._check_destination)
        self.out_dir_edit.textChanged.connect(lambda _t: self.dest_note.hide())
        v.addWidget(what)

        anon = QGroupBox("Anonymisation", page)
        af = QFormLayout(anon)
        self.anon_check = named(
            QCheckBox("Anonymise (PS3.15 Basic Profile, pseudonyms from the project secret)"),
            "exportAnonCheck",
        )
        self.anon_check.toggled.connect(self._on_anonymise)
        af.addRow(self.anon_check)
        self.secret_edit = named(QLineEdit(), "exportSecretEdit")
        self.secret_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.secret_edit.setPlaceholderText("project secret (never shown or stored)")
        af.addRow("Project secret", self.secret_edit)
        file_row = QHBoxLayout()
        self.secret_file_edit = named(QLineEdit(), "exportSecretFileEdit")
        self.secret_file_edit.setPlaceholderText("or a file holding the secret")
        self.secret_file_button = named(QPushButton("Choose…"), "exportSecretFileButton")
        self.secret_file_button.clicked.connect(self._choose_secret_file)
        file_row.addWidget(self.secret_file_edit, 1)
        file_row.addWidget(self.secret_file_button)
        af.addRow("Secret file", file_row)
        self.shift_edit = named(QLineEdit(), "exportDateShiftEdit")
        self.shift_edit.setPlaceholderText("days (blank: per patient, from the secret)")
        af.addRow("Date shift (days)", self.shift_edit)
        self.retain_check = named(
            QCheckBox("Keep patient characteristics (sex, age, size, weight)"),
            "exportRetainCheck",
        )
        af.addRow(self.retain_check)
        self.names_check = named(
            QCheckBox("Keep structure names (when they hold no part of the name or ID)"),
            "exportKeepNamesCheck",
        )
        self.names_check.setChecked(True)
        af.addRow(self.names_check)
        v.addWidget(anon)

        run_row = QHBoxLayout()
        self.export_button = named(QPushButton("Export"), "exportRun")
        self.export_button.clicked.connect(self.start_export)
        self.cancel_button = named(QPushButton("Cancel"), "exportCancel")
        self.cancel_button.setToolTip("Stop the export before files are written")
        self.cancel_button.clicked.connect(self.cancel)
        self.progress_bar = named(QProgressBar(), "exportProgress")
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setVisible(False)
        run_row.addWidget(self.export_button)
        run_row.addWidget(self.cancel_button)
        run_row.addWidget(self.progress_bar, 1)
        v.addLayout(run_row)
        self.error_label = error_display.inline_error_label(page, "exportError")
        v.addWidget(self.error_label)
        self.status_label = named(QLabel(""), "exportStatus")
        self.status_label.setWordWrap(True)
        v.addWidget(self.status_label)
        self.files_table = read_only_table("exportFiles", FILE_COLUMNS)
        v.addWidget(self.files_table, 1)
        self.summary_label = named(QLabel(""), "exportSummary")
        self.summary_label.setWordWrap(True)
        v.addWidget(self.summary_label)
        for box in (self.rtstruct_check, self.seg_check, self.images_check, self.report_check):
            box.toggled.connect(lambda _on: self._update_enabled())
        return page

    def _build_population(self) -> QWidget:
        page = QWidget()
        v = QVBoxLayout(page)
        top = QHBoxLayout()
        top.addWidget(QLabel("Organ"))
        self.organ_box = named(QComboBox(), "populationOrgan")
        self.organ_box.currentIndexChanged.connect(lambda _i: self._show_organ())
        top.addWidget(self.organ_box, 1)
        v.addLayout(top)
        self.pop_status = named(QLabel(""), "populationStatus")
        self.pop_status.setWordWrap(True)
        v.addWidget(self.pop_status)
        self.percentile_label = named(QLabel(""), "populationPercentile")
        self.percentile_label.setWordWrap(True)
        v.addWidget(self.percentile_label)
        self.plot = named(pg.PlotWidget(), "populationPlot")
        self.plot.setLabel("bottom", "Absorbed dose per administered activity (Gy/GBq)")
        self.plot.setLabel("left", "Patients")
        # Gy/GBq is the unit: no SI prefix scaling of the axes ("x0.001" would misread)
        self.plot.getAxis("bottom").enableAutoSIPrefix(False)
        self.plot.getAxis("left").enableAutoSIPrefix(False)
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        self.plot.setMenuEnabled(False)
        self.bars: pg.BarGraphItem | None = None
        self.marker = pg.InfiniteLine(
            angle=90,
            movable=False,
            pen=pg.mkPen("#e53935", width=2),
            label="",
            labelOpts={"position": 0.9, "color": "#e53935", "movable": False},
        )
        self.plot.addItem(self.marker)
        self.marker.setVisible(False)
        v.addWidget(self.plot, 1)
        # when the plot is hidden (population too small) the texts stay under the organ box
        v.addStretch(0)
        return page

    # ============================================================ content
    def activated(self) -> None:
        self.refresh()
        if self._pop_stale:
            self.load_population()

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if self._pop_stale:
            self.load_population()

    def _on_case_changed(self, _case: Case | None) -> None:
        self._pop_stale = True
        self.refresh()
        if self.isVisible():
            self.load_population()

    def _on_user_changed(self) -> None:
        self.secret_edit.clear()
        self.refresh()

    def refresh(self) -> None:
        """Rebuild what is offered from the open case, its reports and the user's permission."""
        case, store = self.session.case, self.session.store
        reports: list[Any] = []
        if case is not None and store is not None:
            from dosimetry_core.reporting.records import list_reports

            try:
                reports = list_reports(store, case.case_id)
            except DosimetryError as exc:
                self.status_label.setText(f"Report versions cannot be read: {exc}")
        self.model = ExportModel(case, self.session.may("export"), reports)
        self.doses_label.setText(self.model.doses_text())
        self.vois_label.setText(self.model.vois_text())
        self.report_label.setText(self.model.report_text())
        if self.model.report is not None and not self.model.report.signed:
            self.report_label.setStyleSheet("color: #b26a00; font-weight: bold;")
        else:
            self.report_label.setStyleSheet("")
        self._update_enabled()

    def _export_widgets(self) -> list[QWidget]:
        return [
            self.dose_check,
            self.rtstruct_check,
            self.seg_check,
            self.report_check,
            self.images_check,
            self.ct_dir_edit,
            self.ct_dir_button,
            self.out_dir_edit,
            self.out_dir_button,
            self.anon_check,
            self.secret_edit,
            self.secret_file_edit,
            self.secret_file_button,
            self.shift_edit,
            self.retain_check,
            self.names_check,
            self.export_button,
        ]

    def _update_enabled(self) -> None:
        running = self._task is not None
        can = self.model.can_export and not running
        why = self.model.denied_reason()
        self.denied_label.setText(why)
        self.denied_label.setVisible(bool(why) and self.session.case is not None)
        for w in self._export_widgets():
            w.setEnabled(can)
            w.setToolTip(why or self._tips.get(w.objectName(), ""))
        if not can:
            self.cancel_button.setEnabled(running)
            self.cancel_button.setToolTip(why or "Stop the export before files are written")
            return
        anon = self.anon_check.isChecked()
        for w in (
            self.secret_edit,
            self.secret_file_edit,
            self.secret_file_button,
            self.shift_edit,
            self.retain_check,
        ):
            w.setEnabled(anon)
        has_report = self.model.report is not None
        self.report_check.setEnabled(has_report and not anon)
        if anon:
            self.report_check.setChecked(False)
            self.report_check.setToolTip(
                "A report PDF cannot be de-identified automatically: export it without "
                "anonymisation"
            )
        elif not has_report:
            self.report_check.setChecked(False)  # the case changed: nothing to tick any more
            self.report_check.setToolTip("This case has no report yet (Report step)")
        self.images_check.setEnabled(not anon)
        if anon:
            self.images_check.setToolTip("An anonymised export always re-writes the images")
        needs_ct = self.rtstruct_check.isChecked() or self.seg_check.isChecked()
        ct = needs_ct and not anon and not self.images_check.isChecked()
        self.ct_dir_edit.setEnabled(ct)
        self.ct_dir_button.setEnabled(ct)
        self.cancel_button.setEnabled(False)
        self.export_button.setToolTip("")

    def _on_anonymise(self, on: bool) -> None:
        if not on:
            self.secret_edit.clear()  # a secret is not kept where it is not used
        self._update_enabled()

    def hideEvent(self, event: Any) -> None:
        self.secret_edit.clear()  # leaving the step forgets a typed secret
        super().hideEvent(event)

    # ========================================================== choosing
    def _choose_dir(self, edit: QLineEdit, title: str) -> None:
        folder = QFileDialog.getExistingDirectory(self, title, edit.text())
        if folder:
            edit.setText(folder)
            if edit is self.out_dir_edit:
                self._check_destination()

    def _check_destination(self) -> None:
        note = destination_note(self.out_dir_edit.text())
        self.dest_note.setText(note)
        self.dest_note.setVisible(bool(note))

    def _choose_secret_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Project secret file")
        if path:
            self.secret_file_edit.setText(path)

    def form(self) -> ExportForm:
        """What the user chose, as typed."""
        return ExportForm(
            out_dir=self.out_dir_edit.text(),
            rtdose=self.dose_check.isChecked(),
            rtstruct=self.rtstruct_check.isChecked(),
            seg=self.seg_check.isChecked(),
            report=self.report_check.isChecked(),
            images=self.images_check.isChecked(),
            ct_dir=self.ct_dir_edit.text(),
            anonymize=self.anon_check.isChecked(),
            secret_file=self.secret_file_edit.text(),
            date_shift_days=self.shift_edit.text(),
            retain_patient_characteristics=self.retain_check.isChecked(),
            retain_structure_names=self.names_check.isChecked(),
        )

    # =============================================================== run
    def start_export(self) -> None:
        """Check the choices and run the export in a worker (module docstring)."""
        store = self.session.store
        if store is None or self._task is not None or not self.model.can_export:
            return
        form = self.form()
        typed = self.secret_edit.text()
        try:
            kwargs = self.model.check(form, typed)
        except InvalidInputError as exc:
            self.error_label.setText(str(exc))
            self.error_label.show()
            return
        self.error_label.hide()
        # the secret leaves the widget now: it lives only in the worker's call
        secret = typed.strip() if form.anonymize and not kwargs["secret_file"] else None
        self.secret_edit.clear()
        self.outcome = None
        self.files_table.setRowCount(0)
        self.summary_label.setText("")
        self._stop.clear()
        self.progress_bar.setValue(0)
        self.progress_bar.setVisible(True)
        self.status_label.setText("Exporting…")
        case_id = kwargs.pop("case_id")
        out_dir = kwargs.pop("out_dir")
        self._task = self.session.run(
            run_export,
            store,
            case_id,
            out_dir,
            secret=secret,
            stop=self._stop.is_set,
            description="Export",
            on_success=self._succeeded,
            on_failure=self._failed,
            on_progress=self._progress,
            on_cancelled=self._cancelled,
            reload_case=False,
            **kwargs,
        )
        del secret
        self._task.finished.connect(self._finished)
        self._update_enabled()

    def cancel(self) -> None:
        """Stop the export (honoured while nothing is written to the destination)."""
        if self._task is not None:
            self._stop.set()
            self.status_label.setText("Cancelling…")
            self.cancel_button.setEnabled(False)

    def is_running(self) -> bool:
        return self._task is not None

    def _progress(self, fraction: float, message: str) -> None:
        self.progress_bar.setValue(int(round(1000 * fraction)))
        self.status_label.setText(message)

    def _succeeded(self, outcome: ExportOutcome) -> None:
        self.outcome = outcome
        self.files_table.setRowCount(len(outcome.files))
        for r, f in enumerate(outcome.files):
            for c, text in enumerate(f.cells()):
                item = QTableWidgetItem(text)
                item.setToolTip(str(f.path) if c == 1 else text)
                self.files_table.setItem(r, c, item)
        lines = summary_lines(outcome)
        self.summary_label.setText("\n".join(lines))
        self.status_label.setText("Export finished: the files written are listed below.")

    def _failed(self, message: str, details: str) -> None:
        self.status_label.setText("The export was refused: see the message.")
        error_display.show_error(self, "Export", message, details)

    def _cancelled(self) -> None:
        self.status_label.setText("Export cancelled: nothing was written to the destination.")

    def _finished(self) -> None:
        self._task = None
        self.progress_bar.setVisible(False)
        self.secret_edit.clear()
        self._update_enabled()

    def files_as_shown(self) -> list[dict[str, str]]:
        """The file table as the user sees it (header -> cell text)."""
        out = []
        for r in range(self.files_table.rowCount()):
            row = {}
            for c, name in enumerate(FILE_COLUMNS):
                item = self.files_table.item(r, c)
                row[name] = "" if item is None else item.text()
            out.append(row)
        return out

    # ======================================================== population
    def load_population(self) -> None:
        """Read the population ranges of the open case's organs (worker thread)."""
        case, store = self.session.case, self.session.store
        self._pop_stale = False
        if case is None or store is None:
            self.population = {}
            self._fill_organs()
            self.pop_status.setText("Open a case to see its population ranges.")
            return
        if self._pop_task is not None:
            self._pop_stale = True  # reload when this one is done
            return
        self.pop_status.setText("Reading the population of the protocol…")
        self._pop_task = self.session.run(
            population_histogram,
            store,
            case.case_id,
            description="Population ranges",
            on_success=self._population_loaded,
            on_failure=self._population_failed,
            reload_case=False,
            with_progress=False,
        )
        self._pop_task.finished.connect(self._population_done)

    def is_loading_population(self) -> bool:
        return self._pop_task is not None

    def _population_done(self) -> None:
        self._pop_task = None
        if self._pop_stale and self.isVisible():
            self.load_population()

    def _population_loaded(self, population: dict[str, Any]) -> None:
        self.population = population
        self._fill_organs()

    def _population_failed(self, message: str, _details: str) -> None:
        self.population = {}
        self._fill_organs()
        self.pop_status.setText(f"Population ranges not available: {message}")

    def _fill_organs(self) -> None:
        organs = self.population.get("organs", {})
        current = self.organ_box.currentData()
        self.organ_box.blockSignals(True)
        try:
            self.organ_box.clear()
            for organ_id, h in organs.items():
                self.organ_box.addItem(h.label, organ_id)
            idx = self.organ_box.findData(current)
            self.organ_box.setCurrentIndex(idx if idx >= 0 else 0 if organs else -1)
        finally:
            self.organ_box.blockSignals(False)
        if not organs and self.session.case is not None:
            self.pop_status.setText(
                "No organ values: the case has no protocol run and no population of its protocol."
            )
        self._show_organ()

    def select_organ(self, label: str) -> None:
        """Show organ ``label`` (as picking it in the list)."""
        idx = self.organ_box.findText(label)
        if idx < 0:
            raise KeyError(label)
        self.organ_box.setCurrentIndex(idx)

    def _show_organ(self) -> None:
        organ_id = self.organ_box.currentData()
        h = self.population.get("organs", {}).get(organ_id) if organ_id else None
        if self.bars is not None:
            self.plot.removeItem(self.bars)
            self.bars = None
        self.marker.setVisible(False)
        if h is None:
            self.percentile_label.setText("")
            self.plot.setVisible(False)
            return
        self.pop_status.setText(h.message)
        self.percentile_label.setText(percentile_text(h))
        if not h.enough:
            self.plot.setVisible(False)
            return
        self.plot.setVisible(True)
        edges = h.edges_gy_per_gbq
        self.bars = pg.BarGraphItem(
            x0=list(edges[:-1]),
            x1=list(edges[1:]),
            height=list(h.counts),
            brush=pg.mkBrush(90, 140, 200, 180),
            pen=pg.mkPen("#dddddd"),
        )
        self.plot.addItem(self.bars)
        xs = [edges[0], edges[-1]]
        if h.value_gy_per_gbq is not None:
            self.marker.setVisible(True)  # before the text: a hidden label is not updated
            self.marker.setValue(h.value_gy_per_gbq)
            self.marker.label.setFormat("this patient: {value:.3g} " + h.unit)
            xs.append(h.value_gy_per_gbq)
        span = max(xs) - min(xs) or 1.0
        self.plot.setXRange(min(xs) - 0.05 * span, max(xs) + 0.05 * span, padding=0)
        top = max(h.counts)
        step = max(1, math.ceil(top / 10))  # whole patients on the count axis
        self.plot.getAxis("left").setTickSpacing(major=step, minor=step)
        self.plot.setYRange(0, top + 0.5, padding=0)

    def bar_count(self) -> int:
        """Bars drawn in the histogram (0 when none is shown)."""
        if self.bars is None or self.plot.isHidden():
            return 0
        return len(self.bars.opts["height"])

    def marker_value(self) -> float | None:
        """Where the patient's line is drawn (Gy/GBq), None when it is not shown."""
        if self.plot.isHidden() or not self.marker.isVisible():
            return None
        return float(self.marker.value())
