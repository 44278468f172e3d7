"""Contouring on a case: VOIs as masks on a time point's CT grid, stored in the case.

Every operation loads what it needs from the store, computes with
:mod:`dosimetry_core.segmentation`, stores the new mask (uint8, 1 inside) and
records the change through :mod:`dosimetry_core.pipeline.voi_review` (an edit
returns the VOI to draft; the history is kept).  The caller saves the case
(``store.save_case``), so several operations can be grouped in one save.

Grid convention: a VOI lives on the CT grid of the time point named by
``VOI.time_point_id``.  SPECT values are brought onto that grid with the one
resampling function (linear).  Propagation to another time point goes through
that time point's rigid registration (``Registration.matrix_ref_to_tp``).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dosimetry_core.errors import InvalidInputError, PermissionDeniedError
from dosimetry_core.imaging.case_volumes import find_time_point, load_mask
from dosimetry_core.imaging.resample import resample
from dosimetry_core.model import (
    VOI,
    Case,
    Geometry,
    ImageUnits,
    TimePoint,
    VoiKind,
    Volume,
)
from dosimetry_core.pipeline import voi_review
from dosimetry_core.segmentation import operations as ops
from dosimetry_core.segmentation.mass import voi_mass_g, voi_volume_ml
from dosimetry_core.segmentation.organs import match_organ
from dosimetry_core.store.repository import CaseRepository

LESION_PREFIXES = ("tumour", "tumor", "lesion", "gtv", "met")
DEFAULT_COLOURS = [
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (250, 190, 212),
]


def current_user() -> str:
    """The operating-system user: the name recorded on a single-user store."""
    return os.environ.get("MRTDOSE_USER") or os.environ.get("USER") or "unknown"


def acting_user(store: CaseRepository, user: str | None = None) -> str:
    """Who does a contour operation or review, as written in ``VOI.history``.

    Once the store has accounts this is always the logged-in user
    (``store.actor``): ``user`` (the CLI's ``--user``) may only repeat that
    name, so a history can never name somebody who did not log in.  On a
    single-user store ``user`` names the reviewer (default
    :func:`current_user`).

    Raises
    ------
    InvalidInputError
        ``user`` names somebody else than the logged-in user (field ``user``).
    PermissionDeniedError
        The store has accounts and nobody is logged in.
    """
    if not store.has_users():
        return user or current_user()
    actor = store.actor
    if actor is None:
        raise PermissionDeniedError(
            "this store has user accounts: log in to contour or review a VOI "
            "(MRTDOSE_USER and MRTDOSE_PASSWORD for the command line)"
        )
    if user and user != actor.username:
        raise InvalidInputError(
            f"--user names somebody else than the logged-in user ({user!r}, logged in: "
            f"{actor.username!r}); the reviewer is always the logged-in user",
            field="user",
        )
    return actor.username


def time_point_of(case: Case, key: str | None) -> TimePoint:
    """Time point by id, label or 1-based index; default: the first one."""
    tps = case.sorted_time_points()
    if not tps:
        raise InvalidInputError(f"case {case.case_id} has no time points")
    if key is None:
        return tps[0]
    return find_time_point(case, key)


def ct_of(store: CaseRepository, tp: TimePoint) -> Volume:
    if tp.anatomical is None or tp.anatomical.volume is None:
        raise InvalidInputError(f"time point {tp.label} has no CT: contours need a CT grid")
    return store.load_volume(tp.anatomical.volume)


def spect_on_grid(store: CaseRepository, tp: TimePoint, geometry: Geometry) -> Volume:
    """The time point's SPECT/PET resampled (linear) onto ``geometry`` (same frame)."""
    if tp.functional.volume is None:
        raise InvalidInputError(f"time point {tp.label} has no functional image")
    spect = store.load_volume(tp.functional.volume)
    return resample(spect, geometry, order=1, fill_value=0.0)


def _kind_and_colour(
    case: Case, name: str, kind: VoiKind | str | None
) -> tuple[VoiKind, tuple[int, int, int]]:
    spec = match_organ(name)
    if kind is not None:
        k = VoiKind(kind)
    elif spec is not None:
        k = VoiKind(spec.kind)
    else:
        k = VoiKind.LESION if name.lower().startswith(LESION_PREFIXES) else VoiKind.ORGAN
    if spec is not None:
        colour = tuple(spec.color_rgb)
    else:
        colour = DEFAULT_COLOURS[len(case.vois) % len(DEFAULT_COLOURS)]
    return k, (int(colour[0]), int(colour[1]), int(colour[2]))


def set_voi_mask(
    store: CaseRepository,
    case: Case,
    name: str,
    mask: NDArray[np.bool_],
    geometry: Geometry,
    *,
    time_point: TimePoint,
    operation: str,
    user: str | None = None,
    kind: VoiKind | str | None = None,
    color_rgb: tuple[int, int, int] | None = None,
) -> VOI:
    """Create VOI ``name`` or replace its mask (the edit returns it to draft)."""
    if not name.strip():
        raise InvalidInputError("a VOI needs a name")
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != geometry.shape_zyx:
        raise InvalidInputError(
            f"mask shape {mask.shape} does not match the grid {geometry.shape_zyx}"
        )
    if not mask.any():
        raise InvalidInputError(
            f"the operation '{operation}' gives an empty VOI {name!r}; nothing stored"
        )
    user = user or current_user()
    ref = store.put_volume(Volume(mask.astype(np.uint8), geometry, ImageUnits.MASK, name))
    existing = [
        v
        for v in case.vois
        if v.name.lower() == name.lower() and v.time_point_id == time_point.time_point_id
    ]
    if existing:
        voi = existing[0]
        voi_review.record_edit(voi, ref, user, operation)
        if color_rgb is not None:
            voi.color_rgb = color_rgb
        return voi
    k, colour = _kind_and_colour(case, name, kind)
    voi = VOI(
        name=name,
        kind=k,
        mask=ref,
        color_rgb=color_rgb or colour,
        time_point_id=time_point.time_point_id,
        source=operation,
    )
    voi_review.record_creation(voi, user, operation)
    case.vois.append(voi)
    return voi


def find_voi_on(case: Case, name: str, tp: TimePoint | None = None) -> VOI:
    if tp is not None:
        for v in case.vois:
            if v.name.lower() == name.lower() and v.time_point_id == tp.time_point_id:
                return v
    return voi_review.find_voi(case, name)


# ---------------------------------------------------------------- operations
def threshold(
    store: CaseRepository,
    case: Case,
    name: str,
    *,
    time_point: str | None = None,
    image: str = "spect",
    lower: float | None = None,
    upper: float | None = None,
    percent_of_max: float | None = None,
    within: str | None = None,
    largest_component: bool = False,
    user: str | None = None,
) -> VOI:
    """Absolute (``lower``/``upper`` in image units) or relative (% of max) threshold."""
    tp = time_point_of(case, time_point)
    ct = ct_of(store, tp)
    vol = ct if image == "ct" else spect_on_grid(store, tp, ct.geometry)
    region = None
    if within:
        region, g = load_mask(store, find_voi_on(case, within, tp))
        if not g.same_grid(ct.geometry):
            raise InvalidInputError(f"VOI {within!r} is not on the grid of {tp.label}")
    if percent_of_max is not None:
        mask = ops.threshold_relative(vol, percent_of_max, within=region)
        what = f"threshold {percent_of_max:g} % of max on {image.upper()} {tp.label}"
    elif lower is not None:
        mask = ops.threshold_absolute(vol, lower, upper)
        if region is not None:
            mask &= region
        top = "" if upper is None else f"{upper:g}"
        what = f"threshold {lower:g}..{top} {vol.units} on {image.upper()} {tp.label}"
    else:
        raise InvalidInputError(
            "a threshold needs --lower (absolute) or --percent (relative to max)"
        )
    if largest_component:
        mask = ops.keep_largest_component(mask)
        what += ", largest component"
    return set_voi_mask(
        store, case, name, mask, ct.geometry, time_point=tp, operation=what, user=user
    )


def region_grow(
    store: CaseRepository,
    case: Case,
    name: str,
    seed_world_mm: tuple[float, float, float],
    *,
    time_point: str | None = None,
    image: str = "spect",
    lower: float | None = None,
    upper: float | None = None,
    tolerance_percent: float | None = None,
    user: str | None = None,
) -> VOI:
    tp = time_point_of(case, time_point)
    ct = ct_of(store, tp)
    vol = ct if image == "ct" else spect_on_grid(store, tp, ct.geometry)
    mask = ops.region_grow(
        vol,
        seed_world_mm=seed_world_mm,
        lower=lower,
        upper=upper,
        tolerance_percent=tolerance_percent,
    )
    seed = ", ".join(f"{v:.1f}" for v in seed_world_mm)
    return set_voi_mask(
        store,
        case,
        name,
        mask,
        ct.geometry,
        time_point=tp,
        operation=f"region grow from ({seed}) mm on {image.upper()} {tp.label}",
        user=user,
    )


def _operand(
    store: CaseRepository, case: Case, name: str
) -> tuple[VOI, NDArray[np.bool_], Geometry, TimePoint]:
    voi = voi_review.find_voi(case, name)
    mask, g = load_mask(store, voi)
    tp = case.time_point(voi.time_point_id) if voi.time_point_id else time_point_of(case, None)
    return voi, mask, g, tp


def margin(
    store: CaseRepository,
    case: Case,
    name: str,
    margin_mm: float,
    *,
    out: str | None = None,
    user: str | None = None,
) -> VOI:
    """Grow (positive mm) or shrink (negative mm) a VOI with a Euclidean margin."""
    voi, mask, g, tp = _operand(store, case, name)
    new = ops.grow_or_shrink(mask, g, margin_mm)
    if np.array_equal(new, mask):
        spacing = " x ".join(f"{v:g}" for v in g.spacing_mm)
        raise InvalidInputError(
            f"a margin of {margin_mm:g} mm changes no voxel of {voi.name!r} on this grid "
            f"({spacing} mm voxels); nothing stored"
        )
    return set_voi_mask(
        store,
        case,
        out or voi.name,
        new,
        g,
        time_point=tp,
        operation=f"margin {margin_mm:+g} mm of {voi.name}",
        user=user,
        kind=voi.kind if out else None,
    )


def boolean(
    store: CaseRepository, case: Case, op: str, a: str, b: str, out: str, *, user: str | None = None
) -> VOI:
    va, ma, ga, tp = _operand(store, case, a)
    vb, mb, gb, _ = _operand(store, case, b)
    if not ga.same_grid(gb):
        mb = resample(Volume(mb.astype(np.uint8), gb, ImageUnits.MASK), ga, order=0).array.astype(
            bool
        )
    if op == "union":
        result = ops.union(ma, mb)
    elif op == "intersect":
        result = ops.intersection(ma, mb)
    elif op == "subtract":
        result = ops.subtract(ma, mb)
    else:
        raise InvalidInputError(f"unknown boolean operation {op!r} (union, intersect, subtract)")
    return set_voi_mask(
        store,
        case,
        out,
        result,
        ga,
        time_point=tp,
        operation=f"{op} of {va.name} and {vb.name}",
        user=user,
    )


def fill_holes(
    store: CaseRepository,
    case: Case,
    name: str,
    *,
    plane: ops.Plane | None = None,
    user: str | None = None,
) -> VOI:
    voi, mask, g, tp = _operand(store, case, name)
    return set_voi_mask(
        store,
        case,
        voi.name,
        ops.fill_holes(mask, plane),
        g,
        time_point=tp,
        operation=f"fill holes{' (' + plane + ')' if plane else ''}",
        user=user,
    )


def keep_largest(store: CaseRepository, case: Case, name: str, *, user: str | None = None) -> VOI:
    voi, mask, g, tp = _operand(store, case, name)
    return set_voi_mask(
        store,
        case,
        voi.name,
        ops.keep_largest_component(mask),
        g,
        time_point=tp,
        operation="keep largest connected component",
        user=user,
    )


def interpolate(
    store: CaseRepository,
    case: Case,
    name: str,
    *,
    plane: ops.Plane = "axial",
    user: str | None = None,
) -> VOI:
    voi, mask, g, tp = _operand(store, case, name)
    return set_voi_mask(
        store,
        case,
        voi.name,
        ops.interpolate_slices(mask, g, plane),
        g,
        time_point=tp,
        operation=f"interpolate between drawn {plane} slices",
        user=user,
    )


def propagate(
    store: CaseRepository, case: Case, name: str, to_time_point: str, *, user: str | None = None
) -> VOI:
    """Copy a VOI onto another time point's CT grid through the rigid registrations.

    Both time points' registrations to the common reference are used
    (a point ``p`` of the target maps to the reference by ``inv(M_target)`` and on
    to the source by ``M_source``); the reference itself has the identity.
    """
    voi, mask, g, src_tp = _operand(store, case, name)
    dst_tp = time_point_of(case, to_time_point)
    if dst_tp.time_point_id == src_tp.time_point_id:
        raise InvalidInputError(f"VOI {voi.name!r} is already on {dst_tp.label}")

    def m_ref_to(tp: TimePoint) -> NDArray[np.float64]:
        if tp.registration is None:
            return np.eye(4)
        return np.asarray(tp.registration.matrix_ref_to_tp, dtype=float)

    for tp in (src_tp, dst_tp):
        if tp.registration is None and not _is_reference(case, tp):
            raise InvalidInputError(f"{tp.label} is not registered: run 'mrtdose register' first")
    transform = m_ref_to(src_tp) @ np.linalg.inv(m_ref_to(dst_tp))
    ct = ct_of(store, dst_tp)
    moved = (
        resample(
            Volume(mask.astype(np.float32), g, ImageUnits.MASK),
            ct.geometry,
            order=1,
            transform=transform,
        ).array
        >= 0.5
    )
    return set_voi_mask(
        store,
        case,
        voi.name,
        moved,
        ct.geometry,
        time_point=dst_tp,
        operation=f"propagated from {src_tp.label} through the registration",
        user=user,
        kind=voi.kind,
        color_rgb=voi.color_rgb,
    )


def _is_reference(case: Case, tp: TimePoint) -> bool:
    refs = {t.registration.reference_time_point_id for t in case.time_points if t.registration}
    return tp.time_point_id in refs or (not refs and tp is case.sorted_time_points()[0])


# ------------------------------------------------------------------- listing
def voi_table(store: CaseRepository, case: Case) -> list[dict[str, Any]]:
    """Rows of ``mrtdose voi CASE``: volume (mL), mass (g, from CT density), status."""
    rows = []
    ct_cache: dict[str, Volume] = {}
    for voi in case.vois:
        mask, g = load_mask(store, voi)
        tp = case.time_point(voi.time_point_id) if voi.time_point_id else None
        mass = None
        if tp is not None and tp.anatomical is not None and tp.anatomical.volume is not None:
            ct = ct_cache.setdefault(tp.time_point_id, store.load_volume(tp.anatomical.volume))
            if ct.geometry.same_grid(g):
                mass = voi_mass_g(mask, ct)
        rows.append(
            {
                "voi_id": voi.voi_id,
                "name": voi.name,
                "kind": str(voi.kind),
                "time_point": tp.label if tp else "",
                "volume_ml": voi_volume_ml(mask, g),
                "mass_g": mass,
                "status": str(voi.status),
                "flag": voi_review.review_flag(voi),
                "source": voi.source,
                "color_rgb": list(voi.color_rgb),
            }
        )
    return rows
