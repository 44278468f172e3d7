"""The viewer panel: the open case's time points in 2D planes with layers, a VOI list and 3D.

:class:`ViewerPanel` is bound to a :class:`~app.session.CaseSession`: it listens to
``caseChanged``, lists the case's time points in its own selector and loads the
selected one with :func:`app.viewer.model.load_view` in a session worker
(``session.run(..., reload_case=False)``): CT, SPECT/PET, the current TIA and
dose maps and the VOI masks, all on the display grid, and each VOI's volume and
mass from the core.  Nothing is resampled or computed in paint code.

What the user sees:

* the planes (:class:`app.viewer.planes.FusedViewer`) with CT, SPECT, TIA,
  dose with isodose lines at editable levels, and VOI outlines;
* the layer table: per layer visibility, colour map, window (lower/upper in the
  layer's unit) and opacity;
* the VOI list (:attr:`ViewerPanel.voi_list_widget`): visibility, colour swatch
  (click to change the display colour), name, kind, status, volume (mL), mass (g);
* the 3D view (:mod:`app.viewer.view3d`) when the platform can draw OpenGL
  (not under ``QT_QPA_PLATFORM=offscreen``, where it says so instead);
* :attr:`ViewerPanel.reset_action` ("Reset view", Ctrl+0), triggered by the
  panel's own button and by the shell's View menu.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QColor, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QCheckBox,
    QColorDialog,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.common import error_display
from app.session import CaseSession
from app.viewer.model import ViewData, VoiRow, load_view, time_point_label
from app.viewer.planes import COLORMAPS, FusedViewer, VoiOutline
from app.workers import Task
from dosimetry_core.model import Case, TimePoint, Volume

log = logging.getLogger(__name__)

__all__ = ["TimePointSelector", "ViewerPanel", "can_draw_opengl"]

GL_PLATFORMS = ("xcb", "wayland", "windows", "cocoa", "wayland-egl")
"""Qt platforms on which the VTK view draws (PLATFORM.md: not ``offscreen``)."""


def can_draw_opengl() -> bool:
    """True when the Qt platform can show an OpenGL (VTK) widget."""
    return QGuiApplication.platformName() in GL_PLATFORMS


class TimePointSelector(QWidget):
    """Segmented buttons, one per time point; exactly one is checked."""

    currentIndexChanged = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._group = QButtonGroup(self)
        self._group.setExclusive(True)
        self._group.idToggled.connect(self._on_toggled)
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(0)
        self._buttons: list[QToolButton] = []
        self._labels: list[str] = []
        self._updating = False

    @staticmethod
    def compact(label: str) -> str:
        """'TP1 · 4.0 h · NM' -> 'TP1 · 4.0 h': the label without its modality (narrow panel)."""
        parts = label.split(" · ")
        return " · ".join(parts[:2]) if len(parts) > 2 else label

    def _fit_texts(self) -> None:
        """Full labels when they fit the width, else the compact ones (never elided mid-word)."""
        if not self._buttons:
            return
        fm = self._buttons[0].fontMetrics()
        pad = 24  # a tool button's frame and margins around its text (px)
        full = sum(fm.horizontalAdvance(t) + pad for t in self._labels)
        use_full = full <= self.width()
        for b, text in zip(self._buttons, self._labels, strict=True):
            b.setText(text if use_full else self.compact(text))

    def resizeEvent(self, event: Any) -> None:  # Qt override
        super().resizeEvent(event)
        self._fit_texts()

    def set_items(self, labels: list[str]) -> None:
        if labels == self.labels():
            return  # the same time points (e.g. the case was saved): keep the buttons
        self._updating = True
        try:
            for b in self._buttons:
                self._group.removeButton(b)
                self._layout.removeWidget(b)
                b.hide()  # out of the layout now, not only when deleteLater runs
                b.deleteLater()
            self._buttons = []
            self._labels = list(labels)
            for n, text in enumerate(labels):
                b = QToolButton(self)
                b.setText(text)
                b.setToolTip(text)
                # on a narrow window the buttons may shrink below their text (the tooltip
                # keeps it whole) instead of widening the window
                b.setMinimumWidth(56)
                b.setCheckable(True)
                b.setObjectName("segment")
                self._group.addButton(b, n)
                self._layout.addWidget(b)
                self._buttons.append(b)
            self._fit_texts()
        finally:
            self._updating = False

    def labels(self) -> list[str]:
        """The full label of each time point ('TP1 · 4.0 h · NM'), whatever the buttons show."""
        return list(self._labels)

    def count(self) -> int:
        return len(self._buttons)

    def current_index(self) -> int:
        return self._group.checkedId()

    def set_current_index(self, index: int, *, notify: bool = True) -> None:
        if 0 <= index < len(self._buttons):
            self._updating = not notify
            try:
                self._buttons[index].setChecked(True)
            finally:
                self._updating = False

    def button(self, index: int) -> QToolButton:
        return self._buttons[index]

    def _on_toggled(self, button_id: int, checked: bool) -> None:
        if checked and not self._updating:
            self.currentIndexChanged.emit(button_id)


# ------------------------------------------------------------------ layers
class LayerTable(QTableWidget):
    """One row per layer: visible, colour map, lower, upper (layer's unit), opacity (%)."""

    COLUMNS = ("", "Layer", "Colours", "Lower", "Upper", "Opacity")

    def __init__(self, viewer: FusedViewer, parent: QWidget | None = None) -> None:
        super().__init__(0, len(self.COLUMNS), parent)
        self.viewer = viewer
        self.setHorizontalHeaderLabels(list(self.COLUMNS))
        self.verticalHeader().hide()
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        hh = self.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.rows: dict[str, dict[str, QWidget]] = {}
        self._updating = False

    def rebuild(self) -> None:
        """Rows for the layers the viewer shows now, with their current style."""
        self._updating = True
        try:
            keys = self.viewer.layer_keys()
            self.setRowCount(len(keys))
            self.rows = {}
            for r, key in enumerate(keys):
                name, units, cmap, lo, hi, opacity = self._style(key)
                check = QCheckBox(self)
                check.setChecked(self.viewer.layer_visible(key))
                check.setToolTip(f"Show the {name} layer")
                check.toggled.connect(lambda on, k=key: self._on_visible(k, on))
                label = QTableWidgetItem(f"{name} ({units})" if units else name)
                combo = QComboBox(self)
                if key == "ct":
                    combo.addItem("Grey")
                    combo.setEnabled(False)
                else:
                    combo.addItems(list(COLORMAPS))
                    combo.setCurrentText(cmap)
                combo.currentTextChanged.connect(lambda t, k=key: self._on_cmap(k, t))
                lo_spin, hi_spin = QDoubleSpinBox(self), QDoubleSpinBox(self)
                for spin, value in ((lo_spin, lo), (hi_spin, hi)):
                    spin.setRange(-1e12, 1e12)
                    spin.setButtonSymbols(QDoubleSpinBox.ButtonSymbols.NoButtons)
                    spin.setMaximumWidth(118)
                    spin.setDecimals(0 if key == "ct" or abs(hi) >= 1000 else 2)
                    spin.setSuffix(f" {units}" if units else "")
                    spin.setKeyboardTracking(False)
                    spin.setValue(value)
                    spin.valueChanged.connect(lambda _v, k=key: self._on_window(k))
                op = QSpinBox(self)
                op.setRange(0, 100)
                op.setSuffix(" %")
                op.setValue(int(round(opacity * 100)))
                op.valueChanged.connect(lambda v, k=key: self._on_opacity(k, v))
                self.setCellWidget(r, 0, check)
                self.setItem(r, 1, label)
                self.setCellWidget(r, 2, combo)
                self.setCellWidget(r, 3, lo_spin)
                self.setCellWidget(r, 4, hi_spin)
                self.setCellWidget(r, 5, op)
                self.rows[key] = {
                    "visible": check,
                    "cmap": combo,
                    "lower": lo_spin,
                    "upper": hi_spin,
                    "opacity": op,
                }
        finally:
            self._updating = False

    def _style(self, key: str) -> tuple[str, str, str, float, float, float]:
        v = self.viewer
        if key == "ct":
            w, lvl = v.ct_window()
            return "CT", "HU", "Grey", lvl - w / 2, lvl + w / 2, 1.0
        if key == "spect":
            lo, hi = v.overlay_levels()
            units = v.functional_units()
            return v.functional_name(), units, v.colormap_name(), lo, hi, v.opacity()
        layer = v.extra_layer(key)
        return layer.name, layer.units, layer.cmap, layer.lower, layer.upper, layer.opacity

    def _on_visible(self, key: str, on: bool) -> None:
        if not self._updating:
            self.viewer.set_layer_visible(key, on)

    def _on_cmap(self, key: str, name: str) -> None:
        if self._updating or key == "ct":
            return
        if key == "spect":
            self.viewer.set_colormap(name)
        else:
            self.viewer.set_extra_colormap(key, name)

    def _on_window(self, key: str) -> None:
        if self._updating:
            return
        row = self.rows[key]
        lo = row["lower"].value()  # type: ignore[attr-defined]
        hi = row["upper"].value()  # type: ignore[attr-defined]
        if key == "ct":
            self.viewer.set_ct_window(max(hi - lo, 1.0), (lo + hi) / 2)
        elif key == "spect":
            self.viewer.set_overlay_window(lo, hi, FusedViewer.MODE_ABSOLUTE)
        else:
            self.viewer.set_extra_window(key, lo, hi)

    def _on_opacity(self, key: str, value: int) -> None:
        if self._updating:
            return
        if key == "ct":
            for view in self.viewer.planes.values():
                view.ct_item.setOpacity(value / 100.0)
        elif key == "spect":
            self.viewer.set_opacity(value / 100.0)
        else:
            self.viewer.set_extra_opacity(key, value / 100.0)


# -------------------------------------------------------------------- VOIs
class VoiTable(QTableWidget):
    """The per-VOI list: visible, colour, name, kind, status, volume (mL), mass (g)."""

    COLUMNS = ("", "Colour", "Name", "Kind", "Status", "Volume (mL)", "Mass (g)")
    changed = Signal()
    """Visibility or colour of a VOI changed."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, len(self.COLUMNS), parent)
        self.setObjectName("voiList")
        self.setHorizontalHeaderLabels(list(self.COLUMNS))
        self.verticalHeader().hide()
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        hh = self.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.setWordWrap(False)
        self.voi_rows: list[VoiRow] = []
        self.visible: dict[str, bool] = {}
        self.colours: dict[str, tuple[int, int, int]] = {}
        self.swatches: list[QPushButton] = []
        self.checks: list[QCheckBox] = []

    def set_rows(self, rows: list[VoiRow]) -> None:
        self.voi_rows = list(rows)
        self.setRowCount(len(rows))
        self.swatches, self.checks = [], []
        for r, row in enumerate(rows):
            self.visible.setdefault(row.voi_id, True)
            colour = self.colours.setdefault(row.voi_id, row.color_rgb)
            check = QCheckBox(self)
            check.setChecked(self.visible[row.voi_id])
            check.setToolTip(f"Show {row.name}")
            check.toggled.connect(lambda on, v=row.voi_id: self._on_visible(v, on))
            swatch = QPushButton(self)
            swatch.setFixedSize(24, 16)
            swatch.setToolTip("Display colour (click to change)")
            self._paint_swatch(swatch, colour)
            swatch.clicked.connect(lambda _c=False, n=r: self.choose_colour(n))
            self.setCellWidget(r, 0, check)
            self.setCellWidget(r, 1, swatch)
            mass = "–" if row.mass_g is None else f"{row.mass_g:,.1f}"
            for c, text in enumerate(
                (row.name, row.kind, row.status, f"{row.volume_ml:,.1f}", mass), start=2
            ):
                item = QTableWidgetItem(text)
                if c >= 5:
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                self.setItem(r, c, item)
            self.swatches.append(swatch)
            self.checks.append(check)

    @staticmethod
    def _paint_swatch(button: QPushButton, rgb: tuple[int, int, int]) -> None:
        button.setStyleSheet(
            f"background-color: rgb({rgb[0]}, {rgb[1]}, {rgb[2]}); border: 1px solid #555;"
        )
        button.setProperty("rgb", rgb)

    def choose_colour(self, row: int, colour: QColor | None = None) -> None:
        """Change a VOI's display colour (``colour`` None: ask with a colour dialog)."""
        voi = self.voi_rows[row]
        if colour is None:
            r, g, b = self.colours[voi.voi_id]
            colour = QColorDialog.getColor(QColor(r, g, b), self, f"Colour of {voi.name}")
        if not colour.isValid():
            return
        rgb = (colour.red(), colour.green(), colour.blue())
        self.colours[voi.voi_id] = rgb
        self._paint_swatch(self.swatches[row], rgb)
        self.changed.emit()

    def _on_visible(self, voi_id: str, on: bool) -> None:
        self.visible[voi_id] = on
        self.changed.emit()

    def rows_as_shown(self) -> list[dict[str, Any]]:
        """What each line shows (for the tour): name, kind, status, volume_ml, mass_g."""
        out = []
        for r in range(self.rowCount()):
            cells = [self.item(r, c).text() for c in range(2, 7)]
            out.append(
                {
                    "name": cells[0],
                    "kind": cells[1],
                    "status": cells[2],
                    "volume_ml": float(cells[3].replace(",", "")),
                    "mass_g": None if cells[4] == "–" else float(cells[4].replace(",", "")),
                    "visible": self.checks[r].isChecked(),
                }
            )
        return out


# ------------------------------------------------------------------- panel
class ViewerPanel(QWidget):
    """The viewer bound to a session (module docstring)."""

    cursorInfo = Signal(str)
    """Readout of every visible layer under the mouse, with units (status bar)."""
    timePointShown = Signal(str)
    """The time_point_id now displayed."""
    loadFailed = Signal(str)
    """Loading a time point failed (message as shown to the user)."""

    CACHE_SIZE = 3

    def __init__(self, session: CaseSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("viewerPanel")
        self.session = session
        self._case: Case | None = None
        self._time_points: list[TimePoint] = []
        self._wanted: str | None = None
        self._shown: str | None = None
        self._data: ViewData | None = None
        self._cache: OrderedDict[tuple[str, int, str], ViewData] = OrderedDict()
        self._tasks: dict[tuple[str, int, str], Task] = {}
        self._ct_cache: dict[str, Volume] = {}
        self.view3d: Any = None
        self._emphasis: str | None = None

        self.reset_action = QAction("Reset view", self)
        self.reset_action.setShortcut(QKeySequence("Ctrl+0"))
        self.reset_action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        self.reset_action.setToolTip("Fit every plane to its image, centre the crosshair and 3D")
        self.reset_action.triggered.connect(self.reset_view)
        self.addAction(self.reset_action)

        # top bar
        self.time_point_selector = TimePointSelector(self)
        self.time_point_selector.currentIndexChanged.connect(self.select_time_point)
        self.status_label = QLabel("No case open", self)
        self.status_label.setObjectName("hint")
        # a long status must not widen the window: it is cut, the tooltip has it whole
        self.status_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.reset_button = QPushButton("Reset view", self)
        self.reset_button.setToolTip(self.reset_action.toolTip() + " (Ctrl+0)")
        self.reset_button.clicked.connect(self.reset_action.trigger)
        self.reset_button.setMinimumWidth(64)
        top = QHBoxLayout()
        top.addWidget(self.time_point_selector)
        top.addWidget(self.status_label, 1)
        top.addWidget(self.reset_button)

        # planes
        self.viewer = FusedViewer(self)
        self.viewer.controls.hide()  # the layer table below replaces its controls
        self.viewer.cursorInfo.connect(self._on_cursor_info)
        self.viewer.positionChanged.connect(self._on_position)

        # side column: layers (with isodose levels) and VOIs, one tab each
        side = QTabWidget(self)
        side.setObjectName("viewerSide")
        side.setMinimumWidth(300)
        layers_box = QWidget(side)
        lb = QVBoxLayout(layers_box)
        lb.setContentsMargins(4, 4, 4, 4)
        self.layer_table = LayerTable(self.viewer, layers_box)
        lb.addWidget(self.layer_table)
        iso_row = QHBoxLayout()
        iso_row.addWidget(QLabel("Isodose (Gy)", layers_box))
        self.isodose_edit = QLineEdit(layers_box)
        self.isodose_edit.setObjectName("isodose_levels_gy")
        self.isodose_edit.setToolTip("Isodose levels in Gy, separated by commas (Enter applies)")
        self.isodose_edit.setText(", ".join(f"{v:g}" for v in self.viewer.isodose_levels_gy))
        self.isodose_edit.editingFinished.connect(self._on_isodose_edited)
        iso_row.addWidget(self.isodose_edit, 1)
        lb.addLayout(iso_row)
        voi_box = QWidget(side)
        vb = QVBoxLayout(voi_box)
        vb.setContentsMargins(4, 4, 4, 4)
        self.voi_list_widget = VoiTable(voi_box)
        self.voi_list_widget.changed.connect(self._apply_vois)
        vb.addWidget(self.voi_list_widget)
        side.addTab(layers_box, "Layers")
        side.addTab(voi_box, "VOIs")
        self.side_tabs = side
        self.side_action = QAction("Layers and VOIs", self)
        self.side_action.setCheckable(True)
        self.side_action.setChecked(True)
        self.side_action.setToolTip("Show or hide the viewer's column of layers and VOIs")
        self.side_action.toggled.connect(side.setVisible)

        # 3D
        self.view3d_container = QWidget(self)
        self._v3_layout = QVBoxLayout(self.view3d_container)
        self._v3_layout.setContentsMargins(0, 0, 0, 0)
        self._build_3d()

        planes_and_3d = QSplitter(Qt.Orientation.Vertical, self)
        planes_and_3d.addWidget(self.viewer)
        planes_and_3d.addWidget(self.view3d_container)
        planes_and_3d.setStretchFactor(0, 5)
        planes_and_3d.setStretchFactor(1, 2)
        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.addWidget(planes_and_3d)
        split.addWidget(side)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(split, 1)

        session.caseChanged.connect(self._on_case_changed)
        self._on_case_changed(session.case)

    # ------------------------------------------------------------------ 3D
    def _build_3d(self) -> None:
        if not can_draw_opengl():
            note = QLabel(
                "The 3D view needs a display with OpenGL "
                f"(Qt platform '{QGuiApplication.platformName()}').",
                self.view3d_container,
            )
            note.setObjectName("hint")
            note.setAlignment(Qt.AlignmentFlag.AlignCenter)
            self._v3_layout.addWidget(note)
            return
        from app.viewer.view3d import View3D

        self.view3d = View3D(self.view3d_container)
        self.view3d.positionPicked.connect(self.set_world_position)
        self._v3_layout.addWidget(self.view3d)

    # ------------------------------------------------------------- the API
    def current_time_point(self) -> TimePoint | None:
        """The time point selected (being loaded or shown), or None."""
        for tp in self._time_points:
            if tp.time_point_id == self._wanted:
                return tp
        return None

    def time_points(self) -> list[TimePoint]:
        return list(self._time_points)

    def time_point_labels(self) -> list[str]:
        return self.time_point_selector.labels()

    def select_time_point(self, index: int) -> None:
        """Show the time point at ``index`` (time order); loads it in the background."""
        if not 0 <= index < len(self._time_points):
            return
        tp = self._time_points[index]
        if self.time_point_selector.current_index() != index:
            self.time_point_selector.set_current_index(index, notify=False)
        self._wanted = tp.time_point_id
        self._request(tp)

    def is_ready(self) -> bool:
        """The selected time point is loaded and drawn."""
        return self._wanted is not None and self._shown == self._wanted

    def world_position(self) -> NDArray[np.float64]:
        """Crosshair position, LPS mm."""
        return self.viewer.world_position()

    def set_world_position(self, world_mm: Any) -> None:
        """Move the crosshair (2D planes and the 3D cursor) to an LPS point (mm)."""
        self.viewer.set_world_position(world_mm)

    def reset_view(self) -> None:
        """Fit the planes, centre the crosshair, reset the 3D camera."""
        self.viewer.reset_view()
        if self.view3d is not None:
            self.view3d.reset_camera()

    def view_data(self) -> ViewData | None:
        """What is drawn now (layers on the display grid, VOI rows)."""
        return self._data

    def readout(self) -> str:
        """Values of every visible layer at the crosshair, with units."""
        if not self.viewer.has_image():
            return ""
        return self.viewer.layer_readout(self.viewer.world_position())

    def isodose_levels_gy(self) -> list[float]:
        return list(self.viewer.isodose_levels_gy)

    # ------------------------------------------------------------ loading
    def _on_case_changed(self, case: Case | None) -> None:
        previous = self._case
        self._case = case
        if case is None:
            self._time_points = []
            self._wanted = self._shown = None
            self._data = None
            self._cache.clear()
            self._ct_cache.clear()
            self.time_point_selector.set_items([])
            self.viewer.clear()
            self.layer_table.rebuild()
            self.voi_list_widget.set_rows([])
            if self.view3d is not None:
                self.view3d.clear()
            self.status_label.setText("No case open")
            return
        same_case = previous is not None and previous.case_id == case.case_id
        if not same_case:
            self._ct_cache.clear()
            self.voi_list_widget.visible.clear()
            self.voi_list_widget.colours.clear()
        keep = self._wanted if same_case else None
        self._time_points = case.sorted_time_points()
        self.time_point_selector.set_items(
            [time_point_label(case, tp, n + 1) for n, tp in enumerate(self._time_points)]
        )
        self._shown = None
        if not self._time_points:
            self._wanted = None
            self.viewer.clear()
            self.status_label.setText("This case has no time points")
            return
        ids = [tp.time_point_id for tp in self._time_points]
        self.select_time_point(ids.index(keep) if keep in ids else 0)

    def _key(self, tp: TimePoint) -> tuple[str, int, str]:
        assert self._case is not None
        return (self._case.case_id, self._case.version, tp.time_point_id)

    def _request(self, tp: TimePoint) -> None:
        key = self._key(tp)
        data = self._cache.get(key)
        if data is not None:
            self._cache.move_to_end(key)
            self._show(data)
            return
        if key in self._tasks:
            return
        store, case = self.session.store, self._case
        if store is None or case is None:
            return
        self.status_label.setText(f"Loading {tp.label or tp.time_point_id}…")
        task = self.session.run(
            load_view,
            store,
            case,
            tp,
            ct_cache=self._ct_cache,
            description=f"viewer: load {tp.label or tp.time_point_id}",
            reload_case=False,
            on_success=lambda result, k=key: self._loaded(k, result),
            on_failure=lambda msg, details, k=key: self._failed(k, msg, details),
            on_cancelled=lambda k=key: self._tasks.pop(k, None),
        )
        self._tasks[key] = task

    def _loaded(self, key: tuple[str, int, str], data: ViewData) -> None:
        self._tasks.pop(key, None)
        self._cache[key] = data
        while len(self._cache) > self.CACHE_SIZE:
            self._cache.popitem(last=False)
        if self._case is not None and key == self._key_of_wanted():
            self._show(data)

    def _key_of_wanted(self) -> tuple[str, int, str] | None:
        tp = self.current_time_point()
        return None if tp is None else self._key(tp)

    def _failed(self, key: tuple[str, int, str], message: str, details: str) -> None:
        self._tasks.pop(key, None)
        if self._case is None or key != self._key_of_wanted():
            # a load the user no longer waits for (another time point, another case,
            # the case closed): nothing on screen depends on it, so no dialog
            log.info("viewer: a stale load failed: %s", message)
            return
        self.status_label.setText("Could not load the time point")
        self.loadFailed.emit(message)
        error_display.show_error(self, "Viewer", message, details)

    def _show(self, data: ViewData) -> None:
        layers = data.layers
        spect = layers.get("spect")
        ct = layers.get("ct")
        if ct is not None:
            if spect is not None:
                self.viewer.set_time_point(ct.volume, spect.native, spect.volume)
            else:
                self.viewer.set_time_point(ct.volume, None)
        else:
            assert spect is not None
            self.viewer.set_time_point(None, spect.volume)
        if ct is not None:
            extra = [
                (layer.key, layer.name, layer.units, layer.volume)
                for key, layer in layers.items()
                if key in ("tia", "dose")
            ]
            self.viewer.set_extra_layers(extra)
        self._data = data
        self.voi_list_widget.set_rows(data.vois)
        self._apply_vois()
        self.layer_table.rebuild()
        tp = self.current_time_point()
        text = "" if tp is None else (tp.label or tp.time_point_id)
        if data.warnings:
            text += " — " + "; ".join(data.warnings)
        self.status_label.setText(text)
        if self.view3d is not None:
            self.view3d.set_data(data, self.voi_list_widget.colours, self.voi_list_widget.visible)
            self.view3d.set_cursor(self.viewer.world_position())
        self._shown = data.time_point_id
        self.timePointShown.emit(data.time_point_id)

    def _apply_vois(self) -> None:
        table = self.voi_list_widget
        outlines = [
            VoiOutline(
                row.name, row.display_mask, table.colours[row.voi_id], row.status, row.voi_id
            )
            for row in table.voi_rows
            if row.display_mask is not None and table.visible.get(row.voi_id, True)
        ]
        if self.viewer.has_image():
            self.viewer.set_vois(outlines)
        if self.view3d is not None and self._data is not None:
            self.view3d.set_voi_style(table.colours, table.visible)

    def set_voi_emphasis(self, voi_id: str | None) -> None:
        """Emphasise one VOI on every plane and in 3D, the others dimmed (None: all equal).

        Kept across time points and case reloads until changed.
        """
        self._emphasis = voi_id or None
        self.viewer.set_voi_emphasis(self._emphasis)
        if self.view3d is not None:
            self.view3d.set_voi_emphasis(self._emphasis)

    def centre_on_voi(self, voi_id: str) -> bool:
        """Move the crosshair into a VOI shown on the display grid (its voxel nearest its centroid).

        Returns False (nothing moved) when the VOI has no voxel on the shown time point.
        """
        data = self._data
        if data is None:
            return False
        row = next((r for r in data.vois if r.voi_id == voi_id), None)
        if row is None or row.display_mask is None or not row.display_mask.any():
            return False
        voxels = np.argwhere(row.display_mask)
        centroid = voxels.mean(axis=0)
        # the VOI's voxel nearest its centroid (the centroid of a curved organ may lie outside)
        nearest = voxels[int(np.argmin(((voxels - centroid) ** 2).sum(axis=1)))]
        self.set_world_position(data.display.geometry.index_to_world(nearest))
        return True

    def voi_emphasis(self) -> str | None:
        """The emphasised VOI id, or None."""
        return self._emphasis

    # ----------------------------------------------------------- handlers
    def _on_isodose_edited(self) -> None:
        text = self.isodose_edit.text()
        try:
            levels = [float(t) for t in text.replace(";", ",").split(",") if t.strip()]
            self.viewer.set_isodose_levels(levels)
        except ValueError as exc:
            self.isodose_edit.setProperty("invalid", True)
            self.isodose_edit.setStyleSheet("border: 1px solid #e06060;")
            msg = str(exc)
            if "could not convert" in msg:
                msg = f"isodose levels: {text!r} is not a list of doses in Gy (e.g. 2, 5, 10, 20)"
            error_display.show_error(self, "Isodose levels", msg)
            return
        self.isodose_edit.setProperty("invalid", False)
        self.isodose_edit.setStyleSheet("")
        self.isodose_edit.setText(", ".join(f"{v:g}" for v in self.viewer.isodose_levels_gy))

    def _on_cursor_info(self, text: str) -> None:
        self.cursorInfo.emit(text)

    def _on_position(self, world: NDArray[np.float64]) -> None:
        if self.view3d is not None:
            self.view3d.set_cursor(world)

    def closeEvent(self, event: Any) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        if self.view3d is not None:
            self.view3d.close()
        super().closeEvent(event)
