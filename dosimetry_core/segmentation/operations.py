"""Contouring operations on boolean masks.

Every function is pure: it takes masks indexed ``[z, y, x]`` (= ``[k, j, i]``)
together with the :class:`~dosimetry_core.model.Geometry` of their grid and
returns a **new** ``bool`` array of the same shape.  Lengths are in mm, volumes
in mL (see :mod:`dosimetry_core.model.units`).

Masks on different grids are never combined here: the caller first resamples
one of them with ``dosimetry_core.imaging.resample.resample(..., order=0)``.

Planes
------
``plane`` names an array axis: ``"axial"`` = constant ``k`` (array axis 0),
``"coronal"`` = constant ``j`` (axis 1), ``"sagittal"`` = constant ``i``
(axis 2).  For the usual axial CT/SPECT grid (identity direction) these are
the anatomical planes.

Margins
-------
Grow/shrink use the Euclidean distance transform with the voxel spacing
(``scipy.ndimage.distance_transform_edt(..., sampling=spacing)``), so a margin
in mm is the same in every direction also for anisotropic voxels.  A voxel is
added by a grow when its centre lies within a distance ``t`` of the centre of
a mask voxel; a shrink removes every mask voxel whose centre lies within ``t``
of the centre of a background voxel.  ``t`` is the margin corrected for the
voxel lattice (:func:`effective_radius_mm`) so that the volume added or removed
matches a Euclidean margin on average.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.model import Geometry, Volume

Plane = Literal["axial", "coronal", "sagittal"]
BoolArray = NDArray[np.bool_]
MaskLike = NDArray[Any] | Volume

_PLANE_AXIS: dict[str, int] = {"axial": 0, "coronal": 1, "sagittal": 2}


# ----------------------------------------------------------------- helpers
def _plane_axis(plane: str) -> int:
    try:
        return _PLANE_AXIS[plane]
    except KeyError:
        raise InvalidInputError(
            f"unknown plane {plane!r}; use 'axial', 'coronal' or 'sagittal'"
        ) from None


def _spacing_zyx(geometry: Geometry) -> tuple[float, float, float]:
    sx, sy, sz = geometry.spacing_mm
    return (sz, sy, sx)


def _as_mask(mask: ArrayLike, geometry: Geometry | None = None) -> BoolArray:
    arr = np.asarray(mask)
    if arr.ndim != 3:
        raise InvalidInputError(f"a mask must be 3D [z, y, x], got {arr.ndim}D")
    if geometry is not None and tuple(arr.shape) != tuple(geometry.shape_zyx):
        raise InvalidInputError(
            f"mask shape {arr.shape} does not match its grid {geometry.shape_zyx}"
        )
    return arr.astype(bool, copy=False)


def _structure(connectivity: int) -> NDArray[np.bool_]:
    rank = {6: 1, 18: 2, 26: 3}.get(connectivity)
    if rank is None:
        raise InvalidInputError(f"connectivity must be 6, 18 or 26, got {connectivity}")
    return ndimage.generate_binary_structure(3, rank)


def _seed_index(
    geometry: Geometry,
    seed_index: Sequence[int] | None,
    seed_world_mm: ArrayLike | None,
) -> tuple[int, int, int]:
    """Voxel index ``(k, j, i)`` of a seed given as index or LPS point."""
    if (seed_index is None) == (seed_world_mm is None):
        raise InvalidInputError("give the seed either as an index (k, j, i) or as an LPS point")
    if seed_index is not None:
        idx = tuple(int(v) for v in seed_index)
        if len(idx) != 3:
            raise InvalidInputError(f"a seed index needs 3 values (k, j, i), got {len(idx)}")
    else:
        pt = np.asarray(seed_world_mm, dtype=float).reshape(-1)
        if pt.size != 3:
            raise InvalidInputError(f"a seed point needs 3 LPS coordinates, got {pt.size}")
        f = np.rint(geometry.world_to_index(pt))
        idx = (int(f[0]), int(f[1]), int(f[2]))
    if not all(0 <= v < n for v, n in zip(idx, geometry.shape_zyx, strict=True)):
        raise InvalidInputError(f"seed {idx} (k, j, i) lies outside the image {geometry.shape_zyx}")
    return (idx[0], idx[1], idx[2])


# --------------------------------------------------------------- thresholds
def threshold_absolute(volume: Volume, lower: float, upper: float | None = None) -> BoolArray:
    """Voxels with ``lower <= value <= upper`` (in the volume's units, e.g. Bq/mL or HU).

    Parameters
    ----------
    volume
        SPECT/PET (Bq/mL) or CT (HU) volume.
    lower
        Inclusive lower limit.
    upper
        Inclusive upper limit; ``None`` for no upper limit.

    Returns
    -------
    numpy.ndarray
        New boolean mask ``[z, y, x]``; NaN voxels are never included.
    """
    if upper is not None and upper < lower:
        raise InvalidInputError(f"upper threshold {upper} is below the lower threshold {lower}")
    a = volume.array
    with np.errstate(invalid="ignore"):
        out = a >= lower
        if upper is not None:
            out &= a <= upper
    return np.asarray(out, dtype=bool)


def threshold_relative(
    volume: Volume, percent_of_max: float, within: ArrayLike | None = None
) -> BoolArray:
    """Voxels at or above ``percent_of_max`` % of the maximum inside ``within``.

    Parameters
    ----------
    volume
        Usually an activity-concentration image (Bq/mL).
    percent_of_max
        Threshold in percent of the maximum (0 < p <= 100), e.g. 40 or 50.
    within
        Optional boolean mask restricting both the search for the maximum and
        the result (e.g. a box drawn around a lesion).  ``None``: whole image.

    Returns
    -------
    numpy.ndarray
        New boolean mask ``[z, y, x]``.
    """
    if not 0 < percent_of_max <= 100:
        raise InvalidInputError(f"percent of maximum must be in (0, 100], got {percent_of_max}")
    a = volume.array
    region = np.ones(a.shape, dtype=bool) if within is None else _as_mask(within, volume.geometry)
    region = region & np.isfinite(a)
    if not region.any():
        raise InvalidInputError("the region for the relative threshold is empty")
    vmax = float(np.max(a[region]))
    if vmax <= 0:
        raise InvalidInputError(
            f"the maximum in the region is {vmax:g}; a relative threshold needs a positive maximum"
        )
    with np.errstate(invalid="ignore"):
        out = (a >= vmax * percent_of_max / 100.0) & region
    return np.asarray(out, dtype=bool)


# ------------------------------------------------------------ region growing
def region_grow(
    volume: Volume,
    *,
    seed_index: Sequence[int] | None = None,
    seed_world_mm: ArrayLike | None = None,
    lower: float | None = None,
    upper: float | None = None,
    tolerance_percent: float | None = None,
    connectivity: int = 6,
    within: ArrayLike | None = None,
) -> BoolArray:
    """Connected region around a seed whose values lie in an interval.

    The interval is either ``[lower, upper]`` (either may be ``None`` = open) or,
    with ``tolerance_percent``, ``seed value +- tolerance_percent %`` of the seed
    value.

    Parameters
    ----------
    volume
        Image to grow in (Bq/mL, HU, ...).
    seed_index, seed_world_mm
        The seed, exactly one of: voxel index ``(k, j, i)`` or an LPS point (mm,
        taken at the nearest voxel centre).
    lower, upper
        Inclusive value limits.
    tolerance_percent
        Alternative to ``lower``/``upper``: relative tolerance around the seed value.
    connectivity
        6 (faces), 18 (faces and edges) or 26 (faces, edges and corners).
    within
        Optional mask the region may not leave.

    Returns
    -------
    numpy.ndarray
        New boolean mask of the connected component containing the seed.
    """
    geom = volume.geometry
    seed = _seed_index(geom, seed_index, seed_world_mm)
    a = volume.array
    seed_value = float(a[seed])
    if tolerance_percent is not None:
        if lower is not None or upper is not None:
            raise InvalidInputError("give either lower/upper or tolerance_percent, not both")
        if tolerance_percent < 0:
            raise InvalidInputError(f"tolerance must be >= 0 %, got {tolerance_percent}")
        delta = abs(seed_value) * tolerance_percent / 100.0
        lower, upper = seed_value - delta, seed_value + delta
    elif lower is None and upper is None:
        raise InvalidInputError("region growing needs lower/upper limits or a tolerance")
    with np.errstate(invalid="ignore"):
        candidate = np.isfinite(a)
        if lower is not None:
            candidate &= a >= lower
        if upper is not None:
            candidate &= a <= upper
    if within is not None:
        candidate &= _as_mask(within, geom)
    if not candidate[seed]:
        raise InvalidInputError(
            f"the seed value {seed_value:g} is outside the interval [{lower}, {upper}]"
            + (" or outside the allowed region" if within is not None else "")
        )
    labels, _ = ndimage.label(candidate, structure=_structure(connectivity))
    return np.asarray(labels == labels[seed], dtype=bool)


# ------------------------------------------------------- connected components
def _labels(mask: BoolArray, connectivity: int) -> tuple[NDArray[np.int32], int]:
    labels, n = ndimage.label(mask, structure=_structure(connectivity))
    return labels, int(n)


def keep_largest_component(mask: ArrayLike, connectivity: int = 6) -> BoolArray:
    """Only the largest connected component (by voxel count); empty stays empty."""
    m = _as_mask(mask)
    labels, n = _labels(m, connectivity)
    if n == 0:
        return np.zeros(m.shape, dtype=bool)
    counts = np.bincount(labels.ravel())
    counts[0] = 0
    return np.asarray(labels == int(np.argmax(counts)), dtype=bool)


def keep_component_containing(
    mask: ArrayLike,
    geometry: Geometry,
    *,
    seed_index: Sequence[int] | None = None,
    seed_world_mm: ArrayLike | None = None,
    connectivity: int = 6,
) -> BoolArray:
    """The connected component that contains the seed (index ``(k, j, i)`` or LPS point)."""
    m = _as_mask(mask, geometry)
    seed = _seed_index(geometry, seed_index, seed_world_mm)
    if not m[seed]:
        raise InvalidInputError(f"the seed {seed} (k, j, i) is not inside the mask")
    labels, _ = _labels(m, connectivity)
    return np.asarray(labels == labels[seed], dtype=bool)


def remove_small_components(
    mask: ArrayLike, geometry: Geometry, min_volume_ml: float, connectivity: int = 6
) -> BoolArray:
    """Remove islands whose volume is below ``min_volume_ml`` (mL)."""
    if min_volume_ml < 0:
        raise InvalidInputError(f"minimum volume must be >= 0 mL, got {min_volume_ml}")
    m = _as_mask(mask, geometry)
    labels, n = _labels(m, connectivity)
    if n == 0:
        return np.zeros(m.shape, dtype=bool)
    volumes_ml = np.bincount(labels.ravel()) * geometry.voxel_volume_ml
    keep = volumes_ml >= min_volume_ml
    keep[0] = False
    return np.asarray(keep[labels], dtype=bool)


def fill_holes(mask: ArrayLike, plane: Plane | None = None) -> BoolArray:
    """Fill enclosed cavities.

    Parameters
    ----------
    mask
        Boolean mask ``[z, y, x]``.
    plane
        ``None``: fill cavities enclosed in 3D.  ``"axial"``, ``"coronal"`` or
        ``"sagittal"``: fill holes slice by slice in that plane (a hole open
        only through neighbouring slices is filled too).
    """
    m = _as_mask(mask)
    if plane is None:
        return np.asarray(ndimage.binary_fill_holes(m), dtype=bool)
    axis = _plane_axis(plane)
    out = m.copy()
    for s in range(m.shape[axis]):
        sl = [slice(None)] * 3
        sl[axis] = slice(s, s + 1)
        view = m[tuple(sl)].squeeze(axis)
        if view.any():
            filled = ndimage.binary_fill_holes(view)
            out[tuple(sl)] = np.expand_dims(filled, axis)
    return out


# ------------------------------------------------------------- morphology mm
def _fibonacci_directions(n: int = 500) -> NDArray[np.float64]:
    i = np.arange(n) + 0.5
    polar = np.arccos(1.0 - 2.0 * i / n)
    azimuth = np.pi * (1.0 + 5.0**0.5) * i
    return np.stack(
        [np.cos(azimuth) * np.sin(polar), np.sin(azimuth) * np.sin(polar), np.cos(polar)], axis=1
    )


_DIRECTIONS = _fibonacci_directions()


@lru_cache(maxsize=64)
def effective_radius_mm(spacing_zyx: tuple[float, float, float], margin_mm: float) -> float:
    """Distance threshold (mm) between voxel centres that realises a margin of ``margin_mm``.

    The structuring element of a grow/shrink is the set of lattice offsets
    within a radius ``t``.  On a coarse (or anisotropic) lattice its convex hull
    is smaller than the Euclidean ball of radius ``t``, so thresholding at
    ``t = margin`` grows too little (e.g. -11 % volume for a 5 mm margin on
    2 x 2 x 5 mm voxels).  By Steiner's formula the first-order volume added to
    a shape is its surface times the *mean support* (mean half-width) of the
    structuring element, so ``t`` is chosen among the lattice distances such
    that that mean half-width is closest to ``margin_mm``.  Margins smaller
    than the voxel size are therefore rounded to what the grid can represent.
    """
    if margin_mm <= 0:
        return 0.0
    sp = np.asarray(spacing_zyx, dtype=float)
    rmax = margin_mm + float(sp.max())
    n = np.floor(rmax / sp).astype(int)
    if float(np.prod(2.0 * n + 1.0)) > 4e6:
        # Lattice very fine compared with the margin: the correction is
        # negligible (< 0.5 %) and the offset table would be large.
        return float(margin_mm)
    axes = [np.arange(-k, k + 1) * h for k, h in zip(n, sp, strict=True)]
    offsets = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    dist = np.linalg.norm(offsets, axis=1)
    keep = dist <= rmax + 1e-9
    offsets, dist = offsets[keep], dist[keep]
    candidates = np.unique(np.round(dist, 9))
    diagonal = float(np.linalg.norm(sp))

    def mean_support(t: float) -> float:
        # Only points within one voxel diagonal of the sphere of radius t can
        # attain the maximum in any direction (exact restriction).
        pts = offsets[(dist <= t + 1e-9) & (dist >= t - diagonal)]
        return float(np.mean(np.max(pts @ _DIRECTIONS.T, axis=0)))

    lo, hi = 0, len(candidates) - 1
    while lo < hi:  # first candidate whose mean support reaches the margin
        mid = (lo + hi) // 2
        if mean_support(float(candidates[mid])) < margin_mm:
            lo = mid + 1
        else:
            hi = mid
    options = [i for i in (lo - 1, lo) if i >= 0]
    best = min(options, key=lambda i: abs(mean_support(float(candidates[i])) - margin_mm))
    return float(candidates[best])


def _bbox(mask: BoolArray, pad: Sequence[int]) -> tuple[slice, ...]:
    """Bounding box of a non-empty mask, padded per axis and clipped to the array."""
    out = []
    for ax in range(3):
        other = tuple(a for a in range(3) if a != ax)
        nz = np.flatnonzero(mask.any(axis=other))
        out.append(
            slice(max(int(nz[0]) - pad[ax], 0), min(int(nz[-1]) + 1 + pad[ax], mask.shape[ax]))
        )
    return tuple(out)


def grow(mask: ArrayLike, geometry: Geometry, margin_mm: float) -> BoolArray:
    """Expand the mask by ``margin_mm`` in every direction (Euclidean, anisotropy-aware).

    A background voxel is added when its centre lies within
    :func:`effective_radius_mm` of the centre of a mask voxel (the Euclidean
    distance transform with the voxel spacing); the effective radius makes the
    added volume match a Euclidean margin of ``margin_mm`` on average.
    """
    if margin_mm < 0:
        raise InvalidInputError(f"a grow margin must be >= 0 mm, got {margin_mm}; use shrink")
    m = _as_mask(mask, geometry)
    if margin_mm == 0 or not m.any() or m.all():
        return m.copy()
    spacing = _spacing_zyx(geometry)
    t = effective_radius_mm(spacing, float(margin_mm))
    pad = [int(np.ceil(t / h)) + 1 for h in spacing]
    box = _bbox(m, pad)
    d_out = ndimage.distance_transform_edt(~m[box], sampling=spacing)
    out = m.copy()
    out[box] |= d_out <= t + 1e-6
    return out


def shrink(mask: ArrayLike, geometry: Geometry, margin_mm: float) -> BoolArray:
    """Erode the mask by ``margin_mm`` in every direction (Euclidean, anisotropy-aware).

    A mask voxel is removed when a background voxel centre lies within
    :func:`effective_radius_mm` of its centre (the dual of :func:`grow`).  The
    image border does not count as background: a mask touching the edge of
    the field of view is not eroded from that side.
    """
    if margin_mm < 0:
        raise InvalidInputError(f"a shrink margin must be >= 0 mm, got {margin_mm}; use grow")
    m = _as_mask(mask, geometry)
    if margin_mm == 0 or not m.any() or m.all():
        return m.copy()
    spacing = _spacing_zyx(geometry)
    t = effective_radius_mm(spacing, float(margin_mm))
    box = _bbox(m, (1, 1, 1))
    d_in = ndimage.distance_transform_edt(m[box], sampling=spacing)
    out = np.zeros(m.shape, dtype=bool)
    out[box] = d_in > t + 1e-6
    return out


def grow_or_shrink(mask: ArrayLike, geometry: Geometry, margin_mm: float) -> BoolArray:
    """Signed margin: positive grows, negative shrinks (mm)."""
    if margin_mm >= 0:
        return grow(mask, geometry, margin_mm)
    return shrink(mask, geometry, -margin_mm)


# ---------------------------------------------------------------- booleans
def _boolean_operands(masks: Sequence[MaskLike]) -> list[BoolArray]:
    if len(masks) < 2:
        raise InvalidInputError("a boolean operation needs at least two masks")
    geoms = [m.geometry for m in masks if isinstance(m, Volume)]
    for g in geoms[1:]:
        if not g.same_grid(geoms[0]):
            raise InvalidInputError(
                "the masks are on different voxel grids; resample one onto the other "
                "(resample(..., order=0)) before combining them"
            )
    arrays = [_as_mask(m.array if isinstance(m, Volume) else m) for m in masks]
    for a in arrays[1:]:
        if a.shape != arrays[0].shape:
            raise InvalidInputError(
                f"the masks have different shapes {arrays[0].shape} and {a.shape}; resample "
                "one onto the other's grid (resample(..., order=0)) before combining them"
            )
    return arrays


def union(*masks: MaskLike) -> BoolArray:
    """Voxels in any of the masks (arrays of equal shape or mask Volumes on one grid)."""
    arrays = _boolean_operands(masks)
    out = arrays[0].copy()
    for a in arrays[1:]:
        out |= a
    return out


def intersection(*masks: MaskLike) -> BoolArray:
    """Voxels in all of the masks (arrays of equal shape or mask Volumes on one grid)."""
    arrays = _boolean_operands(masks)
    out = arrays[0].copy()
    for a in arrays[1:]:
        out &= a
    return out


def subtract(a: MaskLike, *others: MaskLike) -> BoolArray:
    """Voxels of ``a`` that are in none of ``others``."""
    arrays = _boolean_operands([a, *others])
    out = arrays[0].copy()
    for b in arrays[1:]:
        out &= ~b
    return out


# ----------------------------------------------------------- interpolation
def _signed_distance_2d(sl: BoolArray, sampling: tuple[float, float]) -> NDArray[np.float64]:
    """Signed distance (mm) of a 2D slice: negative inside, positive outside.

    Zero crossing halfway between boundary voxel centres.  An empty slice is
    "just outside" everywhere (+ one pixel), so that interpolating towards it
    erodes the neighbouring shape progressively until it vanishes near the
    empty slice; a full slice is "just inside" everywhere.
    """
    if not sl.any():
        return np.full(sl.shape, float(min(sampling)))
    if sl.all():
        return np.full(sl.shape, -float(min(sampling)))
    d_out = ndimage.distance_transform_edt(~sl, sampling=sampling)
    d_in = ndimage.distance_transform_edt(sl, sampling=sampling)
    return np.asarray(d_out - d_in, dtype=np.float64)


def interpolate_slices(
    mask: ArrayLike,
    geometry: Geometry,
    plane: Plane = "axial",
    drawn_slices: Sequence[int] | None = None,
    method: Literal["linear", "cubic"] = "cubic",
) -> BoolArray:
    """Fill the slices between sparsely drawn slices (shape-based interpolation).

    Between two consecutive drawn slices the signed distance maps (mm, in-plane
    spacing) of both are interpolated linearly and the zero level is taken as
    the contour (Raya & Udupa, IEEE Trans Med Imaging 9:32-42, 1990; Herman,
    Zheng & Bucholtz, IEEE Comput Graph Appl 12(3):69-79, 1992).

    Parameters
    ----------
    mask
        Boolean mask ``[z, y, x]`` with some slices drawn.
    geometry
        Grid of the mask.
    plane
        Plane in which the slices were drawn.
    drawn_slices
        Indices of the drawn slices along the plane's axis; ``None``: every
        non-empty slice.  An explicitly listed empty slice closes the shape.
    method
        ``"linear"``: linear interpolation of the distance maps between the two
        neighbouring drawn slices (Raya & Udupa).  ``"cubic"``: cubic Hermite
        interpolation using the neighbouring drawn slices for the slopes, which
        follows curved (convex) outlines more closely.

    Returns
    -------
    numpy.ndarray
        New mask: the input plus the interpolated slices (nothing is removed).
    """
    if method not in ("linear", "cubic"):
        raise InvalidInputError(f"interpolation method must be 'linear' or 'cubic', got {method!r}")
    m = _as_mask(mask, geometry)
    axis = _plane_axis(plane)
    n = m.shape[axis]
    moved = np.moveaxis(m, axis, 0)
    if drawn_slices is None:
        drawn = [int(s) for s in np.flatnonzero(moved.reshape(n, -1).any(axis=1))]
    else:
        drawn = sorted({int(s) for s in drawn_slices})
        bad = [s for s in drawn if not 0 <= s < n]
        if bad:
            raise InvalidInputError(f"drawn slices {bad} are outside 0..{n - 1}")
    spacing = _spacing_zyx(geometry)
    in_plane = tuple(s for ax, s in enumerate(spacing) if ax != axis)
    sampling = (in_plane[0], in_plane[1])
    out = moved.copy()
    if len(drawn) < 2:
        return np.ascontiguousarray(np.moveaxis(out, 0, axis))
    sdf = {s: _signed_distance_2d(moved[s], sampling) for s in drawn}
    pos = np.asarray(drawn, dtype=float)
    tangents: list[NDArray[np.float64]] = []
    for n_i in range(len(drawn)):
        if method == "linear":
            break
        a, b = max(n_i - 1, 0), min(n_i + 1, len(drawn) - 1)
        tangents.append((sdf[drawn[b]] - sdf[drawn[a]]) / (pos[b] - pos[a]))
    for n_i, (s0, s1) in enumerate(zip(drawn[:-1], drawn[1:], strict=True)):
        if s1 - s0 < 2:
            continue
        d0, d1 = sdf[s0], sdf[s1]
        gap = float(s1 - s0)
        for s in range(s0 + 1, s1):
            t = (s - s0) / gap
            if method == "linear":
                value = (1.0 - t) * d0 + t * d1
            else:  # cubic Hermite with finite-difference tangents
                h00 = 2 * t**3 - 3 * t**2 + 1
                h10 = t**3 - 2 * t**2 + t
                h01 = -2 * t**3 + 3 * t**2
                h11 = t**3 - t**2
                value = (
                    h00 * d0 + h10 * gap * tangents[n_i] + h01 * d1 + h11 * gap * tangents[n_i + 1]
                )
            out[s] |= value < 0.0
    return np.ascontiguousarray(np.moveaxis(out, 0, axis))


# ------------------------------------------------------ brush and polygon
def _plane_coords_mm(
    geometry: Geometry, axis: int, world_mm: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Fractional index along the plane axis and in-plane coordinates (mm).

    In-plane coordinates are (first, second) remaining array axes times their
    spacing, i.e. millimetres in a Cartesian frame of the plane.
    """
    idx = np.atleast_2d(geometry.world_to_index(np.asarray(world_mm, dtype=float)))
    spacing = np.asarray(_spacing_zyx(geometry))
    others = [ax for ax in range(3) if ax != axis]
    return idx[:, axis], idx[:, others] * spacing[others]


def _slice_grid_mm(geometry: Geometry, axis: int) -> tuple[NDArray[Any], NDArray[Any]]:
    spacing = _spacing_zyx(geometry)
    others = [ax for ax in range(3) if ax != axis]
    n0, n1 = (geometry.shape_zyx[ax] for ax in others)
    u = np.arange(n0) * spacing[others[0]]
    v = np.arange(n1) * spacing[others[1]]
    return u, v


def _check_slice(geometry: Geometry, axis: int, slice_index: int) -> int:
    n = geometry.shape_zyx[axis]
    s = int(slice_index)
    if not 0 <= s < n:
        raise InvalidInputError(f"slice {slice_index} is outside 0..{n - 1}")
    return s


def _set_slice(mask: BoolArray, axis: int, s: int, region: BoolArray, erase: bool) -> BoolArray:
    out = mask.copy()
    view = np.moveaxis(out, axis, 0)  # a view on ``out``
    if erase:
        view[s] &= ~region
    else:
        view[s] |= region
    return out


def paint_disc(
    mask: ArrayLike,
    geometry: Geometry,
    plane: Plane,
    slice_index: int,
    center_world_mm: ArrayLike,
    radius_mm: float,
    erase: bool = False,
) -> BoolArray:
    """Brush (or eraser) stroke: a disc of ``radius_mm`` on one slice.

    Parameters
    ----------
    mask
        Boolean mask ``[z, y, x]``.
    geometry
        Grid of the mask.
    plane, slice_index
        The slice painted on.
    center_world_mm
        LPS centre of the disc (mm); its out-of-plane coordinate is ignored
        (the centre is projected onto the slice).
    radius_mm
        Disc radius in mm; voxels whose centre lies within it are set, using
        the in-plane pixel spacing (non-square pixels give the correct disc).
    erase
        ``True`` clears the disc instead of setting it.
    """
    if radius_mm <= 0:
        raise InvalidInputError(f"brush radius must be > 0 mm, got {radius_mm}")
    m = _as_mask(mask, geometry)
    axis = _plane_axis(plane)
    s = _check_slice(geometry, axis, slice_index)
    _, c = _plane_coords_mm(geometry, axis, center_world_mm)
    u, v = _slice_grid_mm(geometry, axis)
    region = (u[:, None] - c[0, 0]) ** 2 + (v[None, :] - c[0, 1]) ** 2 <= radius_mm**2
    return _set_slice(m, axis, s, region, erase)


def _orient(
    ax: NDArray[Any], ay: NDArray[Any], bx: NDArray[Any], by: NDArray[Any], cx: Any, cy: Any
) -> NDArray[Any]:
    return (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)


def _check_edge_pairs(
    pts: NDArray[np.float64],
    i: NDArray[np.intp],
    j: NDArray[np.intp],
    tol: float,
    eps: float,
) -> None:
    """Raise when any edge pair (i, j), i < j, of the closed polygon intersects."""
    n = pts.shape[0]
    a = pts
    b = np.roll(pts, -1, axis=0)
    adjacent = (j == i + 1) | ((i == 0) & (j == n - 1))
    # Adjacent edges share a vertex; they only conflict when they fold back on
    # each other (collinear, pointing in opposite directions).
    ai, bi, aj, bj = a[i], b[i], a[j], b[j]
    o1 = _orient(ai[:, 0], ai[:, 1], bi[:, 0], bi[:, 1], aj[:, 0], aj[:, 1])
    o2 = _orient(ai[:, 0], ai[:, 1], bi[:, 0], bi[:, 1], bj[:, 0], bj[:, 1])
    o3 = _orient(aj[:, 0], aj[:, 1], bj[:, 0], bj[:, 1], ai[:, 0], ai[:, 1])
    o4 = _orient(aj[:, 0], aj[:, 1], bj[:, 0], bj[:, 1], bi[:, 0], bi[:, 1])
    s1, s2, s3, s4 = (np.where(np.abs(o) <= eps, 0, np.sign(o)) for o in (o1, o2, o3, o4))
    proper = (s1 * s2 < 0) & (s3 * s4 < 0)

    def on_segment(p: NDArray[Any], q0: NDArray[Any], q1: NDArray[Any]) -> NDArray[Any]:
        lo = np.minimum(q0, q1) - tol
        hi = np.maximum(q0, q1) + tol
        return np.all((p >= lo) & (p <= hi), axis=1)

    touching = (
        ((s1 == 0) & on_segment(aj, ai, bi))
        | ((s2 == 0) & on_segment(bj, ai, bi))
        | ((s3 == 0) & on_segment(ai, aj, bj))
        | ((s4 == 0) & on_segment(bi, aj, bj))
    )
    crossing = (proper | touching) & ~adjacent
    # Fold-back of adjacent edges: collinear and pointing in opposite directions.
    di, dj = bi - ai, bj - aj
    fold = adjacent & (s1 == 0) & (s2 == 0) & (np.sum(di * dj, axis=1) < 0)
    bad = crossing | fold
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise InvalidInputError(
            f"the polygon intersects itself (edges {int(i[k])} and {int(j[k])}); "
            "draw it without crossing lines"
        )


def _validate_polygon(pts: NDArray[np.float64], tol: float) -> NDArray[np.float64]:
    """Drop repeated/closing points; refuse degenerate and self-intersecting polygons."""
    if pts.shape[0] >= 2:
        keep = np.ones(pts.shape[0], dtype=bool)
        keep[1:] = np.any(np.abs(np.diff(pts, axis=0)) > tol, axis=1)
        pts = pts[keep]
    if pts.shape[0] >= 2 and np.all(np.abs(pts[0] - pts[-1]) <= tol):
        pts = pts[:-1]
    if pts.shape[0] < 3:
        raise InvalidInputError(f"a polygon needs at least 3 distinct points, got {pts.shape[0]}")
    extent = float(np.max(np.ptp(pts, axis=0)))
    far = pts[int(np.argmax(np.sum((pts - pts[0]) ** 2, axis=1)))] - pts[0]
    rel = pts - pts[0]
    cross = far[0] * rel[:, 1] - far[1] * rel[:, 0]
    if float(np.max(np.abs(cross))) <= tol * max(extent, tol):
        raise InvalidInputError("the polygon has zero area (all points on one line)")
    n = pts.shape[0]
    eps = tol * max(extent, tol)
    block = max(1, 1_000_000 // n)  # bounded memory for long freehand polygons
    for i0 in range(0, n, block):
        ii, jj = np.meshgrid(np.arange(i0, min(i0 + block, n)), np.arange(n), indexing="ij")
        upper = jj > ii
        _check_edge_pairs(pts, ii[upper], jj[upper], tol, eps)
    x, y = pts[:, 0], pts[:, 1]
    area = 0.5 * abs(float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y)))
    if area <= tol * max(extent, tol):
        raise InvalidInputError("the polygon has zero area")
    return pts


