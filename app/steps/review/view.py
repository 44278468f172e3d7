"""The contour review step: a physician approves or rejects the VOIs submitted for review.

* the review queue of the open case (:class:`~app.steps.review.model.ReviewModel`):
  submitted VOIs and those whose approval an edit withdrew, each with the core's
  review flag; "Show all VOIs" lists every VOI of the case;
* the cases awaiting the logged-in user's approval (core worklist filter
  ``awaiting-approval``), one opened with a double click or "Open case";
* selecting a VOI emphasises it in the viewer on every plane and in 3D
  (:meth:`app.viewer.panel.ViewerPanel.set_voi_emphasis`) and shows its history;
* Approve, or Reject with a comment (Reject stays disabled until a comment is
  typed), saved through ``session.change`` with
  :mod:`dosimetry_core.pipeline.voi_approval`; enabled by ``session.may("approve-contour")``.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.common import error_display
from app.session import CaseSession
from app.steps.base import StepView
from app.steps.review.model import COLUMNS, HISTORY_COLUMNS, ReviewModel, awaiting_cases
from app.viewer.panel import ViewerPanel
from dosimetry_core.errors import DosimetryError
from dosimetry_core.model import Case
from dosimetry_core.pipeline import voi_approval

__all__ = ["ReviewStepView"]


def _table(columns: tuple[str, ...], name: str, parent: QWidget) -> QTableWidget:
    t = QTableWidget(0, len(columns), parent)
    t.setObjectName(name)
    t.setHorizontalHeaderLabels(list(columns))
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    t.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    t.verticalHeader().setVisible(False)
    t.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    t.horizontalHeader().setStretchLastSection(True)
    return t


class ReviewStepView(StepView):
    """Review queue, history and approve/reject (module docstring)."""

    step_id = "review"
    title = "Contour review"
    action = None

    def __init__(self, session: CaseSession, parent: QWidget | None = None) -> None:
        super().__init__(session, parent)
        self.panel: ViewerPanel | None = None
        self.model = ReviewModel(None, False)
        self._selected: str | None = None
        self._updating = False

        layout = QVBoxLayout(self)
        cases_box = QGroupBox("Cases awaiting my approval", self)
        cl = QVBoxLayout(cases_box)
        self.case_list = QListWidget(cases_box)
        self.case_list.setObjectName("reviewCases")
        self.case_list.setMaximumHeight(90)
        self.case_list.itemDoubleClicked.connect(lambda _i: self.open_selected_case())
        self.open_button = QPushButton("Open case", cases_box)
        self.open_button.setObjectName("reviewOpenCase")
        self.open_button.clicked.connect(self.open_selected_case)
        cl.addWidget(self.case_list)
        cl.addWidget(self.open_button)
        layout.addWidget(cases_box)

        self.summary_label = QLabel("", self)
        self.summary_label.setObjectName("reviewSummary")
        self.summary_label.setWordWrap(True)
        layout.addWidget(self.summary_label)
        self.show_all = QCheckBox("Show all VOIs", self)
        self.show_all.setObjectName("reviewShowAll")
        self.show_all.toggled.connect(lambda _on: self.refresh())
        layout.addWidget(self.show_all)
        self.table = _table(COLUMNS, "reviewQueue", self)
        self.table.itemSelectionChanged.connect(self._on_selection)
        layout.addWidget(self.table, 2)

        self.history_label = QLabel("History of the selected VOI", self)
        self.history_label.setObjectName("reviewHistoryLabel")
        layout.addWidget(self.history_label)
        self.history_table = _table(HISTORY_COLUMNS, "reviewHistory", self)
        self.history_table.setWordWrap(False)
        layout.addWidget(self.history_table, 1)

        self.comment_edit = QLineEdit(self)
        self.comment_edit.setObjectName("reviewComment")
        self.comment_edit.setPlaceholderText("Comment (required to reject)")
        self.comment_edit.textChanged.connect(lambda _t: self._update_enabled())
        layout.addWidget(self.comment_edit)
        buttons = QHBoxLayout()
        self.approve_button = QPushButton("Approve", self)
        self.approve_button.setObjectName("reviewApprove")
        self.approve_button.clicked.connect(self.approve_selected)
        self.reject_button = QPushButton("Reject", self)
        self.reject_button.setObjectName("reviewReject")
        self.reject_button.clicked.connect(self.reject_selected)
        buttons.addWidget(self.approve_button)
        buttons.addWidget(self.reject_button)
        buttons.addStretch(1)
        layout.addLayout(buttons)

        session.caseChanged.connect(self._on_case_changed)
        session.userChanged.connect(self.refresh)
        session.caseListChanged.connect(self.refresh_cases)
        self.refresh()
        self.refresh_cases()

    # ------------------------------------------------------------ viewer
    def _find_viewer(self) -> None:
        if self.panel is None:
            found = self.window().findChild(ViewerPanel)
            if found is not None:
                self.panel = found

    def attach_viewer(self, panel: ViewerPanel) -> None:
        """Emphasise the selected VOI in ``panel`` (the main window's viewer is found by itself)."""
        self.panel = panel

    def activated(self) -> None:
        self._find_viewer()
        self.refresh()
        self.refresh_cases()

    def hideEvent(self, event: Any) -> None:
        if self.panel is not None:
            self.panel.set_voi_emphasis(None)
        super().hideEvent(event)

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self._find_viewer()
        self._emphasise()

    def _emphasise(self) -> None:
        if self.panel is not None:
            self.panel.set_voi_emphasis(self._selected)

    # ------------------------------------------------------------ content
    def _on_case_changed(self, _case: Case | None) -> None:
        self.refresh()
        self.refresh_cases()

    def refresh(self) -> None:
        """Rebuild the queue from the open case and the user's permission."""
        self.model = ReviewModel(
            self.session.case,
            self.session.may("approve-contour"),
            show_all=self.show_all.isChecked(),
        )
        self.summary_label.setText(self.model.summary())
        self._updating = True
        try:
            self.table.blockSignals(True)
            self.table.setRowCount(len(self.model.rows))
            for r, row in enumerate(self.model.rows):
                for c, text in enumerate(row.cells()):
                    item = QTableWidgetItem(text)
                    item.setData(Qt.ItemDataRole.UserRole, row.voi_id)
                    self.table.setItem(r, c, item)
            n = self.model.index_of(self._selected)
            if n >= 0:
                self.table.selectRow(n)
            else:
                self.table.clearSelection()
        finally:
            self.table.blockSignals(False)
            self._updating = False
        self._show_history()
        self._update_enabled()

    def refresh_cases(self) -> None:
        """The cases with VOIs awaiting the logged-in user's approval."""
        self.case_list.clear()
        store = self.session.store
        if store is None:
            return
        try:
            rows = awaiting_cases(store, self.session.actor, self.session.has_accounts)
        except DosimetryError as exc:
            self.case_list.addItem(f"(worklist not available: {exc})")
            return
        for case_id, patient, n in rows:
            item = QListWidgetItem(f"{case_id} — {patient}: {n} VOI(s) submitted")
            item.setData(Qt.ItemDataRole.UserRole, case_id)
            self.case_list.addItem(item)
        if not rows:
            self.case_list.addItem("(none)")
        self.open_button.setEnabled(bool(rows))

    def open_selected_case(self) -> None:
        item = self.case_list.currentItem()
        case_id = None if item is None else item.data(Qt.ItemDataRole.UserRole)
        if not case_id:
            return
        try:
            self.session.open_case(str(case_id))
        except DosimetryError as exc:
            error_display.show_error(self, "Open case", str(exc))

    def selected_voi_id(self) -> str | None:
        return self._selected

    def select_voi(self, name: str) -> None:
        """Select the queue row of VOI ``name`` (as a click on it)."""
        for r, row in enumerate(self.model.rows):
            if row.name == name:
                self.table.selectRow(r)
                return
        raise KeyError(name)

    def _on_selection(self) -> None:
        if self._updating:
            return
        rows = self.table.selectionModel().selectedRows()
        self._selected = self.model.rows[rows[0].row()].voi_id if rows else None
        self._show_history()
        self._update_enabled()
        self._find_viewer()
        self._emphasise()
        if self.panel is not None and self._selected is not None:
            self.panel.centre_on_voi(self._selected)

    def _show_history(self) -> None:
        hist = self.model.history(self._selected)
        name = self.model.voi_name(self._selected)
        self.history_label.setText(
            f"History of {name}" if name else "History of the selected VOI (select one above)"
        )
        self.history_table.setRowCount(len(hist))
        for r, cells in enumerate(hist):
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                self.history_table.setItem(r, c, item)

    def _update_enabled(self) -> None:
        self.approve_button.setEnabled(self.model.can_approve(self._selected))
        self.reject_button.setEnabled(
            self.model.can_reject(self._selected, self.comment_edit.text())
        )
        may = self.model.may_approve
        self.comment_edit.setEnabled(may)
        tip = "" if may else "Only a user who may approve contours (a physician) can do this"
        self.approve_button.setToolTip(tip)
        self.reject_button.setToolTip(tip)

    def rows_as_shown(self) -> list[dict[str, str]]:
        """The queue table as the user sees it (header -> cell text)."""
        return [
            {COLUMNS[c]: self._cell(r, c) for c in range(self.table.columnCount())}
            for r in range(self.table.rowCount())
        ]

    def _cell(self, r: int, c: int) -> str:
        item = self.table.item(r, c)
        return "" if item is None else item.text()

    # ------------------------------------------------------------ actions
    def _review(self, title: str, fn: Any, comment: str) -> None:
        voi_id = self._selected
        if voi_id is None:
            return
        try:
            self.session.change(fn, voi_id, comment)
        except DosimetryError as exc:
            error_display.show_error(self, title, str(exc))
            return
        self.comment_edit.clear()

    def approve_selected(self) -> None:
        self._review("Approve VOI", voi_approval.approve_voi, self.comment_edit.text())

    def reject_selected(self) -> None:
        self._review("Reject VOI", voi_approval.reject_voi, self.comment_edit.text())
