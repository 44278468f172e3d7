"""Fraction of each dose voxel covered by a VOI mask on another grid (numba kernels).

:func:`mask_fraction_on_grid` is the documented entry point; the kernels here
are its private workers.  The numbers are those of a dense resample of the mask
(trilinear interpolation of 0/1, ``scipy.ndimage.affine_transform`` with
``mode="constant"``) onto the dose grid split ``k x k x k`` times, averaged per
dose voxel, but computed only inside the VOI's bounding box, in parallel,
without the dense oversampled grid:

* the grids coincide: the mask itself (exact, 0 or 1);
* the dose grid is an integer super-sampling of the mask grid (same direction,
  aligned voxel edges, every dose voxel made of ``s_x x s_y x s_z`` mask voxels):
  block sums, the exact covered fraction;
* otherwise: ``k^3`` sub-sample points per dose voxel, each mapped into the mask
  grid and interpolated trilinearly (0 outside the mask grid), averaged.
"""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import NDArray

from dosimetry_core.model import Geometry

__all__ = ["mask_fraction_on_grid", "mask_bounding_box"]


def _zyx_affine(geom: Geometry) -> NDArray[np.float64]:
    """4x4 map from a ``[z, y, x]`` voxel index to the LPS point (mm)."""
    a = np.asarray(geom.affine, dtype=float)
    out = np.eye(4)
    out[:3, :3] = a[:3, :3][:, ::-1]
    out[:3, 3] = a[:3, 3]
    return out


def mask_bounding_box(mask: NDArray[np.bool_]) -> tuple[tuple[int, int], ...] | None:
    """Index ranges ``((z0, z1), (y0, y1), (x0, x1))`` (end exclusive) of the set voxels.

    None for an empty mask.
    """
    ranges = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        hit = np.flatnonzero(mask.any(axis=other))
        if hit.size == 0:
            return None
        ranges.append((int(hit[0]), int(hit[-1]) + 1))
    return tuple(ranges)


@numba.njit(cache=True)
def _summed_area(crop: NDArray[np.uint8]) -> NDArray[np.int32]:  # pragma: no cover - compiled
    """``sat[z, y, x]`` = number of set voxels in ``crop[:z, :y, :x]``."""
    nz, ny, nx = crop.shape
    sat = np.zeros((nz + 1, ny + 1, nx + 1), dtype=np.int32)
    for z in range(nz):
        for y in range(ny):
            row = 0
            for x in range(nx):
                row += crop[z, y, x]
                sat[z + 1, y + 1, x + 1] = (
                    row + sat[z, y + 1, x + 1] + sat[z + 1, y, x + 1] - sat[z, y, x + 1]
                )
    return sat


@numba.njit(cache=True, inline="always")
def _box_count(sat: NDArray[np.int32], z0: int, z1: int, y0: int, y1: int, x0: int, x1: int) -> int:
    """Set voxels in ``crop[z0:z1, y0:y1, x0:x1]``."""  # pragma: no cover - compiled
    return (
        sat[z1, y1, x1]
        - sat[z0, y1, x1]
        - sat[z1, y0, x1]
        - sat[z1, y1, x0]
        + sat[z0, y0, x1]
        + sat[z0, y1, x0]
        + sat[z1, y0, x0]
        - sat[z0, y0, x0]
    )


@numba.njit(cache=True, inline="always")
def _at(crop: NDArray[np.uint8], off: NDArray[np.int64], z: int, y: int, x: int) -> bool:
    z -= off[0]
    y -= off[1]
    x -= off[2]
    cz, cy, cx = crop.shape
    return 0 <= z < cz and 0 <= y < cy and 0 <= x < cx and crop[z, y, x] != 0


