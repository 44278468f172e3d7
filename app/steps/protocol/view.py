"""The protocol run and planning step: choose a protocol, check the case, run it, read the result.

Two tabs.  "Protocol run" (this module) gathers the choice and shows what
:mod:`app.steps.protocol.model` announces; the core computes
(:func:`dosimetry_core.pipeline.protocol_run.run_protocol` in a worker through
``session.run``, with progress and cancel; the core saves the run and the
session reloads the case).  When the step opens it shows the case's newest
stored run (never recomputed).  "Calculators" holds the calculators panel of
:mod:`app.steps.protocol.calculators_view` when it exists.

A physician or technologist sees everything with Run disabled
(``session.may("compute")``).
"""

from __future__ import annotations

import logging
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.common.run_control import RunControl
from app.common.widgets import named as _named
from app.common.widgets import read_only_table
from app.session import CaseSession
from app.steps.base import StepView
from app.steps.protocol.model import (
    CHECK_COLUMNS,
    LIMIT_COLUMNS,
    LIMIT_RESULT_COLUMN,
    NUMERIC_COLUMNS,
    ORGAN_COLUMNS,
    VOI_COLUMNS,
    Budget,
    ProtocolModel,
)
from dosimetry_core.model.case import Case
from dosimetry_core.pipeline.protocol_run import run_protocol

log = logging.getLogger(__name__)

__all__ = ["ProtocolRunPanel", "ProtocolStepView"]

_PASS_COLOUR = QColor("#2e7d32")
_FAIL_COLOUR = QColor("#c62828")
_STATE_COLOURS = {
    "ok": QColor("#2e7d32"),
    "missing": QColor("#c62828"),
    "warning": QColor("#ef6c00"),
}


def _table(name: str, columns: tuple[str, ...]) -> QTableWidget:
    t = read_only_table(name, columns)
    t.verticalHeader().setDefaultSectionSize(t.fontMetrics().height() + 6)
    t.setWordWrap(False)
    # the panel sits in a scroll area: a table takes the room there is, its size hint
    # must not make the step taller than the window (it scrolls its rows instead)
    t.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Ignored)
    t.setMinimumHeight(3 * t.verticalHeader().defaultSectionSize() + 30)
    return t


def _fill(table: QTableWidget, rows: list[list[str]], columns: tuple[str, ...]) -> None:
    numeric = {j for j, c in enumerate(columns) if c in NUMERIC_COLUMNS}
    table.setRowCount(len(rows))
    for i, row in enumerate(rows):
        for j, text in enumerate(row):
            item = QTableWidgetItem(text)
            if j in numeric:
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            table.setItem(i, j, item)


