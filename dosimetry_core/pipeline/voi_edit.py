"""Edits of a case's VOI list that save at once: contour operations, rename, kind, colour, delete.

The functions of :mod:`dosimetry_core.pipeline.contouring` change the case in
memory and leave the save to the caller (the CLI groups them).  An interactive
workstation saves each edit on its own; the functions here do the edit and the
save (``store.save_case`` with the audit action ``contour``, which checks the
actor's role) in one call, so that ``fn(store, case, ...)`` is the whole change.
On an error nothing is saved.

Who did it is always :func:`~dosimetry_core.pipeline.contouring.acting_user`
(the logged-in user on a store with accounts).  Renames, kind and colour
changes and deletions are written to the audit trail; a rename and a kind
change are also appended to ``VOI.history``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.model import VOI, Case, Geometry, VoiKind, VoiStatus
from dosimetry_core.pipeline import contouring as c
from dosimetry_core.pipeline import voi_review
from dosimetry_core.store.repository import CaseRepository

__all__ = [
    "OPERATIONS",
    "contour_and_save",
    "delete_voi",
    "import_contours",
    "rename_voi",
    "restore_voi_mask",
    "set_voi_style",
    "submit_voi",
]

OPERATIONS: dict[str, Any] = {
    "threshold": c.threshold,
    "grow": c.region_grow,
    "margin": c.margin,
    "boolean": c.boolean,
    "fill-holes": c.fill_holes,
    "largest": c.keep_largest,
    "interpolate": c.interpolate,
    "propagate": c.propagate,
}
"""Operation name (as in ``mrtdose contour OPERATION``) -> the contouring function."""


def _save(store: CaseRepository, case: Case, operation: str, **details: Any) -> None:
    store.save_case(case, audit=store.audit_spec("contour", operation=operation, **details))


def contour_and_save(
    store: CaseRepository, case: Case, operation: str, *args: Any, **kwargs: Any
) -> VOI:
    """Run ``mrtdose contour OPERATION`` on ``case`` and save it (same function, same result).

    ``args``/``kwargs`` are those of the contouring function after ``store,
    case`` (e.g. ``contour_and_save(store, case, "threshold", "Tumour",
    percent_of_max=40.0, within="Kidney_L")``).
    """
    fn = OPERATIONS.get(operation)
    if fn is None:
        raise InvalidInputError(
            f"unknown contour operation {operation!r} ({', '.join(sorted(OPERATIONS))})"
        )
    user = c.acting_user(store, kwargs.pop("user", None))
    voi: VOI = fn(store, case, *args, user=user, **kwargs)
    _save(store, case, operation, voi=voi.name)
    return voi


def _voi(case: Case, voi_id: str) -> VOI:
    for voi in case.vois:
        if voi.voi_id == voi_id:
            return voi
    raise InvalidInputError(f"case {case.case_id} has no VOI with id {voi_id!r}")


def restore_voi_mask(
    store: CaseRepository,
    case: Case,
    name: str,
    mask: NDArray[np.bool_],
    geometry: Geometry,
    time_point_id: str,
    operation: str,
) -> VOI:
    """Store ``mask`` as VOI ``name`` of a time point (created if absent) and save.

    The drawing tools (brush, eraser, freehand outline: one call per stroke)
    and undo/redo use it; ``operation`` is written to the VOI's history.
    """
    tp = case.time_point(time_point_id)
    user = c.acting_user(store)
    voi = c.set_voi_mask(
        store, case, name, mask, geometry, time_point=tp, operation=operation, user=user
    )
    _save(store, case, "edit", voi=voi.name, what=operation)
    return voi


def rename_voi(store: CaseRepository, case: Case, voi_id: str, new_name: str) -> VOI:
    """Rename a VOI (the name must be unique on its time point) and save."""
    voi = _voi(case, voi_id)
    name = new_name.strip()
    if not name:
        raise InvalidInputError("a VOI needs a name", field="name")
    if name == voi.name:
        return voi
    for other in case.vois:
        if (
            other is not voi
            and other.time_point_id == voi.time_point_id
            and other.name.lower() == name.lower()
        ):
            raise InvalidInputError(
                f"this time point already has a VOI named {other.name!r}", field="name"
            )
    user = c.acting_user(store)
    old = voi.name
    voi.history.append(_entry("rename", voi, user, f"{old} -> {name}"))
    voi.name = name
    _save(store, case, "rename", voi=name, previous=old)
    return voi


def set_voi_style(
    store: CaseRepository,
    case: Case,
    voi_id: str,
    *,
    kind: VoiKind | str | None = None,
    color_rgb: tuple[int, int, int] | None = None,
) -> VOI:
    """Change a VOI's kind (organ / lesion / reference) and/or its colour, and save."""
    voi = _voi(case, voi_id)
    user = c.acting_user(store)
    details: dict[str, Any] = {"voi": voi.name}
    if kind is not None:
        try:
            k = VoiKind(kind)
        except ValueError:
            kinds = ", ".join(str(v) for v in VoiKind)
            raise InvalidInputError(f"unknown VOI kind {kind!r} ({kinds})", field="kind") from None
        if k != voi.kind:
            voi.history.append(_entry("kind", voi, user, f"{voi.kind} -> {k}"))
            voi.kind = k
            details["kind"] = str(k)
    if color_rgb is not None:
        rgb = tuple(int(v) for v in color_rgb)
        if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
            raise InvalidInputError(f"a colour is three values 0..255, got {color_rgb}")
        voi.color_rgb = (rgb[0], rgb[1], rgb[2])
        details["color_rgb"] = list(rgb)
    _save(store, case, "style", **details)
    return voi


