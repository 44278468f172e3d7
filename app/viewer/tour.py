"""Tour driver of the viewer: works the panel through its widgets and reads back what it shows.

``drive(panel, ctx)`` (protocol: :class:`app.steps.base.TourContext`) on the open
case: clicks the second time point's button, switches a layer off and on again
with its checkbox, moves the crosshair to the hottest SPECT voxel by clicks on
the coronal and then the axial plane (``QTest.mouseClick`` on the planes'
viewports), switches the 3D view to MIP and waits until it has drawn.  Returns
the figures on screen: the time point, each layer's visibility and window, the
readout at the crosshair, the VOI list rows and the 3D view's mode, whether it
rendered and the fraction of non-background pixels of a
``vtkWindowToImageFilter`` capture.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from app.steps.base import TourContext, TourError
from app.viewer.panel import ViewerPanel
from app.viewer.planes import PLANE_AXES

__all__ = ["drive"]


def _click_plane(panel: ViewerPanel, plane: str, h_mm: float, v_mm: float) -> None:
    view = panel.viewer.planes[plane]
    viewport = view.view.viewport()
    pos = view.view_to_widget(h_mm, v_mm).toPoint()
    QTest.mouseClick(
        viewport,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
        viewport.mapFrom(view, pos),
    )


def _layers_shown(panel: ViewerPanel) -> list[dict[str, Any]]:
    out = []
    table = panel.layer_table
    for r in range(table.rowCount()):
        key = list(table.rows)[r]
        row = table.rows[key]
        out.append(
            {
                "name": table.item(r, 1).text(),
                "visible": row["visible"].isChecked(),  # type: ignore[attr-defined]
                "lower": row["lower"].value(),  # type: ignore[attr-defined]
                "upper": row["upper"].value(),  # type: ignore[attr-defined]
                "opacity_pct": row["opacity"].value(),  # type: ignore[attr-defined]
            }
        )
    return out


def drive(panel: ViewerPanel, ctx: TourContext) -> dict[str, Any]:
    """Work the viewer as a user would; return what it shows (module docstring)."""
    ctx.wait_until(panel.is_ready, 120, "viewer: the first time point is drawn")
    selector = panel.time_point_selector
    if selector.count() == 0:
        raise TourError("viewer: the open case has no time points")
    index = 1 if selector.count() > 1 else 0
    QTest.mouseClick(selector.button(index), Qt.MouseButton.LeftButton)
    ctx.wait_until(
        lambda: panel.is_ready() and selector.current_index() == index,
        120,
        f"viewer: time point {selector.labels()[index]} is drawn",
    )

    # a layer off and on again, through its checkbox
    layer_key = "dose" if "dose" in panel.layer_table.rows else "spect"
    check = panel.layer_table.rows[layer_key]["visible"]
    toggled: dict[str, Any] = {"layer": layer_key}
    for _ in range(2):
        before = check.isChecked()  # type: ignore[attr-defined]
        QTest.mouseClick(check, Qt.MouseButton.LeftButton, pos=QPoint(6, check.height() // 2))
        if check.isChecked() == before:  # type: ignore[attr-defined]
            raise TourError(f"viewer: clicking the {layer_key} checkbox did not toggle it")
        toggled["off" if before else "on"] = panel.readout()
    ctx.settle(0.2)

    # crosshair to the hottest functional voxel: click coronal (x, z), then axial (x, y)
    data = panel.view_data()
    if data is None or "spect" not in data.layers:
        raise TourError("viewer: no functional image is shown")
    spect = data.layers["spect"].volume
    hot = spect.geometry.index_to_world(np.unravel_index(np.argmax(spect.array), spect.shape))
    h, v = PLANE_AXES["coronal"]  # canonical axes (2 = x, 0 = z)
    _click_plane(panel, "coronal", float(hot[2 - h]), float(hot[2 - v]))
    _click_plane(panel, "axial", float(hot[0]), float(hot[1]))
    ctx.settle(0.2)
    world = panel.world_position()
    spacing = max(spect.geometry.spacing_mm)
    if np.linalg.norm(world - hot) > 2 * spacing:
        raise TourError(
            f"viewer: clicks on the planes put the crosshair at {np.round(world, 1).tolist()} mm, "
            f"not at the hottest voxel {np.round(hot, 1).tolist()} mm"
        )

    view3d: dict[str, Any] = {"mode": None, "rendered": False, "nonblank_fraction": 0.0}
    v3 = panel.view3d
    if v3 is None:
        raise TourError("viewer: the 3D view is not available (needs a display with OpenGL)")
    v3.mode_combo.setCurrentText("MIP")
    ctx.wait_until(lambda: v3.has_rendered and v3.mode() == "mip", 60, "viewer: 3D MIP drawn")
    ctx.settle(0.3)
    view3d = {
        "mode": v3.mode(),
        "source": v3.source(),
        "rendered": bool(v3.has_rendered),
        "first_render_s": round(float(v3.first_render_s or 0.0), 3),
        "nonblank_fraction": round(v3.nonblank_fraction(), 4),
        "cursor_lps_mm": [round(float(c), 1) for c in v3.cursor_position()],
    }
    if view3d["nonblank_fraction"] <= 0.0:
        raise TourError("viewer: the 3D view is blank")
    return {
        # the whole label (a narrow panel's button shows it without the modality)
        "time_point": selector.labels()[selector.current_index()],
        "layers": _layers_shown(panel),
        "layer_toggled": toggled,
        "crosshair_lps_mm": [round(float(c), 1) for c in world],
        "readout": panel.readout(),
        "isodose_levels_gy": panel.isodose_levels_gy(),
        "vois": [
            {"name": r["name"], "volume_ml": r["volume_ml"], "mass_g": r["mass_g"]}
            for r in panel.voi_list_widget.rows_as_shown()
        ],
        "view3d": view3d,
    }
