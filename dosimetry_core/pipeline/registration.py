"""Register the time points of a case to a reference time point and keep the result.

:func:`register_case` registers each time point's CT to the reference CT
(:func:`dosimetry_core.imaging.registration.register_rigid`, optionally refined by
demons), stores a :class:`~dosimetry_core.model.case.Registration` with status
PROPOSED on the time point and saves the case (onto the newest stored case, refused
if a time point or a registration changed while it computed:
:mod:`dosimetry_core.store.case_inputs`).  :func:`set_registration_status`
accepts or rejects one; a rejected one is redone by calling :func:`register_case`
again with ``time_points=[...]``; :func:`review_registration` does the same
for an open case (the workstation's ``session.change``), checking the role and
requiring a comment to reject.  :func:`spect_on_reference` brings a time point's
SPECT onto the reference CT grid through its registration (it lives in
:mod:`dosimetry_core.imaging.case_volumes`, with the stored displacement
fields and :func:`find_time_point`, and is re-exported here);
:func:`ct_on_reference` its CT (what a reviewer compares with the reference CT)
and :func:`voi_on_reference` a VOI drawn or propagated on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from dosimetry_core.errors import DosimetryError, InvalidInputError, PermissionDeniedError
from dosimetry_core.imaging.case_volumes import (
    find_time_point,
    load_displacement,
    spect_on_reference,
    store_displacement,
)
from dosimetry_core.imaging.registration import (
    AIR_HU,
    DEMONS_METHOD,
    RIGID_METHOD,
    refine_deformable,
    register_rigid,
    warp_volume,
)
from dosimetry_core.model import ImageUnits, Volume
from dosimetry_core.model.case import VOI, Case, Registration, RegistrationStatus, TimePoint
from dosimetry_core.model.volume import VolumeRef
from dosimetry_core.progress import (
    CancelCheck,
    ProgressCallback,
    check_cancel,
    report,
    sub_progress,
)
from dosimetry_core.store.case_inputs import fingerprint, save_results

__all__ = [
    "RegistrationSummary",
    "ct_on_reference",
    "find_time_point",
    "load_displacement",
    "reference_time_point",
    "register_case",
    "review_registration",
    "set_registration_status",
    "spect_on_reference",
    "store_displacement",
    "voi_on_reference",
]


@dataclass
class RegistrationSummary:
    """What happened to one time point in :func:`register_case` (CLI ``--json`` row).

    Attributes
    ----------
    time_point_id, label
        The time point.
    status
        ``"registered"``, ``"reference"`` or ``"skipped"``.
    message
        Why it was skipped, or a one-line result.
    translation_mm, rotation_deg, center_mm
        Rigid decomposition (``R = Rz Ry Rx`` about ``center_mm``), when registered.
    quality
        Quality figures (see :func:`dosimetry_core.imaging.registration.registration_quality`).
    elapsed_s
        Computing time (s).
    """

    time_point_id: str
    label: str
    status: str
    message: str = ""
    translation_mm: tuple[float, float, float] | None = None
    rotation_deg: tuple[float, float, float] | None = None
    center_mm: tuple[float, float, float] | None = None
    quality: dict[str, float] = field(default_factory=dict)
    elapsed_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "time_point_id": self.time_point_id,
            "label": self.label,
            "status": self.status,
            "message": self.message,
            "translation_mm": list(self.translation_mm) if self.translation_mm else None,
            "rotation_deg": list(self.rotation_deg) if self.rotation_deg else None,
            "center_mm": list(self.center_mm) if self.center_mm else None,
            "quality": dict(self.quality),
            "elapsed_s": self.elapsed_s,
        }


def reference_time_point(case: Case, reference: str | int | None = None) -> TimePoint:
    """The reference time point: by id, label or 1-based index; default the first in time."""
    if not case.time_points:
        raise InvalidInputError(f"case {case.case_id} has no time points to register")
    if reference is None:
        return case.sorted_time_points()[0]
    return find_time_point(case, reference)


def _tp_name(tp: TimePoint) -> str:
    return tp.label or tp.time_point_id


def _require_register(store: Any) -> None:
    """Refuse before any computation unless the store's actor may register.

    A store with accounts and nobody logged in is refused as ``save_case``
    would refuse it, but before minutes of work rather than after.
    """
    actor = getattr(store, "actor", None)
    if actor is not None:
        from dosimetry_core.store.permissions import require

        require(actor, "register")
    elif getattr(store, "has_users", lambda: False)():
        raise PermissionDeniedError(
            "this store has user accounts: log in to register time points "
            "(MRTDOSE_USER and MRTDOSE_PASSWORD for the command line)"
        )


def register_case(
    store: Any,
    case_id: str,
    *,
    reference: str | int | None = None,
    deformable: bool = False,
    time_points: Sequence[str | int] | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
    user: str = "",
    seed: int | None = None,
) -> list[RegistrationSummary]:
    """Register every (or the named) time point's CT to the reference CT and save the case.

    Parameters
    ----------
    store
        A :class:`~dosimetry_core.store.CaseStore`.
    case_id
        The case.
    reference
        Reference time point (id, label such as ``'TP1'``, or 1-based index);
        default the first in time.
    deformable
        Refine with demons after the rigid step (field stored as a blob).
    time_points
        Only these time points (e.g. to redo a rejected registration); default all.
    progress, cancel
        :mod:`dosimetry_core.progress` callbacks.  On cancel nothing is saved.
    user
        Stored as ``computed_by``.
    seed
        Seed of the metric sampling (default: the module default).

    Returns
    -------
    list of RegistrationSummary
        One per time point in time order (the reference reported as such;
        time points without a CT reported as skipped with the reason).

    Raises
    ------
    InvalidInputError
        Unknown time point, or the reference time point has no CT.
    Cancelled
        If cancelled (the case is left as it was).
    PermissionDeniedError
        If the logged-in user may not register (checked before any computation).
    """
    _require_register(store)
    case = store.load_case(case_id)
    ref_tp = reference_time_point(case, reference)
    if ref_tp.anatomical is None or ref_tp.anatomical.volume is None:
        raise InvalidInputError(
            f"the reference time point {_tp_name(ref_tp)} has no CT: choose a reference "
            "time point with a CT (--reference)"
        )
    wanted: set[str] | None = None
    if time_points is not None:
        wanted = {find_time_point(case, k).time_point_id for k in time_points}
    report(progress, 0.0, f"registration: loading the reference CT ({_tp_name(ref_tp)})")
    fixed = store.load_volume(ref_tp.anatomical.volume)
    inputs = fingerprint(case, "registration", parts=("time_points",))
    ordered = case.sorted_time_points()
    todo = [
        tp for tp in ordered if tp is not ref_tp and (wanted is None or tp.time_point_id in wanted)
    ]
    summaries: list[RegistrationSummary] = []
    n = max(len(todo), 1)
    done = 0
    rigid_kw: dict[str, Any] = {} if seed is None else {"seed": seed}
    for tp in ordered:
        if tp is ref_tp:
            tp.registration = None
            summaries.append(
                RegistrationSummary(tp.time_point_id, tp.label, "reference", "reference time point")
            )
            continue
        if tp not in todo:
            continue
        check_cancel(cancel)
        step = sub_progress(progress, 0.02 + 0.95 * done / n, 0.02 + 0.95 * (done + 1) / n)
        done += 1
        if tp.anatomical is None or tp.anatomical.volume is None:
            summaries.append(
                RegistrationSummary(
                    tp.time_point_id,
                    tp.label,
                    "skipped",
                    f"time point {_tp_name(tp)} has no CT: it cannot be registered "
                    "(register it manually or import its CT)",
                )
            )
            continue
        report(step, 0.0, f"registration: {_tp_name(tp)} to {_tp_name(ref_tp)}")
        moving = store.load_volume(tp.anatomical.volume)
        rigid = register_rigid(
            fixed,
            moving,
            progress=sub_progress(step, 0.0, 0.6 if deformable else 1.0),
            cancel=cancel,
            **rigid_kw,
        )
        quality: dict[str, Any] = dict(rigid.quality)
        method = RIGID_METHOD
        deformation: VolumeRef | None = None
        elapsed = rigid.elapsed_s
        if deformable:
            defo = refine_deformable(
                fixed,
                moving,
                rigid.matrix_ref_to_tp,
                progress=sub_progress(step, 0.6, 1.0),
                cancel=cancel,
            )
            deformation = store_displacement(
                store,
                defo.displacement_mm,
                fixed.geometry,
                f"demons displacement {_tp_name(tp)} -> {_tp_name(ref_tp)}",
            )
            quality.update({f"deformable_{k}": v for k, v in defo.quality.items()})
            quality["deformable_max_displacement_mm"] = defo.max_displacement_mm
            method = f"{RIGID_METHOD} + {DEMONS_METHOD}"
            elapsed += defo.elapsed_s
        tp.registration = Registration(
            reference_time_point_id=ref_tp.time_point_id,
            matrix_ref_to_tp=rigid.matrix_ref_to_tp.tolist(),
            translation_mm=rigid.translation_mm,
            rotation_deg=rigid.rotation_deg,
            center_mm=rigid.center_mm,
            method=method,
            deformation=deformation,
            quality=quality,
            status=RegistrationStatus.PROPOSED,
            computed_at=datetime.now().replace(microsecond=0),
            computed_by=user,
        )
        summaries.append(
            RegistrationSummary(
                tp.time_point_id,
                tp.label,
                "registered",
                f"{_tp_name(tp)} registered to {_tp_name(ref_tp)}",
                rigid.translation_mm,
                rigid.rotation_deg,
                rigid.center_mm,
                {k: float(v) for k, v in quality.items()},
                elapsed,
            )
        )
    check_cancel(cancel)
    computed = {tp.time_point_id: tp.registration for tp in ordered}
    reference_id = ref_tp.time_point_id

    def apply(latest: Case) -> None:
        for tp in latest.time_points:
            if tp.time_point_id == reference_id:
                tp.registration = None
            elif tp.time_point_id in computed and any(
                s.time_point_id == tp.time_point_id and s.status == "registered" for s in summaries
            ):
                tp.registration = computed[tp.time_point_id]

    # onto the newest stored case, refused (nothing saved) if a time point, its series
    # or a registration (e.g. accepted by a reviewer) changed while this one computed
    save_results(store, inputs, apply, audit=store.audit_spec("register"))
    report(progress, 1.0, "registration done")
    return summaries


def set_registration_status(
    store: Any,
    case_id: str,
    time_point: str | int,
    status: RegistrationStatus | str,
    user: str = "",
    comment: str = "",
) -> Registration:
    """Load the case and review one time point's registration (:func:`review_registration`).

    ``user`` names the reviewer only on a single-user store (no accounts, no
    actor); once someone is logged in, the reviewer is always the logged-in
    user.  The same checks as :func:`review_registration` apply (a rejection
    needs a comment; the role must allow registration).
    """
    return review_registration(
        store, store.load_case(case_id), time_point, status, comment, user=user
    )


def review_registration(
    store: Any,
    case: Case,
    time_point: str | int,
    status: RegistrationStatus | str,
    comment: str = "",
    *,
    user: str = "",
) -> Registration:
    """Accept or reject a time point's registration of an open case, as its logged-in user.

    The signature is the workstation session's ``change(fn, *args)``
    convention: ``fn(store, case, ...)``.  The reviewer is the store's actor
    (the operating-system user on a single-user store).  Everything is checked
    before the case is touched, so a refusal leaves it as it was.

    Parameters
    ----------
    store
        A :class:`~dosimetry_core.store.repository.CaseRepository`.
    case
        The case as loaded (its version is the optimistic-concurrency check).
    time_point
        Id, label (``'TP2'``) or 1-based index.
    status
        ``accepted``, ``rejected`` (or ``proposed`` to withdraw a review).
    comment
        Free text; **required** to reject (why, so the redo can do better).
    user
        Reviewer's name on a single-user store only (default: the operating-system
        user); ignored when someone is logged in.

    Returns
    -------
    Registration
        The reviewed registration as saved.

    Raises
    ------
    InvalidInputError
        Unknown status (``field='status'``), a rejection without a comment
        (``field='comment'``), an unknown time point or one without a
        registration (``field='time_point'``).
    PermissionDeniedError
        The user may not register (physicians, technologists) or nobody is
        logged in on a store with accounts.
    """
    try:
        new_status = RegistrationStatus(status)
    except ValueError as exc:
        allowed = ", ".join(s.value for s in RegistrationStatus)
        raise InvalidInputError(
            f"unknown status {status!r} (use {allowed})", field="status"
        ) from exc
    text = (comment or "").strip()
    if new_status == RegistrationStatus.REJECTED and not text:
        raise InvalidInputError(
            "a comment is needed to reject a registration (say what is wrong, "
            "so that the redo can do better)",
            field="comment",
        )
    _require_register(store)
    try:
        tp = find_time_point(case, time_point)
    except InvalidInputError as exc:
        raise InvalidInputError(str(exc), field="time_point") from exc
    if tp.registration is None:
        raise InvalidInputError(
            f"time point {_tp_name(tp)} has no registration to review", field="time_point"
        )
    actor = getattr(store, "actor", None)
    if actor is not None:
        user = actor.username
    elif not user:
        from dosimetry_core.pipeline.contouring import current_user

        user = current_user()
    reg = tp.registration
    reg.status = new_status
    reg.reviewed_by = user
    reg.reviewed_at = datetime.now().replace(microsecond=0)
    reg.comment = text
    saved = store.save_case(
        case,
        audit=store.audit_spec(
            "registration-review",
            status=str(new_status),
            time_point=_tp_name(tp),
            comment=text,
        ),
    )
    out = saved.time_point(tp.time_point_id).registration
    return out if out is not None else reg


def _reference_of(case: Case, tp: TimePoint) -> TimePoint:
    """The time point ``tp`` is registered to; ``tp`` itself when it is the reference.

    Raises InvalidInputError when ``tp`` is neither registered nor the reference.
    """
    if tp.registration is not None:
        return find_time_point(case, tp.registration.reference_time_point_id)
    refs = {t.registration.reference_time_point_id for t in case.time_points if t.registration}
    if tp.time_point_id in refs or len(case.time_points) == 1:
        return tp
    raise InvalidInputError(
        f"time point {_tp_name(tp)} is not registered to a reference: register the case first",
        field="time_point",
    )


def _through_registration(
    store: Any, case: Case, tp: TimePoint, volume: Volume, *, order: int, fill_value: float
) -> Volume:
    """``volume`` (in ``tp``'s frame) on the reference CT grid through ``tp``'s registration."""
    ref_tp = _reference_of(case, tp)
    if ref_tp.anatomical is None or ref_tp.anatomical.volume is None:
        raise InvalidInputError(f"the reference time point {_tp_name(ref_tp)} has no CT")
    ct_grid = ref_tp.anatomical.volume.geometry
    reg = tp.registration
    matrix = np.eye(4) if reg is None else np.asarray(reg.matrix_ref_to_tp, dtype=float)
    disp = None
    if reg is not None and reg.deformation is not None:
        disp, grid = load_displacement(store, reg.deformation)
        if not grid.same_grid(ct_grid):
            raise DosimetryError("the stored displacement field is not on the reference CT grid")
    return warp_volume(volume, ct_grid, matrix, disp, order=order, fill_value=fill_value)


def ct_on_reference(store: Any, case: Case, time_point: str | int | TimePoint) -> Volume:
    """The time point's CT resampled through its registration onto the reference CT grid.

    This is what a reviewer compares with the reference CT (checkerboard,
    blink, fused overlay): after a good registration the two agree voxel by
    voxel.  The value at a reference voxel ``p`` is the time point's CT at
    ``M (p + D(p))`` (``M`` = ``matrix_ref_to_tp``, ``D`` the demons field if
    any), linear interpolation, -1000 HU (air) outside the time point's CT.
    The reference time point's own CT is returned as stored.

    Returns
    -------
    Volume
        HU on the reference CT grid.

    Raises
    ------
    InvalidInputError
        The time point has no CT, is not registered (and is not the
        reference), or the reference has no CT.
    """
    tp = time_point if isinstance(time_point, TimePoint) else find_time_point(case, time_point)
    if tp.anatomical is None or tp.anatomical.volume is None:
        raise InvalidInputError(f"time point {_tp_name(tp)} has no CT", field="time_point")
    ct = store.load_volume(tp.anatomical.volume)
    if _reference_of(case, tp) is tp:
        return ct
    return _through_registration(store, case, tp, ct, order=1, fill_value=AIR_HU)


def voi_on_reference(store: Any, case: Case, voi: VOI) -> Volume:
    """A VOI's mask (on its time point's grid) brought onto the reference CT grid.

    Drawn or propagated outlines of a time point are shown on
    :func:`ct_on_reference`'s image: the mask goes through the same
    registration (nearest neighbour, 0 outside).  A VOI without a time point
    is taken as drawn on the reference.

    Returns
    -------
    Volume
        uint8 mask (1 inside) on the reference CT grid.
    """
    mask = store.load_volume(voi.mask)
    arr = (np.asarray(mask.array) > 0).astype(np.uint8)
    mask = Volume(arr, mask.geometry, ImageUnits.MASK, voi.name)
    if voi.time_point_id:
        tp = find_time_point(case, voi.time_point_id)
    else:
        tp = reference_time_point(case, _default_reference_id(case))
    ref_tp = _reference_of(case, tp)
    if ref_tp.anatomical is None or ref_tp.anatomical.volume is None:
        raise InvalidInputError(f"the reference time point {_tp_name(ref_tp)} has no CT")
    if ref_tp is tp and mask.geometry.same_grid(ref_tp.anatomical.volume.geometry):
        return mask
    return _through_registration(store, case, tp, mask, order=0, fill_value=0.0)


def _default_reference_id(case: Case) -> str | None:
    for t in case.time_points:
        if t.registration is not None:
            return t.registration.reference_time_point_id
    return None
