"""The 3D view (VTK): volume rendering or MIP of SPECT or dose, VOI surfaces, the crosshair.

The conversion between our arrays (``[z, y, x]``, direction cosines in the
:class:`~dosimetry_core.model.Geometry`) and VTK's image data (x fastest, points
at ``origin + index * spacing``) lives **only here**, in :func:`to_vtk_image`:
a grid whose direction is a signed permutation (head-first or feet-first
axial, coronal, sagittal acquisitions) is transposed/flipped to increasing
LPS axes, so VTK world coordinates are LPS millimetres; an oblique grid keeps
its voxel order and gets VTK's direction matrix.

Linking with the 2D planes: :meth:`View3D.set_cursor` moves the 3D cursor (a
small sphere) to the 2D crosshair; a left click without drag in the 3D view
picks the first visible surface or voxel under the mouse
(:class:`vtkCellPicker`) and emits :attr:`View3D.positionPicked` with the LPS
point, which the panel gives to the planes.

Under Xvfb the view draws (Mesa llvmpipe); with ``QT_QPA_PLATFORM=offscreen``
VTK does not (PLATFORM.md) and the panel does not create this widget.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import vtkmodules.vtkInteractionStyle  # registers the trackball style
import vtkmodules.vtkRenderingOpenGL2  # OpenGL back end
import vtkmodules.vtkRenderingVolumeOpenGL2  # noqa: F401  (volume mappers)
from numpy.typing import NDArray
from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget
from vtkmodules.qt.QVTKRenderWindowInteractor import QVTKRenderWindowInteractor
from vtkmodules.util.numpy_support import numpy_to_vtk, vtk_to_numpy
from vtkmodules.vtkCommonDataModel import vtkImageData, vtkPiecewiseFunction
from vtkmodules.vtkCommonMath import vtkMatrix3x3
from vtkmodules.vtkFiltersCore import (
    vtkFlyingEdges3D,
    vtkPolyDataNormals,
    vtkWindowedSincPolyDataFilter,
)
from vtkmodules.vtkFiltersSources import vtkSphereSource
from vtkmodules.vtkRenderingCore import (
    vtkActor,
    vtkCellPicker,
    vtkColorTransferFunction,
    vtkCoordinate,
    vtkPolyDataMapper,
    vtkRenderer,
    vtkVolume,
    vtkVolumeProperty,
    vtkWindowToImageFilter,
)
from vtkmodules.vtkRenderingVolume import vtkFixedPointVolumeRayCastMapper

from dosimetry_core.model import Geometry

__all__ = ["MAX_3D_VOXELS_PER_AXIS", "View3D", "to_vtk_image", "vtk_point_of_index"]

MAX_3D_VOXELS_PER_AXIS = 160
"""Larger display grids are shown in 3D with every n-th voxel (n the smallest stride that fits)."""

MODES = {"Volume": "volume", "MIP": "mip"}
SOURCES = {"SPECT": "spect", "Dose": "dose"}


# ------------------------------------------------------- axis conversion
def _canonical_axes(geometry: Geometry) -> tuple[tuple[int, int, int], tuple[bool, bool, bool]]:
    """NumPy axes in (z, y, x) LPS order and whether each runs towards decreasing LPS.

    Raises ValueError for an oblique grid (direction not a signed permutation).
    """
    d = geometry.direction_matrix
    lps_of_index = [int(np.argmax(np.abs(d[:, c]))) for c in range(3)]  # index axis i, j, k
    if sorted(lps_of_index) != [0, 1, 2] or not np.allclose(np.abs(d).max(axis=0), 1.0):
        raise ValueError("oblique grid")
    # numpy axis n is index axis 2 - n; canonical axis m shows LPS axis 2 - m
    perm = tuple(next(n for n in range(3) if lps_of_index[2 - n] == 2 - m) for m in range(3))
    flip = tuple(bool(d[lps_of_index[2 - n], 2 - n] < 0) for n in perm)
    return perm, flip  # type: ignore[return-value]


def to_vtk_image(array: NDArray[Any], geometry: Geometry, stride: int = 1) -> vtkImageData:
    """VTK image data of an array ``[z, y, x]`` on ``geometry``, in LPS mm.

    Parameters
    ----------
    array
        Voxel values indexed ``[k, j, i]`` (our convention).
    geometry
        Its grid.
    stride
        Keep every ``stride``-th voxel along each axis (spacing multiplied).

    Returns
    -------
    vtkImageData
        Dimensions ``(nx, ny, nz)``, x fastest; the point of voxel ``[k, j, i]``
        is at ``geometry.index_to_world([k, j, i])`` (see :func:`vtk_point_of_index`).
    """
    a = np.asarray(array)
    if a.dtype == np.bool_:
        a = a.astype(np.uint8)
    image = vtkImageData()
    try:
        perm, flip = _canonical_axes(geometry)
    except ValueError:
        view = a[::stride, ::stride, ::stride]
        origin = np.asarray(geometry.origin_mm, dtype=float)
        spacing = np.asarray(geometry.spacing_mm, dtype=float) * stride
        m = vtkMatrix3x3()
        for r in range(3):
            for c in range(3):
                m.SetElement(r, c, float(geometry.direction_matrix[r, c]))
        image.SetDirectionMatrix(m)
    else:
        view = np.transpose(a, perm)
        for m_axis, f in enumerate(flip):
            if f:
                view = np.flip(view, axis=m_axis)
        view = view[::stride, ::stride, ::stride]
        # array index of canonical [0, 0, 0] (after np.flip, [::stride] starts at the last)
        first = np.zeros(3)
        shape = a.shape
        for m_axis, n in enumerate(perm):
            first[n] = shape[n] - 1 if flip[m_axis] else 0
        origin = geometry.index_to_world(first)
        spacing = np.array([geometry.spacing_mm[2 - n] for n in perm][::-1]) * stride
    data = np.ascontiguousarray(view)
    nz, ny, nx = data.shape
    image.SetDimensions(int(nx), int(ny), int(nz))
    image.SetSpacing(*(float(s) for s in spacing))
    image.SetOrigin(*(float(o) for o in origin))
    scalars = numpy_to_vtk(data.ravel(order="C"), deep=True)
    scalars.SetName("values")
    image.GetPointData().SetScalars(scalars)
    return image


def vtk_point_of_index(image: vtkImageData, value_index_xyz: tuple[int, int, int]) -> NDArray[Any]:
    """VTK world point (x, y, z) of the VTK point index (i, j, k) -- for tests and picking."""
    pid = image.ComputePointId(list(value_index_xyz))
    return np.asarray(image.GetPoint(pid), dtype=float)


SURFACE_OPACITY = 0.35
"""Opacity of the VOI surfaces when none is emphasised."""
EMPHASISED_SURFACE_OPACITY = 0.8
DIMMED_SURFACE_OPACITY = 0.08
"""Opacities of the emphasised VOI and of the others (:meth:`View3D.set_voi_emphasis`)."""


def _stride_for(shape: tuple[int, ...]) -> int:
    return max(1, int(np.ceil(max(shape) / MAX_3D_VOXELS_PER_AXIS)))


# ------------------------------------------------------------------ view
class View3D(QWidget):
    """VTK 3D view (module docstring)."""

    positionPicked = Signal(object)
    """A point (LPS mm, length-3 array) was picked with the mouse."""
    rendered = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("view3d")
        self.mode_combo = QComboBox(self)
        self.mode_combo.addItems(list(MODES))
        self.mode_combo.setToolTip("Volume rendering or maximum-intensity projection")
        self.source_combo = QComboBox(self)
        self.source_combo.addItems(list(SOURCES))
        self.source_combo.setToolTip("Which image is rendered in 3D")
        self.info_label = QLabel("", self)
        self.info_label.setObjectName("hint")
        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        bar.addWidget(QLabel("3D", self))
        bar.addWidget(self.mode_combo)
        bar.addWidget(self.source_combo)
        bar.addWidget(self.info_label, 1)
        self.vtk_widget = QVTKRenderWindowInteractor(self)
        self.vtk_widget.setMinimumSize(200, 160)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.vtk_widget, 1)

        self.renderer = vtkRenderer()
        self.renderer.SetBackground(0.05, 0.06, 0.08)
        self.render_window = self.vtk_widget.GetRenderWindow()
        self.render_window.AddRenderer(self.renderer)
        self.interactor = self.render_window.GetInteractor()
        self.picker = vtkCellPicker()
        self.picker.SetTolerance(0.0005)
        self.interactor.SetPicker(self.picker)
        self._press: tuple[int, int] | None = None
        # the trackball style grabs the interactor's mouse events while rotating, so a click
        # (press and release without drag) is recognised from the Qt events instead
        self.vtk_widget.installEventFilter(self)

        self._data: Any = None
        self._images: dict[str, vtkImageData] = {}
        self._volume: vtkVolume | None = None
        self._volume_mapper: vtkFixedPointVolumeRayCastMapper | None = None
        self._surfaces: dict[str, tuple[Any, vtkActor]] = {}  # voi_id -> (pipeline, actor)
        self._emphasis: str | None = None
        self._pipelines: list[Any] = []  # VTK sources whose output ports are connected
        self._cursor_src = vtkSphereSource()
        self._cursor_src.SetThetaResolution(16)
        self._cursor_src.SetPhiResolution(16)
        cmapper = vtkPolyDataMapper()
        cmapper.SetInputConnection(self._cursor_src.GetOutputPort())
        self.cursor_actor = vtkActor()
        self.cursor_actor.SetMapper(cmapper)
        self.cursor_actor.GetProperty().SetColor(0.2, 1.0, 0.4)
        self.cursor_actor.PickableOff()
        self.cursor_actor.VisibilityOff()
        self.renderer.AddActor(self.cursor_actor)
        self.first_render_s: float | None = None
        self.has_rendered = False
        self._render_pending = False
        self.mode_combo.currentTextChanged.connect(lambda _t: self._update_volume())
        self.source_combo.currentTextChanged.connect(lambda _t: self._update_volume())
        self.vtk_widget.Initialize()

    # ------------------------------------------------------------- data
    def clear(self) -> None:
        self._data = None
        self._images = {}
        if self._volume is not None:
            self.renderer.RemoveVolume(self._volume)
            self._volume = None
        for _pipe, actor in self._surfaces.values():
            self.renderer.RemoveActor(actor)
        self._surfaces = {}
        self._pipelines = []
        self.cursor_actor.VisibilityOff()
        self.info_label.setText("")
        self.render()

    def set_data(
        self,
        data: Any,
        colours: Mapping[str, tuple[int, int, int]],
        visible: Mapping[str, bool],
    ) -> None:
        """Show a loaded time point (:class:`app.viewer.model.ViewData`)."""
        self.clear()
        self._data = data
        display = data.display
        stride = _stride_for(display.geometry.shape_zyx)
        self._stride = stride
        for key in ("spect", "dose"):
            layer = data.layers.get(key)
            if layer is not None:
                self._images[key] = to_vtk_image(layer.volume.array, display.geometry, stride)
        for row in data.vois:
            if row.display_mask is None:
                continue
            image = to_vtk_image(row.display_mask, display.geometry, stride)
            fe = vtkFlyingEdges3D()
            fe.SetInputData(image)
            fe.SetValue(0, 0.5)
            smooth = vtkWindowedSincPolyDataFilter()
            smooth.SetInputConnection(fe.GetOutputPort())
            smooth.SetNumberOfIterations(15)
            smooth.SetPassBand(0.1)
            smooth.NonManifoldSmoothingOn()
            smooth.NormalizeCoordinatesOn()
            normals = vtkPolyDataNormals()
            normals.SetInputConnection(smooth.GetOutputPort())
            mapper = vtkPolyDataMapper()
            mapper.SetInputConnection(normals.GetOutputPort())
            mapper.ScalarVisibilityOff()
            actor = vtkActor()
            actor.SetMapper(mapper)
            actor.GetProperty().SetOpacity(SURFACE_OPACITY)
            self.renderer.AddActor(actor)
            self._surfaces[row.voi_id] = ((image, fe, smooth, normals, mapper), actor)
        self.set_voi_style(colours, visible, render=False)
        self.source_combo.setEnabled("dose" in self._images)
        if "dose" not in self._images:
            self.source_combo.setCurrentText("SPECT")
        self._update_volume(render=False)
        self.reset_camera()

    def set_voi_style(
        self,
        colours: Mapping[str, tuple[int, int, int]],
        visible: Mapping[str, bool],
        *,
        render: bool = True,
    ) -> None:
        for voi_id, (_pipe, actor) in self._surfaces.items():
            r, g, b = colours.get(voi_id, (255, 0, 0))
            actor.GetProperty().SetColor(r / 255.0, g / 255.0, b / 255.0)
            actor.SetVisibility(bool(visible.get(voi_id, True)))
        self._apply_emphasis()
        if render:
            self.render()

    def set_voi_emphasis(self, voi_id: str | None) -> None:
        """Emphasise one VOI's surface (more opaque), lower the others' opacity; None: all equal."""
        self._emphasis = voi_id or None
        self._apply_emphasis()
        self.render()

    def voi_emphasis(self) -> str | None:
        return self._emphasis

    def surface_opacity(self, voi_id: str) -> float | None:
        """Opacity of a VOI's surface (None: no surface for it)."""
        entry = self._surfaces.get(voi_id)
        return None if entry is None else float(entry[1].GetProperty().GetOpacity())

    def _apply_emphasis(self) -> None:
        key = self._emphasis if self._emphasis in self._surfaces else None
        for voi_id, (_pipe, actor) in self._surfaces.items():
            if key is None:
                opacity = SURFACE_OPACITY
            elif voi_id == key:
                opacity = EMPHASISED_SURFACE_OPACITY
            else:
                opacity = DIMMED_SURFACE_OPACITY
            actor.GetProperty().SetOpacity(opacity)

    def mode(self) -> str:
        """``"volume"`` or ``"mip"``."""
        return MODES[self.mode_combo.currentText()]

    def set_mode(self, mode: str) -> None:
        label = {v: k for k, v in MODES.items()}[mode]
        self.mode_combo.setCurrentText(label)

    def source(self) -> str:
        return SOURCES[self.source_combo.currentText()]

    def set_source(self, source: str) -> None:
        label = {v: k for k, v in SOURCES.items()}[source]
        self.source_combo.setCurrentText(label)

    def _update_volume(self, render: bool = True) -> None:
        if self._volume is not None:
            self.renderer.RemoveVolume(self._volume)
            self._volume = None
        image = self._images.get(self.source()) or self._images.get("spect")
        if image is None:
            self.info_label.setText("no functional image")
            if render:
                self.render()
            return
        values = vtk_to_numpy(image.GetPointData().GetScalars())
        vmax = float(np.nanmax(values)) if values.size else 0.0
        vmax = vmax if vmax > 0 else 1.0
        mip = self.mode() == "mip"
        colour = vtkColorTransferFunction()
        for f, (r, g, b) in (
            (0.0, (0, 0, 0)),
            (0.35, (0.9, 0.1, 0)),
            (0.7, (1, 0.9, 0)),
            (1, (1, 1, 1)),
        ):
            colour.AddRGBPoint(f * vmax, r, g, b)
        opacity = vtkPiecewiseFunction()
        if mip:
            opacity.AddPoint(0.0, 0.0)
            opacity.AddPoint(vmax, 1.0)
        else:
            opacity.AddPoint(0.0, 0.0)
            opacity.AddPoint(0.08 * vmax, 0.0)
            opacity.AddPoint(0.4 * vmax, 0.15)
            opacity.AddPoint(vmax, 0.6)
        prop = vtkVolumeProperty()
        prop.SetColor(colour)
        prop.SetScalarOpacity(opacity)
        prop.SetInterpolationTypeToLinear()
        mapper = vtkFixedPointVolumeRayCastMapper()
        mapper.SetInputData(image)
        if mip:
            mapper.SetBlendModeToMaximumIntensity()
        else:
            mapper.SetBlendModeToComposite()
        volume = vtkVolume()
        volume.SetMapper(mapper)
        volume.SetProperty(prop)
        volume.PickableOff()  # picks land on VOI surfaces (or on nothing)
        self._volume, self._volume_mapper = volume, mapper
        self.renderer.AddVolume(volume)
        self.info_label.setText(
            f"{self.mode_combo.currentText()} of {self.source_combo.currentText()}"
        )
        if render:
            self.render()

    # ------------------------------------------------------------ cursor
    def set_cursor(self, world_mm: Any) -> None:
        """Put the 3D cursor at an LPS point (mm)."""
        p = np.asarray(world_mm, dtype=float).reshape(3)
        self._cursor_src.SetCenter(*p)
        radius = 4.0
        if self._data is not None:
            radius = 1.5 * float(max(self._data.display.geometry.spacing_mm)) * self._stride
        self._cursor_src.SetRadius(radius)
        self.cursor_actor.VisibilityOn()
        self.render()

    def cursor_position(self) -> NDArray[np.float64]:
        """Where the 3D cursor is (LPS mm)."""
        return np.asarray(self._cursor_src.GetCenter(), dtype=float)

    # ------------------------------------------------------------ camera
    def reset_camera(self) -> None:
        """Anterior view (from the patient's front, head up), everything in view."""
        cam = self.renderer.GetActiveCamera()
        cam.SetFocalPoint(0.0, 0.0, 0.0)
        cam.SetPosition(0.0, -1.0, 0.0)  # LPS: anterior is -y
        cam.SetViewUp(0.0, 0.0, 1.0)  # superior up
        self.renderer.ResetCamera()
        self.render()

    def camera_state(self) -> tuple[tuple[float, ...], ...]:
        cam = self.renderer.GetActiveCamera()
        return (cam.GetPosition(), cam.GetFocalPoint(), cam.GetViewUp())

    # ------------------------------------------------------------- picking
    def display_point_of_world(self, world_mm: Any) -> tuple[float, float]:
        """VTK display coordinates (pixels, origin bottom-left) of an LPS point."""
        c = vtkCoordinate()
        c.SetCoordinateSystemToWorld()
        c.SetValue(*(float(v) for v in np.asarray(world_mm).reshape(3)))
        x, y = c.GetComputedDoubleDisplayValue(self.renderer)
        return float(x), float(y)

    def pick(self, x: float, y: float) -> NDArray[np.float64] | None:
        """Pick at VTK display pixel (x, y): the LPS point hit, emitted as positionPicked."""
        if not self.picker.Pick(float(x), float(y), 0.0, self.renderer):
            return None
        p = np.asarray(self.picker.GetPickPosition(), dtype=float)
        self.positionPicked.emit(p.copy())
        return p

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.vtk_widget and isinstance(event, QMouseEvent):
            if event.button() == Qt.MouseButton.LeftButton:
                p = event.position().toPoint()
                if event.type() == QEvent.Type.MouseButtonPress:
                    self._press = (p.x(), p.y())
                elif event.type() == QEvent.Type.MouseButtonRelease and self._press is not None:
                    if abs(p.x() - self._press[0]) + abs(p.y() - self._press[1]) <= 3:
                        ratio = self.vtk_widget.devicePixelRatioF()
                        x = p.x() * ratio
                        y = (self.vtk_widget.height() - p.y() - 1) * ratio
                        self.pick(x, y)
                    self._press = None
        return super().eventFilter(watched, event)

    # ------------------------------------------------------------ drawing
    def render(self) -> None:
        """Ask for a render: the requests made before control returns to the event loop
        (a reload sets the data, the VOI style, the camera and the cursor, each asking)
        give one render, so a reload costs one software render and not a dozen."""
        if not self.isVisible() or self._render_pending:
            return
        self._render_pending = True
        QTimer.singleShot(0, self._render_now)

    @property
    def render_pending(self) -> bool:
        """A render was asked for and has not run yet."""
        return self._render_pending

    def _render_now(self) -> None:
        self._render_pending = False
        if not self.isVisible():
            return
        start = time.perf_counter()
        self.render_window.Render()
        if not self.has_rendered and (self._volume is not None or self._surfaces):
            self.first_render_s = time.perf_counter() - start
            self.has_rendered = True
        self.rendered.emit()

    def capture(self) -> NDArray[np.uint8]:
        """The rendered image (rows top to bottom, RGB) via vtkWindowToImageFilter."""
        if self._render_pending:
            self._render_now()
        self.render_window.Render()
        grab = vtkWindowToImageFilter()
        grab.SetInput(self.render_window)
        grab.ReadFrontBufferOff()
        grab.SetInputBufferTypeToRGB()
        grab.Update()
        out = grab.GetOutput()
        w, h, _ = out.GetDimensions()
        rgb = vtk_to_numpy(out.GetPointData().GetScalars()).reshape(h, w, -1)[::-1]
        return np.ascontiguousarray(rgb[..., :3])

    def nonblank_fraction(self) -> float:
        """Fraction of pixels that differ from the background colour."""
        img = self.capture().astype(int)
        bg = np.round(np.asarray(self.renderer.GetBackground()) * 255).astype(int)
        return float(np.mean(np.abs(img - bg).sum(axis=-1) > 12))

    def closeEvent(self, event: Any) -> None:
        self.vtk_widget.close()
        super().closeEvent(event)
