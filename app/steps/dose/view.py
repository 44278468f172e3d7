"""The dose step: choose the engine, run it, and read the DVH and the dose table with limits.

The view gathers input and shows what :mod:`app.steps.dose.model` announces; the
core computes (:func:`dosimetry_core.pipeline.dose.compute_dose` in a worker
through ``session.run``, with progress and cancel; a refused run shows the
core's message and saves nothing).  The viewer beside the steps reloads the
case on ``caseChanged`` and shows the newest dose map as a colour wash with
isodose lines.  A physician or technologist sees the table and the DVH with Run
disabled (``session.may("compute")``).
"""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.common.run_control import RunControl
from app.common.widgets import named as _named
from app.session import CaseSession
from app.steps.base import StepView
from app.steps.dose.model import (
    COLUMNS,
    COMPONENTS,
    DVH_BINS,
    ENGINES,
    DoseModel,
    RunSettings,
    engine_label,
)
from app.workers import Task
from dosimetry_core.model.case import Case

__all__ = ["DoseStepView"]

_FAIL_BRUSH = QBrush(QColor("#ffcdd2"))
_PASS_BRUSH = QBrush(QColor("#c8e6c9"))
_DRAFT_BRUSH = QBrush(QColor("#fff3c4"))
_INK = QBrush(QColor("#1a1a1a"))
"""Text on the light PASS/FAIL/draft backgrounds (readable in the dark and the light theme)."""
_NUMERIC = range(1, COLUMNS.index("Review"))
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
_PEN_STYLES = (
    Qt.PenStyle.SolidLine,
    Qt.PenStyle.DashLine,
    Qt.PenStyle.DotLine,
    Qt.PenStyle.DashDotLine,
)
"""Curves of VOIs of similar colour (both kidneys) stay apart: the style cycles by tick order."""


def _swatch(rgb: tuple[int, int, int]) -> QIcon:
    """A square of the VOI's colour (coloured text is unreadable for dark VOI colours)."""
    pix = QPixmap(12, 12)
    pix.fill(QColor(*rgb))
    return QIcon(pix)


