"""The 3D brush: a ball of voxels around a point, set or cleared in a mask.

:func:`paint_sphere` is the sphere option of the workstation's brush (the disc
on one slice is :func:`dosimetry_core.segmentation.operations.paint_disc`).  A
voxel belongs to the ball when the distance in mm between its centre and the
ball's centre, measured in patient space (so anisotropic and oblique grids give
a true sphere), is at most the radius.  Only the voxels of the ball's bounding
box are examined, so a dab costs its own size, not the volume's.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.model import Geometry

__all__ = ["paint_sphere"]


def paint_sphere(
    mask: ArrayLike,
    geometry: Geometry,
    center_world_mm: ArrayLike,
    radius_mm: float,
    erase: bool = False,
) -> NDArray[np.bool_]:
    """Brush (or eraser) dab in 3D: the voxels within ``radius_mm`` of an LPS point.

    Parameters
    ----------
    mask
        Boolean mask ``[z, y, x]`` on ``geometry``.
    geometry
        Grid of the mask.
    center_world_mm
        LPS centre of the ball (mm).
    radius_mm
        Ball radius in mm (> 0); voxels whose centre lies within it are set.
    erase
        ``True`` clears the ball instead of setting it.

    Returns
    -------
    numpy.ndarray
        A new boolean mask.
    """
    if radius_mm <= 0:
        raise InvalidInputError(f"brush radius must be > 0 mm, got {radius_mm}")
    out = np.array(mask, dtype=bool, copy=True)
    if out.shape != tuple(geometry.shape_zyx):
        raise InvalidInputError(
            f"mask shape {out.shape} does not match the grid {geometry.shape_zyx}"
        )
    centre = np.asarray(center_world_mm, dtype=float).reshape(3)
    c_idx = geometry.world_to_index(centre)  # (k, j, i)
    spacing_kji = np.asarray(geometry.spacing_mm, dtype=float)[::-1]
    half = np.ceil(radius_mm / spacing_kji) + 1
    lo = np.maximum(np.floor(c_idx - half), 0).astype(int)
    hi = np.minimum(np.ceil(c_idx + half) + 1, np.asarray(out.shape)).astype(int)
    if np.any(hi <= lo):
        return out
    k, j, i = np.meshgrid(
        np.arange(lo[0], hi[0]), np.arange(lo[1], hi[1]), np.arange(lo[2], hi[2]), indexing="ij"
    )
    pts = geometry.index_to_world(np.stack([k, j, i], axis=-1).astype(float))
    inside = np.sum((pts - centre) ** 2, axis=-1) <= radius_mm**2
    box = out[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    if erase:
        box &= ~inside
    else:
        box |= inside
    return out
