"""The QA and commissioning step: camera calibration, recovery coefficients, the QA records.

Not tied to a case: it works with no case open.  The view gathers the form
(the options of ``mrtdose qa calibrate | recovery``), the core computes in a
worker (``session.run`` with ``reload_case=False``:
:func:`~dosimetry_core.qa.qa_runs.run_camera_calibration`,
:func:`~dosimetry_core.qa.qa_runs.run_recovery`), and the view shows what
:mod:`app.steps.qa.model` makes of the result.  Every user may look at the
record list; running an analysis needs the ``qa`` permission (physicist).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.common import error_display
from app.common.inputs import ERROR_COLOUR
from app.common.widgets import named as _named
from app.common.widgets import read_only_table
from app.session import CaseSession
from app.steps.base import StepView
from app.steps.qa.model import (
    GEOMETRIES,
    KIND_FILTERS,
    NUCLIDE_CHOICES,
    RECORD_COLUMNS,
    RECOVERY_MODELS,
    CalibrationForm,
    CalibrationSummary,
    ConstancyChart,
    RecordsModel,
    RecoveryForm,
    RecoverySummary,
    author_name,
    latest_camera_chart,
)
from app.workers import Task
from dosimetry_core.errors import DosimetryError, InvalidInputError
from dosimetry_core.qa.qa_runs import run_camera_calibration, run_recovery

__all__ = ["QaStepView", "SPHERE_COLUMNS"]


SPHERE_COLUMNS = ("Sphere (mm)", "Volume (mL)", "RC", "SD", "Fitted RC")
_PASS_COLOUR = "#2e7d32"
_OK_BRUSH = (60, 180, 90)
_WARN_BRUSH = (220, 60, 60)


class _Form:
    """A compact grid of labelled boxes, each with its unit, and one message line."""

    def __init__(self, parent: QWidget, prefix: str) -> None:
        self.widget = QWidget(parent)
        self.grid = QGridLayout(self.widget)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setHorizontalSpacing(6)
        self.grid.setVerticalSpacing(4)
        self.prefix = prefix
        self.edits: dict[str, QLineEdit] = {}
        self.message = QLabel("", self.widget)
        self.message.setObjectName(f"{prefix}Message")
        self.message.setWordWrap(True)
        self.message.setStyleSheet(f"color: {ERROR_COLOUR};")
        self.message.hide()

    def line(
        self, row: int, col: int, label: str, name: str, unit: str = "", placeholder: str = ""
    ) -> QLineEdit:
        edit = QLineEdit(self.widget)
        edit.setObjectName(f"{self.prefix}{name}")
        edit.setPlaceholderText(placeholder)
        edit.textEdited.connect(lambda _t: self.show_problem(None))
        self.grid.addWidget(QLabel(label, self.widget), row, 3 * col)
        self.grid.addWidget(edit, row, 3 * col + 1)
        self.grid.addWidget(QLabel(unit, self.widget), row, 3 * col + 2)
        self.edits[name] = edit
        return edit

    def combo(
        self, row: int, col: int, label: str, name: str, items: list[tuple[str, str]]
    ) -> QComboBox:
        box = QComboBox(self.widget)
        box.setObjectName(f"{self.prefix}{name}")
        for text, data in items:
            box.addItem(text, data)
        self.grid.addWidget(QLabel(label, self.widget), row, 3 * col)
        self.grid.addWidget(box, row, 3 * col + 1)
        return box

    def finish(self, row: int) -> None:
        self.grid.addWidget(self.message, row, 0, 1, 6)
        self.grid.setColumnStretch(1, 1)
        self.grid.setColumnStretch(4, 1)

    def show_problem(
        self, exc: InvalidInputError | None, field_map: dict[str, str] | None = None
    ) -> None:
        for edit in self.edits.values():
            edit.setStyleSheet("")
            edit.setProperty("invalid", False)
        if exc is None:
            self.message.hide()
            self.message.setText("")
            return
        name = (field_map or {}).get(exc.field or "", "")
        bad = self.edits.get(name)
        if bad is not None:
            bad.setStyleSheet(f"border: 2px solid {ERROR_COLOUR};")
            bad.setProperty("invalid", True)
            bad.setFocus()
        self.message.setText(str(exc))
        self.message.show()


def _no_height_hint(widget: QWidget) -> None:
    """A plot takes the height left, not its 480 px size hint: in the step panel's scroll
    area the preferred height of the page would otherwise push the chart's axis below
    the screen."""
    widget.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Ignored)


def _nuclide_items() -> list[tuple[str, str]]:
    return [(n or "from the scan header", n) for n in NUCLIDE_CHOICES]


class QaStepView(StepView):
    """QA and commissioning step (module docstring)."""

    step_id = "qa"
    title = "QA"
    action = None  # everyone may look at the QA records; running needs "qa"

    def __init__(self, session: CaseSession, parent: QWidget | None = None) -> None:
        super().__init__(session, parent)
        self.records = RecordsModel()
        self.calibration: CalibrationSummary | None = None
        self.recovery: RecoverySummary | None = None
        self.chart: ConstancyChart | None = None
        self._cal_task: Task | None = None
        self._rec_task: Task | None = None
        self._build()
        session.userChanged.connect(self.refresh)
        session.storeChanged.connect(self.refresh)
        self.refresh()

    # ------------------------------------------------------------ building
    def _build(self) -> None:
        root = QVBoxLayout(self)
        root.setContentsMargins(4, 4, 4, 4)
        self.tabs = QTabWidget(self)
        self.tabs.setObjectName("qaTabs")
        root.addWidget(self.tabs)
        self.tabs.addTab(self._build_calibration(), "Camera calibration")
        self.tabs.addTab(self._build_recovery(), "Recovery (IEC)")
        self.tabs.addTab(self._build_records(), "QA records")
        self.tabs.currentChanged.connect(lambda _i: self._refresh_records())

    def _folder_row(self, form: _Form, name: str) -> QLineEdit:
        edit = QLineEdit(form.widget)
        edit.setObjectName(f"{form.prefix}{name}")
        edit.setPlaceholderText("DICOM folder of the phantom scan")
        edit.textEdited.connect(lambda _t: form.show_problem(None))
        form.edits[name] = edit
        browse = QPushButton("Browse…", form.widget)
        browse.setObjectName(f"{form.prefix}Browse")
        browse.clicked.connect(lambda: self._choose_folder(edit))
        row = QHBoxLayout()
        row.addWidget(edit, 1)
        row.addWidget(browse)
        form.grid.addWidget(QLabel("Phantom folder", form.widget), 0, 0)
        form.grid.addLayout(row, 0, 1, 1, 5)
        return edit

    def _choose_folder(self, edit: QLineEdit) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Phantom DICOM folder", edit.text())
        if folder:
            edit.setText(folder)

    def _run_row(
        self, prefix: str, label: str
    ) -> tuple[QPushButton, QPushButton, QProgressBar, QLabel, QHBoxLayout]:
        row = QHBoxLayout()
        run = QPushButton(label)
        run.setObjectName(f"{prefix}Run")
        cancel = QPushButton("Cancel")
        cancel.setObjectName(f"{prefix}Cancel")
        cancel.setEnabled(False)
        bar = QProgressBar()
        bar.setObjectName(f"{prefix}Progress")
        bar.setRange(0, 1000)
        bar.setVisible(False)
        row.addWidget(run)
        row.addWidget(bar, 1)
        row.addWidget(cancel)
        status = QLabel("")
        status.setObjectName(f"{prefix}Status")
        status.setWordWrap(True)
        return run, cancel, bar, status, row

    def _build_calibration(self) -> QWidget:
        page = QWidget()
        lay = QVBoxLayout(page)
        f = self.cal_form = _Form(page, "qaCal")
        self.cal_folder = self._folder_row(f, "Folder")
        self.cal_activity = f.line(1, 0, "Source activity", "ActivityMbq", "MBq")
        self.cal_time = f.line(1, 1, "Assay time", "ActivityTime", "", "YYYY-MM-DD HH:MM")
        self.cal_nuclide = f.combo(2, 0, "Nuclide", "Nuclide", _nuclide_items())
        self.cal_geometry = f.combo(2, 1, "Geometry", "Geometry", [(g, g) for g in GEOMETRIES])
        self.cal_margin = f.line(3, 0, "VOI margin", "MarginMm", "mm")
        self.cal_margin.setText(CalibrationForm().margin_mm)
        self.cal_sd = f.line(3, 1, "Activity SD", "ActivitySdPercent", "%", "optional")
        self.cal_valid = f.line(4, 0, "Valid until", "ValidUntil", "", "default: 1 year")
        self.cal_tolerance = f.line(4, 1, "Tolerance", "TolerancePercent", "%")
        self.cal_tolerance.setText(CalibrationForm().tolerance_percent)
        f.finish(5)
        lay.addWidget(f.widget)
        (
            self.cal_run_button,
            self.cal_cancel_button,
            self.cal_progress,
            self.cal_status,
            row,
        ) = self._run_row("qaCal", "Run calibration")
        self.cal_run_button.clicked.connect(self.run_calibration)
        self.cal_cancel_button.clicked.connect(
            lambda: self._cancel(self._cal_task, self.cal_status)
        )
        lay.addLayout(row)
        lay.addWidget(self.cal_status)

        box = QGroupBox("Result")
        grid = QGridLayout(box)
        grid.setVerticalSpacing(2)
        self.cal_factor_label = _named(QLabel("-"), "qaCalFactor")
        self.cal_factor_label.setStyleSheet("font-size: 15pt; font-weight: bold;")
        self.cal_verdict_label = _named(QLabel(""), "qaCalVerdict")
        self.cal_verdict_label.setStyleSheet("font-size: 13pt; font-weight: bold;")
        self.cal_device_label = _named(QLabel("-"), "qaCalDevice")
        self.cal_device_label.setWordWrap(True)
        self.cal_date_label = _named(QLabel("-"), "qaCalDate")
        self.cal_valid_label = _named(QLabel("-"), "qaCalValidUntil")
        self.cal_activity_label = _named(QLabel("-"), "qaCalActivity")
        self.cal_activity_label.setWordWrap(True)
        self.cal_constancy_label = _named(QLabel(""), "qaCalConstancy")
        self.cal_constancy_label.setWordWrap(True)
        grid.addWidget(QLabel("Calibration factor"), 0, 0)
        grid.addWidget(self.cal_factor_label, 0, 1)
        grid.addWidget(self.cal_verdict_label, 0, 2, Qt.AlignmentFlag.AlignRight)
        for r, (name, label) in enumerate(
            (
                ("Device", self.cal_device_label),
                ("Measured", self.cal_date_label),
                ("Valid until", self.cal_valid_label),
                ("Source", self.cal_activity_label),
            ),
            start=1,
        ):
            grid.addWidget(QLabel(name), r, 0, Qt.AlignmentFlag.AlignTop)
            grid.addWidget(label, r, 1, 1, 2)
        grid.addWidget(self.cal_constancy_label, 5, 0, 1, 3)
        grid.setColumnStretch(1, 1)
        lay.addWidget(box)

        self.cal_plot = pg.PlotWidget(axisItems={"bottom": pg.DateAxisItem(orientation="bottom")})
        self.cal_plot.setObjectName("qaCalChart")
        self.cal_plot.setMinimumHeight(200)
        _no_height_hint(self.cal_plot)
        self.cal_plot.getAxis("left").enableAutoSIPrefix(False)
        self.cal_plot.setLabel("left", "Calibration factor", units="cps/MBq")
        self.cal_plot.setLabel("bottom", "Measured")
        self.cal_plot.showGrid(x=True, y=True, alpha=0.25)
        self.cal_plot.setTitle("Constancy: factor over time, tolerance band")
        pi = self.cal_plot.getPlotItem()
        pi.setMenuEnabled(False)
        self.band_item = pg.LinearRegionItem(
            orientation="horizontal",
            movable=False,
            brush=(80, 160, 255, 40),
            pen=(80, 160, 255, 90),
        )
        self.band_item.setZValue(-10)
        self.band_item.setVisible(False)
        self.cal_plot.addItem(self.band_item)
        self.reference_line = pg.InfiniteLine(
            angle=0, movable=False, pen=pg.mkPen((80, 160, 255), style=Qt.PenStyle.DashLine)
        )
        self.reference_line.setVisible(False)
        self.cal_plot.addItem(self.reference_line)
        self.trend_line = self.cal_plot.plot([], [], pen=pg.mkPen((170, 170, 170), width=1))
        self.trend_points = pg.ScatterPlotItem(size=10)
        self.cal_plot.addItem(self.trend_points)
        lay.addWidget(self.cal_plot, 1)
        return page

    def _build_recovery(self) -> QWidget:
        page = QWidget()
        lay = QVBoxLayout(page)
        f = self.rec_form = _Form(page, "qaRec")
        self.rec_folder = self._folder_row(f, "Folder")
        self.rec_sphere = f.line(1, 0, "Spheres", "SphereKbqMl", "kBq/mL")
        self.rec_background = f.line(1, 1, "Background", "BackgroundKbqMl", "kBq/mL")
        self.rec_time = f.line(2, 0, "Concentrations at", "ActivityTime", "", "default: scan start")
        self.rec_nuclide = f.combo(2, 1, "Nuclide", "Nuclide", _nuclide_items())
        self.rec_model = f.combo(3, 0, "RC(V) model", "Model", [(m, m) for m in RECOVERY_MODELS])
        self.rec_tolerance = f.line(3, 1, "Tolerance", "TolerancePercent", "%")
        self.rec_tolerance.setText(RecoveryForm().tolerance_percent)
        self.rec_valid = f.line(4, 0, "Valid until", "ValidUntil", "", "default: 1 year")
        self.rec_store_box = QCheckBox("Store the result as a QA record")
        self.rec_store_box.setObjectName("qaRecStore")
        self.rec_store_box.setChecked(True)
        f.grid.addWidget(self.rec_store_box, 4, 3, 1, 3)
        self.rec_diameters = f.line(5, 0, "Sphere diameters", "DiametersMm", "mm", "NEMA IEC six")
        self.rec_centres = f.line(
            6, 0, "Sphere centres", "CentersJson", "", "found (or a JSON file)"
        )
        f.finish(7)
        lay.addWidget(f.widget)
        (
            self.rec_run_button,
            self.rec_cancel_button,
            self.rec_progress,
            self.rec_status,
            row,
        ) = self._run_row("qaRec", "Run recovery analysis")
        self.rec_run_button.clicked.connect(self.run_recovery)
        self.rec_cancel_button.clicked.connect(
            lambda: self._cancel(self._rec_task, self.rec_status)
        )
        lay.addLayout(row)
        lay.addWidget(self.rec_status)
        self.rec_params_label = _named(QLabel("-"), "qaRecParameters")
        self.rec_params_label.setWordWrap(True)
        self.rec_params_label.setStyleSheet("font-weight: bold;")
        lay.addWidget(self.rec_params_label)

        self.rec_plot = pg.PlotWidget()
        self.rec_plot.setObjectName("qaRecChart")
        self.rec_plot.setMinimumHeight(220)
        _no_height_hint(self.rec_plot)
        self.rec_plot.setLogMode(x=True, y=False)
        self.rec_plot.getAxis("left").enableAutoSIPrefix(False)
        self.rec_plot.setLabel("left", "Recovery coefficient (1)")
        self.rec_plot.setYRange(0.0, 1.05)
        self.rec_plot.setLabel("bottom", "Sphere volume (mL)")
        self.rec_plot.showGrid(x=True, y=True, alpha=0.25)
        self.rec_plot.addLegend(offset=(-10, -10))
        self.rec_plot.getPlotItem().setMenuEnabled(False)
        self.rc_curve = self.rec_plot.plot(
            [], [], pen=pg.mkPen((80, 160, 255), width=2), name="fitted RC(V)"
        )
        self.rc_points = self.rec_plot.plot(
            [],
            [],
            pen=None,
            symbol="o",
            symbolSize=9,
            symbolBrush=pg.mkBrush(255, 170, 60),
            name="measured RC (± 1 SD)",
        )
        self.rc_errors = pg.ErrorBarItem(
            x=np.zeros(0), y=np.zeros(0), height=np.zeros(0), beam=0.0, pen=(255, 170, 60)
        )
        self.rec_plot.addItem(self.rc_errors)
        lay.addWidget(self.rec_plot, 1)
        self.sphere_table = read_only_table("qaRecSpheres", SPHERE_COLUMNS, single_selection=False)
        self.sphere_table.setMaximumHeight(200)
        lay.addWidget(self.sphere_table)
        return page

    def _build_records(self) -> QWidget:
        page = QWidget()
        lay = QVBoxLayout(page)
        row = QHBoxLayout()
        row.addWidget(QLabel("Kind"))
        self.kind_box = _named(QComboBox(), "qaRecordsKind")
        for k in KIND_FILTERS:
            self.kind_box.addItem(k or "all kinds", k)
        self.kind_box.currentIndexChanged.connect(lambda _i: self._refresh_records())
        row.addWidget(self.kind_box)
        row.addStretch(1)
        self.records_refresh = _named(QPushButton("Refresh"), "qaRecordsRefresh")
        self.records_refresh.clicked.connect(self._refresh_records)
        row.addWidget(self.records_refresh)
        lay.addLayout(row)
        self.records_table = read_only_table(
            "qaRecordsTable", RECORD_COLUMNS, single_selection=False
        )
        lay.addWidget(self.records_table, 1)
        self.records_summary = _named(QLabel(""), "qaRecordsSummary")
        lay.addWidget(self.records_summary)
        return page

    # ------------------------------------------------------------ refreshing
    def activated(self) -> None:
        self.refresh()

    def may_run(self) -> bool:
        return self.session.store is not None and self.session.may("qa")

    def refresh(self) -> None:
        """Buttons from the user's permission; the record list and chart from the store."""
        self._update_buttons()
        self._refresh_records()
        if self.calibration is None:
            try:
                latest = latest_camera_chart(self.session.store)
            except DosimetryError:  # a store without QA tables: nothing stored to chart
                latest = None
            if latest is not None:
                key, nuclide, chart = latest
                self.cal_device_label.setText(f"{key} ({nuclide}): latest stored calibrations")
                self._draw_chart(chart)
            else:
                self._draw_chart(None)

    def _update_buttons(self) -> None:
        may = self.may_run()
        why = "" if may else f"{self.session.user_label()} may not record QA measurements (qa)"
        for button, task in (
            (self.cal_run_button, self._cal_task),
            (self.rec_run_button, self._rec_task),
        ):
            button.setEnabled(may and task is None)
            button.setToolTip(why or "Analyse the phantom folder and store the result")
        self.cal_cancel_button.setEnabled(self._cal_task is not None)
        self.rec_cancel_button.setEnabled(self._rec_task is not None)

    def _refresh_records(self) -> None:
        try:
            self.records.load(self.session.store, self.kind_box.currentData() or "")
        except DosimetryError as exc:
            self.records_summary.setText(str(exc))
            return
        table = self.records_table
        table.setRowCount(len(self.records.rows))
        for i, r in enumerate(self.records.rows):
            for j, text in enumerate(self.records.cells(r)):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, r.record_id)
                if RECORD_COLUMNS[j] == "Device":
                    item.setToolTip(r.device_key)
                table.setItem(i, j, item)
        self.records_summary.setText(self.records.summary())

    # ---------------------------------------------------------- calibration
    def calibration_form(self) -> CalibrationForm:
        return CalibrationForm(
            folder=self.cal_folder.text(),
            activity_mbq=self.cal_activity.text(),
            activity_time=self.cal_time.text(),
            nuclide=self.cal_nuclide.currentData() or "",
            geometry=self.cal_geometry.currentData(),
            margin_mm=self.cal_margin.text(),
            activity_sd_percent=self.cal_sd.text(),
            valid_until=self.cal_valid.text(),
            tolerance_percent=self.cal_tolerance.text(),
        )

    _CAL_FIELDS = {
        "dicom_dir": "Folder",
        "activity_mbq": "ActivityMbq",
        "activity_time": "ActivityTime",
        "margin_mm": "MarginMm",
        "activity_sd_percent": "ActivitySdPercent",
        "valid_until": "ValidUntil",
        "tolerance_percent": "TolerancePercent",
    }

    def run_calibration(self) -> None:
        store = self.session.store
        if store is None or self._cal_task is not None or not self.may_run():
            return
        try:
            kwargs = self.calibration_form().arguments()
        except InvalidInputError as exc:
            self.cal_form.show_problem(exc, self._CAL_FIELDS)
            return
        self.cal_form.show_problem(None)
        self.cal_progress.setValue(0)
        self.cal_progress.setVisible(True)
        self.cal_status.setText("Calibrating…")
        self._cal_task = self.session.run(
            run_camera_calibration,
            store,
            created_by=author_name(self.session.actor),
            description="Camera calibration",
            reload_case=False,
            on_success=self._cal_succeeded,
            on_failure=lambda m, d: self._failed("Camera calibration", m, d, self.cal_status),
            on_progress=lambda f, m: self._progress(self.cal_progress, self.cal_status, f, m),
            on_cancelled=lambda: self.cal_status.setText("Calibration cancelled: nothing stored."),
            **kwargs,
        )
        self._cal_task.finished.connect(self._cal_finished)
        self._update_buttons()

    def _cal_succeeded(self, run: Any) -> None:
        s = self.calibration = CalibrationSummary.from_run(run)
        self.cal_factor_label.setText(s.factor_text)
        self.cal_device_label.setText(s.device_text)
        self.cal_device_label.setToolTip(s.device_key)
        self.cal_date_label.setText(s.measured_text)
        self.cal_valid_label.setText(s.valid_until_text)
        self.cal_activity_label.setText(s.activity_text)
        colour = _PASS_COLOUR if s.verdict == "PASS" else ERROR_COLOUR
        self.cal_verdict_label.setText(s.verdict)
        self.cal_verdict_label.setStyleSheet(
            f"font-size: 13pt; font-weight: bold; color: {colour};"
        )
        self.cal_constancy_label.setText(
            s.verdict_text + "".join(f"\nwarning: {w}" for w in s.warnings)
        )
        self.cal_status.setText(f"Stored as {run.record.record_id} by {run.record.created_by}.")
        self._draw_chart(s.chart)
        self._refresh_records()

    def _cal_finished(self) -> None:
        self._cal_task = None
        self.cal_progress.setVisible(False)
        self._update_buttons()

    def _draw_chart(self, chart: ConstancyChart | None) -> None:
        self.chart = chart
        if chart is None or not chart.values_cps_per_mbq:
            self.trend_points.setData([], [])
            self.trend_line.setData([], [])
            self.band_item.setVisible(False)
            self.reference_line.setVisible(False)
            return
        x, y = list(chart.x_s), list(chart.values_cps_per_mbq)
        brushes = [
            pg.mkBrush(*(_WARN_BRUSH if st == "warning" else _OK_BRUSH)) for st in chart.statuses
        ]
        self.trend_points.setData(x=x, y=y, brush=brushes)
        self.trend_line.setData(x, y)
        band = chart.band_cps_per_mbq
        if band is not None and chart.reference_cps_per_mbq is not None:
            self.band_item.setRegion(band)
            self.band_item.setVisible(True)
            self.reference_line.setValue(chart.reference_cps_per_mbq)
            self.reference_line.setVisible(True)
            lo, hi = min([*y, band[0]]), max([*y, band[1]])
            pad = 0.15 * (hi - lo or abs(hi) or 1.0)
            self.cal_plot.setYRange(lo - pad, hi + pad)
        day = 86400.0
        span = max(x) - min(x)
        self.cal_plot.setXRange(
            min(x) - max(span * 0.1, 2 * day), max(x) + max(span * 0.1, 2 * day)
        )

    # ------------------------------------------------------------- recovery
    def recovery_form(self) -> RecoveryForm:
        return RecoveryForm(
            folder=self.rec_folder.text(),
            sphere_kbq_ml=self.rec_sphere.text(),
            background_kbq_ml=self.rec_background.text(),
            activity_time=self.rec_time.text(),
            nuclide=self.rec_nuclide.currentData() or "",
            model=self.rec_model.currentData(),
            valid_until=self.rec_valid.text(),
            tolerance_percent=self.rec_tolerance.text(),
            store_result=self.rec_store_box.isChecked(),
            diameters_mm=self.rec_diameters.text(),
            centers_json=self.rec_centres.text(),
        )

    _REC_FIELDS = {
        "dicom_dir": "Folder",
        "sphere_kbq_ml": "SphereKbqMl",
        "background_kbq_ml": "BackgroundKbqMl",
        "activity_time": "ActivityTime",
        "valid_until": "ValidUntil",
        "tolerance_percent": "TolerancePercent",
        "diameters_mm": "DiametersMm",
        "centers_json": "CentersJson",
    }

    def run_recovery(self) -> None:
        store = self.session.store
        if store is None or self._rec_task is not None or not self.may_run():
            return
        try:
            kwargs = self.recovery_form().arguments()
        except InvalidInputError as exc:
            self.rec_form.show_problem(exc, self._REC_FIELDS)
            return
        self.rec_form.show_problem(None)
        self.rec_progress.setValue(0)
        self.rec_progress.setVisible(True)
        self.rec_status.setText("Measuring the recovery coefficients…")
        self._rec_task = self.session.run(
            run_recovery,
            store,
            created_by=author_name(self.session.actor),
            description="Recovery coefficients",
            reload_case=False,
            on_success=self._rec_succeeded,
            on_failure=lambda m, d: self._failed("Recovery coefficients", m, d, self.rec_status),
            on_progress=lambda f, m: self._progress(self.rec_progress, self.rec_status, f, m),
            on_cancelled=lambda: self.rec_status.setText(
                "Recovery analysis cancelled: nothing stored."
            ),
            **kwargs,
        )
        self._rec_task.finished.connect(self._rec_finished)
        self._update_buttons()

    def _rec_succeeded(self, run: Any) -> None:
        s = self.recovery = RecoverySummary.from_run(run)
        self.rec_params_label.setText(s.parameters_text)
        self.rec_status.setText(s.record_text + "".join(f"\nwarning: {w}" for w in s.warnings))
        self.rc_points.setData(x=list(s.volumes_ml), y=list(s.rc))
        self.rc_curve.setData(list(s.curve_volumes_ml), list(s.curve_rc))
        have_sd = [i for i, sd in enumerate(s.rc_sd) if sd is not None]
        # error bars are drawn in the plot's log10(volume) coordinates
        self.rc_errors.setData(
            x=np.array([math.log10(s.volumes_ml[i]) for i in have_sd]),
            y=np.array([s.rc[i] for i in have_sd]),
            height=np.array([2.0 * (s.rc_sd[i] or 0.0) for i in have_sd]),
        )
        self.sphere_table.setRowCount(len(s.volumes_ml))
        for i, cells in enumerate(s.sphere_cells()):
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.sphere_table.setItem(i, j, item)
        self._refresh_records()

    def _rec_finished(self) -> None:
        self._rec_task = None
        self.rec_progress.setVisible(False)
        self._update_buttons()

    # --------------------------------------------------------------- common
    def _progress(self, bar: QProgressBar, status: QLabel, fraction: float, message: str) -> None:
        bar.setValue(int(round(1000 * fraction)))
        status.setText(message)

    def _failed(self, title: str, message: str, details: str, status: QLabel) -> None:
        status.setText(f"{title} failed: nothing was stored.")
        error_display.show_error(self, title, message, details)

    def _cancel(self, task: Task | None, status: QLabel) -> None:
        if task is not None:
            task.cancel()
            status.setText("Cancelling…")

    def is_running(self) -> bool:
        """A calibration or recovery analysis runs in a worker (for tests and the tour)."""
        return self._cal_task is not None or self._rec_task is not None
