"""The kinetics step: TAC, candidate fits, model table, override, options, TIA map.

The view gathers input and shows what :mod:`app.steps.kinetics.model`
announces; the core computes: fits through ``session.run`` of
:func:`~dosimetry_core.pipeline.kinetics_review.fit_case_kinetics` (all VOIs,
or the selected VOI with a forced model: the override is stored with the
VOI's kinetics), the voxel-wise TIA map through ``session.run`` of
:func:`~dosimetry_core.pipeline.tia_map.compute_tia_map`.  A user without the
``compute`` permission (physician, technologist) sees everything with the
buttons that compute disabled.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.common import error_display
from app.common.run_control import RunControl
from app.common.widgets import named as _named
from app.common.widgets import read_only_table as _table
from app.session import CaseSession
from app.steps.base import StepView
from app.steps.kinetics.model import (
    MODEL_CHOICES,
    RECOVERY_MODES,
    STP_COLUMNS,
    STP_METHODS,
    TABLE_COLUMNS,
    VOI_COLUMNS,
    FitRequest,
    KineticsModel,
    PlotData,
)
from dosimetry_core.errors import DosimetryError
from dosimetry_core.model import Case
from dosimetry_core.pipeline.kinetics_review import fit_case_kinetics, recovery_choices
from dosimetry_core.pipeline.tia_map import compute_tia_map

__all__ = ["CURVE_COLOURS", "KineticsStepView"]

CURVE_COLOURS: dict[str, tuple[int, int, int]] = {
    "mono": (31, 119, 180),
    "biexp-uptake": (255, 127, 14),
    "biexp": (44, 160, 44),
    "triexp": (148, 103, 189),
    "trapezoid": (140, 140, 140),
}
_BAR_PEN = pg.mkPen((170, 170, 170), width=1.5)
DEFAULT_FWHM_MM = 11.0
"""Starting value of the PSF FWHM box (a typical Lu-177 SPECT resolution, mm)."""


class KineticsStepView(StepView):
    """Kinetics step (module docstring)."""

    step_id = "kinetics"
    title = "Kinetics"
    action = "compute"

    def __init__(self, session: CaseSession, parent: QWidget | None = None) -> None:
        super().__init__(session, parent)
        self.model = KineticsModel(None, False)
        self._selected_id: str | None = None
        self._updating = False
        self.plot_data: PlotData | None = None
        self.curve_items: dict[str, Any] = {}
        self.points_item: Any = None
        self.error_item: Any = None
        self.residual_item: Any = None
        self._build()
        session.caseChanged.connect(self._on_case_changed)
        session.userChanged.connect(self.refresh)
        self.refresh()

    def sizeHint(self) -> QSize:
        """Modest: the step panel's scroll area then fits the view instead of scrolling it."""
        return QSize(640, 720)

    def heightForWidth(self, width: int) -> int:
        """None (-1): the word-wrapped labels would make the step panel's scroll area
        size the view to the (tall) preferred heights of its plots, not the panel's."""
        return -1

    # ------------------------------------------------------------- building
    def _build(self) -> None:
        root = QVBoxLayout(self)

        run = QHBoxLayout()
        self.fit_button = _named(QPushButton("Fit all VOIs"), "kineticsFitAll")
        self.fit_button.clicked.connect(self._fit_all)
        run.addWidget(self.fit_button)
        run.addWidget(QLabel("Partial volume:"))
        self.recovery_box = _named(QComboBox(), "kineticsRecoveryMode")
        for key, label in RECOVERY_MODES:
            self.recovery_box.addItem(label, key)
        self.recovery_box.currentIndexChanged.connect(self._update_options)
        run.addWidget(self.recovery_box)
        self.fwhm_spin = _named(QDoubleSpinBox(), "kineticsRecoveryFwhm")
        self.fwhm_spin.setRange(1.0, 50.0)
        self.fwhm_spin.setDecimals(1)
        self.fwhm_spin.setSuffix(" mm")
        self.fwhm_spin.setValue(DEFAULT_FWHM_MM)
        self.fwhm_spin.setToolTip("SPECT resolution (FWHM, mm): shape-specific recovery per VOI")
        run.addWidget(self.fwhm_spin)
        self.record_box = _named(QComboBox(), "kineticsRecoveryRecord")
        self.record_box.setToolTip("RC(volume) curve of a stored sphere-phantom measurement")
        self.record_box.setMinimumContentsLength(24)
        run.addWidget(self.record_box)
        self.tia_map_button = _named(QPushButton("Voxel-wise TIA map"), "kineticsTiaMap")
        self.tia_map_button.clicked.connect(self._tia_map)
        run.addWidget(self.tia_map_button)
        self.progress_bar = _named(QProgressBar(), "kineticsProgress")
        run.addWidget(self.progress_bar, 1)
        self.cancel_button = _named(QPushButton("Cancel"), "kineticsCancel")
        self.cancel_button.setToolTip("Stop the computation; nothing is saved")
        run.addWidget(self.cancel_button)
        root.addLayout(run)
        self.status_label = _named(QLabel(""), "kineticsStatus")
        self.status_label.setWordWrap(True)
        root.addWidget(self.status_label)
        self.runner = RunControl(
            self,
            self.session,
            progress_bar=self.progress_bar,
            status_label=self.status_label,
            cancel_button=self.cancel_button,
            title="Kinetics",
            failed_text="The computation failed: nothing was saved.",
            cancelled_text="Cancelled: the computation under way was not saved.",
            on_idle=self._update_options,
        )
        self.tia_map_label = _named(QLabel(""), "kineticsTiaMapLabel")
        self.tia_map_label.setWordWrap(True)
        root.addWidget(self.tia_map_label)

        split = QSplitter(Qt.Orientation.Vertical)
        root.addWidget(split, 1)

        self.voi_table = _table("kineticsVoiTable", VOI_COLUMNS)
        self.voi_table.itemSelectionChanged.connect(self._on_voi_selection)
        split.addWidget(self.voi_table)

        plots = QWidget()
        pl = QVBoxLayout(plots)
        pl.setContentsMargins(0, 0, 0, 0)
        self.summary_label = _named(QLabel(""), "kineticsSummary")
        self.summary_label.setWordWrap(True)
        pl.addWidget(self.summary_label)
        self.warning_label = _named(QLabel(""), "kineticsWarnings")
        self.warning_label.setWordWrap(True)
        self.warning_label.setStyleSheet("color: #e0a030;")
        pl.addWidget(self.warning_label)
        self.tac_plot = _named(pg.PlotWidget(), "kineticsTacPlot")
        # the time axis is labelled once, under the residual plot that shares it
        self.tac_plot.setLabel("left", "Activity", units="MBq")
        self.tac_plot.getAxis("left").enableAutoSIPrefix(False)
        self.tac_plot.getAxis("bottom").enableAutoSIPrefix(False)
        self.tac_plot.showGrid(x=True, y=True, alpha=0.25)
        self.legend = self.tac_plot.addLegend(offset=(-10, 10), brush=(20, 20, 20, 170))
        pl.addWidget(self.tac_plot, 3)
        self.residual_plot = _named(pg.PlotWidget(), "kineticsResidualPlot")
        self.residual_plot.setLabel("bottom", "Time after administration", units="h")
        self.residual_plot.setLabel("left", "Residual", units="MBq")
        self.residual_plot.getAxis("left").setToolTip("Residual = fitted curve − measured point")
        self.residual_plot.getAxis("left").enableAutoSIPrefix(False)
        self.residual_plot.getAxis("bottom").enableAutoSIPrefix(False)
        self.residual_plot.showGrid(x=True, y=True, alpha=0.25)
        self.residual_plot.setXLink(self.tac_plot)
        self.residual_plot.setMinimumHeight(125)
        self.residual_plot.setMaximumHeight(150)
        self.tac_plot.setMinimumHeight(200)
        pl.addWidget(self.residual_plot, 1)
        self.sd_label = _named(QLabel(""), "kineticsPointSd")
        pl.addWidget(self.sd_label)
        split.addWidget(plots)

        self.tabs = _named(QTabWidget(), "kineticsTabs")
        models = QWidget()
        ml = QVBoxLayout(models)
        ml.setContentsMargins(2, 2, 2, 2)
        self.model_table = _table("kineticsModelTable", TABLE_COLUMNS)
        weight = self.model_table.horizontalHeaderItem(TABLE_COLUMNS.index("Weight"))
        if weight is not None:
            weight.setToolTip("Akaike weight: exp(-ΔAICc/2), normalised (Burnham & Anderson 2002)")
        self.model_table.verticalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents
        )
        ml.addWidget(self.model_table, 1)
        over = QHBoxLayout()
        over.addWidget(QLabel("Model for this VOI:"))
        self.override_box = _named(QComboBox(), "kineticsOverrideModel")
        for m in MODEL_CHOICES:
            self.override_box.addItem("auto (AICc)" if m == "auto" else m, m)
        over.addWidget(self.override_box)
        self.override_button = _named(QPushButton("Refit this VOI"), "kineticsOverride")
        self.override_button.setToolTip(
            "Fit the selected VOI again with this model (auto: AICc selection); the choice "
            "is stored with its kinetics and kept when all VOIs are refitted"
        )
        self.override_button.clicked.connect(self._override)
        over.addWidget(self.override_button)
        over.addStretch(1)
        ml.addLayout(over)
        self.tabs.addTab(models, "Models")

        stp = QWidget()
        sl = QVBoxLayout(stp)
        sl.setContentsMargins(2, 2, 2, 2)
        row = QHBoxLayout()
        row.addWidget(QLabel("Single time point:"))
        self.stp_box = _named(QComboBox(), "kineticsStpMethod")
        for key, label in STP_METHODS:
            self.stp_box.addItem(label, key)
        self.stp_box.currentIndexChanged.connect(self._update_stp)
        row.addWidget(self.stp_box)
        row.addWidget(QLabel("T_eff:"))
        self.teff_spin = _named(QDoubleSpinBox(), "kineticsStpTeff")
        self.teff_spin.setRange(0.1, 10000.0)
        self.teff_spin.setDecimals(1)
        self.teff_spin.setSuffix(" h")
        self.teff_spin.setValue(40.0)
        self.teff_spin.setToolTip("Effective half-life for Madsen (the population's when known)")
        self.teff_spin.valueChanged.connect(self._update_stp)
        row.addWidget(self.teff_spin)
        row.addStretch(1)
        sl.addLayout(row)
        self.stp_note = _named(QLabel(""), "kineticsStpNote")
        self.stp_note.setWordWrap(True)
        sl.addWidget(self.stp_note)
        self.stp_table = _table("kineticsStpTable", STP_COLUMNS)
        sl.addWidget(self.stp_table, 1)
        self.population_label = _named(QLabel(""), "kineticsPopulation")
        self.population_label.setWordWrap(True)
        sl.addWidget(self.population_label)
        self.tabs.addTab(stp, "Single time point · population")
        split.addWidget(self.tabs)
        split.setSizes([200, 400, 200])
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 1)
        split.setStretchFactor(2, 0)

    # ------------------------------------------------------------ refreshing
    def activated(self) -> None:
        self.refresh()

    def _on_case_changed(self, _case: Case | None) -> None:
        self.refresh()

    def refresh(self) -> None:
        """Rebuild the VOI list, the options and the selected VOI's panels from the case."""
        store = self.session.store
        records = []
        if store is not None and self.session.case is not None:
            try:
                records = recovery_choices(store)
            except DosimetryError as exc:
                self.status_label.setText(f"QA recovery records could not be read: {exc}")
        self.model = KineticsModel(self.session.case, self.session.may("compute"), records)
        self._updating = True
        try:
            keep = self.record_box.currentData()
            self.record_box.clear()
            for record_id, label, usable in self.model.recovery_labels():
                self.record_box.addItem(label, record_id)
                item = self.record_box.model().item(self.record_box.count() - 1)  # type: ignore[attr-defined]
                if item is not None and not usable:
                    item.setEnabled(False)
            if self.record_box.count() == 0:
                self.record_box.addItem("no recovery records in this store", None)
            idx = self.record_box.findData(keep)
            if idx >= 0:
                self.record_box.setCurrentIndex(idx)
            rows = self.model.rows
            self.voi_table.setRowCount(len(rows))
            for i, r in enumerate(rows):
                for j, text in enumerate(r.cells()):
                    item = QTableWidgetItem(text)
                    item.setData(Qt.ItemDataRole.UserRole, r.voi_id)
                    if j == 2 and r.review_flag:
                        item.setForeground(Qt.GlobalColor.darkYellow)
                    if j == 4:
                        item.setTextAlignment(
                            Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                        )
                    self.voi_table.setItem(i, j, item)
            idx = self.model.index_of(self._selected_id)
            if idx < 0 and rows:
                idx = 0
            if idx >= 0:
                self.voi_table.selectRow(idx)
                self._selected_id = rows[idx].voi_id
            else:
                self.voi_table.clearSelection()
                self._selected_id = None
        finally:
            self._updating = False
        if self.session.case is None:
            self.status_label.setText("No case open.")
            self.tia_map_label.setText("")
        else:
            fitted = f"{self.model.n_fitted} of {len(self.model.rows)} VOI(s) fitted. "
            self.tia_map_label.setText(fitted + self.model.tia_map_text())
        self._update_options()
        self._show_voi()

    def _update_options(self) -> None:
        mode = self.recovery_box.currentData()
        running = self.runner.running
        may = self.model.may_compute
        self.fwhm_spin.setVisible(mode == "fwhm")
        self.record_box.setVisible(mode == "record")
        self.fit_button.setEnabled(self.model.can_fit and not running)
        self.recovery_box.setEnabled(may and not running)
        self.fwhm_spin.setEnabled(may and not running)
        self.record_box.setEnabled(may and not running)
        self.override_box.setEnabled(self.model.can_override(self._selected_id) and not running)
        self.override_button.setEnabled(self.model.can_override(self._selected_id) and not running)
        self.tia_map_button.setEnabled(self.model.can_tia_map and not running)
        self.cancel_button.setEnabled(running)
        if not may and self.session.case is not None:
            tip = "Your role may look at the kinetics but not fit them"
            for b in (self.fit_button, self.override_button, self.tia_map_button):
                b.setToolTip(tip)
        else:
            self.fit_button.setToolTip("Fit every VOI's time-activity curve (core: kinetics fit)")
            self.tia_map_button.setToolTip(
                "Fit every voxel in the body and keep the TIA map with the case (for voxel dose)"
            )

    def selected_voi_id(self) -> str | None:
        return self._selected_id

    def _on_voi_selection(self) -> None:
        if self._updating:
            return
        items = self.voi_table.selectedItems()
        self._selected_id = items[0].data(Qt.ItemDataRole.UserRole) if items else None
        self._update_options()
        self._show_voi()

    def _show_voi(self) -> None:
        vid = self._selected_id
        self.summary_label.setText(self.model.summary(vid))
        self.warning_label.setText(self.model.warnings(vid))
        self.warning_label.setVisible(bool(self.model.warnings(vid)))
        cells = self.model.table(vid)
        self.model_table.setRowCount(len(cells))
        for i, row in enumerate(cells):
            selected = row[0].startswith("✔")
            for j, text in enumerate(row):
                item = QTableWidgetItem(text)
                if selected:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                self.model_table.setItem(i, j, item)
        k = self.model.kinetics(vid)
        self._updating = True
        try:
            want = k.model_requested if k is not None else "auto"
            idx = self.override_box.findData(want)
            self.override_box.setCurrentIndex(max(idx, 0))
            t_eff, text = self.model.population(vid)
            self.population_label.setText(text)
            if t_eff is not None:
                self.teff_spin.setValue(t_eff)
        finally:
            self._updating = False
        self._draw(self.model.plot(vid))
        self._update_stp()

    def _update_stp(self) -> None:
        if self._updating:
            return
        method = self.stp_box.currentData()
        self.teff_spin.setEnabled(method == "madsen")
        t_eff = self.teff_spin.value() if method == "madsen" else None
        cells, note = self.model.stp(self._selected_id, method, t_eff)
        self.stp_note.setText(note)
        self.stp_table.setRowCount(len(cells))
        for i, row in enumerate(cells):
            for j, text in enumerate(row):
                self.stp_table.setItem(i, j, QTableWidgetItem(text))

    def _draw(self, data: PlotData | None) -> None:
        self.plot_data = data
        self.tac_plot.clear()
        self.residual_plot.clear()
        self.legend.clear()
        self.curve_items = {}
        self.points_item = self.error_item = self.residual_item = None
        if data is None:
            self.sd_label.setText("")
            return
        for c in data.curves:
            colour = CURVE_COLOURS.get(c.model, (0, 0, 0))
            if c.selected:
                pen = pg.mkPen(colour, width=3)
                name = f"{c.model} (selected)"
            else:
                pen = pg.mkPen(colour, width=1.5, style=Qt.PenStyle.DashLine)
                name = c.model
            self.curve_items[c.model] = self.tac_plot.plot(
                c.time_h, c.activity_mbq, pen=pen, name=name
            )
        x = np.asarray(data.time_h, dtype=float)
        y = np.asarray(data.activity_mbq, dtype=float)
        sd = np.asarray(data.sd_mbq, dtype=float)
        self.error_item = pg.ErrorBarItem(x=x, y=y, top=sd, bottom=sd, beam=2.0, pen=_BAR_PEN)
        self.tac_plot.addItem(self.error_item)
        self.points_item = self.tac_plot.plot(
            x,
            y,
            pen=None,
            symbol="o",
            symbolSize=8,
            symbolBrush=(220, 40, 40),
            name="measured ± 1 SD",
        )
        self.sd_label.setText(f"Error bars: 1 SD of each point ({data.sd_source}).")
        if data.residuals_mbq:
            r = np.asarray(data.residuals_mbq, dtype=float)
            self.residual_plot.addItem(pg.InfiniteLine(pos=0, angle=0, pen=_BAR_PEN))
            self.residual_item = self.residual_plot.plot(
                x, r, pen=None, symbol="o", symbolSize=7, symbolBrush=(220, 40, 40)
            )
            self.residual_plot.addItem(
                pg.ErrorBarItem(x=x, y=r, top=sd, bottom=sd, beam=2.0, pen=_BAR_PEN)
            )
        self.tac_plot.enableAutoRange()

    # --------------------------------------------------------------- actions
    def fit_request(self, vois: tuple[str, ...] | None, model: str | None) -> FitRequest:
        mode = self.recovery_box.currentData()
        fwhm = self.fwhm_spin.value() if mode == "fwhm" else None
        record = self.record_box.currentData() if mode == "record" else None
        return FitRequest(vois, model, fwhm, record)

    def _user(self) -> str:
        actor = self.session.actor
        return actor.username if actor is not None else ""

    def _fit_all(self) -> None:
        self._start_fit(self.fit_request(None, None), "Fitting all VOIs")

    def _override(self) -> None:
        row = self.model.row(self._selected_id)
        if row is None:
            return
        model = self.override_box.currentData()
        self._start_fit(self.fit_request((row.voi_id,), model), f"Refitting {row.name} ({model})")

    def _start_fit(self, req: FitRequest, what: str) -> None:
        case, store = self.session.case, self.session.store
        if case is None or store is None or self.runner.running:
            return
        if self.recovery_box.currentData() == "record" and not req.recovery_record_id:
            error_display.show_error(
                self, "Kinetics", "Choose a QA recovery record (none is stored in this store)."
            )
            return
        self.runner.start(
            fit_case_kinetics,
            store,
            case.case_id,
            **req.kwargs(),
            user=self._user(),
            busy_text=f"{what}…",
            description="Kinetics fit",
            on_success=self._fit_succeeded,
            title="Kinetics fit",
            failed_text="Kinetics fit failed: nothing was saved.",
        )
        self._update_options()

    def _tia_map(self) -> None:
        case, store = self.session.case, self.session.store
        if case is None or store is None or self.runner.running:
            return
        self.runner.start(
            compute_tia_map,
            store,
            case.case_id,
            user=self._user(),
            busy_text="Computing the voxel-wise TIA map…",
            description="Voxel-wise TIA map",
            on_success=self._tia_map_succeeded,
            title="Voxel-wise TIA map",
            failed_text="Voxel-wise TIA map failed: nothing was saved.",
        )
        self._update_options()

    def cancel(self) -> None:
        """Stop the running computation (the core saves nothing when cancelled)."""
        self.runner.cancel()

    def is_running(self) -> bool:
        return self.runner.running

    def _fit_succeeded(self, result: Any) -> None:
        failed = [r.voi_name for r in result if r.error]
        text = f"Fitted {len(result) - len(failed)} VOI(s)."
        if failed:
            text += " No fit for: " + ", ".join(failed) + " (see each VOI)."
        self.status_label.setText(text)

    def _tia_map_succeeded(self, result: Any) -> None:
        counts = ", ".join(f"{k} {v}" for k, v in result.counts.items())
        self.status_label.setText(
            f"Voxel-wise TIA map made: {result.total_tia_mbq_h:,.1f} MBq·h in "
            f"{result.n_voxels:,} voxels; shown in the viewer's TIA layer."
        )
        self.status_label.setToolTip(f"Voxels by model: {counts}")