def delete_voi(store: CaseRepository, case: Case, voi_id: str) -> str:
    """Remove a VOI that is not approved from the case and save; returns its name.

    An approved VOI is part of a verified analysis: it is edited (which
    withdraws the approval, recorded) rather than deleted.
    """
    voi = _voi(case, voi_id)
    if voi.status == VoiStatus.APPROVED:
        raise InvalidInputError(
            f"VOI {voi.name!r} is approved: it cannot be deleted (an edit returns it to draft)"
        )
    c.acting_user(store)
    case.vois = [v for v in case.vois if v.voi_id != voi_id]
    _save(store, case, "delete", voi=voi.name, voi_id=voi_id)
    return voi.name


def submit_voi(store: CaseRepository, case: Case, voi_id: str, comment: str = "") -> VOI:
    """Send a draft or rejected VOI for physician review (``mrtdose contour submit``) and save."""
    voi = _voi(case, voi_id)
    voi_review.submit(voi, c.acting_user(store), comment)
    _save(store, case, "submit", voi=voi.name)
    return voi


def import_contours(
    store: CaseRepository,
    case: Case,
    fmt: str,
    path: str | Path,
    time_point: str | None = None,
) -> list[str]:
    """``mrtdose contour import-rtstruct|import-seg|import-nifti`` and save; the VOI names.

    ``fmt`` is ``rtstruct``, ``seg`` or ``nifti`` (NIfTI needs ``time_point``:
    it has no DICOM frame of reference).
    """
    from dosimetry_core.pipeline import contour_io

    user = c.acting_user(store)
    file = Path(path)
    if fmt == "rtstruct":
        vois, _warnings = contour_io.import_rtstruct_into_case(
            store, case, file, time_point=time_point, user=user
        )
    elif fmt == "seg":
        vois = contour_io.import_seg_into_case(store, case, file, time_point=time_point, user=user)
    elif fmt == "nifti":
        if not time_point:
            raise InvalidInputError("a NIfTI import needs the time point (it has no DICOM frame)")
        vois = contour_io.import_nifti_into_case(
            store, case, file, time_point=time_point, user=user
        )
    else:
        raise InvalidInputError(f"unknown contour format {fmt!r} (rtstruct, seg, nifti)")
    _save(store, case, f"import-{fmt}", file=file.name, vois=[v.name for v in vois])
    return [v.name for v in vois]


def _entry(action: str, voi: VOI, user: str, comment: str) -> dict[str, Any]:
    return {
        "action": action,
        "from": str(voi.status),
        "to": str(voi.status),
        "user": user,
        "at": datetime.now().replace(microsecond=0).isoformat(),
        "comment": comment,
    }
