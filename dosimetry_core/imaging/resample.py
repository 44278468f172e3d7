"""The one resampling function of the workstation (ARCHITECTURE rule 5).

Everything that moves voxel values between grids -- display fusion, propagation
through registration transforms, dose-grid changes -- calls :func:`resample`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage

from dosimetry_core.model import Geometry, Volume


def _zyx_affine(geom: Geometry) -> NDArray[np.float64]:
    """4x4 mapping homogeneous (k, j, i, 1) to LPS (x, y, z, 1)."""
    a = geom.affine
    out = np.eye(4)
    out[:3, :3] = a[:3, :3][:, ::-1]
    out[:3, 3] = a[:3, 3]
    return out


def resample(
    source: Volume,
    target: Geometry,
    *,
    order: int = 1,
    fill_value: float = 0.0,
    transform: ArrayLike | None = None,
    dtype: Any = None,
) -> Volume:
    """Resample ``source`` onto the grid ``target``.

    Parameters
    ----------
    source
        Volume to sample.
    target
        Output grid (LPS mm).
    order
        Interpolation order: 0 nearest neighbour (masks, labels), 1 trilinear
        (images), 3 cubic spline.
    fill_value
        Value for target voxels outside the source grid (e.g. -1000 for CT in HU,
        0 for activity).
    transform
        Optional 4x4 homogeneous matrix mapping a **target** LPS point to the
        corresponding **source** LPS point (the ITK "fixed to moving" sense).
    dtype
        Output dtype; defaults to the source dtype (float32 for linear
        interpolation of integer images).

    Returns
    -------
    Volume
        Same units and description as ``source``; voxel values are sampled, not
        integrated (resampling a Bq/mL image preserves concentration, and total
        activity only up to interpolation and boundary effects).
    """
    t = np.eye(4) if transform is None else np.asarray(transform, dtype=float)
    if t.shape != (4, 4):
        raise ValueError("transform must be a 4x4 homogeneous matrix")
    m = np.linalg.inv(_zyx_affine(source.geometry)) @ t @ _zyx_affine(target)
    src = source.array
    if dtype is None:
        dtype = src.dtype if (order == 0 or np.issubdtype(src.dtype, np.floating)) else np.float32
    if src.dtype == np.bool_:
        src = src.astype(np.uint8)
    work = src if np.issubdtype(src.dtype, np.floating) or order == 0 else src.astype(np.float32)
    out = ndimage.affine_transform(
        work,
        m[:3, :3],
        offset=m[:3, 3],
        output_shape=target.shape_zyx,
        order=order,
        mode="constant",
        cval=fill_value,
        prefilter=order > 1,
    )
    return Volume(out.astype(dtype, copy=False), target, source.units, source.description)


def identity_transform() -> NDArray[np.float64]:
    return np.eye(4)


def rigid_transform(
    rotation_deg_xyz: ArrayLike = (0.0, 0.0, 0.0),
    translation_mm: ArrayLike = (0.0, 0.0, 0.0),
    center_mm: ArrayLike = (0.0, 0.0, 0.0),
) -> NDArray[np.float64]:
    """4x4 rigid transform ``p -> R (p - c) + c + t`` in LPS mm.

    ``R = Rz @ Ry @ Rx`` with angles in degrees about the LPS x, y, z axes
    (the SimpleITK Euler3D convention with ComputeZYX off applies Rz Rx Ry;
    we keep one documented convention here and convert in the registration
    adapter).
    """
    ax, ay, az = np.deg2rad(np.asarray(rotation_deg_xyz, dtype=float))
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    r = rz @ ry @ rx
    c = np.asarray(center_mm, dtype=float)
    out = np.eye(4)
    out[:3, :3] = r
    out[:3, 3] = c - r @ c + np.asarray(translation_mm, dtype=float)
    return out