@numba.njit(cache=True, parallel=True)
def _subsampled_fraction(  # pragma: no cover - compiled
    crop: NDArray[np.uint8],
    off: NDArray[np.int64],
    full: NDArray[np.int64],
    m: NDArray[np.float64],
    k: int,
    lo: NDArray[np.int64],
    hi: NDArray[np.int64],
    out: NDArray[np.float32],
) -> None:
    """``out[t]`` = mean over the ``k^3`` sub-samples of target voxel ``t`` (``lo <= t < hi``).

    ``crop`` is the mask's bounding box (every mask voxel outside it is 0), at
    ``off`` in the full mask grid of shape ``full``.  ``m`` maps a sub-sample
    index ``(iz, iy, ix)`` of the ``k``-times finer target grid to a continuous
    ``[z, y, x]`` mask index.  A sample with any coordinate outside
    ``[0, n - 1]`` is 0 (scipy's ``mode="constant"``); each sample is rounded
    to float32 as the dense resample stores it, and the samples are summed in
    float32 in NumPy's order for ``mean(axis=(1, 3, 5))`` of the
    ``(nz, k, ny, k, nx, k)`` view (runs of ``k`` along x, then added), so the
    fractions equal the dense resample's bit for bit.  A target voxel whose samples
    all fall among mask voxels that are all 0 (or all 1) is 0 (or 1) without
    interpolating, decided from a summed-area table of the crop.
    """
    nz, ny, nx = full[0], full[1], full[2]
    sat = _summed_area(crop)
    kkk = np.float32(k * k * k)
    nrows = (hi[0] - lo[0]) * (hi[1] - lo[1])
    wy = hi[1] - lo[1]
    for row in numba.prange(nrows):
        tz = lo[0] + row // wy
        ty = lo[1] + row % wy
        for tx in range(lo[2], hi[2]):
            # the mask voxels the samples can touch: hull of the k^3 samples (affine cube)
            mn0 = mn1 = mn2 = np.inf
            mx0 = mx1 = mx2 = -np.inf
            for a in (0, k - 1):
                for b in (0, k - 1):
                    for c in (0, k - 1):
                        iz = tz * k + a
                        iy = ty * k + b
                        ix = tx * k + c
                        cz = m[0, 0] * iz + m[0, 1] * iy + m[0, 2] * ix + m[0, 3]
                        cy = m[1, 0] * iz + m[1, 1] * iy + m[1, 2] * ix + m[1, 3]
                        cx = m[2, 0] * iz + m[2, 1] * iy + m[2, 2] * ix + m[2, 3]
                        mn0 = min(mn0, cz)
                        mn1 = min(mn1, cy)
                        mn2 = min(mn2, cx)
                        mx0 = max(mx0, cz)
                        mx1 = max(mx1, cy)
                        mx2 = max(mx2, cx)
            inside = mn0 >= 0.0 and mn1 >= 0.0 and mn2 >= 0.0
            inside = inside and mx0 <= nz - 1 and mx1 <= ny - 1 and mx2 <= nx - 1
            if inside:
                # voxel index ranges [a0, a1) touched, in crop coordinates
                a0 = int(mn0) - 1 - off[0]
                a1 = int(mx0) + 2 - off[0]
                b0 = int(mn1) - 1 - off[1]
                b1 = int(mx1) + 2 - off[1]
                c0 = int(mn2) - 1 - off[2]
                c1 = int(mx2) + 2 - off[2]
                vol = (a1 - a0) * (b1 - b0) * (c1 - c0)
                cz_, cy_, cx_ = crop.shape
                a0c = max(a0, 0)
                b0c = max(b0, 0)
                c0c = max(c0, 0)
                a1c = min(a1, cz_)
                b1c = min(b1, cy_)
                c1c = min(c1, cx_)
                if a1c <= a0c or b1c <= b0c or c1c <= c0c:
                    out[tz, ty, tx] = 0.0
                    continue
                n = _box_count(sat, a0c, a1c, b0c, b1c, c0c, c1c)
                if n == 0:
                    out[tz, ty, tx] = 0.0
                    continue
                if n == vol:
                    out[tz, ty, tx] = 1.0
                    continue
            acc = np.float32(0.0)
            for a in range(k):
                iz = tz * k + a
                for b in range(k):
                    iy = ty * k + b
                    row_sum = np.float32(0.0)
                    for c in range(k):
                        ix = tx * k + c
                        cz = m[0, 0] * iz + m[0, 1] * iy + m[0, 2] * ix + m[0, 3]
                        cy = m[1, 0] * iz + m[1, 1] * iy + m[1, 2] * ix + m[1, 3]
                        cx = m[2, 0] * iz + m[2, 1] * iy + m[2, 2] * ix + m[2, 3]
                        if cz < 0.0 or cy < 0.0 or cx < 0.0:
                            continue
                        if cz > nz - 1 or cy > ny - 1 or cx > nx - 1:
                            continue
                        z0 = min(int(cz), nz - 1)
                        y0 = min(int(cy), ny - 1)
                        x0 = min(int(cx), nx - 1)
                        fz = cz - z0
                        fy = cy - y0
                        fx = cx - x0
                        z1 = min(z0 + 1, nz - 1)
                        y1 = min(y0 + 1, ny - 1)
                        x1 = min(x0 + 1, nx - 1)
                        v = 0.0
                        if _at(crop, off, z0, y0, x0):
                            v += (1.0 - fz) * (1.0 - fy) * (1.0 - fx)
                        if _at(crop, off, z0, y0, x1):
                            v += (1.0 - fz) * (1.0 - fy) * fx
                        if _at(crop, off, z0, y1, x0):
                            v += (1.0 - fz) * fy * (1.0 - fx)
                        if _at(crop, off, z0, y1, x1):
                            v += (1.0 - fz) * fy * fx
                        if _at(crop, off, z1, y0, x0):
                            v += fz * (1.0 - fy) * (1.0 - fx)
                        if _at(crop, off, z1, y0, x1):
                            v += fz * (1.0 - fy) * fx
                        if _at(crop, off, z1, y1, x0):
                            v += fz * fy * (1.0 - fx)
                        if _at(crop, off, z1, y1, x1):
                            v += fz * fy * fx
                        row_sum = np.float32(row_sum + np.float32(v))
                    acc = np.float32(acc + row_sum)
            out[tz, ty, tx] = np.float32(acc / kkk)


