"""Fused SPECT/CT (or PET/CT) viewer: axial, coronal and sagittal planes with a linked crosshair.

Organisation
------------
* The **display grid** is the CT grid of the time point (the SPECT grid when a
  time point has no CT).  The functional volume is brought onto it once per
  time point with :func:`dosimetry_core.imaging.resample.resample` (linear,
  fill 0) by :func:`fused_overlay`; the result is cached.  No other code moves
  voxels between grids.
* The crosshair is a **world position** (DICOM LPS, mm).  Slices are the CT
  voxels nearest to it (``Geometry.world_to_index`` rounded and clipped), so
  changing the time point keeps the anatomical position even when the new CT
  grid differs.
* Every plane is drawn in millimetres: each :class:`pyqtgraph.ImageItem` gets
  a rectangle of ``n_voxels * spacing_mm``, so anisotropic voxels keep their
  true aspect ratio.

Display convention (radiological)
---------------------------------
The array is viewed through a *canonical* orientation whose axes follow LPS
(z, y, x) in increasing order (grids whose direction cosines are a signed
permutation, e.g. head-first or feet-first axial CT, are flipped/transposed as
NumPy views; an oblique grid is shown in its own voxel planes, labelled with
the nearest patient axes).  On screen:

=========  ==============================  ===========================
plane      horizontal (left -> right)      vertical (top -> bottom)
=========  ==============================  ===========================
axial      patient Right -> Left (x)       Anterior -> Posterior (y)
coronal    patient Right -> Left (x)       Superior -> Inferior (z)
sagittal   Anterior -> Posterior (y)       Superior -> Inferior (z)
=========  ==============================  ===========================

i.e. the axial plane is seen from the feet with the patient's right on the
screen's left, as radiologists and nuclear-medicine physicians read it.

Mouse: left click or drag sets the crosshair (the other planes follow); the
wheel (or Up/Down, PageUp/PageDown) scrolls slices; Ctrl+wheel and right-drag
zoom; middle-drag pans.  The voxel values under the cursor (CT in HU, SPECT in
the volume's units, read at the nearest voxel of the *native* SPECT grid) are
announced with :attr:`FusedViewer.cursorInfo`.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyqtgraph as pg
from numpy.typing import NDArray
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QImage,
    QKeyEvent,
    QPainter,
    QPaintEvent,
    QResizeEvent,
    QTransform,
)
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from app.viewer.isodose import isoline_segments
from app.viewer.model import fused_overlay
from dosimetry_core.model import Geometry, ImageUnits, Volume

__all__ = [
    "COLORMAPS",
    "CT_PRESETS",
    "PLANES",
    "FusedViewer",
    "PlaneSlices",
    "PlaneView",
    "fused_overlay",
    "overlay_lookup_table",
]

PLANES: tuple[str, str, str] = ("axial", "coronal", "sagittal")

CT_PRESETS: dict[str, tuple[float, float]] = {
    # name: (window width, window level) in HU -- common radiology display presets
    "Soft tissue": (400.0, 40.0),
    "Lung": (1500.0, -600.0),
    "Bone": (1800.0, 400.0),
}
CUSTOM_PRESET = "Custom"

# label shown -> pyqtgraph colormap name (or our own definition below)
COLORMAPS: dict[str, str] = {
    "Inferno": "inferno",
    "Hot": "hot",
    "Magma": "magma",
    "Viridis": "viridis",
    "Turbo": "turbo",
}

MIP = "mip"
"""Name of the fourth panel: maximum-intensity projection of the overlay, seen from the front."""

PLANE_COLORS: dict[str, str] = {
    "axial": "#e06060",
    "coronal": "#63c06b",
    "sagittal": "#e8c24f",
    MIP: "#9aa4b1",
}
PLANE_TITLES: dict[str, str] = {
    "axial": "Axial",
    "coronal": "Coronal",
    "sagittal": "Sagittal",
    MIP: "MIP (anterior)",
}
# orientation letters at (left, right, top, bottom) of each plane, see module docstring
ORIENTATION: dict[str, tuple[str, str, str, str]] = {
    "axial": ("R", "L", "A", "P"),
    "coronal": ("R", "L", "S", "I"),
    "sagittal": ("A", "P", "S", "I"),
    MIP: ("R", "L", "S", "I"),
}
# canonical axis (0 = z, 1 = y, 2 = x) normal to each plane, and its name
NORMAL_AXIS: dict[str, int] = {"axial": 0, "coronal": 1, "sagittal": 2}
AXIS_NAMES = ("z", "y", "x")
# canonical axes shown (horizontal, vertical) in each plane
PLANE_AXES: dict[str, tuple[int, int]] = {
    "axial": (2, 1),
    "coronal": (2, 0),
    "sagittal": (1, 0),
    MIP: (2, 0),
}

OVERLAY_ALPHA_RAMP = 0.25
"""Fraction of the overlay window over which the colour fades in from transparent."""
OVERLAY_CMAP_START = 0.2
"""The overlay uses the colour map from this fraction up: the near-black start of
maps such as inferno or hot would darken the CT instead of showing uptake."""


# ------------------------------------------------------------------ fusion
def _hot_colormap() -> pg.ColorMap:
    # black -> red -> yellow -> white, the classic nuclear-medicine "hot" scale
    return pg.ColorMap(
        pos=np.array([0.0, 0.375, 0.75, 1.0]),
        color=np.array([[0, 0, 0], [255, 0, 0], [255, 255, 0], [255, 255, 255]], dtype=np.ubyte),
        name="hot",
    )


def get_colormap(name: str) -> pg.ColorMap:
    """A pyqtgraph colormap by pyqtgraph name (plus ``'hot'``)."""
    key = COLORMAPS.get(name, name)
    if key == "hot":
        return _hot_colormap()
    cmap = pg.colormap.get(key)
    if cmap is None:  # pragma: no cover - bundled maps always exist
        raise KeyError(f"unknown colour map {name!r}")
    return cmap


def overlay_lookup_table(
    name: str, n: int = 256, ramp: float = OVERLAY_ALPHA_RAMP, start: float = OVERLAY_CMAP_START
) -> NDArray[np.ubyte]:
    """RGBA lookup table whose alpha rises from 0 to 1 over the first ``ramp`` of the window.

    Values at or below the lower window limit are fully transparent, so the CT
    shows through where there is no uptake; colours run from ``start`` to the
    end of the colour map.
    """
    cmap = get_colormap(name)
    lut = np.array(cmap.getLookupTable(start, 1.0, n, alpha=True), dtype=np.ubyte)
    alpha = np.clip(np.arange(n) / max(ramp * (n - 1), 1.0), 0.0, 1.0)
    lut[:, 3] = np.round(alpha * 255).astype(np.ubyte)
    return lut


# ----------------------------------------------------------- display grid
class _DisplayGrid:
    """Canonical (LPS-ordered, increasing) view of a voxel grid, and conversions to world mm.

    Canonical axis ``c`` (0 = z, 1 = y, 2 = x) is the NumPy axis ``perm[c]``,
    flipped when that index axis runs towards decreasing LPS coordinate.
    Canonical millimetres are ``w0 + q * spacing`` (``q`` the canonical index);
    they equal LPS coordinates for grids whose direction is a signed permutation.
    """

    def __init__(self, geometry: Geometry) -> None:
        self.geometry = geometry
        d = geometry.direction_matrix
        # for numpy axis n (0 = k, 1 = j, 2 = i) the index axis is c = 2 - n
        lps_axis = [int(np.argmax(np.abs(d[:, 2 - n]))) for n in range(3)]
        sign = [float(np.sign(d[lps_axis[n], 2 - n])) or 1.0 for n in range(3)]
        if sorted(lps_axis) != [0, 1, 2]:  # degenerate oblique grid: show as stored
            lps_axis, sign = [2, 1, 0], [1.0, 1.0, 1.0]
        # canonical axis c shows LPS axis 2 - c (z, y, x)
        self.perm = tuple(lps_axis.index(2 - c) for c in range(3))
        self.flip = tuple(sign[self.perm[c]] < 0 for c in range(3))
        shape = geometry.shape_zyx
        self.shape = tuple(int(shape[self.perm[c]]) for c in range(3))
        self.spacing = np.array([geometry.spacing_mm[2 - self.perm[c]] for c in range(3)])
        p0 = geometry.index_to_world(self._array_index(np.zeros(3)))
        self.w0 = np.array([p0[2], p0[1], p0[0]])

    def canonical(self, array: NDArray[Any]) -> NDArray[Any]:
        """A view of ``array`` ([k, j, i]) with axes in canonical (z, y, x) order."""
        view = np.transpose(array, self.perm)
        for c, f in enumerate(self.flip):
            if f:
                view = np.flip(view, axis=c)
        return view

    def _array_index(self, q: NDArray[np.float64]) -> NDArray[np.float64]:
        idx = np.zeros(3)
        for c in range(3):
            n = self.perm[c]
            idx[n] = (self.shape[c] - 1 - q[c]) if self.flip[c] else q[c]
        return idx

    def _canonical_index(self, idx: NDArray[np.float64]) -> NDArray[np.float64]:
        q = np.zeros(3)
        for c in range(3):
            v = idx[self.perm[c]]
            q[c] = (self.shape[c] - 1 - v) if self.flip[c] else v
        return q

    # world <-> canonical mm / indices
    def mm_of_world(self, world: NDArray[np.float64]) -> NDArray[np.float64]:
        q = self._canonical_index(self.geometry.world_to_index(world))
        return self.w0 + q * self.spacing

    def world_of_mm(self, mm: NDArray[np.float64]) -> NDArray[np.float64]:
        q = (np.asarray(mm, dtype=float) - self.w0) / self.spacing
        return self.geometry.index_to_world(self._array_index(q))

    def clamp_mm(self, mm: NDArray[np.float64]) -> NDArray[np.float64]:
        hi = self.w0 + (np.asarray(self.shape) - 1) * self.spacing
        return np.clip(mm, self.w0, hi)

    def slice_of_mm(self, mm: NDArray[np.float64]) -> tuple[int, int, int]:
        """Canonical voxel indices nearest to canonical mm (clipped into the grid)."""
        q = np.rint((np.asarray(mm) - self.w0) / self.spacing).astype(int)
        q = np.clip(q, 0, np.asarray(self.shape) - 1)
        return int(q[0]), int(q[1]), int(q[2])

    def array_index_of_slices(self, q: tuple[int, int, int]) -> tuple[int, int, int]:
        idx = self._array_index(np.asarray(q, dtype=float))
        return int(round(idx[0])), int(round(idx[1])), int(round(idx[2]))

    def mm_of_slice(self, c: int, q: int) -> float:
        return float(self.w0[c] + q * self.spacing[c])

    def rect(self, h_axis: int, v_axis: int) -> QRectF:
        """Item rectangle (mm) covering whole voxels along canonical axes h, v."""
        return QRectF(
            float(self.w0[h_axis] - self.spacing[h_axis] / 2),
            float(self.w0[v_axis] - self.spacing[v_axis] / 2),
            float(self.shape[h_axis] * self.spacing[h_axis]),
            float(self.shape[v_axis] * self.spacing[v_axis]),
        )

    def transform(self, h_axis: int, v_axis: int) -> QTransform:
        """Item transform: image pixel (col, row) corners to mm, whatever the image size."""
        r = self.rect(h_axis, v_axis)
        tr = QTransform()
        tr.translate(r.x(), r.y())
        tr.scale(float(self.spacing[h_axis]), float(self.spacing[v_axis]))
        return tr


def _value_at(volume: Volume | None, world: NDArray[np.float64]) -> float | None:
    """Voxel value of ``volume`` nearest to an LPS point, or None outside the grid."""
    if volume is None:
        return None
    idx = np.rint(volume.geometry.world_to_index(world)).astype(int)
    if np.any(idx < 0) or np.any(idx >= np.asarray(volume.geometry.shape_zyx)):
        return None
    return float(volume.array[idx[0], idx[1], idx[2]])


def format_number(value: float | None, units: str = "") -> str:
    """A voxel value as displayed (no unit conversion): integers for HU and large values."""
    if value is None or not np.isfinite(value):
        return "–"
    if units == str(ImageUnits.HU):
        return f"{value:.0f}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def format_value(value: float | None, units: str) -> str:
    """Voxel value with its unit for display (no unit conversion)."""
    text = format_number(value, units)
    return f"{text} {units}" if units and text != "–" else text


@dataclass
class VoiOutline:
    """A VOI to outline: its mask on the displayed CT grid, colour and review status."""

    name: str
    mask: NDArray[np.bool_]
    color_rgb: tuple[int, ...]
    status: str = ""
    voi_id: str = ""


DIMMED_OUTLINE_ALPHA = 60
"""Alpha (0-255) of the other VOIs' outlines while one VOI is emphasised."""