class ProtocolRunPanel(QWidget):
    """The "Protocol run" tab (module docstring)."""

    def __init__(self, session: CaseSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.model = ProtocolModel(None, False)
        self._updating = False
        self._budget_voi: str | None = None
        self._build()

    # ------------------------------------------------------------- building
    def _build(self) -> None:
        root = QVBoxLayout(self)

        row = QHBoxLayout()
        row.addWidget(QLabel("Protocol:"))
        self.protocol_box = _named(QComboBox(), "protocolChoice")
        self.protocol_box.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.protocol_box.setMinimumContentsLength(24)
        self.protocol_box.currentIndexChanged.connect(self._on_protocol)
        row.addWidget(self.protocol_box, 1)
        self.run_button = _named(QPushButton("Run"), "protocolRun")
        self.run_button.clicked.connect(self.run)
        row.addWidget(self.run_button)
        self.cancel_button = _named(QPushButton("Cancel"), "protocolCancel")
        self.cancel_button.setToolTip("Stop the run; nothing is saved")
        row.addWidget(self.cancel_button)
        root.addLayout(row)
        self.description_label = _named(QLabel(""), "protocolDescription")
        self.description_label.setWordWrap(True)
        root.addWidget(self.description_label)
        status_row = QHBoxLayout()
        self.progress_bar = _named(QProgressBar(), "protocolProgress")
        self.progress_bar.setMaximumWidth(220)
        status_row.addWidget(self.progress_bar)
        self.status_label = _named(QLabel(""), "protocolStatus")
        self.status_label.setWordWrap(True)
        status_row.addWidget(self.status_label, 1)
        root.addLayout(status_row)
        self.runner = RunControl(
            self,
            self.session,
            progress_bar=self.progress_bar,
            status_label=self.status_label,
            cancel_button=self.cancel_button,
            title="Protocol run",
            failed_text="The protocol run failed: nothing was saved.",
            cancelled_text="Protocol run cancelled: nothing was saved.",
            on_idle=self._update_buttons,
        )

        split = QSplitter(Qt.Orientation.Vertical)
        root.addWidget(split, 1)

        check_box = QGroupBox("Checklist: what the run reads from this case")
        check_l = QVBoxLayout(check_box)
        self.checklist_table = _table("protocolChecklist", CHECK_COLUMNS)
        check_l.addWidget(self.checklist_table)
        split.addWidget(check_box)

        result = QGroupBox("Result of the newest run")
        res_l = QVBoxLayout(result)
        self.header_label = _named(QLabel(""), "protocolHeader")
        self.header_label.setWordWrap(True)
        res_l.addWidget(self.header_label)
        self.next_cycle_label = _named(QLabel(""), "protocolNextCycle")
        font = QFont(self.next_cycle_label.font())
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.15)
        self.next_cycle_label.setFont(font)
        res_l.addWidget(self.next_cycle_label)
        self.binding_label = _named(QLabel(""), "protocolBinding")
        self.binding_label.setWordWrap(True)
        res_l.addWidget(self.binding_label)

        self.result_tabs = _named(QTabWidget(), "protocolResultTabs")
        organs = QWidget()
        organs_l = QVBoxLayout(organs)
        organs_l.addWidget(QLabel("Organs (mass-weighted over their VOIs)"))
        self.organ_table = _table("protocolOrgans", ORGAN_COLUMNS)
        organs_l.addWidget(self.organ_table, 1)
        self.limits_label = _named(
            QLabel("Limits, cumulative over the patient's cycles"), "protocolLimitsSummary"
        )
        organs_l.addWidget(self.limits_label)
        self.limit_table = _table("protocolLimits", LIMIT_COLUMNS)
        organs_l.addWidget(self.limit_table, 1)
        self.result_tabs.addTab(organs, "Organs and limits")

        vois = QSplitter(Qt.Orientation.Horizontal)
        left = QWidget()
        left_l = QVBoxLayout(left)
        left_l.addWidget(QLabel("VOIs (select one for its uncertainty budget)"))
        self.voi_table = _table("protocolVois", VOI_COLUMNS)
        self.voi_table.itemSelectionChanged.connect(self._on_voi_selection)
        left_l.addWidget(self.voi_table, 1)
        vois.addWidget(left)
        right = QWidget()
        right_l = QVBoxLayout(right)
        self.budget_plot = _named(pg.PlotWidget(), "protocolBudget")
        self.budget_plot.setMenuEnabled(False)
        self.budget_plot.setMouseEnabled(False, False)
        self.budget_plot.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Ignored)
        self.budget_plot.setMinimumHeight(170)
        self.budget_plot.setLabel("bottom", "% of the dose (1 SD)")
        self.budget_bars = pg.BarGraphItem(x0=[], y=[], width=[], height=0.6, brush="#4c8bd6")
        self.budget_plot.addItem(self.budget_bars)
        self.total_bar = pg.BarGraphItem(x0=[], y=[], width=[], height=0.6, brush="#d08a2c")
        self.budget_plot.addItem(self.total_bar)
        right_l.addWidget(self.budget_plot, 1)
        self.budget_caption = _named(QLabel(""), "protocolBudgetCaption")
        self.budget_caption.setWordWrap(True)
        right_l.addWidget(self.budget_caption)
        vois.addWidget(right)
        vois.setSizes([420, 440])
        self.result_tabs.addTab(vois, "VOIs and uncertainty budget")
        res_l.addWidget(self.result_tabs, 1)

        self.warnings_label = _named(QLabel(""), "protocolWarnings")
        self.warnings_label.setWordWrap(True)
        self.warnings_label.setStyleSheet("color: #b26a00;")
        res_l.addWidget(self.warnings_label)
        split.addWidget(result)
        split.setSizes([190, 620])

    # ------------------------------------------------------------ refreshing
    def refresh(self) -> None:
        """Rebuild choice, checklist and result from the open case (stored run, no recompute)."""
        keep = self.model.selected_id if self.model.case is not None else None
        case = self.session.case
        if case is not None and self.model.case is not None:
            if case.case_id != self.model.case.case_id:
                keep = None
        self.model = ProtocolModel(case, self.session.may("compute"), selected=keep)
        self._updating = True
        try:
            self.protocol_box.clear()
            for c in self.model.choices:
                self.protocol_box.addItem(c.text, c.protocol_id)
            self.protocol_box.setCurrentIndex(self.model.index_of(self.model.selected_id))
        finally:
            self._updating = False
        self._show_protocol()
        self._show_result()

    def _on_protocol(self, _index: int) -> None:
        if self._updating:
            return
        self.model.select(self.protocol_box.currentData())
        self._show_protocol()

    def _show_protocol(self) -> None:
        self.description_label.setText(self.model.description())
        rows = self.model.checklist_rows()
        _fill(self.checklist_table, rows, CHECK_COLUMNS)
        for i, item in enumerate(self.model.readiness):
            colour = _STATE_COLOURS.get(item.state)
            cell = self.checklist_table.item(i, 0)
            if colour is not None and cell is not None:
                cell.setForeground(colour)
                cell.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
        self._update_buttons()

    def _show_result(self) -> None:
        m = self.model
        self.header_label.setText(m.header())
        self.next_cycle_label.setText(m.next_cycle_text())
        self.binding_label.setText(m.binding_text())
        self.limits_label.setText(
            "Limits, cumulative over the patient's cycles. " + m.limits_text()
        )
        self.warnings_label.setText(m.warnings_text())
        _fill(self.organ_table, m.organ_rows(), ORGAN_COLUMNS)
        _fill(self.limit_table, m.limit_rows(), LIMIT_COLUMNS)
        for i, r in enumerate(m.limits):
            cell = self.limit_table.item(i, LIMIT_RESULT_COLUMN)
            if cell is not None:
                cell.setForeground(_PASS_COLOUR if r.passed else _FAIL_COLOUR)
                f = cell.font()
                f.setBold(True)
                cell.setFont(f)
        self._updating = True
        try:
            _fill(self.voi_table, m.voi_rows(), VOI_COLUMNS)
            names = [row[0] for row in m.voi_rows()]
            voi = self._budget_voi if self._budget_voi in names else m.default_budget_voi()
            self._budget_voi = voi
            if voi is not None:
                self.voi_table.selectRow(names.index(voi))
            else:
                self.voi_table.clearSelection()
        finally:
            self._updating = False
        self._show_budget(m.budget(self._budget_voi))

    def _on_voi_selection(self) -> None:
        if self._updating:
            return
        items = self.voi_table.selectedItems()
        if not items:
            return
        cell = self.voi_table.item(items[0].row(), 0)
        if cell is None:
            return
        name = cell.text()
        self._budget_voi = name
        self._show_budget(self.model.budget(name))

    def _show_budget(self, budget: Budget | None) -> None:
        """Horizontal bars, one per component (names on the left axis), the combined SD last."""
        axis = self.budget_plot.getAxis("left")
        if budget is None:
            self.budget_bars.setOpts(x0=[], y=[], width=[], height=0.6)
            self.total_bar.setOpts(x0=[], y=[], width=[], height=0.6)
            axis.setTicks([[]])
            self.budget_caption.setText(
                "" if self.model.summary is None else "No uncertainty budget for this VOI."
            )
            return
        n = len(budget.names)
        # top to bottom in the order of the budget, the combined SD at the bottom
        ys = [float(n - i) for i in range(n)]
        self.budget_bars.setOpts(x0=[0.0] * n, y=ys, width=list(budget.rel_sd_percent), height=0.6)
        ticks = [(y, name) for y, name in zip(ys, budget.names, strict=True)]
        if budget.total_percent is not None:
            self.total_bar.setOpts(x0=[0.0], y=[0.0], width=[budget.total_percent], height=0.6)
            ticks.append((0.0, "combined"))
        else:
            self.total_bar.setOpts(x0=[], y=[], width=[], height=0.6)
        axis.setTicks([ticks])
        axis.setWidth(max(50, 6 * max(len(t) for _, t in ticks)))
        self.budget_plot.setYRange(-0.6, n + 0.6, padding=0)
        right = max([*budget.rel_sd_percent, budget.total_percent or 0.0, 1.0])
        self.budget_plot.setXRange(0.0, right * 1.1, padding=0)
        self.budget_caption.setText(budget.caption())

    def _update_buttons(self) -> None:
        running = self.runner.running
        self.run_button.setEnabled(self.model.can_run and not running)
        self.protocol_box.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        refusal = self.model.run_refusal()
        self.run_button.setToolTip(
            refusal or "Run the case end to end: kinetics, TIA map, dose, BED, uncertainty, limits"
        )
        if refusal and not running:
            self.status_label.setText(refusal)

    # ------------------------------------------------------------------- run
    def run(self) -> None:
        """Run the chosen protocol on the open case in a worker (progress, cancel)."""
        case, store = self.session.case, self.session.store
        pid = self.model.selected_id
        if case is None or store is None or pid is None or self.runner.running:
            return
        if not self.model.can_run:
            return
        actor = self.session.actor
        self.runner.start(
            run_protocol,
            store,
            case.case_id,
            pid,
            user=actor.username if actor is not None else "",
            busy_text=f"Running {pid}…",
            description=f"Protocol run {pid}",
            on_success=self._run_succeeded,
        )
        self._update_buttons()

    def cancel(self) -> None:
        """Stop the running protocol run (the core saves nothing when cancelled)."""
        self.runner.cancel()

    def is_running(self) -> bool:
        return self.runner.running

    def _run_succeeded(self, result: Any) -> None:
        # the session reloaded the case (caseChanged -> refresh) before this
        verdict = "all limits pass" if result.all_limits_passed else "a limit is EXCEEDED"
        self.status_label.setText(f"Protocol {result.protocol_id} run and saved: {verdict}.")


