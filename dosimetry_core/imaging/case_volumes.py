"""A case's stored volumes brought onto the reference grid through its stored registrations.

What the kinetics, dose and review stages read from a registered case: a
VOI's mask, a stored displacement field, and a time point's SPECT resampled
through the time point's registration onto the reference CT grid.  These are
imaging operations on stored data, so they live here, below every stage that
uses them (ARCHITECTURE rule 1: ``kinetics`` does not import ``pipeline``).
:mod:`dosimetry_core.pipeline.registration` computes and stores registrations.

Registration convention (see :class:`~dosimetry_core.model.case.Registration`):
a point ``p_ref`` of the reference frame maps to ``p_tp = M (p_ref + D(p_ref))``
in the time point's frame, with ``M = matrix_ref_to_tp`` (4x4, LPS mm) and
``D`` the optional displacement field (mm) on the reference CT grid.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from dosimetry_core.errors import DosimetryError, InvalidInputError
from dosimetry_core.imaging.registration import warp_volume
from dosimetry_core.imaging.resample import resample
from dosimetry_core.model import Geometry, ImageUnits, Volume
from dosimetry_core.model.case import VOI, Case, TimePoint
from dosimetry_core.model.volume import VolumeRef
from dosimetry_core.store.repository import CaseRepository

__all__ = [
    "displacement_on_grid",
    "find_time_point",
    "load_displacement",
    "load_mask",
    "spect_on_reference",
    "store_displacement",
]


def find_time_point(case: Case, key: str | int) -> TimePoint:
    """Time point by id, label (``TP2``) or 1-based index; a clear error otherwise.

    Raises
    ------
    InvalidInputError
        No such time point (the message lists the case's time points).
    """
    try:
        return case.time_point(str(key))
    except KeyError as exc:
        labels = ", ".join(t.label or t.time_point_id for t in case.sorted_time_points())
        raise InvalidInputError(
            f"case {case.case_id} has no time point {key!r} (time points: {labels})"
        ) from exc


def _tp_name(tp: TimePoint) -> str:
    return tp.label or tp.time_point_id


def load_mask(store: CaseRepository, voi: VOI) -> tuple[NDArray[np.bool_], Geometry]:
    """The VOI's stored mask as booleans ``[z, y, x]`` and the grid it is drawn on."""
    vol = store.load_volume(voi.mask)
    return vol.array.astype(bool), vol.geometry


def store_displacement(
    store: CaseRepository, field_mm: NDArray[Any], geometry: Geometry, description: str = ""
) -> VolumeRef:
    """Store a displacement field ``[z, y, x, 3]`` (mm) and return its reference.

    The store's integrity check compares a blob's shape with
    ``ref.geometry.shape_zyx``, so the field is stored component-major as a
    ``[3 * z, y, x]`` float32 array (x, y, z components one after the other);
    the reference's geometry is the reference CT grid with ``3 * z`` slices and
    ``meta`` records ``components=3``, ``units='mm'``, the layout and the true
    grid.  Use :func:`load_displacement` to read it back.

    Raises
    ------
    InvalidInputError
        The field's shape is not the grid's shape plus 3 components.
    """
    arr = np.asarray(field_mm, dtype=np.float32)
    if arr.shape != (*geometry.shape_zyx, 3):
        raise InvalidInputError(
            f"displacement field shape {arr.shape} does not match {geometry.shape_zyx} + 3"
        )
    nz, ny, nx = geometry.shape_zyx
    stacked = np.ascontiguousarray(np.moveaxis(arr, -1, 0).reshape(3 * nz, ny, nx))
    stacked_geom = Geometry(
        (3 * nz, ny, nx),
        geometry.spacing_mm,
        geometry.origin_mm,
        geometry.direction,
        geometry.frame_of_reference_uid,
    )
    return store.put_volume(
        Volume(stacked, stacked_geom, ImageUnits.UNKNOWN, description),
        description,
        meta={
            "components": 3,
            "units": "mm",
            "layout": "component-major [3*z, y, x]",
            "grid": geometry.to_dict(),
            "applied": "p_tp = M (p_ref + D(p_ref))",
        },
    )


def load_displacement(
    store: CaseRepository, ref: VolumeRef
) -> tuple[NDArray[np.float32], Geometry]:
    """Read a displacement field stored by :func:`store_displacement`.

    Returns
    -------
    field, geometry
        ``[z, y, x, 3]`` float32 (mm, LPS x, y, z components) and its grid
        (the reference CT grid).

    Raises
    ------
    DosimetryError
        ``ref`` is not a stored displacement field, or its array has the wrong shape.
    """
    if int(ref.meta.get("components", 0)) != 3 or "grid" not in ref.meta:
        raise DosimetryError(f"volume {ref.key[:12]} is not a stored displacement field")
    geometry = Geometry.from_dict(ref.meta["grid"])
    arr = store.load_volume(ref).array
    nz, ny, nx = geometry.shape_zyx
    if arr.shape != (3 * nz, ny, nx):
        raise DosimetryError(
            f"displacement field {ref.key[:12]} has shape {arr.shape}, expected {(3 * nz, ny, nx)}"
        )
    field_mm = np.moveaxis(arr.reshape(3, nz, ny, nx), 0, -1).astype(np.float32)
    return field_mm, geometry


def displacement_on_grid(
    disp: NDArray[Any], grid: Geometry, target: Geometry
) -> NDArray[np.float32]:
    """A displacement field ``[z, y, x, 3]`` (mm) on ``grid`` resampled onto ``target`` (linear)."""
    comps = [
        resample(
            Volume(np.ascontiguousarray(disp[..., c], dtype=np.float32), grid, ImageUnits.UNKNOWN),
            target,
            order=1,
            fill_value=0.0,
        ).array
        for c in range(3)
    ]
    return np.stack(comps, axis=-1).astype(np.float32)


def spect_on_reference(
    store: CaseRepository,
    case: Case,
    time_point: str | int | TimePoint,
    *,
    target: Geometry | None = None,
) -> Volume:
    """The time point's SPECT resampled through its registration onto the reference CT grid.

    ``target`` chooses another output grid in the reference frame (e.g. the
    reference time point's SPECT grid for voxel dosimetry); a stored
    displacement field is then resampled onto that grid (linear) first.

    The SPECT is in the same frame of reference as its own CT, so the CT
    registration applies to it unchanged; linear interpolation, 0 outside.
    The reference time point's own SPECT is resampled onto its CT grid.

    Raises
    ------
    InvalidInputError
        No SPECT volume, no registration (not yet registered), or no reference CT.
    """
    tp = time_point if isinstance(time_point, TimePoint) else find_time_point(case, time_point)
    if tp.functional.volume is None:
        raise InvalidInputError(f"time point {_tp_name(tp)} has no SPECT volume")
    reg = tp.registration
    if reg is None:
        ref_tp = tp
    else:
        ref_tp = find_time_point(case, reg.reference_time_point_id)
    if ref_tp.anatomical is None or ref_tp.anatomical.volume is None:
        if reg is None:
            raise InvalidInputError(
                f"time point {_tp_name(tp)} is not registered and has no CT; register the case"
            )
        raise InvalidInputError(f"the reference time point {_tp_name(ref_tp)} has no CT")
    is_reference = any(
        t.registration is not None and t.registration.reference_time_point_id == tp.time_point_id
        for t in case.time_points
    )
    if reg is None and not is_reference and len(case.time_points) > 1:
        raise InvalidInputError(
            f"time point {_tp_name(tp)} is not registered to a reference: register the case first"
        )
    spect = store.load_volume(tp.functional.volume)
    ct_grid = ref_tp.anatomical.volume.geometry
    out_grid = ct_grid if target is None else target
    matrix = np.eye(4) if reg is None else np.asarray(reg.matrix_ref_to_tp, dtype=float)
    disp = None
    if reg is not None and reg.deformation is not None:
        disp, grid = load_displacement(store, reg.deformation)
        if not grid.same_grid(ct_grid):
            raise DosimetryError("the stored displacement field is not on the reference CT grid")
        if not out_grid.same_grid(ct_grid):
            disp = displacement_on_grid(disp, ct_grid, out_grid)
    return warp_volume(spect, out_grid, matrix, disp, order=1, fill_value=0.0)