def outline_rgba(
    slices: Sequence[tuple[NDArray[np.bool_], tuple[int, ...]]],
    *,
    alphas: Sequence[int] | None = None,
    thick: Sequence[bool] | None = None,
) -> NDArray[np.uint8]:
    """RGBA image of the 1-pixel in-plane outlines of 2D masks (later ones drawn on top).

    A pixel is on the outline when it is inside the mask and one of its four
    in-plane neighbours is outside (or it touches the image edge).  ``alphas``
    (one per mask, default 255) dims outlines; ``thick`` (one per mask) draws
    that outline 2 pixels wide (the edge and its inner neighbours).
    """
    shape = slices[0][0].shape
    out = np.zeros((*shape, 4), dtype=np.uint8)
    for n, (m, colour) in enumerate(slices):
        if not m.any():
            continue
        padded = np.pad(m, 1, constant_values=False)
        interior = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
        edge = m & ~interior
        if thick is not None and thick[n]:
            pe = np.pad(edge, 1, constant_values=False)
            near = pe[:-2, 1:-1] | pe[2:, 1:-1] | pe[1:-1, :-2] | pe[1:-1, 2:]
            edge = edge | (m & near)
        out[edge, 0], out[edge, 1], out[edge, 2] = colour[0], colour[1], colour[2]
        out[edge, 3] = 255 if alphas is None else alphas[n]
    return out


DEFAULT_ISODOSE_LEVELS_GY: tuple[float, ...] = (2.0, 5.0, 10.0, 20.0)
ISODOSE_COLOURS: tuple[str, ...] = (
    "#4fc3f7",
    "#81c784",
    "#fff176",
    "#ffb74d",
    "#e57373",
    "#ce93d8",
)
EXTRA_LAYER_DEFAULTS: dict[str, tuple[str, bool, float]] = {
    # key: (colour map, visible, opacity)
    "tia": ("Viridis", False, 0.6),
    "dose": ("Turbo", True, 0.5),
}


@dataclass
class ExtraLayer:
    """A further layer on the display grid (TIA map, dose map) and its display style."""

    key: str
    name: str
    units: str
    volume: Volume
    cmap: str
    visible: bool
    opacity: float
    lower: float
    upper: float
    canonical: NDArray[Any] | None = None
    lut: NDArray[np.ubyte] | None = None
    z: float = 11.0


@dataclass(frozen=True)
class PlaneSlices:
    """The 2D arrays displayed in one plane (rows: screen vertical axis, mm increasing)."""

    ct: NDArray[Any] | None
    overlay: NDArray[Any] | None


# -------------------------------------------------------------- plane view
class _PlaneViewBox(pg.ViewBox):
    """ViewBox where the left button sets the crosshair and the wheel scrolls slices."""

    sigPick = Signal(float, float)
    sigScroll = Signal(int)
    sigTool = Signal(str, float, float)
    """A drawing tool is active: (``press``/``move``/``release``, x mm, y mm) of the left button."""

    def __init__(self, invert_y: bool) -> None:
        super().__init__(lockAspect=True, enableMenu=False, invertY=invert_y)
        self._wheel_accum = 0.0
        self.tool_active = False
        """True while a drawing tool owns the left button (it no longer moves the crosshair)."""

    def _tool(self, phase: str, pos: Any) -> None:
        p = self.mapToView(pos)
        self.sigTool.emit(phase, p.x(), p.y())

    def mouseClickEvent(self, ev: Any) -> None:
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            if self.tool_active:  # a click is a stroke of one dab
                self._tool("press", ev.pos())
                self._tool("release", ev.pos())
                return
            p = self.mapToView(ev.pos())
            self.sigPick.emit(p.x(), p.y())
        else:
            super().mouseClickEvent(ev)

    def mouseDragEvent(self, ev: Any, axis: int | None = None) -> None:
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            if self.tool_active:
                if ev.isStart():
                    self._tool("press", ev.buttonDownPos())
                self._tool("move", ev.pos())
                if ev.isFinish():
                    self._tool("release", ev.pos())
                return
            p = self.mapToView(ev.pos())
            self.sigPick.emit(p.x(), p.y())
        else:
            super().mouseDragEvent(ev, axis)

    def wheelEvent(self, ev: Any, axis: int | None = None) -> None:
        if ev.modifiers() & Qt.KeyboardModifier.ControlModifier:
            super().wheelEvent(ev, axis)
            return
        delta = ev.delta() if hasattr(ev, "delta") else ev.angleDelta().y()
        self._wheel_accum += delta / 120.0
        steps = int(self._wheel_accum)
        if steps:
            self._wheel_accum -= steps
            self.sigScroll.emit(steps)
        ev.accept()


