"""Contouring: mask operations, the standard organ list, VOI volumes and masses.

Pure functions on boolean masks ``[z, y, x]`` with their
:class:`~dosimetry_core.model.Geometry`; no GUI code.
"""

from dosimetry_core.segmentation.mass import (
    VoiStatistics,
    voi_mass_g,
    voi_statistics,
    voi_volume_ml,
)
from dosimetry_core.segmentation.operations import (
    fill_holes,
    fill_polygon,
    grow,
    grow_or_shrink,
    interpolate_slices,
    intersection,
    keep_component_containing,
    keep_largest_component,
    paint_disc,
    region_grow,
    remove_small_components,
    shrink,
    subtract,
    threshold_absolute,
    threshold_relative,
    union,
)
from dosimetry_core.segmentation.organs import OrganSpec, match_organ, standard_organs

__all__ = [
    "OrganSpec",
    "VoiStatistics",
    "fill_holes",
    "fill_polygon",
    "grow",
    "grow_or_shrink",
    "interpolate_slices",
    "intersection",
    "keep_component_containing",
    "keep_largest_component",
    "match_organ",
    "paint_disc",
    "region_grow",
    "remove_small_components",
    "shrink",
    "standard_organs",
    "subtract",
    "threshold_absolute",
    "threshold_relative",
    "union",
    "voi_mass_g",
    "voi_statistics",
    "voi_volume_ml",
]
