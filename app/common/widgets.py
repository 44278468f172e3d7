"""Small widget helpers shared by the step views: object names and read-only tables."""

from __future__ import annotations

from typing import TypeVar

from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QWidget

W = TypeVar("W", bound=QWidget)

__all__ = ["named", "read_only_table"]


def named(widget: W, name: str) -> W:
    """``widget`` with its object name set (tests and the tour find widgets by it)."""
    widget.setObjectName(name)
    return widget


def read_only_table(
    name: str, columns: tuple[str, ...], *, single_selection: bool = True
) -> QTableWidget:
    """A table of whole-row selection, no editing, no row numbers, columns sized to their
    contents and the last one stretched (the steps' result and list tables)."""
    t = named(QTableWidget(0, len(columns)), name)
    t.setHorizontalHeaderLabels(list(columns))
    t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    if single_selection:
        t.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.verticalHeader().setVisible(False)
    t.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    t.horizontalHeader().setStretchLastSection(True)
    return t