class _OverlayLabel(QLabel):
    def __init__(self, parent: QWidget, color: str = "#d8d8d8", bold: bool = False) -> None:
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setStyleSheet(f"color: {color}; background: transparent;")
        font = QFont(self.font())
        font.setBold(bold)
        self.setFont(font)


class PlaneView(QWidget):
    """One plane: CT image, overlay image, crosshair lines and text labels, in mm."""

    sigPick = Signal(str, float, float)
    """(plane, horizontal mm, vertical mm) picked with the left button."""
    sigScroll = Signal(str, int)
    sigHover = Signal(str, object)
    """(plane, (h_mm, v_mm) or None when the cursor left the image)."""
    sigTool = Signal(str, str, float, float)
    """(plane, phase, horizontal mm, vertical mm) of a drawing tool (see _PlaneViewBox)."""

    def __init__(self, plane: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plane = plane
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.setMinimumSize(160, 140)
        self.view = pg.GraphicsView(self, background="#000000")
        self.view.setFrameShape(pg.QtWidgets.QFrame.Shape.NoFrame)
        # partial updates left stale crosshair pixels outside the image (seen under Xvfb);
        # a full repaint of a plane is cheap
        self.view.setViewportUpdateMode(
            pg.QtWidgets.QGraphicsView.ViewportUpdateMode.FullViewportUpdate
        )
        self.vb = _PlaneViewBox(invert_y=(plane == "axial"))
        self.view.setCentralItem(self.vb)
        self.ct_item = pg.ImageItem(axisOrder="row-major")
        self.overlay_item = pg.ImageItem(axisOrder="row-major")
        self.overlay_item.setZValue(10)
        self.overlay_item.setOpts(nanPolicy="omit")
        # VOI outlines (RGBA) above the functional overlay, below the crosshair
        self.voi_item = pg.ImageItem(axisOrder="row-major")
        self.voi_item.setZValue(15)
        self.vb.addItem(self.ct_item)
        self.vb.addItem(self.overlay_item)
        self.vb.addItem(self.voi_item)
        # the mask being edited (drawing tools, threshold preview) above the outlines
        self.edit_item = pg.ImageItem(axisOrder="row-major")
        self.edit_item.setZValue(16)
        self.vb.addItem(self.edit_item)
        self.extra_items: dict[str, pg.ImageItem] = {}
        """Image items of further layers (TIA, dose) by layer key, created on first use."""
        self.isodose_items: list[pg.PlotCurveItem] = []
        """One curve item per isodose level (segments drawn in pairs)."""
        h_axis, v_axis = PLANE_AXES[plane]
        # a vertical line marks the plane whose normal is the horizontal axis, and vice versa
        self.vline = pg.InfiniteLine(angle=90, movable=False, pen=self._line_pen(h_axis))
        self.hline = pg.InfiniteLine(angle=0, movable=False, pen=self._line_pen(v_axis))
        for line in (self.vline, self.hline):
            line.setZValue(20)
            self.vb.addItem(line, ignoreBounds=True)

        accent = PLANE_COLORS[plane]
        self.title_label = _OverlayLabel(self, accent, bold=True)
        self.title_label.setText(PLANE_TITLES[plane])
        self.position_label = _OverlayLabel(self)
        self.info_label = _OverlayLabel(self, "#a8a8a8")
        left, right, top, bottom = ORIENTATION[plane]
        self.orientation_labels = {}
        for key, text in (("left", left), ("right", right), ("top", top), ("bottom", bottom)):
            lab = _OverlayLabel(self, "#f0f0f0", bold=True)
            lab.setText(text)
            lab.setToolTip("")
            self.orientation_labels[key] = lab

        layout = QVBoxLayout(self)
        layout.setContentsMargins(1, 1, 1, 1)
        layout.addWidget(self.view)
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground)
        self.setObjectName(f"plane_{plane}")
        self.setStyleSheet(f"QWidget#plane_{plane} {{ border: 1px solid #3a4049; }}")
        self.view.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.vb.sigPick.connect(lambda h, v: self.sigPick.emit(self.plane, h, v))
        self.vb.sigScroll.connect(lambda n: self.sigScroll.emit(self.plane, n))
        self.vb.sigTool.connect(lambda ph, h, v: self.sigTool.emit(self.plane, ph, h, v))

    @staticmethod
    def _line_pen(axis: int) -> Any:
        plane = {0: "axial", 1: "coronal", 2: "sagittal"}[axis]
        color = QColor(PLANE_COLORS[plane])
        color.setAlpha(190)
        return pg.mkPen(color, width=1)

    # ----------------------------------------------------------- helpers
    def extra_item(self, key: str, z: float) -> pg.ImageItem:
        """The image item of layer ``key`` in this plane (created above the overlay)."""
        item = self.extra_items.get(key)
        if item is None:
            item = pg.ImageItem(axisOrder="row-major")
            item.setZValue(z)
            item.setOpts(nanPolicy="omit")
            self.vb.addItem(item)
            self.extra_items[key] = item
        return item

    def set_isodose_count(self, n: int) -> list[pg.PlotCurveItem]:
        """Make exactly ``n`` isodose curve items (above the dose image, below the outlines)."""
        while len(self.isodose_items) < n:
            curve = pg.PlotCurveItem()
            curve.setZValue(14)
            self.vb.addItem(curve, ignoreBounds=True)
            self.isodose_items.append(curve)
        while len(self.isodose_items) > n:
            self.vb.removeItem(self.isodose_items.pop())
        return self.isodose_items

    def view_to_widget(self, h_mm: float, v_mm: float) -> QPointF:
        """Position in this widget's pixels of a point given in plane mm (for tests and tools)."""
        scene = self.vb.mapViewToScene(QPointF(h_mm, v_mm))
        vp = self.view.mapFromScene(scene)
        return QPointF(self.view.viewport().mapTo(self, vp))

    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        if not self.vb.sceneBoundingRect().contains(scene_pos):
            self.sigHover.emit(self.plane, None)
            return
        p = self.vb.mapSceneToView(scene_pos)
        self.sigHover.emit(self.plane, (p.x(), p.y()))

    def leaveEvent(self, event: Any) -> None:
        self.sigHover.emit(self.plane, None)
        super().leaveEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        steps = {
            Qt.Key.Key_Up: 1,
            Qt.Key.Key_Down: -1,
            Qt.Key.Key_PageUp: 5,
            Qt.Key.Key_PageDown: -5,
        }.get(Qt.Key(event.key()))
        if steps is not None:
            self.sigScroll.emit(self.plane, steps)
            event.accept()
            return
        super().keyPressEvent(event)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._place_labels()

    def _place_labels(self) -> None:
        w, h, m = self.width(), self.height(), 6
        for lab in (
            self.title_label,
            self.position_label,
            self.info_label,
            *self.orientation_labels.values(),
        ):
            lab.adjustSize()
            lab.raise_()
        self.title_label.move(m, m)
        self.info_label.move(w - self.info_label.width() - m, m)
        # the info text hides when it would run into the top orientation letter
        top = self.orientation_labels["top"]
        self.info_label.setVisible(self.info_label.x() > (w + top.width()) // 2 + m)
        self.position_label.move(m, h - self.position_label.height() - m)
        o = self.orientation_labels
        o["left"].move(m, (h - o["left"].height()) // 2)
        o["right"].move(w - o["right"].width() - m, (h - o["right"].height()) // 2)
        o["top"].move((w - o["top"].width()) // 2, m)
        o["bottom"].move((w - o["bottom"].width()) // 2, h - o["bottom"].height() - m)

    def set_texts(self, position: str, info: str) -> None:
        self.position_label.setText(position)
        self.info_label.setText(info)
        self._place_labels()


# -------------------------------------------------------------- colour bar
class _ColorBar(QWidget):
    """Horizontal colour bar of the overlay LUT (drawn over black, as on the images)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._lut = overlay_lookup_table("Inferno")
        self._opacity = 1.0
        self._lo = "–"
        self._hi = "–"
        self._units = ""
        self.setMinimumHeight(34)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def sizeHint(self) -> QSize:
        return QSize(180, 34)

    def set_scale(
        self, lut: NDArray[np.ubyte], opacity: float, lo: str, hi: str, units: str = ""
    ) -> None:
        self._lut, self._opacity, self._lo, self._hi, self._units = lut, opacity, lo, hi, units
        self.update()

    def texts(self) -> tuple[str, str, str]:
        """(lower, upper, units) as drawn under the bar."""
        return self._lo, self._hi, self._units

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        bar_h = 14
        w = self.width()
        lut = self._lut.astype(float)
        a = lut[:, 3:4] / 255.0 * self._opacity
        rgb = (lut[:, :3] * a).astype(np.uint8)  # composited over black
        line = np.ascontiguousarray(np.repeat(rgb[None, :, :], 1, axis=0))
        img = QImage(line.data, line.shape[1], 1, line.strides[0], QImage.Format.Format_RGB888)
        p.drawImage(QRectF(0, 0, w, bar_h), img)
        p.setPen(QColor("#808080"))
        p.drawRect(0, 0, w - 1, bar_h)
        p.setPen(self.palette().color(self.foregroundRole()))
        text_rect = QRectF(0, bar_h + 2, w, self.height() - bar_h - 2)
        top = Qt.AlignmentFlag.AlignTop
        p.drawText(text_rect, int(Qt.AlignmentFlag.AlignLeft | top), self._lo)
        p.drawText(text_rect, int(Qt.AlignmentFlag.AlignRight | top), self._hi)
        p.setPen(QColor("#8b939e"))
        p.drawText(text_rect, int(Qt.AlignmentFlag.AlignHCenter | top), self._units)
        p.end()


# ------------------------------------------------------------ fused viewer
class FusedViewer(QWidget):
    """Three linked planes of a CT with a colour-mapped functional overlay, plus an overlay MIP.

    Public state a test (or another view) can read: :meth:`current_slices`,
    :meth:`slice_index`, :meth:`world_position`, :meth:`ct_window`,
    :meth:`overlay_levels`, :meth:`opacity`, :meth:`colormap_name`.
    """

    positionChanged = Signal(object)
    """The crosshair moved; argument: LPS position (mm) as a length-3 array."""
    cursorInfo = Signal(str)
    """Text describing the voxel under the mouse (empty when the mouse left the images)."""
    toolEvent = Signal(str, str, object)
    """A drawing tool's mouse event: (plane, ``press``/``move``/``release``, LPS point mm as a
    length-3 array on the plane's current slice); only while :meth:`set_tool_active`."""

    MODE_PERCENT = "% of max"
    MODE_ABSOLUTE = "absolute"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._ct: Volume | None = None
        self._spect: Volume | None = None
        self._overlay: Volume | None = None
        self._grid: _DisplayGrid | None = None
        self._ct_c: NDArray[Any] | None = None
        self._ov_c: NDArray[Any] | None = None
        self._spect_max = 0.0
        self._vois: list[VoiOutline] = []
        self._vois_visible = True
        self._emphasis: str | None = None
        self._edit_mask: NDArray[np.bool_] | None = None
        self._edit_rgb: tuple[int, int, int] = (255, 255, 0)
        self._tool_active = False
        self._world: NDArray[np.float64] | None = None
        self._last_emitted: NDArray[np.float64] | None = None
        self._ct_width, self._ct_level = CT_PRESETS["Soft tissue"]
        self._spect_mode = self.MODE_PERCENT
        self._spect_lo, self._spect_hi = 10.0, 60.0  # in the current mode's units
        self._opacity = 0.7
        self._cmap_name = "Inferno"
        self._ct_visible = True
        self._overlay_visible = True
        self._extra: dict[str, ExtraLayer] = {}
        self.isodose_levels_gy: list[float] = list(DEFAULT_ISODOSE_LEVELS_GY)
        self.isodose_visible = True
        self._lut = overlay_lookup_table(self._cmap_name)
        self._updating = False
        self._cursor_text = ""
        self._overlay_cache: OrderedDict[tuple[int, int], tuple[Any, Any, Volume]] = OrderedDict()
        self.overlay_cache_size = 4

        self._mip: NDArray[Any] | None = None
        self.planes: dict[str, PlaneView] = {p: PlaneView(p, self) for p in PLANES}
        self.mip_view = PlaneView(MIP, self)
        self.mip_view.ct_item.setVisible(False)
        self.mip_view.setToolTip(
            "Maximum-intensity projection of the functional image, seen from the front.\n"
            "Click: move the crosshair to the hottest voxel along that line."
        )
        for view in self.planes.values():
            view.sigTool.connect(self._on_tool)
        for view in (*self.planes.values(), self.mip_view):
            view.sigPick.connect(self._on_pick)
            view.sigScroll.connect(self._on_scroll)
            view.sigHover.connect(self._on_hover)
        for view in self.planes.values():
            view.overlay_item.setOpacity(self._opacity)

        grid = QGridLayout()
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(3)
        grid.addWidget(self.planes["axial"], 0, 0)
        grid.addWidget(self.planes["coronal"], 0, 1)
        grid.addWidget(self.planes["sagittal"], 1, 0)
        grid.addWidget(self.mip_view, 1, 1)
        for i in range(2):
            grid.setRowStretch(i, 1)
            grid.setColumnStretch(i, 1)

        self.controls = self._build_controls()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        layout.addLayout(grid, 1)
        layout.addWidget(self.controls)
        self._sync_controls()
        self._update_colorbar()
        self._set_empty_texts()

    # ======================================================== controls
    def _build_controls(self) -> QWidget:
        panel = QWidget(self)
        panel.setObjectName("viewerControls")
        panel.setFixedWidth(216)
        col = QVBoxLayout(panel)
        col.setContentsMargins(0, 0, 0, 0)
        col.setSpacing(8)

        # CT window
        ct_box = QGroupBox("CT window", panel)
        form = QFormLayout(ct_box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.preset_combo = QComboBox(ct_box)
        self.preset_combo.addItems([*CT_PRESETS, CUSTOM_PRESET])
        self.preset_combo.setToolTip("CT display window presets (W/L in HU)")
        self.width_spin = QDoubleSpinBox(ct_box)
        self.width_spin.setRange(1.0, 10000.0)
        self.width_spin.setDecimals(0)
        self.width_spin.setSingleStep(10.0)
        self.width_spin.setSuffix(" HU")
        self.level_spin = QDoubleSpinBox(ct_box)
        self.level_spin.setRange(-2000.0, 5000.0)
        self.level_spin.setDecimals(0)
        self.level_spin.setSingleStep(10.0)
        self.level_spin.setSuffix(" HU")
        form.addRow("Preset", self.preset_combo)
        form.addRow("Width", self.width_spin)
        form.addRow("Level", self.level_spin)
        self.preset_combo.currentTextChanged.connect(self._on_preset)
        self.width_spin.valueChanged.connect(self._on_ct_spin)
        self.level_spin.valueChanged.connect(self._on_ct_spin)

        # SPECT overlay
        sp_box = QGroupBox("Functional overlay", panel)
        self.overlay_box = sp_box
        sform = QFormLayout(sp_box)
        sform.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.cmap_combo = QComboBox(sp_box)
        self.cmap_combo.addItems(list(COLORMAPS))
        self.mode_combo = QComboBox(sp_box)
        self.mode_combo.addItems([self.MODE_PERCENT, self.MODE_ABSOLUTE])
        self.mode_combo.setToolTip(
            "% of max: the window follows the maximum of each time point.\n"
            "absolute: the window stays in image units when the time point changes."
        )
        self.lo_spin = QDoubleSpinBox(sp_box)
        self.hi_spin = QDoubleSpinBox(sp_box)
        for spin in (self.lo_spin, self.hi_spin):
            spin.setKeyboardTracking(False)
            spin.valueChanged.connect(self._on_spect_spin)
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal, sp_box)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setToolTip("Overlay opacity")
        self.opacity_value = QLabel(sp_box)
        self.opacity_value.setMinimumWidth(34)
        self.opacity_value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        op_row = QHBoxLayout()
        op_row.setContentsMargins(0, 0, 0, 0)
        op_row.addWidget(self.opacity_slider, 1)
        op_row.addWidget(self.opacity_value)
        self.colorbar = _ColorBar(sp_box)
        sform.addRow("Colours", self.cmap_combo)
        sform.addRow("Scale", self.mode_combo)
        sform.addRow("Lower", self.lo_spin)
        sform.addRow("Upper", self.hi_spin)
        sform.addRow("Opacity", op_row)
        sform.addRow(self.colorbar)
        self.cmap_combo.currentTextChanged.connect(self.set_colormap)
        self.mode_combo.currentTextChanged.connect(self._on_mode)
        self.opacity_slider.valueChanged.connect(lambda v: self.set_opacity(v / 100.0))

        # crosshair read-out
        x_box = QGroupBox("Crosshair", panel)
        xl = QVBoxLayout(x_box)
        self.crosshair_label = QLabel(x_box)
        self.crosshair_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.crosshair_label.setWordWrap(True)
        xl.addWidget(self.crosshair_label)

        self.reset_button = QPushButton("Reset view", panel)
        self.reset_button.setToolTip("Fit each plane to the image and centre the crosshair")
        self.reset_button.clicked.connect(self.reset_view)

        col.addWidget(ct_box)
        col.addWidget(sp_box)
        col.addWidget(x_box)
        col.addWidget(self.reset_button)
        col.addStretch(1)
        return panel

    def _sync_controls(self) -> None:
        """Write the state into the controls without triggering their handlers."""
        self._updating = True
        try:
            name = self._preset_name()
            self.preset_combo.setCurrentText(name)
            self.width_spin.setValue(self._ct_width)
            self.level_spin.setValue(self._ct_level)
            self.cmap_combo.setCurrentText(self._cmap_name)
            self.mode_combo.setCurrentText(self._spect_mode)
            units = self._spect_units()
            for spin in (self.lo_spin, self.hi_spin):
                if self._spect_mode == self.MODE_PERCENT:
                    spin.setRange(0.0, 100.0)
                    spin.setDecimals(1)
                    spin.setSingleStep(1.0)
                    spin.setSuffix(" %")
                else:
                    spin.setRange(-1e12, 1e12)
                    spin.setDecimals(1 if self._spect_max < 1000 else 0)
                    spin.setSingleStep(max(self._spect_max / 100.0, 0.1))
                    spin.setSuffix(f" {units}" if units else "")
            self.lo_spin.setValue(self._spect_lo)
            self.hi_spin.setValue(self._spect_hi)
            self.opacity_slider.setValue(int(round(self._opacity * 100)))
            self.opacity_value.setText(f"{self._opacity * 100:.0f} %")
        finally:
            self._updating = False

    def _preset_name(self) -> str:
        for name, (w, lvl) in CT_PRESETS.items():
            if abs(w - self._ct_width) < 1e-6 and abs(lvl - self._ct_level) < 1e-6:
                return name
        return CUSTOM_PRESET

    def _on_preset(self, name: str) -> None:
        if self._updating or name not in CT_PRESETS:
            return
        self.set_ct_preset(name)

    def _on_ct_spin(self) -> None:
        if self._updating:
            return
        self.set_ct_window(self.width_spin.value(), self.level_spin.value())

    def _on_spect_spin(self) -> None:
        if self._updating:
            return
        self.set_overlay_window(self.lo_spin.value(), self.hi_spin.value(), self._spect_mode)

    def _on_mode(self, mode: str) -> None:
        if self._updating:
            return
        lo, hi = self.overlay_levels()
        if mode == self.MODE_PERCENT and self._spect_max > 0:
            self.set_overlay_window(
                100.0 * lo / self._spect_max, 100.0 * hi / self._spect_max, mode
            )
        else:
            self.set_overlay_window(lo, hi, mode)

    # ===================================================== public API
    def set_time_point(
        self, ct: Volume | None, spect: Volume | None, overlay: Volume | None = None
    ) -> None:
        """Show a time point: ``ct`` in grey, ``spect`` as a colour overlay on the CT grid.

        ``overlay`` may carry ``fused_overlay(ct, spect)`` computed elsewhere (in
        a worker); otherwise it is computed here and cached.  Without a CT the
        functional volume is shown on its own grid.  The crosshair keeps its
        world position.
        """
        if ct is None and spect is None:
            self.clear()
            return
        if ct is None:
            assert spect is not None
            overlay = spect
        elif spect is not None and overlay is None:
            overlay = self._cached_overlay(ct, spect)
        if overlay is not None and ct is not None and not overlay.geometry.same_grid(ct.geometry):
            raise ValueError("the overlay must be on the CT grid (use fused_overlay)")
        base = ct if ct is not None else overlay
        assert base is not None
        first = self._grid is None
        self._vois = []  # outlines belong to one grid: the caller sets them again (set_vois)
        for layer in self._extra.values():  # so do further layers (set_extra_layers)
            layer.canonical = None
        self._ct, self._spect, self._overlay = ct, spect, overlay
        self._grid = _DisplayGrid(base.geometry)
        self._ct_c = self._grid.canonical(ct.array) if ct is not None else None
        self._ov_c = self._grid.canonical(overlay.array) if overlay is not None else None
        self._spect_max = self._finite_max(spect)
        if self._world is None:
            self._world = base.geometry.center_world()
        for plane, view in self.planes.items():
            h, v = PLANE_AXES[plane]
            tr = self._grid.transform(h, v)
            view.ct_item.setVisible(ct is not None)
            view.overlay_item.setVisible(overlay is not None)
            view.ct_item.setTransform(tr)
            view.overlay_item.setTransform(tr)
            view.voi_item.setTransform(tr)
            for iso in view.isodose_items:
                iso.setData([], [])
            view.overlay_item.setLookupTable(self._lut)
        self._mip = self._ov_c.max(axis=1) if self._ov_c is not None else None
        self.mip_view.overlay_item.setVisible(self._mip is not None)
        self.mip_view.overlay_item.setTransform(self._grid.transform(*PLANE_AXES[MIP]))
        self._sync_controls()
        self._update_colorbar()
        self._refresh_mip()
        self._refresh()
        if first:
            self.reset_view(recentre=False)

    def set_vois(self, vois: Sequence[VoiOutline]) -> None:
        """Outline these VOIs (masks on the displayed CT grid) in every plane.

        Masks on another grid are not shown (the caller passes only the VOIs of
        the displayed time point); an empty sequence removes the outlines.
        """
        if self._grid is None or self._ct is None:
            self._vois = []
        else:
            shape = self._ct.geometry.shape_zyx
            self._vois = [
                VoiOutline(v.name, self._grid.canonical(v.mask), v.color_rgb, v.status, v.voi_id)
                for v in vois
                if v.mask.shape == shape
            ]
        self._refresh()

    # ------------------------------------------------ drawing tool hooks
    def set_tool_active(self, active: bool) -> None:
        """Give the left button of the three planes to a drawing tool (:attr:`toolEvent`)
        instead of the crosshair; the wheel, zoom and pan keep working."""
        self._tool_active = bool(active)
        for view in self.planes.values():
            view.vb.tool_active = self._tool_active
            view.vb.setCursor(
                Qt.CursorShape.CrossCursor if self._tool_active else Qt.CursorShape.ArrowCursor
            )

    def tool_active(self) -> bool:
        return self._tool_active

    def set_edit_overlay(
        self, mask: NDArray[np.bool_] | None, color_rgb: tuple[int, int, int] | None = None
    ) -> None:
        """Show ``mask`` (``[k, j, i]`` on the displayed grid, or None) filled and outlined.

        The array is kept by reference: after changing it in place call
        :meth:`refresh_edit_overlay` (a stroke redraws three slices, nothing more).
        """
        if mask is not None and (self._grid is None or mask.shape != self._grid.geometry.shape_zyx):
            mask = None
        self._edit_mask = mask
        if color_rgb is not None:
            self._edit_rgb = (int(color_rgb[0]), int(color_rgb[1]), int(color_rgb[2]))
        self.refresh_edit_overlay()

    def edit_overlay(self) -> NDArray[np.bool_] | None:
        return self._edit_mask

    def edit_overlay_image(self, plane: str) -> NDArray[np.uint8] | None:
        """RGBA of the edited mask on ``plane``'s current slice (fill and outline), or None."""
        if self._grid is None or self._edit_mask is None:
            return None
        m = self._cut(self._grid.canonical(self._edit_mask), plane, self._slices())
        rgba = outline_rgba([(m, self._edit_rgb)])
        inside = m & (rgba[..., 3] == 0)
        rgba[inside, 0], rgba[inside, 1], rgba[inside, 2] = self._edit_rgb
        rgba[inside, 3] = 90
        return rgba

    def refresh_edit_overlay(self, planes: Sequence[str] | None = None) -> None:
        """Redraw the edited mask in ``planes`` (default: all three)."""
        for plane in planes or PLANES:
            view = self.planes[plane]
            rgba = self.edit_overlay_image(plane)
            if rgba is None:
                view.edit_item.clear()
            else:
                if self._grid is not None:
                    view.edit_item.setTransform(self._grid.transform(*PLANE_AXES[plane]))
                view.edit_item.setImage(rgba, autoLevels=False, levels=(0, 255))

    def _on_tool(self, plane: str, phase: str, h_mm: float, v_mm: float) -> None:
        if self._grid is None or self._world is None or not self._tool_active:
            return
        mm = self._grid.mm_of_world(self._world)
        c = NORMAL_AXIS[plane]
        mm[c] = self._grid.mm_of_slice(c, self._slices()[c])
        h, v = PLANE_AXES[plane]
        mm[h], mm[v] = h_mm, v_mm
        self.toolEvent.emit(plane, phase, self._grid.world_of_mm(mm))

    def array_plane(self, plane: str) -> tuple[str, int]:
        """The displayed grid's own plane and slice index shown in ``plane``.

        The core's slice tools (``paint_disc``, ``fill_polygon``) name planes by
        array axis (axial = k, coronal = j, sagittal = i); for an axis-aligned
        head-first grid they are the screen's planes.
        """
        if self._grid is None:
            raise RuntimeError("no image shown")
        n = self._grid.perm[NORMAL_AXIS[plane]]
        return ("axial", "coronal", "sagittal")[n], self.slice_index()[n]

    def voi_names(self) -> list[str]:
        """Names of the outlined VOIs, in drawing order."""
        return [v.name for v in self._vois]

    def set_vois_visible(self, visible: bool) -> None:
        self._vois_visible = bool(visible)
        self._refresh()

    def voi_outline_image(self, plane: str) -> NDArray[np.uint8] | None:
        """The RGBA outline image shown in ``plane`` (None when no VOI is outlined)."""
        if self._grid is None or not self._vois or not self._vois_visible:
            return None
        q = self._slices()
        vois = self._vois
        key = self._emphasis
        if key is None or not any(self._is_emphasised(v) for v in vois):
            return outline_rgba([(self._cut(v.mask, plane, q), v.color_rgb) for v in vois])
        # the emphasised VOI drawn last (on top), thick and opaque; the others dimmed
        ordered = sorted(vois, key=self._is_emphasised)
        return outline_rgba(
            [(self._cut(v.mask, plane, q), v.color_rgb) for v in ordered],
            alphas=[255 if self._is_emphasised(v) else DIMMED_OUTLINE_ALPHA for v in ordered],
            thick=[self._is_emphasised(v) for v in ordered],
        )

    def _is_emphasised(self, v: VoiOutline) -> bool:
        key = self._emphasis
        return key is not None and (v.voi_id == key or (not v.voi_id and v.name == key))

    def set_voi_emphasis(self, voi_id: str | None) -> None:
        """Emphasise one VOI's outline (thick, opaque, on top) and dim the others; None: all equal.

        ``voi_id`` is matched against :attr:`VoiOutline.voi_id` (or the name of
        an outline without an id).  It stays set across time points and VOI
        updates until changed.
        """
        self._emphasis = voi_id or None
        self._refresh()

    def voi_emphasis(self) -> str | None:
        """The emphasised VOI (as given to :meth:`set_voi_emphasis`), or None."""
        return self._emphasis

    @staticmethod
    def _cut(arr: NDArray[Any], plane: str, q: tuple[int, int, int]) -> NDArray[Any]:
        if plane == "axial":
            return arr[q[0], :, :]
        if plane == "coronal":
            return arr[:, q[1], :]
        return arr[:, :, q[2]]

    def clear(self) -> None:
        """Show nothing (no case open)."""
        self._vois = []
        self._edit_mask = None
        self._ct = self._spect = self._overlay = None
        self._grid = None
        self._ct_c = self._ov_c = None
        self._world = None
        self._last_emitted = None
        self._spect_max = 0.0
        self._mip = None
        self._extra = {}
        for view in self.planes.values():
            for item in view.extra_items.values():
                item.clear()
            view.set_isodose_count(0)
        for view in (*self.planes.values(), self.mip_view):
            view.ct_item.clear()
            view.overlay_item.clear()
            view.voi_item.clear()
            view.edit_item.clear()
        self._set_empty_texts()
        self._update_colorbar()

    def has_image(self) -> bool:
        return self._grid is not None

    def current_slices(self) -> dict[str, PlaneSlices]:
        """The 2D CT and overlay arrays displayed in each plane (see :class:`PlaneSlices`).

        For an axis-aligned head-first grid these are ``ct[k]``, ``ct[:, j, :]``
        and ``ct[:, :, i]`` (same for the overlay) with ``(k, j, i) = slice_index()``.
        """
        if self._grid is None:
            return {p: PlaneSlices(None, None) for p in PLANES}
        q = self._slices()
        return {p: PlaneSlices(*self._plane_arrays(p, q)) for p in PLANES}

    def slice_index(self) -> tuple[int, int, int]:
        """CT voxel index ``(k, j, i)`` at the crosshair (nearest voxel, clipped to the grid)."""
        if self._grid is None:
            raise RuntimeError("no image shown")
        return self._grid.array_index_of_slices(self._slices())

    def world_position(self) -> NDArray[np.float64]:
        """Crosshair position, LPS mm."""
        if self._world is None:
            raise RuntimeError("no image shown")
        return self._world.copy()

    def set_world_position(self, world_mm: Any) -> None:
        """Move the crosshair to an LPS point (mm); slices follow."""
        self._world = np.asarray(world_mm, dtype=float).reshape(3).copy()
        self._refresh(position_only=True)

    def pick(self, plane: str, h_mm: float, v_mm: float) -> None:
        """Same as a left click at (h, v) mm in ``plane``: the other planes move there."""
        self._on_pick(plane, h_mm, v_mm)

    def scroll(self, plane: str, steps: int) -> None:
        """Same as turning the mouse wheel ``steps`` notches in ``plane``."""
        self._on_scroll(plane, steps)

    def ct_window(self) -> tuple[float, float]:
        """(width, level) in HU."""
        return self._ct_width, self._ct_level

    def set_ct_window(self, width: float, level: float) -> None:
        self._ct_width, self._ct_level = max(float(width), 1.0), float(level)
        self._sync_controls()
        self._refresh()

    def set_ct_preset(self, name: str) -> None:
        w, lvl = CT_PRESETS[name]
        self.set_ct_window(w, lvl)

    def overlay_levels(self) -> tuple[float, float]:
        """Overlay window (lower, upper) in the functional image's units (e.g. Bq/mL)."""
        if self._spect_mode == self.MODE_PERCENT:
            lo = self._spect_lo / 100.0 * self._spect_max
            hi = self._spect_hi / 100.0 * self._spect_max
        else:
            lo, hi = self._spect_lo, self._spect_hi
        if hi <= lo:
            hi = lo + max(abs(lo) * 1e-6, 1e-9)
        return float(lo), float(hi)

    def overlay_window(self) -> tuple[float, float, str]:
        """The window as set: (lower, upper, mode) with mode '% of max' or 'absolute'."""
        return self._spect_lo, self._spect_hi, self._spect_mode

    def set_overlay_window(self, lower: float, upper: float, mode: str | None = None) -> None:
        """Set the overlay window in % of the maximum or in image units (``mode='absolute'``)."""
        if mode is not None:
            if mode not in (self.MODE_PERCENT, self.MODE_ABSOLUTE):
                raise ValueError(f"mode must be {self.MODE_PERCENT!r} or {self.MODE_ABSOLUTE!r}")
            self._spect_mode = mode
        self._spect_lo, self._spect_hi = float(lower), float(upper)
        self._sync_controls()
        self._update_colorbar()
        self._refresh_mip()
        self._refresh()

    def opacity(self) -> float:
        return self._opacity

    def set_opacity(self, opacity: float) -> None:
        """Overlay opacity in [0, 1]."""
        self._opacity = float(np.clip(opacity, 0.0, 1.0))
        for view in self.planes.values():
            view.overlay_item.setOpacity(self._opacity)
        self._sync_controls()
        self._update_colorbar()

    def colormap_name(self) -> str:
        return self._cmap_name

    def set_colormap(self, name: str) -> None:
        if name not in COLORMAPS:
            raise KeyError(f"unknown colour map {name!r}; choose from {', '.join(COLORMAPS)}")
        if self._updating and name == self._cmap_name:
            return
        self._cmap_name = name
        self._lut = overlay_lookup_table(name)
        for view in (*self.planes.values(), self.mip_view):
            view.overlay_item.setLookupTable(self._lut)
        self._sync_controls()
        self._update_colorbar()

    def reset_view(self, recentre: bool = True) -> None:
        """Fit every plane to its image; with ``recentre`` also centre the crosshair."""
        if self._grid is None:
            return
        if recentre:
            self._world = self._grid.geometry.center_world()
            self._refresh()
        for plane, view in (*self.planes.items(), (MIP, self.mip_view)):
            h, v = PLANE_AXES[plane]
            view.vb.setRange(rect=self._grid.rect(h, v), padding=0.02)

    def cursor_text(self) -> str:
        return self._cursor_text

    def crosshair_text(self) -> str:
        return self.crosshair_label.text()

    # ================================================== internals
    @staticmethod
    def _dose_window_top(volume: Volume, lower: float, vmax: float) -> float:
        """Default top of the dose wash: the 99th percentile of the washed voxels.

        With the maximum as the top, one hot lesion (30 Gy) leaves the organs
        (4 Gy) barely tinted; the colour bar shows the window, and doses above it
        are drawn in the top colour.  A sample of at most ~1 M voxels keeps this
        quick on a 256^3 grid.
        """
        flat = np.asarray(volume.array).reshape(-1)
        step = max(1, flat.size // 1_000_000)
        sample = flat[::step]
        washed = sample[np.isfinite(sample) & (sample > lower)]
        if washed.size < 100:
            return vmax
        top = float(np.percentile(washed, 99.0))
        return top if top > lower else vmax

    @staticmethod
    def _finite_max(volume: Volume | None) -> float:
        if volume is None or volume.array.size == 0:
            return 0.0
        m = np.nanmax(volume.array)
        return float(m) if np.isfinite(m) else 0.0

    def _spect_units(self) -> str:
        return str(self._spect.units) if self._spect is not None else ""

    def _cached_overlay(self, ct: Volume, spect: Volume) -> Volume:
        key = (id(ct), id(spect))
        hit = self._overlay_cache.get(key)
        if hit is not None and hit[0]() is ct and hit[1]() is spect:
            self._overlay_cache.move_to_end(key)
            return hit[2]
        overlay = fused_overlay(ct, spect)
        self._overlay_cache[key] = (weakref.ref(ct), weakref.ref(spect), overlay)
        while len(self._overlay_cache) > self.overlay_cache_size:
            self._overlay_cache.popitem(last=False)
        return overlay

    def _slices(self) -> tuple[int, int, int]:
        assert self._grid is not None and self._world is not None
        return self._grid.slice_of_mm(self._grid.mm_of_world(self._world))

    def _plane_arrays(
        self, plane: str, q: tuple[int, int, int]
    ) -> tuple[NDArray[Any] | None, NDArray[Any] | None]:
        def cut(arr: NDArray[Any] | None) -> NDArray[Any] | None:
            if arr is None:
                return None
            if plane == "axial":
                return arr[q[0], :, :]
            if plane == "coronal":
                return arr[:, q[1], :]
            return arr[:, :, q[2]]

        return cut(self._ct_c), cut(self._ov_c)

    def _refresh(self, position_only: bool = False) -> None:
        """Redraw the planes; ``position_only``: only the crosshair moved, so a plane whose
        slice did not change keeps its images (scrolling one plane redraws one plane)."""
        if self._grid is None or self._world is None:
            return
        grid = self._grid
        q = self._slices()
        ct_levels = (self._ct_level - self._ct_width / 2, self._ct_level + self._ct_width / 2)
        ov_levels = self.overlay_levels()
        drawn = getattr(self, "_drawn_slices", {})
        self._drawn_slices = drawn
        for plane, view in self.planes.items():
            c = NORMAL_AXIS[plane]
            redraw = not position_only or drawn.get(plane) != q[c]
            drawn[plane] = q[c]
            if redraw:
                ct2d, ov2d = self._plane_arrays(plane, q)
                if ct2d is not None:
                    view.ct_item.setImage(ct2d, autoLevels=False, levels=ct_levels)
                if ov2d is not None:
                    view.overlay_item.setImage(ov2d, autoLevels=False, levels=ov_levels)
                rgba = self.voi_outline_image(plane)
                if rgba is None:
                    view.voi_item.clear()
                else:
                    view.voi_item.setImage(rgba, autoLevels=False, levels=(0, 255))
                self.refresh_edit_overlay([plane])
            h, v = PLANE_AXES[plane]
            view.vline.setPos(grid.mm_of_slice(h, q[h]))
            view.hline.setPos(grid.mm_of_slice(v, q[v]))
            c = NORMAL_AXIS[plane]
            position = (
                f"{AXIS_NAMES[c]} {grid.mm_of_slice(c, q[c]):.1f} mm\n{q[c] + 1} / {grid.shape[c]}"
            )
            info = f"W {self._ct_width:.0f}  L {self._ct_level:.0f}" if self._ct is not None else ""
            view.set_texts(position, info)
            view.ct_item.setVisible(self._ct_c is not None and self._ct_visible)
            view.overlay_item.setVisible(self._ov_c is not None and self._overlay_visible)
            if redraw:
                self._draw_extra(plane, view, q)
        self.mip_view.vline.setPos(grid.mm_of_slice(2, q[2]))
        self.mip_view.hline.setPos(grid.mm_of_slice(0, q[0]))
        world_at = grid.world_of_mm(np.array([grid.mm_of_slice(c, q[c]) for c in range(3)]))
        self.crosshair_label.setText(self._describe(world_at))
        if self._last_emitted is None or not np.array_equal(self._last_emitted, self._world):
            self._last_emitted = self._world.copy()
            self.positionChanged.emit(self._world.copy())

    def _refresh_mip(self) -> None:
        view = self.mip_view
        if self._mip is None:
            view.overlay_item.clear()
            view.set_texts("", "no functional image" if self._grid is not None else "")
            return
        view.overlay_item.setLookupTable(self._lut)
        view.overlay_item.setImage(self._mip, autoLevels=False, levels=self.overlay_levels())
        view.set_texts("", self._functional_name())

    def _describe(self, world: NDArray[np.float64]) -> str:
        """Position line, then the value of every visible layer with its unit."""
        return f"LPS {world[0]:.1f}, {world[1]:.1f}, {world[2]:.1f} mm\n{self.layer_readout(world)}"

    def layer_readout(self, world: NDArray[np.float64]) -> str:
        """'CT 43 HU · SPECT 12,300 Bq/mL · TIA 0.84 MBq·h/mL · Dose 3.21 Gy' (visible layers).

        CT and the functional image are read at their nearest native voxel; the
        TIA and dose maps at the nearest voxel of their display-grid copy (what
        is drawn).
        """
        parts = []
        if self._ct is not None and self._ct_visible:
            parts.append(f"CT {format_value(_value_at(self._ct, world), str(self._ct.units))}")
        if self._spect is not None and self._overlay_visible:
            value = format_value(_value_at(self._spect, world), str(self._spect.units))
            parts.append(f"{self._functional_name()} {value}")
        for layer in self._extra.values():
            if layer.visible and layer.canonical is not None:
                parts.append(
                    f"{layer.name} {format_value(_value_at(layer.volume, world), layer.units)}"
                )
        return " · ".join(parts)

    # ------------------------------------------------------ further layers
    def set_extra_layers(self, layers: Sequence[tuple[str, str, str, Volume]]) -> None:
        """Show further layers ``(key, name, units, volume on the display grid)``, e.g. TIA, dose.

        A layer keeps its style (visibility, colour map, window, opacity) when
        it is set again with the same key (next time point); a new one starts
        with :data:`EXTRA_LAYER_DEFAULTS`.  The dose layer (key ``"dose"``) also
        gets isodose lines at :attr:`isodose_levels_gy`.
        """
        if self._grid is None:
            raise RuntimeError("show a time point first (set_time_point)")
        old = self._extra
        new: dict[str, ExtraLayer] = {}
        for n, (key, name, units, volume) in enumerate(layers):
            if not volume.geometry.same_grid(self._grid.geometry):
                raise ValueError(f"the {name} layer must be on the display grid")
            prev = old.get(key)
            vmax = self._finite_max(volume)
            if prev is not None:
                layer = prev
                layer.name, layer.units, layer.volume = name, units, volume
            else:
                cmap, visible, opacity = EXTRA_LAYER_DEFAULTS.get(key, ("Viridis", True, 0.5))
                layer = ExtraLayer(key, name, units, volume, cmap, visible, opacity, 0.0, vmax)
                if key == "dose":
                    layer.lower = 0.05 * vmax
                    layer.upper = self._dose_window_top(volume, layer.lower, vmax)
            layer.canonical = self._grid.canonical(volume.array)
            layer.z = 11.0 + 0.1 * n
            layer.lut = overlay_lookup_table(layer.cmap)
            new[key] = layer
        for key in set(old) - set(new):
            for view in self.planes.values():
                item = view.extra_items.get(key)
                if item is not None:
                    item.clear()
        self._extra = new
        for view in self.planes.values():
            h, v = PLANE_AXES[view.plane]
            tr = self._grid.transform(h, v)
            for layer in new.values():
                view.extra_item(layer.key, layer.z).setTransform(tr)
        self._refresh()

    def functional_name(self) -> str:
        """'SPECT' or 'PET': the name of the functional layer."""
        return self._functional_name()

    def functional_units(self) -> str:
        """Unit of the functional image ('Bq/mL', 'counts', ...), '' without one."""
        return self._spect_units()

    def layer_keys(self) -> list[str]:
        """Keys of the layers shown: ``ct``, ``spect``, then further ones (``tia``, ``dose``)."""
        keys = []
        if self._ct is not None:
            keys.append("ct")
        if self._overlay is not None and self._ct is not None:
            keys.append("spect")
        return keys + list(self._extra)

    def extra_layer(self, key: str) -> ExtraLayer:
        return self._extra[key]

    def layer_visible(self, key: str) -> bool:
        if key == "ct":
            return self._ct_visible
        if key == "spect":
            return self._overlay_visible
        return self._extra[key].visible

    def set_layer_visible(self, key: str, visible: bool) -> None:
        """Show or hide a layer (``ct``, ``spect`` or a further layer's key)."""
        if key == "ct":
            self._ct_visible = bool(visible)
        elif key == "spect":
            self._overlay_visible = bool(visible)
            self.mip_view.overlay_item.setVisible(self._mip is not None and bool(visible))
        else:
            self._extra[key].visible = bool(visible)
        self._refresh()

    def set_extra_window(self, key: str, lower: float, upper: float) -> None:
        """Window of a further layer in its unit (e.g. Gy)."""
        layer = self._extra[key]
        layer.lower, layer.upper = float(lower), float(upper)
        self._refresh()

    def set_extra_colormap(self, key: str, name: str) -> None:
        if name not in COLORMAPS:
            raise KeyError(f"unknown colour map {name!r}; choose from {', '.join(COLORMAPS)}")
        layer = self._extra[key]
        layer.cmap = name
        layer.lut = overlay_lookup_table(name)
        self._refresh()

    def set_extra_opacity(self, key: str, opacity: float) -> None:
        self._extra[key].opacity = float(np.clip(opacity, 0.0, 1.0))
        self._refresh()

    def set_isodose_levels(self, levels_gy: Sequence[float]) -> None:
        """Isodose lines at these doses (Gy): positive and finite (sorted, duplicates dropped)."""
        clean = sorted({float(v) for v in levels_gy})
        bad = [v for v in clean if not np.isfinite(v) or v <= 0]
        if bad:
            raise ValueError(f"isodose levels must be positive doses in Gy, got {bad[0]:g}")
        self.isodose_levels_gy = clean
        self._refresh()

    def isodose_segments(self, plane: str) -> dict[float, NDArray[np.float64]]:
        """Isodose segments drawn in ``plane`` per level: arrays (n, 2, 2) of (h, v) mm."""
        dose = self._extra.get("dose")
        if self._grid is None or dose is None or dose.canonical is None:
            return {}
        if not (dose.visible and self.isodose_visible):
            return {}
        q = self._slices()
        img = self._cut(dose.canonical, plane, q)
        h, v = PLANE_AXES[plane]
        origin = np.array([self._grid.w0[h], self._grid.w0[v]])
        step = np.array([self._grid.spacing[h], self._grid.spacing[v]])
        return {
            level: isoline_segments(img, level) * step + origin for level in self.isodose_levels_gy
        }

    def _draw_extra(self, plane: str, view: PlaneView, q: tuple[int, int, int]) -> None:
        for layer in self._extra.values():
            item = view.extra_item(layer.key, layer.z)
            if layer.canonical is None or not layer.visible:
                item.setVisible(False)
                continue
            item.setVisible(True)
            item.setLookupTable(layer.lut)
            hi = layer.upper if layer.upper > layer.lower else layer.lower + 1e-9
            item.setImage(
                self._cut(layer.canonical, plane, q), autoLevels=False, levels=(layer.lower, hi)
            )
            item.setOpacity(layer.opacity)
        segments = self.isodose_segments(plane)
        curves = view.set_isodose_count(len(segments))
        for n, (curve, (level, seg)) in enumerate(zip(curves, segments.items(), strict=True)):
            colour = ISODOSE_COLOURS[n % len(ISODOSE_COLOURS)]
            curve.setPen(pg.mkPen(colour, width=1.5))
            if len(seg):
                pts = seg.reshape(-1, 2)
                curve.setData(pts[:, 0], pts[:, 1], connect="pairs")
            else:
                curve.setData([], [])
            curve.setToolTip(f"{level:g} Gy")

    def _functional_name(self) -> str:
        desc = (self._spect.description if self._spect is not None else "") or ""
        return "PET" if "PET" in desc.upper() else "SPECT"

    def _on_pick(self, plane: str, h_mm: float, v_mm: float) -> None:
        if self._grid is None or self._world is None:
            return
        mm = self._grid.mm_of_world(self._world)
        h, v = PLANE_AXES[plane]
        mm[h], mm[v] = h_mm, v_mm
        if plane == MIP:
            if self._ov_c is None:
                return
            # jump to the hottest voxel along the anterior-posterior line under the click
            qz, _, qx = self._grid.slice_of_mm(self._grid.clamp_mm(mm))
            mm[1] = self._grid.mm_of_slice(1, int(np.argmax(self._ov_c[qz, :, qx])))
        self._world = self._grid.world_of_mm(self._grid.clamp_mm(mm))
        self._refresh(position_only=True)

    def _on_scroll(self, plane: str, steps: int) -> None:
        if self._grid is None or self._world is None or plane == MIP:
            return
        c = NORMAL_AXIS[plane]
        mm = self._grid.mm_of_world(self._world)
        q = int(np.clip(self._slices()[c] + steps, 0, self._grid.shape[c] - 1))
        mm[c] = self._grid.mm_of_slice(c, q)
        self._world = self._grid.world_of_mm(mm)
        self._refresh(position_only=True)

    def _on_hover(self, plane: str, hv: tuple[float, float] | None) -> None:
        if hv is None or self._grid is None or self._world is None:
            self._set_cursor_text("")
            return
        mm = self._grid.mm_of_world(self._world)
        q = self._slices()
        h, v = PLANE_AXES[plane]
        if plane != MIP:
            c = NORMAL_AXIS[plane]
            mm[c] = self._grid.mm_of_slice(c, q[c])
        mm[h], mm[v] = hv
        lo = self._grid.w0 - self._grid.spacing / 2
        hi = self._grid.w0 + (np.asarray(self._grid.shape) - 0.5) * self._grid.spacing
        if np.any(mm[[h, v]] < lo[[h, v]]) or np.any(mm[[h, v]] > hi[[h, v]]):
            self._set_cursor_text("")
            return
        if plane == MIP:
            if self._mip is None:
                self._set_cursor_text("")
                return
            qz, _, qx = self._grid.slice_of_mm(mm)
            units = self._spect_units()
            self._set_cursor_text(
                f"x {mm[2]:.1f}   z {mm[0]:.1f} mm    "
                f"MIP {format_value(float(self._mip[qz, qx]), units)} (on the CT grid)"
            )
            return
        world = self._grid.world_of_mm(mm)
        self._set_cursor_text(self._describe(world).replace("\n", "    "))

    def _set_cursor_text(self, text: str) -> None:
        if text != self._cursor_text:
            self._cursor_text = text
            self.cursorInfo.emit(text)

    def _update_colorbar(self) -> None:
        units = self._spect_units()
        if self._overlay is None:
            self.colorbar.set_scale(self._lut, self._opacity, "–", "–")
            return
        lo, hi = self.overlay_levels()
        self.colorbar.set_scale(
            self._lut, self._opacity, format_number(lo, units), format_number(hi, units), units
        )

    def _set_empty_texts(self) -> None:
        for view in (*self.planes.values(), self.mip_view):
            view.set_texts("", "")
        self.crosshair_label.setText("No image")
