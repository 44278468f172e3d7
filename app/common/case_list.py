"""The case list: the worklist of the store, filters, open with double-click or Enter.

The widget shows :class:`dosimetry_core.pipeline.worklist.WorklistRow` s (read
by the core's :func:`~dosimetry_core.pipeline.worklist.worklist`) with the
case's protocol, whether an administration is recorded and where its report
stands; the status/role filters ("Awaiting my approval", "Missing
administration", "Unsigned") are the core's rule
(:func:`~dosimetry_core.pipeline.worklist.apply_filter`), the text box narrows
further.  The case the user wants is announced with
:attr:`CaseListWidget.caseActivated`; opening it is the session's business.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QStackedWidget,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from dosimetry_core.pipeline.worklist import FILTERS, WorklistRow, apply_filter, worklist
from dosimetry_core.store.permissions import Actor

__all__ = ["CaseListModel", "CaseListWidget", "format_person_name"]

_Index = QModelIndex | QPersistentModelIndex

CASE_ID_ROLE = Qt.ItemDataRole.UserRole + 1
SORT_ROLE = Qt.ItemDataRole.UserRole + 2


def _when(row: Any) -> datetime | None:
    return getattr(row, "modified_at", None) or getattr(row, "created_at", None)


REPORT_TEXT = {"none": "–", "draft": "draft", "mpe-signed": "MPE signed", "signed": "signed"}


def format_person_name(name: str) -> str:
    """DICOM person name ``Family^Given^Middle`` shown as ``Family, Given Middle``."""
    if "^" not in name:
        return name
    parts = [p for p in name.split("^") if p]
    if not parts:
        return ""
    return parts[0] if len(parts) == 1 else f"{parts[0]}, {' '.join(parts[1:])}"


class CaseListModel(QAbstractTableModel):
    """Table model over worklist rows: patient, protocol, time points, administration, report."""

    COLUMNS = ("Patient ID", "Name", "Protocol", "TPs", "Adm.", "Report", "Modified")
    MAX_COLUMN_WIDTHS = (96, 108, 110, 34, 40, 80, 80)
    """Initial column widths are fitted to the contents, capped here (px); text elides."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._rows: list[WorklistRow] = []

    def set_rows(self, rows: Sequence[WorklistRow]) -> None:
        self.beginResetModel()
        self._rows = list(rows)
        self.endResetModel()

    def row(self, index: int) -> WorklistRow:
        return self._rows[index]

    # ------------------------------------------------------------ Qt model
    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.COLUMNS[section]
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.ToolTipRole:
            return {
                3: "Number of time points",
                4: "Administration recorded",
                5: "State of the newest report",
            }.get(section)
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        r = self._rows[index.row()]
        col = index.column()
        when = _when(r)
        if role == Qt.ItemDataRole.DisplayRole:
            return (
                r.patient_id,
                format_person_name(r.patient_name or ""),
                r.protocol or "–",
                str(r.n_time_points),
                "yes" if r.has_administration else "no",
                REPORT_TEXT.get(r.report_status, r.report_status),
                when.strftime("%Y-%m-%d") if when else "",
            )[col]
        if role == SORT_ROLE:
            return (
                r.patient_id.lower(),
                (r.patient_name or "").lower(),
                (r.protocol or "").lower(),
                int(r.n_time_points),
                int(r.has_administration),
                r.report_status,
                when.isoformat() if when else "",
            )[col]
        if role == CASE_ID_ROLE:
            return r.case_id
        if role == Qt.ItemDataRole.ToolTipRole:
            lines = [
                f"case {r.case_id}, version {r.version}",
                f"{r.n_vois_submitted} VOI(s) submitted for approval" if r.n_vois_submitted else "",
                f"modified {when.strftime('%Y-%m-%d %H:%M')}" if when else "",
            ]
            return "\n".join(line for line in lines if line)
        if role == Qt.ItemDataRole.TextAlignmentRole and col == 3:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


