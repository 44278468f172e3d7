"""Moved to :mod:`app.viewer.planes`; this name stays until every importer has switched."""

from app.viewer.planes import (
    COLORMAPS,
    CT_PRESETS,
    MIP,
    PLANES,
    FusedViewer,
    PlaneSlices,
    PlaneView,
    VoiOutline,
    fused_overlay,
    overlay_lookup_table,
)

__all__ = [
    "COLORMAPS",
    "CT_PRESETS",
    "MIP",
    "PLANES",
    "FusedViewer",
    "PlaneSlices",
    "PlaneView",
    "VoiOutline",
    "fused_overlay",
    "overlay_lookup_table",
]