class DoseStepView(StepView):
    """Dose step (module docstring)."""

    step_id = "dose"
    title = "Dose"
    action = "compute"

    def __init__(self, session: CaseSession, parent: QWidget | None = None) -> None:
        super().__init__(session, parent)
        self.model = DoseModel(None, False)
        self._limits_protocol: str | None = None  # None: the case's protocol
        self._checked: set[str] = set()
        """Names of the VOIs whose DVH is shown (kept across runs and summaries)."""
        self._curves: dict[str, pg.PlotDataItem] = {}
        self._spare: list[pg.PlotDataItem] = []
        """Plot items of unticked VOIs, hidden, reused for the next tick."""
        self._dvh_task: Task | None = None
        self._dvh_cache: dict[str, Any] = {}
        """DVHs the core computed for summaries stored without them, by dose map id."""
        self._updating = False
        self._build()
        session.caseChanged.connect(self._on_case_changed)
        session.userChanged.connect(self.refresh)
        self.refresh()

    # ------------------------------------------------------------- building
    def _build(self) -> None:
        root = QVBoxLayout(self)

        run_row = QHBoxLayout()
        run_row.addWidget(QLabel("Engine:"))
        self.engine_box = _named(QComboBox(), "doseEngine")
        for method, label in ENGINES:
            self.engine_box.addItem(label, method)
        self.engine_box.setCurrentIndex(self.engine_box.findData("vsv"))
        self.engine_box.currentIndexChanged.connect(self._on_engine)
        run_row.addWidget(self.engine_box)
        self.run_button = _named(QPushButton("Run"), "doseRun")
        self.run_button.clicked.connect(self._run)
        run_row.addWidget(self.run_button)
        self.progress_bar = _named(QProgressBar(), "doseProgress")
        run_row.addWidget(self.progress_bar, 1)
        self.cancel_button = _named(QPushButton("Cancel"), "doseCancel")
        self.cancel_button.setToolTip("Stop the dose calculation; nothing is saved")
        run_row.addWidget(self.cancel_button)
        run_row.addStretch(0)
        root.addLayout(run_row)

        self.mc_box = _named(QGroupBox("Monte Carlo"), "doseMcOptions")
        mc = QHBoxLayout(self.mc_box)
        mc.addWidget(QLabel("Histories:"))
        self.histories_spin = _named(QSpinBox(), "doseHistories")
        self.histories_spin.setRange(1_000, 100_000_000)
        self.histories_spin.setSingleStep(100_000)
        self.histories_spin.setGroupSeparatorShown(True)
        self.histories_spin.setValue(RunSettings().mc_histories)
        self.histories_spin.setToolTip("Photon histories (the most the run uses)")
        mc.addWidget(self.histories_spin)
        self.target_check = _named(QCheckBox("Stop at"), "doseTargetOn")
        self.target_check.setToolTip(
            "Stop when the 1-SD relative uncertainty of the mean dose in the VOI reaches this"
        )
        self.target_check.toggled.connect(self._on_target_toggled)
        mc.addWidget(self.target_check)
        self.target_spin = _named(QDoubleSpinBox(), "doseTargetPercent")
        self.target_spin.setRange(0.1, 50.0)
        self.target_spin.setDecimals(1)
        self.target_spin.setSingleStep(0.5)
        self.target_spin.setValue(2.0)
        self.target_spin.setSuffix(" %")
        mc.addWidget(self.target_spin)
        mc.addWidget(QLabel("in"))
        self.target_voi_box = _named(QComboBox(), "doseTargetVoi")
        mc.addWidget(self.target_voi_box)
        mc.addWidget(QLabel("of the"))
        self.component_box = _named(QComboBox(), "doseTargetComponent")
        for comp, label in COMPONENTS:
            self.component_box.addItem(label, comp)
        self.component_box.setToolTip(
            "photon: the statistical part (electrons are deposited deterministically); "
            "total: photon + electron dose"
        )
        mc.addWidget(self.component_box)
        mc.addWidget(QLabel("dose"))
        mc.addStretch(1)
        root.addWidget(self.mc_box)

        self.status_label = _named(QLabel(""), "doseStatus")
        self.status_label.setWordWrap(True)
        root.addWidget(self.status_label)
        self.runner = RunControl(
            self,
            self.session,
            progress_bar=self.progress_bar,
            status_label=self.status_label,
            cancel_button=self.cancel_button,
            title="Dose",
            failed_text="The dose calculation was refused: nothing was saved.",
            cancelled_text="Dose calculation cancelled: nothing was saved.",
            on_idle=self._update_buttons,
        )

        show_row = QHBoxLayout()
        show_row.addWidget(QLabel("Show:"))
        self.summary_box = _named(QComboBox(), "doseSummary")
        self.summary_box.setToolTip("Which stored dose calculation (one per engine) to show")
        self.summary_box.currentIndexChanged.connect(self._on_summary)
        show_row.addWidget(self.summary_box, 1)
        show_row.addWidget(QLabel("Limits of:"))
        self.protocol_box = _named(QComboBox(), "doseLimitsProtocol")
        self.protocol_box.setToolTip(
            "Protocol whose absorbed-dose limits are checked against each VOI's mean dose"
        )
        self.protocol_box.currentIndexChanged.connect(self._on_protocol)
        show_row.addWidget(self.protocol_box)
        self.risk_check = _named(QCheckBox("risk factors"), "doseRiskFactors")
        self.risk_check.setToolTip("Use the protocol's limits for patients with risk factors")
        self.risk_check.toggled.connect(self._on_protocol)
        show_row.addWidget(self.risk_check)
        root.addLayout(show_row)

        split = QSplitter(Qt.Orientation.Vertical)
        root.addWidget(split, 1)

        dvh_row = QSplitter(Qt.Orientation.Horizontal)
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        self.voi_list = _named(QListWidget(), "doseDvhVois")
        self.voi_list.setToolTip("Tick the VOIs whose cumulative DVH is plotted")
        self.voi_list.itemChanged.connect(self._on_voi_item)
        ll.addWidget(self.voi_list, 1)
        self.dvh_status = _named(QLabel(""), "doseDvhStatus")
        self.dvh_status.setWordWrap(True)
        ll.addWidget(self.dvh_status)
        dvh_row.addWidget(left)
        self.plot = _named(pg.PlotWidget(), "doseDvhPlot")
        self.plot.setLabel("bottom", "Dose", units="Gy")
        self.plot.setLabel("left", "Volume", units="%")
        self.plot.getAxis("bottom").enableAutoSIPrefix(False)
        self.plot.getAxis("left").enableAutoSIPrefix(False)
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        self.plot.setYRange(0, 102, padding=0)
        self.plot.setMenuEnabled(False)
        self.legend = self.plot.addLegend(offset=(-10, 10))
        dvh_row.addWidget(self.plot)
        dvh_row.setSizes([170, 600])
        split.addWidget(dvh_row)

        bottom = QWidget()
        bl = QVBoxLayout(bottom)
        bl.setContentsMargins(0, 0, 0, 0)
        self.table = _named(QTableWidget(0, len(COLUMNS)), "doseTable")
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        bl.addWidget(self.table, 1)
        self.caption_label = _named(QLabel(""), "doseCaption")
        self.caption_label.setWordWrap(True)
        bl.addWidget(self.caption_label)
        split.addWidget(bottom)
        split.setSizes([330, 330])

    # ------------------------------------------------------------ settings
    def settings(self) -> RunSettings:
        """What the widgets say (the core judges it when the run starts)."""
        target = self.target_check.isChecked()
        return RunSettings(
            method=str(self.engine_box.currentData()),
            mc_histories=int(self.histories_spin.value()),
            mc_target_uncertainty_percent=float(self.target_spin.value()) if target else None,
            mc_target_voi=(self.target_voi_box.currentText() or None) if target else None,
            mc_target_component=str(self.component_box.currentData()),
        )

    def _on_engine(self, _i: int = 0) -> None:
        self._update_buttons()

    def _on_target_toggled(self, _on: bool) -> None:
        self._update_buttons()

    # ------------------------------------------------------------ refreshing
    def activated(self) -> None:
        self.refresh()

    def _on_case_changed(self, _case: Case | None) -> None:
        self.refresh()

    def refresh(self) -> None:
        """Rebuild everything from the open case, the user's permission and the choices."""
        case = self.session.case
        keep = self.model.selected.result_id if self.model.selected is not None else None
        self.model = DoseModel(
            case,
            self.session.may("compute"),
            limits_protocol=self._limits_protocol,
            risk_factors=self.risk_check.isChecked(),
        )
        for dose_map_id, curves in self._dvh_cache.items():
            self.model.set_computed_dvhs(dose_map_id, curves)
        self.model.select(keep)
        self._updating = True
        try:
            self._fill_protocols()
            self.summary_box.clear()
            for rid, label in self.model.choices():
                self.summary_box.addItem(label, rid)
            if self.model.selected is not None:
                self.summary_box.setCurrentIndex(
                    self.summary_box.findData(self.model.selected.result_id)
                )
            self.summary_box.setEnabled(bool(self.model.summaries))
            voi_now = self.target_voi_box.currentText()
            self.target_voi_box.clear()
            self.target_voi_box.addItems(self.model.voi_names())
            if voi_now:
                self.target_voi_box.setCurrentText(voi_now)
        finally:
            self._updating = False
        self._show_summary()
        self._update_buttons()

    def _fill_protocols(self) -> None:
        from dosimetry_core.errors import DosimetryError
        from dosimetry_core.protocols.registry import list_protocols

        if self.protocol_box.count() == 0:
            self.protocol_box.addItem("(none)", "")
            try:
                for p in list_protocols():
                    self.protocol_box.addItem(p.id, p.id)
            except DosimetryError as exc:
                self.protocol_box.setToolTip(f"protocols cannot be read: {exc}")
        idx = self.protocol_box.findData(self.model.limits_protocol)
        if idx < 0:
            self.protocol_box.addItem(self.model.limits_protocol, self.model.limits_protocol)
            idx = self.protocol_box.count() - 1
        self.protocol_box.setCurrentIndex(idx)

    def _update_buttons(self) -> None:
        running = self.runner.running
        can = self.model.can_run and not running
        self.run_button.setEnabled(can)
        self.engine_box.setEnabled(can)
        is_mc = self.engine_box.currentData() == "mc"
        self.mc_box.setVisible(is_mc)
        self.mc_box.setEnabled(can)
        target = self.target_check.isChecked()
        for w in (self.target_spin, self.target_voi_box, self.component_box):
            w.setEnabled(can and target)
        self.cancel_button.setEnabled(running)
        self.run_button.setToolTip(self.model.run_hint())

    def _on_summary(self, _i: int) -> None:
        if self._updating:
            return
        self.model.select(self.summary_box.currentData())
        self._show_summary()

    def _on_protocol(self, *_args: Any) -> None:
        if self._updating:
            return
        self._limits_protocol = str(self.protocol_box.currentData() or "")
        self.model.set_limits_protocol(self._limits_protocol, self.risk_check.isChecked())
        self._fill_table()
        self.caption_label.setText(self.model.caption())

    # ------------------------------------------------------------- showing
    def _show_summary(self) -> None:
        self._fill_table()
        self._fill_voi_list()
        self._redraw_all()
        self.caption_label.setText(self.model.caption())

    def _fill_table(self) -> None:
        hidden = set(self.model.hidden_columns())
        for j in range(len(COLUMNS)):
            self.table.setColumnHidden(j, j in hidden)
        rows = self.model.rows
        self.table.setRowCount(len(rows))
        for i, row in enumerate(rows):
            for j, text in enumerate(row.cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, row.voi_id)
                if j in _NUMERIC:
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                tip = row.tooltips.get(j)
                if tip:
                    item.setToolTip(tip)
                if j == COLUMNS.index("Limit check") and text != "-":
                    item.setBackground(_FAIL_BRUSH if row.limit_failed else _PASS_BRUSH)
                    item.setForeground(_INK)
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                if j == COLUMNS.index("Review") and row.draft:
                    item.setBackground(_DRAFT_BRUSH)
                    item.setForeground(_INK)
                self.table.setItem(i, j, item)

    def _fill_voi_list(self) -> None:
        self.voi_list.blockSignals(True)
        try:
            self.voi_list.clear()
            for row in self.model.rows:
                item = QListWidgetItem(row.voi_name)
                item.setData(Qt.ItemDataRole.UserRole, row.voi_id)
                if row.has_dose:
                    item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                    on = row.voi_name in self._checked
                    item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
                    item.setIcon(_swatch(self.model.voi_color(row.voi_id)))
                    if not row.has_dvh:
                        item.setToolTip(
                            "no DVH stored with this dose calculation: ticking computes the "
                            "DVHs from its dose map"
                        )
                else:
                    item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEnabled)
                    item.setToolTip("this VOI has no dose (it does not overlap the dose grid)")
                self.voi_list.addItem(item)
        finally:
            self.voi_list.blockSignals(False)

    def _on_voi_item(self, item: QListWidgetItem) -> None:
        name = item.text()
        voi_id = str(item.data(Qt.ItemDataRole.UserRole))
        if item.checkState() == Qt.CheckState.Checked:
            self._checked.add(name)
            if self.model.needs_dvh:
                self._compute_dvhs()
            else:
                self._add_curve(voi_id)
        else:
            self._checked.discard(name)
            self._remove_curve(voi_id)

    def _compute_dvhs(self) -> None:
        """DVHs of every VOI from the chosen summary's dose map, by the core in a worker."""
        store, case, s = self.session.store, self.session.case, self.model.selected
        if store is None or case is None or s is None or self._dvh_task is not None:
            return
        from dosimetry_core.pipeline.dose_dvh import dvh_of_dose_map

        dose_map_id = s.dose_map_id
        self.dvh_status.setText("Computing the DVHs from the dose map…")

        def done(curves: Any) -> None:
            self._dvh_cache[dose_map_id] = curves
            self.model.set_computed_dvhs(dose_map_id, curves)
            self.dvh_status.setText("")
            self._redraw_all()

        def failed(message: str, details: str) -> None:
            self.dvh_status.setText(f"DVH: {message}")

        def finished() -> None:
            self._dvh_task = None

        self._dvh_task = self.session.run(
            dvh_of_dose_map,
            store,
            case,
            dose_map_id,
            n_bins=DVH_BINS,
            description="DVH",
            reload_case=False,
            on_success=done,
            on_failure=failed,
        )
        self._dvh_task.finished.connect(finished)

    def is_computing_dvh(self) -> bool:
        return self._dvh_task is not None

    def _add_curve(self, voi_id: str) -> None:
        if voi_id in self._curves:
            return
        dvh = self.model.dvh(voi_id)
        if dvh is None:
            return
        style = _PEN_STYLES[len(self._curves) % len(_PEN_STYLES)]
        pen = pg.mkPen(color=dvh.color_rgb, width=2, style=style)
        if self._spare:  # reuse a hidden item: cheaper than a new one in the scene
            curve = self._spare.pop()
            curve.opts["name"] = dvh.voi_name
            curve.setPen(pen)
            curve.setData(dvh.dose_gy, dvh.volume_percent)
            curve.setVisible(True)
            self.legend.addItem(curve, dvh.voi_name)
        else:
            curve = self.plot.plot(dvh.dose_gy, dvh.volume_percent, pen=pen, name=dvh.voi_name)
        self._curves[voi_id] = curve

    def _remove_curve(self, voi_id: str) -> None:
        curve = self._curves.pop(voi_id, None)
        if curve is not None:
            self.legend.removeItem(curve)
            curve.setVisible(False)  # hidden items are left out of the auto range
            self._spare.append(curve)

    def _redraw_all(self) -> None:
        for voi_id in list(self._curves):
            self._remove_curve(voi_id)
        ticked = [r for r in self.model.rows if r.voi_name in self._checked and r.has_dose]
        if ticked and self.model.needs_dvh:
            self._compute_dvhs()  # draws when the core has them
            return
        for row in ticked:
            self._add_curve(row.voi_id)

    def shown_dvh(self) -> dict[str, tuple[Any, Any]]:
        """VOI name -> (dose Gy, volume %) of every curve plotted (read from the plot items)."""
        out = {}
        for curve in self._curves.values():
            x, y = curve.getData()
            out[str(curve.name())] = (x, y)
        return out

    # ------------------------------------------------------------------- run
    def _run(self) -> None:
        case, store = self.session.case, self.session.store
        if case is None or store is None or self.runner.running or not self.model.can_run:
            return
        from dosimetry_core.pipeline.dose import compute_dose

        settings = self.settings()
        actor = self.session.actor
        self.runner.start(
            compute_dose,
            store,
            case.case_id,
            **settings.compute_dose_kwargs(),
            user=actor.username if actor is not None else "",
            busy_text=f"Computing the dose: {settings.describe()}…",
            description="Dose",
            on_success=self._run_succeeded,
        )
        self._update_buttons()

    def cancel(self) -> None:
        """Stop the running calculation (the core saves nothing when cancelled)."""
        self.runner.cancel()

    def is_running(self) -> bool:
        return self.runner.running

    def _run_succeeded(self, result: Any) -> None:
        # the session reloaded the case (caseChanged) before this: show the new summary
        self.model.select(result.summary.result_id)
        self._updating = True
        try:
            self.summary_box.setCurrentIndex(self.summary_box.findData(result.summary.result_id))
        finally:
            self._updating = False
        self._show_summary()
        text = f"Done: {engine_label(result.method)} dose map saved and shown in the viewer."
        if result.warnings:
            text += " " + " ".join(result.warnings)
        self.status_label.setText(text)