def fill_polygon(
    mask: ArrayLike,
    geometry: Geometry,
    plane: Plane,
    slice_index: int,
    polygon_world_mm: ArrayLike,
    erase: bool = False,
) -> BoolArray:
    """Rasterise a closed polygon given in LPS (mm) on one slice.

    Voxels whose centre lies inside the polygon (even-odd rule) are set (or
    cleared with ``erase=True``).

    Parameters
    ----------
    mask
        Boolean mask ``[z, y, x]``.
    geometry
        Grid of the mask.
    plane, slice_index
        The slice drawn on.
    polygon_world_mm
        Vertices, shape ``(N, 3)``, LPS mm; the polygon is closed implicitly
        (a repeated first point is accepted).  The points must lie on the slice
        (within half a slice spacing).
    erase
        ``True`` clears the inside instead of setting it.

    Raises
    ------
    InvalidInputError
        Fewer than 3 distinct points, zero area, self-intersection, points off
        the slice.
    """
    m = _as_mask(mask, geometry)
    axis = _plane_axis(plane)
    s = _check_slice(geometry, axis, slice_index)
    pts3 = np.asarray(polygon_world_mm, dtype=float)
    if pts3.ndim != 2 or pts3.shape[1] != 3:
        raise InvalidInputError(f"polygon points must have shape (N, 3), got {pts3.shape}")
    if pts3.shape[0] == 0:
        raise InvalidInputError("the polygon is empty")
    if not np.all(np.isfinite(pts3)):
        raise InvalidInputError("the polygon has non-finite coordinates")
    off, pts = _plane_coords_mm(geometry, axis, pts3)
    if np.any(np.abs(off - s) > 0.5 + 1e-6):
        raise InvalidInputError(
            f"polygon points lie off {plane} slice {s} (by up to "
            f"{float(np.max(np.abs(off - s))):.2f} slices)"
        )
    tol = 1e-6 * max(1.0, float(np.max(np.abs(pts))))
    pts = _validate_polygon(pts, tol)
    u, v = _slice_grid_mm(geometry, axis)
    # Restrict the work to the polygon's bounding box.
    u0, u1 = np.searchsorted(u, pts[:, 0].min()), np.searchsorted(u, pts[:, 0].max(), "right")
    v0, v1 = np.searchsorted(v, pts[:, 1].min()), np.searchsorted(v, pts[:, 1].max(), "right")
    region = np.zeros((u.size, v.size), dtype=bool)
    if u1 > u0 and v1 > v0:
        pu = u[u0:u1][:, None]
        pv = v[v0:v1][None, :]
        inside = np.zeros((u1 - u0, v1 - v0), dtype=bool)
        xa, ya = pts[:, 0], pts[:, 1]
        xb, yb = np.roll(xa, -1), np.roll(ya, -1)
        for k in range(pts.shape[0]):
            # Even-odd rule: count edges crossed by a ray towards +v.
            if xa[k] == xb[k]:
                continue
            straddle = (xa[k] > pu) != (xb[k] > pu)
            v_cross = ya[k] + (pu - xa[k]) * (yb[k] - ya[k]) / (xb[k] - xa[k])
            inside ^= straddle & (pv < v_cross)
        region[u0:u1, v0:v1] = inside
    return _set_slice(m, axis, s, region, erase)
