"""Frames per second scrolling the fused viewer, and the 3D view's first render.

Run under a display (VTK does not draw offscreen)::

    QT_QPA_PLATFORM=xcb xvfb-run -a -s "-screen 0 1280x1024x24" \\
        .venv/bin/python benchmarks/bench_viewer.py [--slices 120] [--repeats 3]

1. Scrolling: a 512 x 512 x ``--slices`` CT with a SPECT on it, a dose map with
   isodose lines at 2, 5, 10, 20 Gy and two VOI outlines, shown in the
   viewer's three planes; the axial plane is scrolled through every slice
   (one wheel notch per frame, each frame painted with ``repaint()``).
   Baseline in the same run: a bare ``pyqtgraph.ImageItem.setImage`` of the
   same CT slices in one GraphicsView of the same size, painted the same way
   (the honest floor: the least any slice viewer does).  Goal (issue 12):
   >= 30 fps.
2. 3D: first render of the viewer's 3D view, from the loaded data to the drawn
   image (conversion, volume rendering of the SPECT on the display grid,
   strided to <= 160 voxels per axis, a smoothed VOI surface) against a bare
   VTK render of the same strided volume with the same mapper in a plain
   render window (conversion included); both windows exist before timing.

Medians of ``--repeats`` runs; the ratios are the figures to compare.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np


def _volumes(n_slices: int) -> tuple:
    from dosimetry_core.model import Geometry, ImageUnits, Volume

    geom = Geometry((n_slices, 512, 512), (0.98, 0.98, 3.0), (-250.0, -250.0, -180.0))
    z, y, x = np.meshgrid(
        np.arange(n_slices) * 3.0 - 180.0,
        np.arange(512) * 0.98 - 250.0,
        np.arange(512) * 0.98 - 250.0,
        indexing="ij",
        sparse=True,
    )
    body = (x / 180.0) ** 2 + (y / 120.0) ** 2 <= 1.0
    ct = np.where(body, 40.0, -1000.0).astype(np.int16) + np.zeros((n_slices, 1, 1), np.int16)
    r = np.sqrt((x - 40.0) ** 2 + (y + 10.0) ** 2 + z**2)
    spect = (np.where(body, 2000.0, 0.0) + 250_000.0 * np.exp(-(r**2) / (2 * 25.0**2))).astype(
        np.float32
    )
    dose = (30.0 * np.exp(-r / 35.0)).astype(np.float32)
    masks = [(r <= 30.0), ((x + 60.0) ** 2 + (y - 10.0) ** 2 + (z / 2) ** 2 <= 50.0**2)]
    return (
        Volume(ct, geom, ImageUnits.HU, "CT"),
        Volume(spect, geom, ImageUnits.BQML, "SPECT"),
        Volume(dose, geom, ImageUnits.GY, "dose"),
        [m.astype(bool) for m in masks],
    )


def bench_scroll(app, ct, spect, dose, masks) -> tuple[float, float]:
    """(viewer fps, bare ImageItem fps) scrolling every axial slice once."""
    import pyqtgraph as pg

    from app.viewer.planes import FusedViewer, VoiOutline

    n = ct.shape[0]
    viewer = FusedViewer()
    viewer.resize(1200, 900)
    viewer.show()
    viewer.set_time_point(ct, spect, spect)
    viewer.set_extra_layers([("dose", "Dose", "Gy", dose)])
    viewer.set_vois(
        [VoiOutline("lesion", masks[0], (0, 255, 0)), VoiOutline("liver", masks[1], (255, 0, 255))]
    )
    viewer.set_world_position(ct.geometry.index_to_world([0, 256, 256]))
    app.processEvents()
    axial = viewer.planes["axial"]
    t0 = time.perf_counter()
    for _ in range(n - 1):
        viewer.scroll("axial", 1)
        for view in viewer.planes.values():
            view.view.viewport().repaint()
    viewer_fps = (n - 1) / (time.perf_counter() - t0)
    assert viewer.isodose_segments("axial"), "isodose lines were drawn"
    viewer.close()

    view = pg.GraphicsView()
    view.resize(axial.width(), axial.height())
    vb = pg.ViewBox(lockAspect=True)
    view.setCentralItem(vb)
    item = pg.ImageItem(axisOrder="row-major")
    vb.addItem(item)
    view.show()
    item.setImage(ct.array[0], autoLevels=False, levels=(-160, 240))
    vb.autoRange()
    app.processEvents()
    t0 = time.perf_counter()
    for k in range(1, n):
        item.setImage(ct.array[k], autoLevels=False, levels=(-160, 240))
        view.viewport().repaint()
    bare_fps = (n - 1) / (time.perf_counter() - t0)
    view.close()
    return viewer_fps, bare_fps


def bench_3d(app, ct, spect, masks) -> tuple[float, float]:
    """(viewer 3D first render s, bare VTK render s) of the same strided volume."""
    from vtkmodules.vtkCommonDataModel import vtkPiecewiseFunction
    from vtkmodules.vtkRenderingCore import (
        vtkColorTransferFunction,
        vtkRenderer,
        vtkRenderWindow,
        vtkVolume,
        vtkVolumeProperty,
    )
    from vtkmodules.vtkRenderingVolume import vtkFixedPointVolumeRayCastMapper

    from app.viewer.model import LayerData, ViewData, VoiRow
    from app.viewer.view3d import View3D, _stride_for, to_vtk_image

    data = ViewData(
        "tp",
        {
            "ct": LayerData("ct", "CT", "HU", ct),
            "spect": LayerData("spect", "SPECT", "Bq/mL", spect),
        },
        [VoiRow("v1", "lesion", "lesion", "draft", (0, 255, 0), 0.0, None, masks[0])],
    )
    v = View3D()
    v.resize(800, 600)
    v.show()
    app.processEvents()
    t0 = time.perf_counter()
    v.set_data(data, {"v1": (0, 255, 0)}, {"v1": True})
    app.processEvents()
    viewer_s = time.perf_counter() - t0
    v.close()

    stride = _stride_for(spect.geometry.shape_zyx)
    ren = vtkRenderer()
    win = vtkRenderWindow()
    win.SetSize(800, 560)
    win.AddRenderer(ren)
    win.Render()  # the window exists before timing, as the viewer's does
    t0 = time.perf_counter()
    image = to_vtk_image(spect.array, spect.geometry, stride)
    mapper = vtkFixedPointVolumeRayCastMapper()
    mapper.SetInputData(image)
    colour = vtkColorTransferFunction()
    colour.AddRGBPoint(0.0, 0, 0, 0)
    colour.AddRGBPoint(float(spect.array.max()), 1, 1, 1)
    opacity = vtkPiecewiseFunction()
    opacity.AddPoint(0.0, 0.0)
    opacity.AddPoint(float(spect.array.max()), 0.6)
    prop = vtkVolumeProperty()
    prop.SetColor(colour)
    prop.SetScalarOpacity(opacity)
    volume = vtkVolume()
    volume.SetMapper(mapper)
    volume.SetProperty(prop)
    ren.AddVolume(volume)
    ren.ResetCamera()
    win.Render()
    bare_s = time.perf_counter() - t0
    win.Finalize()
    return viewer_s, bare_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--slices", type=int, default=120)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv)
    if app.platformName() not in ("xcb", "wayland", "windows", "cocoa"):
        sys.exit("run under a display: QT_QPA_PLATFORM=xcb xvfb-run -a ... (VTK needs one)")
    ct, spect, dose, masks = _volumes(args.slices)
    scroll = [bench_scroll(app, ct, spect, dose, masks) for _ in range(args.repeats)]
    v_fps = statistics.median(s[0] for s in scroll)
    b_fps = statistics.median(s[1] for s in scroll)
    first = [bench_3d(app, ct, spect, masks) for _ in range(args.repeats)]
    v3 = statistics.median(f[0] for f in first)
    b3 = statistics.median(f[1] for f in first)
    print(f"grid 512 x 512 x {args.slices}, medians of {args.repeats} runs")
    print(
        f"scrolling, fused CT + SPECT + dose + isodose + 2 outlines, 3 planes: {v_fps:6.1f} fps "
        f"(goal >= 30)"
    )
    print(f"bare ImageItem.setImage of the same CT slices, 1 view:            {b_fps:6.1f} fps")
    print(f"ratio viewer / bare: {v_fps / b_fps:.2f}")
    print(f"3D first render (volume + VOI surface): {v3:.3f} s; bare VTK render {b3:.3f} s")
    print(f"ratio 3D viewer / bare VTK: {v3 / b3:.2f}")


if __name__ == "__main__":
    main()