class _FilterProxy(QSortFilterProxyModel):
    """Keeps rows where every word of the filter text occurs in some column (case-insensitive)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._words: list[str] = []
        self.setSortRole(SORT_ROLE)

    def set_filter_words(self, text: str) -> None:
        self.beginFilterChange()
        self._words = [w.lower() for w in text.split()]
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, source_row: int, source_parent: _Index) -> bool:
        if not self._words:
            return True
        model = self.sourceModel()
        texts = []
        for col in range(model.columnCount()):
            value = model.data(model.index(source_row, col, source_parent))
            texts.append(str(value or "").lower())
        desc = model.data(model.index(source_row, 0, source_parent), Qt.ItemDataRole.ToolTipRole)
        texts.append(str(desc or "").lower())
        haystack = " ".join(texts)
        return all(w in haystack for w in self._words)


class CaseListWidget(QWidget):
    """Filter box + case table + refresh; emits :attr:`caseActivated` with a case id."""

    caseActivated = Signal(str)
    """The user asked to open this case (double-click, Enter, or Enter in the filter box)."""
    refreshRequested = Signal()
    """The refresh button was pressed (the owner reloads the list from the store)."""

    ALL = "All"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._all_rows: list[WorklistRow] = []
        self._actor: Actor | None = None
        self._has_accounts = False
        self.model = CaseListModel(self)
        self.proxy = _FilterProxy(self)
        self.proxy.setSourceModel(self.model)

        self.filter_edit = QLineEdit(self)
        self.filter_edit.setPlaceholderText("Filter: patient ID, name, protocol…")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(self.proxy.set_filter_words)
        self.filter_edit.returnPressed.connect(self._open_from_filter)

        self.status_filter = QComboBox(self)
        self.status_filter.setObjectName("caseFilter")
        self.status_filter.addItem(self.ALL, "all")
        for key, label in FILTERS.items():
            self.status_filter.addItem(label, key)
        self.status_filter.setToolTip("Show the cases in one state (the core's worklist rule)")
        self.status_filter.currentIndexChanged.connect(self._apply_status_filter)

        self.refresh_button = QToolButton(self)
        self.refresh_button.setText("Refresh")
        self.refresh_button.setToolTip("Reload the case list from the store (F5)")
        self.refresh_button.clicked.connect(self.refreshRequested)

        self.table = QTableView(self)
        self.table.setModel(self.proxy)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(6, Qt.SortOrder.DescendingOrder)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.setWordWrap(False)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(24)
        header = self.table.horizontalHeader()
        header.setHighlightSections(False)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        header.setMinimumSectionSize(32)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.table.activated.connect(self._open_index)

        self.empty_label = QLabel(
            "No cases in this store.\n\nFile › Open demo case imports a synthetic patient.", self
        )
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        self.empty_label.setObjectName("placeholder")

        self._stack = QStackedWidget(self)
        self._stack.addWidget(self.table)
        self._stack.addWidget(self.empty_label)

        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.status_filter)
        top.addWidget(self.filter_edit, 1)
        top.addWidget(self.refresh_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(6)
        layout.addLayout(top)
        layout.addWidget(self._stack, 1)
        self._update_placeholder()

    # ------------------------------------------------------------- content
    def set_rows(
        self, rows: Sequence[WorklistRow], actor: Actor | None = None, has_accounts: bool = False
    ) -> None:
        """Show these worklist rows (filtered for ``actor``), keeping the selected case."""
        self._all_rows = list(rows)
        self._actor = actor
        self._has_accounts = has_accounts
        self._apply_status_filter()

    def refresh_from(self, store: Any, actor: Actor | None = None) -> None:
        """Reload from the core's worklist of ``store`` (errors propagate to the caller)."""
        if store is None:
            self.set_rows([])
            return
        self.set_rows(worklist(store, actor), actor, bool(store.has_users()))

    def set_unavailable(self, reason: str) -> None:
        """Show no case, and why (no store, nobody logged in)."""
        self._all_rows = []
        self.model.set_rows([])
        self.empty_label.setText(reason)
        self._stack.setCurrentWidget(self.empty_label)

    def placeholder_text(self) -> str:
        """The hint shown instead of the table ('' while the table is shown)."""
        return self.empty_label.text() if self._stack.currentWidget() is self.empty_label else ""

    def set_filter_text(self, text: str) -> None:
        self.filter_edit.setText(text)

    def set_status_filter(self, key: str) -> None:
        """Choose a filter by id: ``all`` or a key of the core's worklist ``FILTERS``."""
        index = self.status_filter.findData(key)
        if index < 0:
            raise ValueError(f"unknown case filter {key!r}")
        self.status_filter.setCurrentIndex(index)

    def _apply_status_filter(self) -> None:
        selected = self.selected_case_id()
        key = self.status_filter.currentData() or "all"
        rows = apply_filter(self._all_rows, key, self._actor, has_accounts=self._has_accounts)
        self.model.set_rows(rows)
        self.table.resizeColumnsToContents()
        header = self.table.horizontalHeader()
        for col, cap in enumerate(self.model.MAX_COLUMN_WIDTHS):
            if header.sectionSize(col) > cap:
                header.resizeSection(col, cap)
        self._update_placeholder()
        if selected:
            self.select_case(selected)

    # -------------------------------------------------------------- query
    def visible_case_ids(self) -> list[str]:
        """Case ids of the rows shown (after filtering), in display order."""
        return [
            self.proxy.data(self.proxy.index(r, 0), CASE_ID_ROLE)
            for r in range(self.proxy.rowCount())
        ]

    def visible_rows(self) -> list[list[str]]:
        """Displayed texts of the visible rows (what the user reads)."""
        return [
            [
                str(self.proxy.data(self.proxy.index(r, c)) or "")
                for c in range(self.proxy.columnCount())
            ]
            for r in range(self.proxy.rowCount())
        ]

    def selected_case_id(self) -> str | None:
        idx = self.table.currentIndex()
        return self.proxy.data(idx, CASE_ID_ROLE) if idx.isValid() else None

    def select_case(self, case_id: str) -> bool:
        for r in range(self.proxy.rowCount()):
            idx = self.proxy.index(r, 0)
            if self.proxy.data(idx, CASE_ID_ROLE) == case_id:
                self.table.setCurrentIndex(idx)
                self.table.scrollTo(idx)
                return True
        return False

    # ------------------------------------------------------------ private
    def _update_placeholder(self) -> None:
        if self.model.rowCount():
            self._stack.setCurrentWidget(self.table)
            return
        if self._all_rows:
            self.empty_label.setText(
                f"No case is {self.status_filter.currentText().lower()}.\n\n"
                'Choose "All" to see every case.'
            )
        else:
            self.empty_label.setText(
                "No cases in this store.\n\nFile › Open demo case imports a synthetic patient."
            )
        self._stack.setCurrentWidget(self.empty_label)

    def _open_index(self, index: QModelIndex) -> None:
        case_id = self.proxy.data(index, CASE_ID_ROLE)
        if case_id:
            self.caseActivated.emit(str(case_id))

    def _open_from_filter(self) -> None:
        idx = self.table.currentIndex()
        if not idx.isValid() and self.proxy.rowCount() > 0:
            idx = self.proxy.index(0, 0)
        if idx.isValid():
            self._open_index(idx)