class ProtocolStepView(StepView):
    """Protocol run & planning step: the run tab and the calculators tab (module docstring)."""

    step_id = "protocol"
    title = "Protocol run"
    action = None

    def __init__(self, session: CaseSession, parent: QWidget | None = None) -> None:
        super().__init__(session, parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.tabs = _named(QTabWidget(), "protocolTabs")
        layout.addWidget(self.tabs)
        self.run_panel = ProtocolRunPanel(session)
        self.tabs.addTab(self.run_panel, "Protocol run")
        self.calculators = self._calculators()
        # in a scroll area of its own: the forms' minimum width must not widen the run tab
        calc_scroll = _named(QScrollArea(), "protocolCalculatorsScroll")
        calc_scroll.setWidgetResizable(True)
        calc_scroll.setFrameShape(QFrame.Shape.NoFrame)
        calc_scroll.setWidget(self.calculators)
        self.tabs.addTab(calc_scroll, "Calculators")
        session.caseChanged.connect(self._on_case_changed)
        session.userChanged.connect(self.run_panel.refresh)
        self.run_panel.refresh()

    def _calculators(self) -> QWidget:
        try:
            from app.steps.protocol.calculators_view import CalculatorsPanel
        except ImportError:
            log.info("the calculators panel is not available")
            label = _named(QLabel("calculators not available"), "protocolNoCalculators")
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            return label
        try:
            panel: QWidget = CalculatorsPanel(self.session)
        except Exception:  # a bug in the calculators must not take the run tab with it
            log.exception("the calculators panel cannot be built")
            label = _named(QLabel("calculators not available"), "protocolNoCalculators")
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            return label
        return panel

    def activated(self) -> None:
        self.run_panel.refresh()

    def _on_case_changed(self, _case: Case | None) -> None:
        self.run_panel.refresh()