@numba.njit(cache=True, parallel=True)
def _block_fraction(  # pragma: no cover - compiled
    mask: NDArray[np.uint8],
    start: NDArray[np.int64],
    s: NDArray[np.int64],
    lo: NDArray[np.int64],
    hi: NDArray[np.int64],
    out: NDArray[np.float32],
) -> None:
    """``out[t]`` = fraction of the ``s`` block of mask voxels making target voxel ``t``.

    Target voxel ``t`` covers mask voxels ``start + t * s`` to ``start + (t + 1) * s``
    (end exclusive); mask voxels outside the mask grid count as 0.
    """
    nz, ny, nx = mask.shape
    inv = 1.0 / (s[0] * s[1] * s[2])
    nrows = (hi[0] - lo[0]) * (hi[1] - lo[1])
    wy = hi[1] - lo[1]
    for row in numba.prange(nrows):
        tz = lo[0] + row // wy
        ty = lo[1] + row % wy
        for tx in range(lo[2], hi[2]):
            n = 0
            for z in range(start[0] + tz * s[0], start[0] + (tz + 1) * s[0]):
                if z < 0 or z >= nz:
                    continue
                for y in range(start[1] + ty * s[1], start[1] + (ty + 1) * s[1]):
                    if y < 0 or y >= ny:
                        continue
                    for x in range(start[2] + tx * s[2], start[2] + (tx + 1) * s[2]):
                        if 0 <= x < nx and mask[z, y, x]:
                            n += 1
            out[tz, ty, tx] = np.float32(n * inv)


def _integer_blocks(geometry: Geometry, target: Geometry) -> NDArray[np.int64] | None:
    """Start index (``[z, y, x]``) of mask voxels in target voxel 0 and block size, if aligned.

    The target grid must have the mask grid's direction, spacings that are
    integer multiples of the mask's and voxel edges on the mask's voxel edges.
    Returns ``[[start_z, start_y, start_x], [s_z, s_y, s_x]]`` or None.
    """
    if not np.allclose(geometry.direction_matrix, target.direction_matrix, atol=1e-9):
        return None
    ratio = (
        np.asarray(target.spacing_mm, float)[::-1] / np.asarray(geometry.spacing_mm, float)[::-1]
    )
    s = np.rint(ratio)
    if np.any(s < 1) or not np.allclose(ratio, s, rtol=0, atol=1e-6):
        return None
    m = np.linalg.inv(_zyx_affine(geometry)) @ _zyx_affine(target)
    # mask index of target voxel 0's lower corner (its centre minus half a target voxel)
    corner = m[:3, 3] - 0.5 * s + 0.5
    start = np.rint(corner)
    if not np.allclose(corner, start, rtol=0, atol=1e-6):
        return None
    return np.array([start, s], dtype=np.int64)


