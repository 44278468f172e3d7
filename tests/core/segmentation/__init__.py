"""Analytic phantoms shared by the segmentation tests."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from dosimetry_core.model import Geometry


def centred_grid(extent_mm: float, spacing_mm: tuple[float, float, float]) -> Geometry:
    """Grid of about ``extent_mm`` per side with LPS (0, 0, 0) near its centre."""
    sx, sy, sz = spacing_mm
    shape = (int(extent_mm / sz), int(extent_mm / sy), int(extent_mm / sx))
    origin = tuple(-(n - 1) / 2 * s for n, s in zip(shape[::-1], spacing_mm, strict=True))
    return Geometry(shape, spacing_mm, origin)


def world_coords(geom: Geometry) -> NDArray[np.float64]:
    """LPS coordinates of all voxel centres, shape ``(*shape_zyx, 3)``."""
    idx = np.indices(geom.shape_zyx).reshape(3, -1).T
    return geom.index_to_world(idx).reshape(*geom.shape_zyx, 3)


def sphere_mask(geom: Geometry, radius_mm: float, centre=(0.3, -0.2, 0.1)) -> NDArray[np.bool_]:
    r = np.linalg.norm(world_coords(geom) - np.asarray(centre), axis=-1)
    return r <= radius_mm


def sphere_fraction(
    geom: Geometry, radius_mm: float, centre=(0.3, -0.2, 0.1), sub: int = 4
) -> NDArray[np.float64]:
    """Fraction of each voxel inside the sphere (supersampled ``sub``^3 per voxel)."""
    w = world_coords(geom) - np.asarray(centre)
    sx, sy, sz = geom.spacing_mm
    offs = (np.arange(sub) + 0.5) / sub - 0.5
    frac = np.zeros(geom.shape_zyx)
    for dz in offs:
        for dy in offs:
            for dx in offs:
                p = w + np.array([dx * sx, dy * sy, dz * sz])
                frac += np.sum(p * p, axis=-1) <= radius_mm**2
    return frac / sub**3


def sphere_volume_ml(radius_mm: float) -> float:
    return 4.0 / 3.0 * np.pi * radius_mm**3 * 1e-3


def partial_volume_bound_ml(radius_mm: float, geom: Geometry) -> float:
    """Surface area times half the voxel diagonal (mL): the partial-volume tolerance."""
    half_diag = 0.5 * float(np.linalg.norm(geom.spacing_mm))
    return 4.0 * np.pi * radius_mm**2 * half_diag * 1e-3
