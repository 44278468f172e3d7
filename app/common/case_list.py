"""The case list: the cases of the store, a filter box, open with double-click or Enter.

The widget only reads ``store.list_cases()`` (a list of
:class:`dosimetry_core.store.CaseSummary`) and announces the case the user
wants with :attr:`CaseListWidget.caseActivated`; opening the case is the main
window's business.
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

__all__ = ["CaseListModel", "CaseListWidget"]

_Index = QModelIndex | QPersistentModelIndex

CASE_ID_ROLE = Qt.ItemDataRole.UserRole + 1
SORT_ROLE = Qt.ItemDataRole.UserRole + 2


def _when(summary: Any) -> datetime | None:
    return getattr(summary, "modified_at", None) or getattr(summary, "created_at", None)


def format_person_name(name: str) -> str:
    """DICOM person name ``Family^Given^Middle`` shown as ``Family, Given Middle``."""
    if "^" not in name:
        return name
    parts = [p for p in name.split("^") if p]
    if not parts:
        return ""
    return parts[0] if len(parts) == 1 else f"{parts[0]}, {' '.join(parts[1:])}"


class CaseListModel(QAbstractTableModel):
    """Table model over case summaries: patient ID, name, protocol, time points, modified."""

    COLUMNS = ("Patient ID", "Name", "Protocol", "TPs", "Modified")
    MAX_COLUMN_WIDTHS = (96, 108, 98, 34, 80)
    """Initial column widths are fitted to the contents, capped here (px); text elides."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._rows: list[Any] = []

    def set_summaries(self, summaries: Sequence[Any]) -> None:
        self.beginResetModel()
        self._rows = list(summaries)
        self.endResetModel()

    def summary(self, row: int) -> Any:
        return self._rows[row]

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
            return "Number of time points" if section == 3 else None
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        s = self._rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            when = _when(s)
            return (
                s.patient_id,
                format_person_name(s.patient_name or ""),
                s.protocol or "",
                str(s.n_time_points),
                when.strftime("%Y-%m-%d") if when else "",
            )[col]
        if role == SORT_ROLE:
            when = _when(s)
            return (
                s.patient_id.lower(),
                (s.patient_name or "").lower(),
                (s.protocol or "").lower(),
                int(s.n_time_points),
                when.isoformat() if when else "",
            )[col]
        if role == CASE_ID_ROLE:
            return s.case_id
        if role == Qt.ItemDataRole.ToolTipRole:
            when = _when(s)
            lines = [
                getattr(s, "description", "") or "",
                f"case {s.case_id}, version {s.version}",
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

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = CaseListModel(self)
        self.proxy = _FilterProxy(self)
        self.proxy.setSourceModel(self.model)

        self.filter_edit = QLineEdit(self)
        self.filter_edit.setPlaceholderText("Filter: patient ID, name, protocol…")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(self.proxy.set_filter_words)
        self.filter_edit.returnPressed.connect(self._open_from_filter)

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
        self.table.sortByColumn(4, Qt.SortOrder.DescendingOrder)
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
        top.addWidget(self.filter_edit, 1)
        top.addWidget(self.refresh_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(6)
        layout.addLayout(top)
        layout.addWidget(self._stack, 1)
        self._update_placeholder()

    # ------------------------------------------------------------- content
    def set_cases(self, summaries: Sequence[Any]) -> None:
        """Show these case summaries, keeping the selected case if still present."""
        selected = self.selected_case_id()
        self.model.set_summaries(summaries)
        self.table.resizeColumnsToContents()
        header = self.table.horizontalHeader()
        for col, cap in enumerate(self.model.MAX_COLUMN_WIDTHS):
            if header.sectionSize(col) > cap:
                header.resizeSection(col, cap)
        self._update_placeholder()
        if selected:
            self.select_case(selected)

    def refresh_from(self, store: Any) -> None:
        """Reload from ``store.list_cases()`` (errors propagate to the caller)."""
        self.set_cases(store.list_cases() if store is not None else [])

    def set_filter_text(self, text: str) -> None:
        self.filter_edit.setText(text)

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
        self._stack.setCurrentWidget(self.table if self.model.rowCount() else self.empty_label)

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