def mask_fraction_on_grid(
    mask: NDArray[np.bool_], geometry: Geometry, target: Geometry, oversample: int = 3
) -> NDArray[np.float32]:
    """Fraction of each ``target`` voxel covered by ``mask`` (same frame of reference).

    Parameters
    ----------
    mask
        Boolean ``[z, y, x]`` mask on ``geometry``.
    geometry, target
        The mask's grid and the dose grid (LPS mm).
    oversample
        ``k``: sub-samples per axis of each target voxel when the grids are not
        integer multiples of each other.

    Returns
    -------
    numpy.ndarray
        float32 on ``target``: 0 outside the mask's bounding box; the exact
        covered fraction where the grids coincide or the target voxel is a whole
        block of mask voxels; otherwise the mean of the trilinearly interpolated
        0/1 mask at ``k^3`` points evenly spread inside the voxel (the same
        numbers as a dense resample onto the ``k``-times finer grid, averaged).
    """
    mask = np.asarray(mask)
    if geometry.same_grid(target):
        return np.asarray(mask, dtype=np.float32)
    out = np.zeros(target.shape_zyx, dtype=np.float32)
    box = mask_bounding_box(mask)
    if box is None:
        return out
    blocks = _integer_blocks(geometry, target)
    # the mask's bounding box (grown by one voxel for interpolation) in target indices
    corners = np.array(
        [[z, y, x, 1.0] for z in (box[0][0] - 1, box[0][1]) for y in (box[1][0] - 1, box[1][1])
         for x in (box[2][0] - 1, box[2][1])]
    )  # fmt: skip
    to_target = np.linalg.inv(_zyx_affine(target)) @ _zyx_affine(geometry)
    t_idx = corners @ to_target.T
    shape = np.asarray(target.shape_zyx, dtype=np.int64)
    lo = np.clip(np.floor(t_idx[:, :3].min(axis=0)).astype(np.int64) - 1, 0, shape)
    hi = np.clip(np.ceil(t_idx[:, :3].max(axis=0)).astype(np.int64) + 2, 0, shape)
    if np.any(hi <= lo):
        return out
    if blocks is not None:
        _block_fraction(
            np.ascontiguousarray(mask, dtype=np.uint8), blocks[0], blocks[1], lo, hi, out
        )
        return out
    k = int(oversample)
    if k < 1:
        raise ValueError("oversample must be >= 1")
    nz, ny, nx = target.shape_zyx
    spacing = np.asarray(target.spacing_mm, dtype=float)  # (x, y, z)
    direction = target.direction_matrix
    fine_spacing = spacing / k
    origin = np.asarray(target.origin_mm, dtype=float) + direction @ (
        fine_spacing / 2.0 - spacing / 2.0
    )
    fine = Geometry(
        (int(nz) * k, int(ny) * k, int(nx) * k),
        (float(fine_spacing[0]), float(fine_spacing[1]), float(fine_spacing[2])),
        (float(origin[0]), float(origin[1]), float(origin[2])),
        target.direction,
        target.frame_of_reference_uid,
    )
    m = np.ascontiguousarray(np.linalg.inv(_zyx_affine(geometry)) @ _zyx_affine(fine))
    off = np.array([b[0] for b in box], dtype=np.int64)
    crop = np.ascontiguousarray(mask[tuple(slice(b0, b1) for b0, b1 in box)], dtype=np.uint8)
    full = np.asarray(mask.shape, dtype=np.int64)
    _subsampled_fraction(crop, off, full, m, k, lo, hi, out)
    return out
