"""The contouring step: the VOI list, a threshold with live preview, drawing tools, undo/redo.

The view gathers input and shows what :mod:`app.steps.contouring.model`
announces; the core computes and saves:

* every whole-volume operation (threshold, region growing, margin, booleans,
  fill holes, keep largest, interpolate, propagate) is
  :func:`dosimetry_core.pipeline.voi_edit.contour_and_save` -- the same
  functions as ``mrtdose contour ...`` -- in a worker (``session.run``);
* a brush, eraser or outline stroke is drawn on an in-memory mask (shown at
  once in the viewer's planes) and saved as one edit at the end of the stroke
  (:func:`~dosimetry_core.pipeline.voi_edit.restore_voi_mask` through
  ``session.change``);
* rename, kind, colour, delete, submit, import and export are the other
  functions of :mod:`dosimetry_core.pipeline.voi_edit` and
  :mod:`dosimetry_core.pipeline.contour_io`.

The step draws on the viewer's planes (:class:`app.viewer.panel.ViewerPanel`,
found in the main window or given with :meth:`ContouringStepView.attach_viewer`):
while a drawing tool is chosen the left button paints instead of moving the
crosshair.  Without ``session.may("contour")`` (a physician, a technologist)
everything that changes a VOI is disabled; the list stays readable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QColor, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QCheckBox,
    QColorDialog,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSlider,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.common import error_display
from app.session import CaseSession
from app.steps.base import StepView
from app.steps.contouring.model import (
    COLUMNS,
    KINDS,
    Stroke,
    ThresholdPreview,
    UndoStack,
    VoiListRow,
    load_rows,
    run_operation,
    save_mask,
    standard_names,
)
from app.viewer.panel import ViewerPanel
from app.workers import Task
from dosimetry_core.errors import DosimetryError
from dosimetry_core.model import Case, Geometry, Volume
from dosimetry_core.pipeline import voi_edit

__all__ = ["ContouringStepView"]

PERCENT = "% of max"
ABSOLUTE = "absolute"
WHOLE_IMAGE = "(whole image)"
NEW_COLOUR = (0, 230, 255)
"""Colour of the mask being drawn or previewed (before it is saved with its own colour)."""


class ContouringStepView(StepView):
    """Contouring step (module docstring)."""

    step_id = "contouring"
    title = "Contouring"
    action = None  # a physician may look at the contours (and later review them)

    def __init__(self, session: CaseSession, parent: QWidget | None = None) -> None:
        super().__init__(session, parent)
        self.panel: ViewerPanel | None = None
        self.rows: list[VoiListRow] = []
        self._selected: str | None = None
        self._new: tuple[str, str] | None = None
        """A new VOI (name, kind) not saved yet: it is made by the first stroke or Apply."""
        self._stacks: dict[str, UndoStack] = {}
        self._rows_task: Task | None = None
        self._rows_again = False
        self._op_task: Task | None = None
        self._stroke_task: Task | None = None
        self._pending: list[Any] | None = None
        """A stroke finished while the previous one was being saved (saved next)."""
        self._mask: NDArray[np.bool_] | None = None
        self._mask_before: NDArray[np.bool_] | None = None
        self._mask_key: tuple[str, str, str] | None = None
        self._geometry: Geometry | None = None
        self._stroke: Stroke | None = None
        self._preview: ThresholdPreview | None = None
        self._preview_key: tuple[Any, ...] | None = None
        self._updating = False
        self._build()
        session.caseChanged.connect(self._on_case_changed)
        session.userChanged.connect(self._update_enabled)
        self._on_case_changed(session.case)

    # ============================================================= building
    def _build(self) -> None:
        root = QVBoxLayout(self)
        top = QHBoxLayout()
        self.target_label = QLabel("", objectName="contourTarget")
        self.target_label.setWordWrap(True)
        top.addWidget(self.target_label, 1)
        self.undo_action = QAction("Undo", self)
        self.undo_action.setShortcut(QKeySequence("Ctrl+Z"))
        self.undo_action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        self.undo_action.triggered.connect(self.undo)
        self.redo_action = QAction("Redo", self)
        self.redo_action.setShortcut(QKeySequence("Ctrl+Shift+Z"))
        self.redo_action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        self.redo_action.triggered.connect(self.redo)
        self.addAction(self.undo_action)
        self.addAction(self.redo_action)
        self.undo_button = QToolButton(objectName="contourUndo")
        self.undo_button.setDefaultAction(self.undo_action)
        self.redo_button = QToolButton(objectName="contourRedo")
        self.redo_button.setDefaultAction(self.redo_action)
        top.addWidget(self.undo_button)
        top.addWidget(self.redo_button)
        root.addLayout(top)

        # ---- VOI list
        self.table = QTableWidget(0, len(COLUMNS), objectName="contourVoiList")
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)  # the name takes the room
        self.table.setMinimumHeight(180)
        self.table.itemSelectionChanged.connect(self._on_selection)
        root.addWidget(self.table, 1)

        form = QGridLayout()
        form.addWidget(QLabel("Name:"), 0, 0)
        self.name_box = QComboBox(objectName="contourName")
        self.name_box.setEditable(True)
        self.name_box.addItems(standard_names())
        self.name_box.setCurrentText("")
        line = self.name_box.lineEdit()
        if line is not None:
            line.setPlaceholderText("standard organ name or your own")
        form.addWidget(self.name_box, 0, 1)
        form.addWidget(QLabel("Kind:"), 0, 2)
        self.kind_box = QComboBox(objectName="contourKind")
        self.kind_box.addItems(list(KINDS))
        self.kind_box.activated.connect(self._on_kind_chosen)
        form.addWidget(self.kind_box, 0, 3)
        buttons = QHBoxLayout()
        self.new_button = QPushButton("New", objectName="contourNew")
        self.new_button.setToolTip("New VOI with this name and kind on the time point shown")
        self.new_button.clicked.connect(self.new_voi)
        self.rename_button = QPushButton("Rename", objectName="contourRename")
        self.rename_button.clicked.connect(self.rename_selected)
        self.colour_button = QPushButton("Colour…", objectName="contourColour")
        self.colour_button.clicked.connect(lambda: self.set_colour(None))
        self.delete_button = QPushButton("Delete", objectName="contourDelete")
        self.delete_button.clicked.connect(self.delete_selected)
        self.submit_button = QPushButton("Submit for review", objectName="contourSubmit")
        self.submit_button.clicked.connect(self.submit_selected)
        for b in (
            self.new_button,
            self.rename_button,
            self.colour_button,
            self.delete_button,
            self.submit_button,
        ):
            buttons.addWidget(b)
        form.addLayout(buttons, 1, 0, 1, 4)
        root.addLayout(form)

        # ---- tools
        self.tabs = QTabWidget(objectName="contourTools")
        self.tabs.addTab(self._build_threshold(), "Threshold")
        self.tabs.addTab(self._build_draw(), "Draw")
        self.tabs.addTab(self._build_operations(), "Operations")
        self.tabs.addTab(self._build_files(), "Import / export")
        self.tabs.currentChanged.connect(lambda _i: self._update_overlay())
        root.addWidget(self.tabs)
        self.status_label = QLabel("", objectName="contourStatus")
        self.status_label.setWordWrap(True)
        root.addWidget(self.status_label)

    def _build_threshold(self) -> QWidget:
        w = QWidget()
        f = QFormLayout(w)
        self.image_box = QComboBox(objectName="thresholdImage")
        self.image_box.addItem("SPECT", "spect")
        self.image_box.addItem("CT", "ct")
        self.image_box.currentIndexChanged.connect(self._on_threshold_setup)
        self.mode_box = QComboBox(objectName="thresholdMode")
        self.mode_box.addItems([PERCENT, ABSOLUTE])
        self.mode_box.currentIndexChanged.connect(self._on_mode)
        row = QHBoxLayout()
        row.addWidget(self.image_box)
        row.addWidget(self.mode_box)
        f.addRow("Image:", row)
        self.within_box = QComboBox(objectName="thresholdWithin")
        self.within_box.currentIndexChanged.connect(self._on_threshold_setup)
        f.addRow("Within VOI:", self.within_box)
        self.slider = QSlider(Qt.Orientation.Horizontal, objectName="thresholdSlider")
        self.slider.setRange(1, 100)
        self.slider.setValue(40)
        self.slider.valueChanged.connect(self._on_slider)
        self.value_spin = QDoubleSpinBox(objectName="thresholdValue")
        self.value_spin.setKeyboardTracking(False)
        self.value_spin.valueChanged.connect(self._on_value)
        srow = QHBoxLayout()
        srow.addWidget(self.slider, 1)
        srow.addWidget(self.value_spin)
        f.addRow("Lower limit:", srow)
        self.largest_box = QCheckBox("Keep the largest connected part")
        self.largest_box.setObjectName("thresholdLargest")
        self.preview_box = QCheckBox("Live preview (cyan)")
        self.preview_box.setObjectName("thresholdPreview")
        self.preview_box.setChecked(True)
        self.preview_box.toggled.connect(lambda _on: self._update_overlay())
        prow = QHBoxLayout()
        prow.addWidget(self.largest_box)
        prow.addWidget(self.preview_box)
        f.addRow(prow)
        self.apply_button = QPushButton("Apply threshold", objectName="thresholdApply")
        self.apply_button.setToolTip("Store the threshold of the whole volume as the target VOI")
        self.apply_button.clicked.connect(self.apply_threshold)
        f.addRow(self.apply_button)
        self._on_mode(0)
        return w

    def _build_draw(self) -> QWidget:
        w = QWidget()
        f = QFormLayout(w)
        row = QHBoxLayout()
        self.tool_group = QButtonGroup(self)
        self.tool_buttons: dict[str, QToolButton] = {}
        for tool, text, tip in (
            ("navigate", "Navigate", "The left button moves the crosshair"),
            ("brush", "Brush", "Paint with a disc of the size below (left button)"),
            ("eraser", "Eraser", "Erase with a disc of the size below"),
            ("outline", "Outline", "Draw a closed outline: it is filled on release"),
        ):
            b = QToolButton(objectName=f"tool-{tool}")
            b.setText(text)
            b.setToolTip(tip)
            b.setCheckable(True)
            self.tool_group.addButton(b)
            self.tool_buttons[tool] = b
            row.addWidget(b)
        self.tool_buttons["navigate"].setChecked(True)
        self.tool_group.buttonToggled.connect(lambda _b, _on: self._update_overlay())
        f.addRow("Tool:", row)
        self.brush_spin = QDoubleSpinBox(objectName="brushSizeMm")
        self.brush_spin.setRange(1.0, 100.0)
        self.brush_spin.setValue(10.0)
        self.brush_spin.setSuffix(" mm")
        self.brush_spin.setToolTip("Brush diameter")
        f.addRow("Brush diameter:", self.brush_spin)
        self.sphere_box = QCheckBox("3D sphere (paints the neighbouring slices too)")
        self.sphere_box.setObjectName("brushSphere")
        f.addRow(self.sphere_box)
        hint = QLabel("Each stroke is saved as one edit; Ctrl+Z undoes it.")
        hint.setObjectName("hint")
        f.addRow(hint)
        return w

    def _build_operations(self) -> QWidget:
        w = QWidget()
        g = QGridLayout(w)
        self.margin_spin = QDoubleSpinBox(objectName="marginMm")
        self.margin_spin.setRange(-50.0, 50.0)
        self.margin_spin.setValue(5.0)
        self.margin_spin.setSuffix(" mm")
        self.margin_button = QPushButton("Margin", objectName="opMargin")
        self.margin_button.setToolTip("Grow (+) or shrink (−) the selected VOI")
        self.margin_button.clicked.connect(
            lambda: self._run_selected("margin", mm=self.margin_spin.value())
        )
        g.addWidget(QLabel("Margin:"), 0, 0)
        g.addWidget(self.margin_spin, 0, 1)
        g.addWidget(self.margin_button, 0, 2)
        self.fill_button = QPushButton("Fill holes", objectName="opFillHoles")
        self.fill_button.clicked.connect(lambda: self._run_selected("fill-holes"))
        self.largest_button = QPushButton("Keep largest", objectName="opLargest")
        self.largest_button.clicked.connect(lambda: self._run_selected("largest"))
        self.interp_plane = QComboBox(objectName="opInterpolatePlane")
        self.interp_plane.addItems(["axial", "coronal", "sagittal"])
        self.interp_button = QPushButton("Interpolate", objectName="opInterpolate")
        self.interp_button.setToolTip("Fill the slices between the drawn ones")
        self.interp_button.clicked.connect(
            lambda: self._run_selected("interpolate", plane=self.interp_plane.currentText())
        )
        g.addWidget(self.fill_button, 1, 0)
        g.addWidget(self.largest_button, 1, 1)
        g.addWidget(self.interp_plane, 2, 0)
        g.addWidget(self.interp_button, 2, 1)
        self.bool_op = QComboBox(objectName="opBoolean")
        self.bool_op.addItems(["union", "intersect", "subtract"])
        self.bool_other = QComboBox(objectName="opBooleanOther")
        self.bool_button = QPushButton("Combine", objectName="opCombine")
        self.bool_button.setToolTip("Selected VOI (op) other VOI, stored under the name above")
        self.bool_button.clicked.connect(self.combine)
        g.addWidget(self.bool_op, 3, 0)
        g.addWidget(self.bool_other, 3, 1)
        g.addWidget(self.bool_button, 3, 2)
        self.grow_tol = QDoubleSpinBox(objectName="growTolerance")
        self.grow_tol.setRange(1.0, 100.0)
        self.grow_tol.setValue(30.0)
        self.grow_tol.setSuffix(" %")
        self.grow_button = QPushButton("Grow from crosshair", objectName="opGrow")
        self.grow_button.setToolTip(
            "Region growing on the threshold image from the crosshair point "
            "(tolerance in % of the seed value)"
        )
        self.grow_button.clicked.connect(self.grow_from_crosshair)
        g.addWidget(QLabel("Tolerance:"), 4, 0)
        g.addWidget(self.grow_tol, 4, 1)
        g.addWidget(self.grow_button, 4, 2)
        self.prop_to = QComboBox(objectName="opPropagateTo")
        self.prop_button = QPushButton("Propagate", objectName="opPropagate")
        self.prop_button.setToolTip("Copy the selected VOI to another time point (registration)")
        self.prop_button.clicked.connect(self.propagate)
        g.addWidget(QLabel("To:"), 5, 0)
        g.addWidget(self.prop_to, 5, 1)
        g.addWidget(self.prop_button, 5, 2)
        return w

    def _build_files(self) -> QWidget:
        w = QWidget()
        g = QGridLayout(w)
        self.import_buttons: dict[str, QPushButton] = {}
        self.export_buttons: dict[str, QPushButton] = {}
        for n, (fmt, label) in enumerate(
            (("rtstruct", "RTSTRUCT"), ("seg", "DICOM SEG"), ("nifti", "NIfTI"))
        ):
            b = QPushButton(f"Import {label}…", objectName=f"import-{fmt}")
            b.clicked.connect(lambda _c=False, f=fmt: self.import_file(f, None))
            e = QPushButton(f"Export {label}…", objectName=f"export-{fmt}")
            e.clicked.connect(lambda _c=False, f=fmt: self.export_file(f, None))
            g.addWidget(b, n, 0)
            g.addWidget(e, n, 1)
            self.import_buttons[fmt] = b
            self.export_buttons[fmt] = e
        return w

    # ============================================================ the viewer
    def attach_viewer(self, panel: ViewerPanel) -> None:
        """Draw on ``panel``'s planes (the main window's viewer is found by itself)."""
        if panel is self.panel:
            return
        if self.panel is not None:
            self._release_viewer()
            self.panel.viewer.toolEvent.disconnect(self._on_tool)
            self.panel.viewer.positionChanged.disconnect(self._on_position)
            self.panel.timePointShown.disconnect(self._on_time_point_shown)
        self.panel = panel
        panel.viewer.toolEvent.connect(self._on_tool)
        panel.viewer.positionChanged.connect(self._on_position)
        panel.timePointShown.connect(self._on_time_point_shown)
        self._on_time_point_shown("")

    def _find_viewer(self) -> None:
        if self.panel is None:
            found = self.window().findChild(ViewerPanel)
            if found is not None:
                self.attach_viewer(found)

    def activated(self) -> None:
        self._find_viewer()
        self._update_overlay()

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self.undo_action.setEnabled(self._may() and self._stack().can_undo())
        self._find_viewer()
        self._update_overlay()

    def hideEvent(self, event: Any) -> None:
        self._release_viewer()
        self.undo_action.setEnabled(False)
        self.redo_action.setEnabled(False)
        super().hideEvent(event)

    def _release_viewer(self) -> None:
        """Give the planes back to the crosshair and take the edit overlay away."""
        if self.panel is not None:
            self.panel.viewer.set_tool_active(False)
            self.panel.viewer.set_edit_overlay(None)

    def shown_time_point_id(self) -> str | None:
        """The time point selected in the viewer (shown, or being reloaded), or None."""
        tp = self.panel.current_time_point() if self.panel is not None else None
        return None if tp is None else tp.time_point_id

    def _display(self) -> Volume | None:
        """The CT the viewer draws for the selected time point (None while another is shown)."""
        data = self.panel.view_data() if self.panel is not None else None
        if data is None or "ct" not in data.layers:
            return None
        if data.time_point_id != self.shown_time_point_id():
            return None
        return data.layers["ct"].volume

    def _on_time_point_shown(self, _tp_id: str) -> None:
        self._preview = None
        self._preview_key = None
        self._fill_choices()
        self._load_target()
        self._update_target_label()
        self._update_enabled()
        self._update_overlay()

    # ============================================================== the case
    def _stack(self) -> UndoStack:
        case = self.session.case
        key = case.case_id if case is not None else ""
        return self._stacks.setdefault(key, UndoStack())

    def _may(self) -> bool:
        return self.session.may("contour")

    def _on_case_changed(self, case: Case | None) -> None:
        if case is None:
            self.rows = []
            self._selected = None
            self._new = None
            self._show_rows()
            self._load_target()
            self._update_enabled()
            return
        self._load_rows()

    def _load_rows(self) -> None:
        store, case = self.session.store, self.session.case
        if store is None or case is None:
            return
        if self._rows_task is not None:
            self._rows_again = True
            return

        def done(rows: list[VoiListRow]) -> None:
            if self.session.case is not None and self.session.case.case_id == case.case_id:
                self.rows = rows
                self._show_rows()
                self._load_target()
                self._update_overlay()
                self._fill_choices()
                self._update_target_label()
                self._update_enabled()

        def finished() -> None:
            self._rows_task = None
            if self._rows_again:
                self._rows_again = False
                self._load_rows()

        self.status_label.setText("Reading the VOIs (volume and mass from the core)…")
        self._rows_task = self.session.run(
            load_rows,
            store,
            case,
            description="contouring: VOI list",
            with_progress=False,
            reload_case=False,
            on_success=done,
            on_failure=lambda m, d: error_display.show_error(self, "VOI list", m, d),
        )
        self._rows_task.finished.connect(finished)

    def rows_loading(self) -> bool:
        return self._rows_task is not None

    def busy(self) -> bool:
        """An operation or the VOI list is being computed."""
        return (
            self._op_task is not None
            or self._rows_task is not None
            or self._stroke_task is not None
        )

    def _show_rows(self) -> None:
        self._updating = True
        try:
            self.table.setRowCount(len(self.rows))
            visible = self._viewer_visibility()
            for r, row in enumerate(self.rows):
                check = QCheckBox()
                check.setChecked(visible.get(row.voi_id, True))
                check.setToolTip(f"Show {row.name} in the viewer")
                check.toggled.connect(lambda on, v=row.voi_id: self.set_visible(v, on))
                self.table.setCellWidget(r, 0, check)
                item = QTableWidgetItem("")
                item.setData(Qt.ItemDataRole.UserRole, row.voi_id)
                self.table.setItem(r, 1, item)
                swatch = QLabel()  # a widget keeps its colour on a selected line
                swatch.setFixedSize(22, 14)
                r_, g_, b_ = row.color_rgb
                swatch.setStyleSheet(
                    f"background-color: rgb({r_}, {g_}, {b_}); border: 1px solid #555;"
                )
                swatch.setProperty("rgb", row.color_rgb)
                swatch.setToolTip("Colour (Colour… changes it)")
                self.table.setCellWidget(r, 1, swatch)
                for c, text in enumerate(row.cells(), start=2):
                    item = QTableWidgetItem(text)
                    item.setData(Qt.ItemDataRole.UserRole, row.voi_id)
                    if c >= 6:
                        item.setTextAlignment(
                            Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                        )
                    if c == 2 and row.flag:
                        item.setToolTip(row.flag)
                    self.table.setItem(r, c, item)
            idx = next((i for i, r in enumerate(self.rows) if r.voi_id == self._selected), -1)
            if idx >= 0:
                self.table.selectRow(idx)
            else:
                self.table.clearSelection()
                self._selected = None
        finally:
            self._updating = False
        n = len(self.rows)
        self.status_label.setText(f"{n} VOI{'s' if n != 1 else ''} in this case.")

    def rows_as_shown(self) -> list[dict[str, Any]]:
        """What each line of the list shows (for the tour and tests)."""
        out = []
        for r in range(self.table.rowCount()):
            cells = [self.table.item(r, c).text() for c in range(2, len(COLUMNS))]
            out.append(
                {
                    "name": cells[0],
                    "kind": cells[1],
                    "time_point": cells[2],
                    "status": cells[3],
                    "volume_ml": float(cells[4].replace(",", "")),
                    "mass_g": None if cells[5] == "–" else float(cells[5].replace(",", "")),
                }
            )
        return out

    def selected_row(self) -> VoiListRow | None:
        return next((r for r in self.rows if r.voi_id == self._selected), None)

    def select_voi(self, name: str) -> None:
        """Select the VOI ``name`` of the time point shown (as clicking its line)."""
        tp_id = self.shown_time_point_id()
        for i, r in enumerate(self.rows):
            if r.name == name and (tp_id is None or r.time_point_id == tp_id):
                self.table.selectRow(i)
                return

    def _on_selection(self) -> None:
        if self._updating:
            return
        items = self.table.selectedItems()
        self._selected = items[0].data(Qt.ItemDataRole.UserRole) if items else None
        row = self.selected_row()
        if row is not None:
            self._new = None
            self._updating = True
            try:
                self.name_box.setCurrentText(row.name)
                self.kind_box.setCurrentText(row.kind)
            finally:
                self._updating = False
        self._load_target()
        self._update_target_label()
        self._update_enabled()
        self._update_overlay()

    # ------------------------------------------------------------- visibility
    def _viewer_visibility(self) -> dict[str, bool]:
        return dict(self.panel.voi_list_widget.visible) if self.panel is not None else {}

    def set_visible(self, voi_id: str, on: bool) -> None:
        """Show or hide a VOI's outline in the viewer (the viewer's own VOI switch)."""
        if self.panel is None:
            return
        vt = self.panel.voi_list_widget
        for r, row in enumerate(vt.voi_rows):
            if row.voi_id == voi_id:
                vt.checks[r].setChecked(on)
                return
        vt.visible[voi_id] = on

    # ================================================================ target
    def target(self) -> tuple[str, str] | None:
        """(name, time point id) the tools write to: the selected VOI or the new one."""
        tp_id = self.shown_time_point_id()
        if tp_id is None:
            return None
        if self._new is not None:
            return self._new[0], tp_id
        row = self.selected_row()
        if row is not None and row.time_point_id == tp_id:
            return row.name, tp_id
        return None

    def _update_target_label(self) -> None:
        t = self.target()
        tp = self.panel.current_time_point() if self.panel is not None else None
        tp_name = tp.label if tp is not None else "?"
        if t is None:
            row = self.selected_row()
            if row is not None:
                text = (
                    f"{row.name} lies on {row.time_point}: show that time point in the viewer to "
                    "edit it"
                )
            else:
                text = "Select a VOI or start a new one (name, kind, New)."
        elif self._new is not None:
            text = f"Target: new VOI {t[0]} ({self._new[1]}) on {tp_name} — not saved yet"
        else:
            text = f"Target: {t[0]} on {tp_name}"
        self.target_label.setText(text)

    def _load_target(self) -> None:
        """The target VOI's mask in memory (zeros for a new VOI) on the display grid."""
        keep, keep_key = self._mask, self._mask_key
        self._mask = self._mask_before = None
        self._mask_key = None
        t = self.target()
        display = self._display()
        store, case = self.session.store, self.session.case
        if t is None or display is None or store is None or case is None:
            return
        self._geometry = display.geometry
        voi = next(
            (v for v in case.vois if v.name.lower() == t[0].lower() and v.time_point_id == t[1]),
            None,
        )
        if keep is not None and keep_key is not None and keep_key[:2] == t:
            if (voi is not None and keep_key[2] == voi.mask.key) or self._stroke_task is not None:
                # what is in memory is stored (or being stored): no reload of the mask
                self._mask, self._mask_key = keep, keep_key
                return
        if voi is None:
            self._mask = np.zeros(display.geometry.shape_zyx, dtype=bool)
            self._mask_key = (t[0], t[1], "")
            return
        from dosimetry_core.imaging.case_volumes import load_mask

        mask, g = load_mask(store, voi)
        if not g.same_grid(display.geometry):
            return
        self._mask = np.array(mask, dtype=bool)
        self._geometry = g
        self._mask_key = (t[0], t[1], voi.mask.key)

    # ============================================================ enabling
    def _update_enabled(self) -> None:
        may = self._may()
        case = self.session.case
        running = self._op_task is not None or self._stroke_task is not None
        row = self.selected_row()
        has_target = self.target() is not None
        on_tp = row is not None and row.time_point_id == self.shown_time_point_id()
        for w in (self.new_button, self.name_box, self.kind_box):
            w.setEnabled(may and case is not None)
        for w in (self.rename_button, self.colour_button, self.delete_button):
            w.setEnabled(may and row is not None and not running)
        self.submit_button.setEnabled(
            may and row is not None and row.status in ("draft", "rejected") and not running
        )
        self.apply_button.setEnabled(may and has_target and not running)
        for tool, b in self.tool_buttons.items():
            b.setEnabled(tool == "navigate" or (may and has_target))
        for b in (self.margin_button, self.fill_button, self.largest_button, self.interp_button):
            b.setEnabled(may and row is not None and not running)
        self.bool_button.setEnabled(
            may and row is not None and self.bool_other.count() > 0 and not running
        )
        self.grow_button.setEnabled(may and has_target and not running)
        self.prop_button.setEnabled(may and on_tp and self.prop_to.count() > 0 and not running)
        for button in self.import_buttons.values():
            button.setEnabled(may and case is not None and not running)
        for button in self.export_buttons.values():
            button.setEnabled(self.session.may("export") and bool(self.rows) and not running)
        stack = self._stack()
        visible = self.isVisible()
        self.undo_action.setEnabled(may and visible and stack.can_undo() and not running)
        self.redo_action.setEnabled(may and visible and stack.can_redo() and not running)
        self.undo_action.setToolTip(stack.undo_text() + " (Ctrl+Z)")
        self.redo_action.setToolTip(stack.redo_text() + " (Ctrl+Shift+Z)")
        if not may and case is not None:
            self.new_button.setToolTip(
                f"{self.session.user_label()} may look at the contours but not change them"
            )

    def _fill_choices(self) -> None:
        """VOIs of the shown time point for 'within' and booleans; time points to propagate to."""
        tp_id = self.shown_time_point_id()
        names = [r.name for r in self.rows if r.time_point_id == tp_id]
        self._updating = True
        try:
            keep = self.within_box.currentText()
            self.within_box.clear()
            self.within_box.addItems([WHOLE_IMAGE, *names])
            if keep in names:
                self.within_box.setCurrentText(keep)
            keep = self.bool_other.currentText()
            self.bool_other.clear()
            self.bool_other.addItems(names)
            if keep in names:
                self.bool_other.setCurrentText(keep)
            self.prop_to.clear()
            case = self.session.case
            if case is not None:
                for tp in case.sorted_time_points():
                    if tp.time_point_id != tp_id:
                        self.prop_to.addItem(tp.label or tp.time_point_id, tp.time_point_id)
        finally:
            self._updating = False

    # ============================================================ list edits
    def new_voi(self) -> None:
        """Start a new VOI named as the name box says (saved by the first stroke or Apply)."""
        name = self.name_box.currentText().strip()
        if not name:
            error_display.show_error(self, "New VOI", "Type or choose a name for the new VOI.")
            return
        tp_id = self.shown_time_point_id()
        if tp_id is None:
            error_display.show_error(self, "New VOI", "Wait until the viewer shows a time point.")
            return
        if any(r.name.lower() == name.lower() and r.time_point_id == tp_id for r in self.rows):
            error_display.show_error(
                self, "New VOI", f"This time point already has a VOI named {name!r}."
            )
            return
        self._new = (name, self.kind_box.currentText())
        self._selected = None
        self._updating = True
        try:
            self.table.clearSelection()
        finally:
            self._updating = False
        self._load_target()
        self._update_target_label()
        self._update_enabled()
        self._update_overlay()

    def _change(self, title: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return self.session.change(fn, *args, **kwargs)
        except DosimetryError as exc:
            error_display.show_error(self, title, str(exc))
            return None

    def rename_selected(self) -> None:
        row = self.selected_row()
        if row is not None:
            self._change("Rename VOI", voi_edit.rename_voi, row.voi_id, self.name_box.currentText())

    def _on_kind_chosen(self, _i: int) -> None:
        if self._updating:
            return
        kind = self.kind_box.currentText()
        if self._new is not None:
            self._new = (self._new[0], kind)
            self._update_target_label()
            return
        row = self.selected_row()
        if row is not None and row.kind != kind and self._may():
            self._change("VOI kind", voi_edit.set_voi_style, row.voi_id, kind=kind)

    def set_colour(self, colour: QColor | None) -> None:
        """Store the selected VOI's colour (``colour`` None: ask with a colour dialog)."""
        row = self.selected_row()
        if row is None:
            return
        if colour is None:
            colour = QColorDialog.getColor(QColor(*row.color_rgb), self, f"Colour of {row.name}")
        if colour.isValid():
            rgb = (colour.red(), colour.green(), colour.blue())
            self._change("VOI colour", voi_edit.set_voi_style, row.voi_id, color_rgb=rgb)

    def delete_selected(self) -> None:
        row = self.selected_row()
        if row is None:
            return
        self._selected = None
        self._change("Delete VOI", voi_edit.delete_voi, row.voi_id)

    def submit_selected(self) -> None:
        row = self.selected_row()
        if row is not None:
            self._change("Submit VOI", voi_edit.submit_voi, row.voi_id)

    # ============================================================= threshold
    def _on_mode(self, _i: int) -> None:
        percent = self.mode_box.currentText() == PERCENT
        self._updating = True
        try:
            if percent:
                self.value_spin.setDecimals(0)
                self.value_spin.setRange(1.0, 100.0)
                self.value_spin.setSuffix(" %")
                self.value_spin.setValue(float(self.slider.value()))
            else:
                units = self._threshold_units()
                lo, hi = self._image_range()
                self.value_spin.setDecimals(0 if hi >= 100 else 3)
                self.value_spin.setRange(lo, hi)
                self.value_spin.setSuffix(f" {units}" if units else "")
                self.value_spin.setValue(lo + (hi - lo) * self.slider.value() / 100.0)
        finally:
            self._updating = False
        self._refresh_preview()

    def _threshold_image(self) -> Volume | None:
        data = self.panel.view_data() if self.panel is not None else None
        if data is None:
            return None
        key = self.image_box.currentData()
        layer = data.layers.get(key)
        return None if layer is None else layer.volume

    def _threshold_units(self) -> str:
        data = self.panel.view_data() if self.panel is not None else None
        layer = data.layers.get(self.image_box.currentData()) if data is not None else None
        return layer.units if layer is not None else ""

    def _image_range(self) -> tuple[float, float]:
        """Range of the absolute spin box: the image's values (display limits only)."""
        img = self._threshold_image()
        if img is None:
            return 0.0, 1.0
        a = img.array
        lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
        return (lo, hi if hi > lo else lo + 1.0)

    def _on_threshold_setup(self, _i: int) -> None:
        if self._updating:
            return
        self._preview = None
        if self.mode_box.currentText() == ABSOLUTE:
            self._on_mode(0)
        self._refresh_preview()

    def _on_slider(self, value: int) -> None:
        if self._updating:
            return
        self._updating = True
        try:
            if self.mode_box.currentText() == PERCENT:
                self.value_spin.setValue(float(value))
            else:
                lo, hi = self.value_spin.minimum(), self.value_spin.maximum()
                self.value_spin.setValue(lo + (hi - lo) * value / 100.0)
        finally:
            self._updating = False
        self._refresh_preview()

    def _on_value(self, value: float) -> None:
        if self._updating:
            return
        self._updating = True
        try:
            if self.mode_box.currentText() == PERCENT:
                self.slider.setValue(int(round(value)))
            else:
                lo, hi = self.value_spin.minimum(), self.value_spin.maximum()
                self.slider.setValue(int(round(100 * (value - lo) / max(hi - lo, 1e-12))))
        finally:
            self._updating = False
        self._refresh_preview()

    def threshold_settings(self) -> dict[str, Any]:
        """The core's arguments for the threshold now set (as ``mrtdose contour threshold``)."""
        within = self.within_box.currentText()
        percent = self.mode_box.currentText() == PERCENT
        out: dict[str, Any] = {"image": self.image_box.currentData()}
        if percent:
            out["percent_of_max"] = float(self.value_spin.value())
        else:
            out["lower"] = float(self.value_spin.value())
        out["within"] = None if within in ("", WHOLE_IMAGE) else within
        out["largest_component"] = self.largest_box.isChecked()
        return out

    def _get_preview(self) -> ThresholdPreview | None:
        img = self._threshold_image()
        if img is None:
            return None
        within = self.within_box.currentText()
        key = (id(img), within)
        if self._preview is None or self._preview_key != key:
            region = None
            if within not in ("", WHOLE_IMAGE):
                region = self._region_of(within)
                if region is None:
                    return None
            self._preview = ThresholdPreview(img, region)
            self._preview_key = key
        return self._preview

    def _region_of(self, name: str) -> NDArray[np.bool_] | None:
        data = self.panel.view_data() if self.panel is not None else None
        if data is None:
            return None
        tp_id = data.time_point_id
        by_name = {r.name: r for r in self.rows if r.time_point_id == tp_id}
        row = by_name.get(name)
        if row is None:
            return None
        for v in data.vois:
            if v.voi_id == row.voi_id:
                return v.display_mask
        return None

    def _preview_active(self) -> bool:
        return (
            self.isVisible()
            and self.tabs.currentIndex() == 0
            and self.preview_box.isChecked()
            and self.panel is not None
            and self.panel.is_ready()
        )

    def _refresh_preview(self) -> None:
        if not self._preview_active() or self.panel is None:
            return
        preview = self._get_preview()
        if preview is None:
            self.panel.viewer.set_edit_overlay(None)
            return
        k, j, i = self.panel.viewer.slice_index()
        percent = self.mode_box.currentText() == PERCENT
        try:
            mask = preview.preview(self.value_spin.value(), percent, {0: k, 1: j, 2: i})
        except DosimetryError as exc:
            self.status_label.setText(str(exc))
            self.panel.viewer.set_edit_overlay(None)
            return
        if self.panel.viewer.edit_overlay() is mask:
            self.panel.viewer.refresh_edit_overlay()
        else:
            self.panel.viewer.set_edit_overlay(mask, NEW_COLOUR)

    def apply_threshold(self) -> None:
        """Store the threshold of the whole volume as the target VOI (core, in a worker)."""
        t = self.target()
        if t is None:
            error_display.show_error(self, "Threshold", "Select a VOI or start a new one first.")
            return
        s = self.threshold_settings()
        what = f"{s.get('percent_of_max', s.get('lower')):g}"
        what += " %" if "percent_of_max" in s else f" {self._threshold_units()}"
        self._run_op(
            f"threshold {what} on {str(s['image']).upper()}",
            "threshold",
            t[0],
            time_point=t[1],
            **s,
        )

    # ============================================================ operations
    def _run_selected(self, operation: str, **kwargs: Any) -> None:
        row = self.selected_row()
        if row is None:
            return
        if operation == "margin":
            self._run_op(f"margin {kwargs['mm']:+g} mm", "margin", row.name, kwargs["mm"])
        elif operation == "interpolate":
            self._run_op("interpolate", "interpolate", row.name, plane=kwargs["plane"])
        else:
            self._run_op(operation, operation, row.name)

    def combine(self) -> None:
        row = self.selected_row()
        other = self.bool_other.currentText()
        out = self.name_box.currentText().strip() or row.name if row is not None else ""
        if row is None or not other:
            return
        op = self.bool_op.currentText()
        self._run_op(f"{op} of {row.name} and {other}", "boolean", op, row.name, other, out)

    def grow_from_crosshair(self) -> None:
        t = self.target()
        if t is None or self.panel is None:
            return
        seed = tuple(float(v) for v in self.panel.world_position())
        self._run_op(
            "region grow",
            "grow",
            t[0],
            seed,
            time_point=t[1],
            image=self.image_box.currentData(),
            tolerance_percent=self.grow_tol.value(),
        )

    def propagate(self) -> None:
        row = self.selected_row()
        to = self.prop_to.currentData()
        if row is not None and to:
            self._run_op(f"propagate {row.name}", "propagate", row.voi_id, to)

    def _run_op(self, description: str, operation: str, *args: Any, **kwargs: Any) -> None:
        store, case = self.session.store, self.session.case
        if store is None or case is None or self._op_task is not None:
            return
        new_kind = self._new[1] if self._new is not None else None
        self.status_label.setText(f"{description}…")
        stack = self._stack()

        def done(edits: list[Any]) -> None:
            for e in edits:
                stack.push(e)
            self.status_label.setText(f"{description}: saved.")
            self._after_save(new_kind)

        def failed(message: str, details: str) -> None:
            self.status_label.setText(f"{description}: nothing was saved.")
            error_display.show_error(self, "Contouring", message, details)

        self._op_task = self.session.run(
            run_operation,
            store,
            case.case_id,
            voi_edit.contour_and_save,
            operation,
            *args,
            description=description,
            with_progress=False,
            on_success=done,
            on_failure=failed,
            **kwargs,
        )
        self._op_task.finished.connect(self._op_finished)
        self._update_enabled()

    def _op_finished(self) -> None:
        self._op_task = None
        self._update_enabled()

    def _after_save(self, new_kind: str | None) -> None:
        """After a save that may have created the new VOI: select it, give it its kind."""
        if self._new is None:
            return
        name, kind = self._new
        self._new = None
        case = self.session.case
        tp_id = self.shown_time_point_id()
        if case is None:
            return
        voi = next(
            (v for v in case.vois if v.name.lower() == name.lower() and v.time_point_id == tp_id),
            None,
        )
        if voi is None:
            return
        self._selected = voi.voi_id
        if new_kind and str(voi.kind) != new_kind:
            self._change("VOI kind", voi_edit.set_voi_style, voi.voi_id, kind=new_kind)
        self._update_target_label()

    # ================================================================ strokes
    def current_tool(self) -> str:
        for tool, b in self.tool_buttons.items():
            if b.isChecked():
                return tool
        return "navigate"

    def set_tool(self, tool: str) -> None:
        """Choose a drawing tool (as clicking its button)."""
        self.tool_buttons[tool].click()

    def _drawing(self) -> bool:
        return (
            self.isVisible()
            and self.tabs.currentIndex() == 1
            and self.current_tool()
            in (
                "brush",
                "eraser",
                "outline",
            )
        )

    def _update_overlay(self) -> None:
        if self.panel is None:
            return
        viewer = self.panel.viewer
        drawing = self._drawing() and self._mask is not None
        viewer.set_tool_active(drawing)
        if drawing:
            viewer.set_edit_overlay(self._mask, NEW_COLOUR)
        elif self._preview_active():
            self._refresh_preview()
        else:
            viewer.set_edit_overlay(None)

    def _on_position(self, _world: Any) -> None:
        if self._preview_active():
            self._refresh_preview()

    def _on_tool(self, plane: str, phase: str, world: NDArray[np.float64]) -> None:
        if self.panel is None or not self._drawing() or self._mask is None:
            return
        viewer = self.panel.viewer
        if phase == "press":
            core_plane, index = viewer.array_plane(plane)
            assert self._geometry is not None
            self._mask_before = self._mask.copy()
            self._stroke = Stroke(
                self._mask,
                self._geometry,
                self.current_tool(),
                core_plane,
                index,
                radius_mm=self.brush_spin.value() / 2.0,
                sphere=self.sphere_box.isChecked(),
            )
        stroke = self._stroke
        if stroke is None:
            return
        if phase in ("press", "move"):
            if stroke.add(world):
                viewer.refresh_edit_overlay(None if stroke.sphere else [plane])
            return
        self._stroke = None
        try:
            stroke.finish()
        except DosimetryError as exc:
            if self._mask_before is not None:
                self._mask[...] = self._mask_before
            viewer.refresh_edit_overlay()
            error_display.show_error(self, "Outline", str(exc))
            return
        viewer.refresh_edit_overlay()
        self._save_stroke(stroke)

    def _save_stroke(self, stroke: Stroke) -> None:
        """Save the stroke's mask in a worker (one edit); strokes drawn meanwhile are queued."""
        t = self.target()
        if t is None or self._mask is None or self._geometry is None:
            return
        if not stroke.changed:
            return
        before = self._mask_before
        after = self._mask.copy()
        created = self._mask_key is not None and self._mask_key[2] == ""
        if self._stroke_task is not None:  # one save at a time: the next one takes both
            if self._pending is None:
                self._pending = [t, before, after, stroke.description(), created]
            else:
                self._pending[2] = after
                self._pending[3] += f", {stroke.description()}"
            return
        self._start_stroke_save(t, before, after, stroke.description(), created)

    def _start_stroke_save(
        self,
        t: tuple[str, str],
        before: NDArray[np.bool_] | None,
        after: NDArray[np.bool_],
        description: str,
        created: bool,
    ) -> None:
        store, case, g = self.session.store, self.session.case, self._geometry
        if store is None or case is None or g is None:
            return
        new_kind = self._new[1] if self._new is not None else None
        if created:
            self._mask_key = (t[0], t[1], "saving")

        def done(result: tuple[str, Any]) -> None:
            key, edit = result
            self._stack().push(edit)
            if self._mask_key is not None and self._mask_key[:2] == t:
                self._mask_key = (t[0], t[1], key)  # the mask in memory is the stored one
            self.status_label.setText(f"{description}: saved.")
            self._after_save(new_kind)

        def failed(message: str, details: str) -> None:
            self._pending = None
            self.status_label.setText(f"{description}: not saved.")
            error_display.show_error(self, "Drawing", message, details)
            self._load_target()  # the mask in memory goes back to what is stored
            self._update_overlay()

        def finished() -> None:
            self._stroke_task = None
            pending, self._pending = self._pending, None
            if pending is not None:
                self._start_stroke_save(*pending)
            self._update_enabled()

        self.status_label.setText(f"Saving {description}…")
        self._stroke_task = self.session.run(
            save_mask,
            store,
            case.case_id,
            t[0],
            after,
            g,
            t[1],
            description,
            None if created else before,
            description=f"contouring: {description}",
            with_progress=False,
            on_success=done,
            on_failure=failed,
        )
        self._stroke_task.finished.connect(finished)
        self._update_enabled()

    # =================================================================== undo
    def undo(self) -> None:
        stack = self._stack()
        if stack.can_undo() and self._may() and self._op_task is None:
            edit = self._change("Undo", stack.undo)
            if edit is not None:
                self.status_label.setText(f"Undone: {edit.description}")
            self._update_enabled()

    def redo(self) -> None:
        stack = self._stack()
        if stack.can_redo() and self._may() and self._op_task is None:
            edit = self._change("Redo", stack.redo)
            if edit is not None:
                self.status_label.setText(f"Redone: {edit.description}")
            self._update_enabled()

    def undo_stack(self) -> UndoStack:
        return self._stack()

    # ========================================================= import/export
    def import_file(self, fmt: str, path: str | Path | None) -> None:
        """Import contours (``path`` None: ask with a file dialog) into the time point shown."""
        store, case = self.session.store, self.session.case
        if store is None or case is None:
            return
        if path is None:
            filt = {
                "rtstruct": "DICOM (*.dcm *)",
                "seg": "DICOM SEG (*.dcm *)",
                "nifti": "NIfTI (*.nii *.nii.gz)",
            }
            chosen, _ = QFileDialog.getOpenFileName(self, f"Import {fmt}", "", filt[fmt])
            if not chosen:
                return
            path = chosen
        tp_id = self.shown_time_point_id()
        names = self._change("Import", voi_edit.import_contours, fmt, str(path), tp_id)
        if names is not None:
            self.status_label.setText(f"Imported {len(names)} VOI(s): {', '.join(names)}")

    def export_file(
        self, fmt: str, path: str | Path | None, ct_dir: str | Path | None = None
    ) -> None:
        """Write the shown time point's VOIs (``path`` None: ask); RTSTRUCT/SEG need the CT."""
        from dosimetry_core.pipeline import contour_io

        store, case = self.session.store, self.session.case
        if store is None or case is None or self._op_task is not None:
            return
        if path is None:
            suffix = ".nii.gz" if fmt == "nifti" else ".dcm"
            chosen, _ = QFileDialog.getSaveFileName(self, f"Export {fmt}", f"vois{suffix}")
            if not chosen:
                return
            path = chosen
        if fmt != "nifti" and ct_dir is None:
            chosen_dir = QFileDialog.getExistingDirectory(
                self, "Folder of the time point's CT series (the contours refer to it)"
            )
            if not chosen_dir:
                return
            ct_dir = chosen_dir
        tp_id = self.shown_time_point_id()
        if fmt == "nifti":
            fn: Any = contour_io.export_nifti_from_case
            kwargs: dict[str, Any] = {"time_point": tp_id}
        else:
            fn = (
                contour_io.export_rtstruct_from_case
                if fmt == "rtstruct"
                else contour_io.export_seg_from_case
            )
            kwargs = {"time_point": tp_id, "ct_dir": Path(str(ct_dir))}
        self.status_label.setText(f"Writing {fmt}…")
        self._op_task = self.session.run(
            fn,
            store,
            case,
            Path(str(path)),
            description=f"export {fmt}",
            with_progress=False,
            reload_case=False,
            on_success=lambda out: self.status_label.setText(f"Wrote {out}"),
            on_failure=lambda m, d: error_display.show_error(self, "Export", m, d),
            **kwargs,
        )
        self._op_task.finished.connect(self._op_finished)
        self._update_enabled()
