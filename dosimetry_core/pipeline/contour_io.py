"""Contours in and out of a case: RTSTRUCT import/export, DICOM SEG and NIfTI export.

Exports refer to the CT slices of the time point the VOIs are drawn on; the
store keeps voxels, not the original files, so the caller names the folder of
that CT series (``ct_dir``) and the export checks it is the right series
(same Series Instance UID and grid).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.io.types import DicomWriteContext
from dosimetry_core.model import VOI, Case, Geometry, VoiKind
from dosimetry_core.pipeline.contouring import ct_of, load_mask, set_voi_mask, time_point_of
from dosimetry_core.store.repository import CaseRepository

_LESION_TYPES = {"GTV", "CTV", "PTV", "LESION", "TUMOUR", "TUMOR"}
_REFERENCE_TYPES = {"EXTERNAL", "AVOIDANCE", "CONTROL", "BOLUS", "SUPPORT", "FIXATION"}


def _kind_from_rt(rt_type: str) -> VoiKind | None:
    t = rt_type.upper()
    if t in _LESION_TYPES:
        return VoiKind.LESION
    if t in _REFERENCE_TYPES:
        return VoiKind.REFERENCE
    return None


def import_rtstruct_into_case(
    store: CaseRepository,
    case: Case,
    path: Path,
    *,
    time_point: str | None = None,
    names: list[str] | None = None,
    user: str | None = None,
) -> tuple[list[VOI], list[str]]:
    """Rasterise the ROIs of an RT Structure Set onto a time point's CT grid as VOIs.

    Without ``time_point`` the time point whose CT shares the structure set's
    frame of reference is used; a structure set of another frame of reference
    is refused (register and choose the time point explicitly).
    Returns the VOIs created or replaced, and the warnings (empty ROIs, ...).
    """
    from dosimetry_core.io.rtstruct import read_rtstruct, rtstruct_to_masks

    ss = read_rtstruct(path)
    if time_point is not None:
        tp = time_point_of(case, time_point)
    else:
        same = [
            t
            for t in case.sorted_time_points()
            if t.anatomical is not None
            and ss.frame_of_reference_uid
            and t.anatomical.frame_of_reference_uid == ss.frame_of_reference_uid
        ]
        if not same:
            raise InvalidInputError(
                f"{path}: the structure set refers to frame of reference "
                f"{ss.frame_of_reference_uid or '(none)'}, which no CT of case {case.case_id} has; "
                "choose the time point with --time-point"
            )
        tp = same[0]
    ct = ct_of(store, tp)
    result = rtstruct_to_masks(ss, ct.geometry, names)
    vois = []
    for name, mask in result.masks.items():
        if not mask.any():
            continue
        roi = result.rois[name]
        vois.append(
            set_voi_mask(
                store,
                case,
                name,
                mask,
                ct.geometry,
                time_point=tp,
                operation=f"RTSTRUCT {Path(path).name} ROI {name}",
                user=user,
                kind=_kind_from_rt(roi.kind),
                color_rgb=roi.color_rgb,
            )
        )
    return vois, list(result.warnings)


def _masks_for_export(
    store: CaseRepository, case: Case, time_point: str | None, names: list[str] | None
) -> tuple[dict[str, tuple[NDArray[np.bool_], tuple[int, int, int], str]], Geometry, Any]:
    tp = time_point_of(case, time_point)
    vois = [v for v in case.vois if v.time_point_id == tp.time_point_id]
    if names:
        wanted = {n.lower() for n in names}
        vois = [v for v in vois if v.name.lower() in wanted]
        missing = wanted - {v.name.lower() for v in vois}
        if missing:
            raise InvalidInputError(
                f"no VOI {sorted(missing)} on {tp.label} of case {case.case_id}"
            )
    if not vois:
        raise InvalidInputError(f"case {case.case_id} has no VOI on {tp.label} to export")
    ct = ct_of(store, tp)
    masks: dict[str, tuple[NDArray[np.bool_], tuple[int, int, int], str]] = {}
    for v in vois:
        m, g = load_mask(store, v)
        if not g.same_grid(ct.geometry):
            raise InvalidInputError(f"VOI {v.name!r} is not on the CT grid of {tp.label}")
        kind = {"organ": "ORGAN", "lesion": "GTV", "reference": "CONTROL"}[str(v.kind)]
        masks[v.name] = (m, v.color_rgb, kind)
    return masks, ct.geometry, tp


def ct_series_files(ct_dir: Path, tp: Any, sop_uids: list[str] | None = None) -> list[Path]:
    """The files of ``tp``'s CT series under ``ct_dir``; their SOP Instance UIDs are
    appended to ``sop_uids`` when given."""
    import pydicom

    files = sorted(p for p in Path(ct_dir).rglob("*") if p.is_file())
    want = tp.anatomical.series_instance_uid
    out = []
    for p in files:
        try:
            ds = pydicom.dcmread(
                p, stop_before_pixels=True, specific_tags=["SeriesInstanceUID", "SOPInstanceUID"]
            )
        except Exception:  # not DICOM: ignore
            continue
        if getattr(ds, "SeriesInstanceUID", None) == want:
            out.append(p)
            if sop_uids is not None:
                sop_uids.append(str(getattr(ds, "SOPInstanceUID", "")))
    if not out:
        raise InvalidInputError(
            f"{ct_dir}: no file of the CT series {want} of {tp.label}; "
            "give the folder of that series"
        )
    return out


def _context(case: Case, tp: Any, description: str) -> DicomWriteContext:
    p = case.patient
    return DicomWriteContext(
        patient_id=p.patient_id,
        patient_name=p.name,
        study_instance_uid=tp.anatomical.study_instance_uid,
        frame_of_reference_uid=tp.anatomical.frame_of_reference_uid,
        study_datetime=tp.acquired_at,
        acquisition_datetime=datetime.now().replace(microsecond=0),
        series_description=description,
        patient_birth_date=p.birth_date,
        patient_sex=p.sex,
        manufacturer="MRT Dosimetry Workstation",
        manufacturer_model="mrtdose",
    )


def _content_uids(
    case: Case, tp: Any, kind: str, names: list[str] | None, ct_uids: list[str]
) -> tuple[str, str]:
    """Series and SOP Instance UIDs derived from what the object holds.

    The same VOIs (name, kind, colour, mask content) of the same time point on the
    same CT instances (``ct_uids``, the SOP Instance UIDs referenced) give the same
    UIDs, so sending the results to a PACS again replaces the object there instead
    of adding a duplicate series; an edited VOI, or references to other CT
    instances, give new UIDs.  (PS3.3
    C.12.1.1.1: one SOP Instance UID per instance content; pydicom's
    ``generate_uid(entropy_srcs=...)`` hashes the sources under its UID root.)
    """
    from pydicom.uid import generate_uid

    wanted = {n.lower() for n in names} if names else None
    parts = [case.case_id, tp.time_point_id, kind]
    for v in sorted(case.vois, key=lambda v: v.name):
        if v.time_point_id == tp.time_point_id and (wanted is None or v.name.lower() in wanted):
            parts += [v.name, str(v.kind), ",".join(map(str, v.color_rgb)), v.mask.key]
    parts += sorted(ct_uids)
    series = str(generate_uid(entropy_srcs=[*parts, "series"]))
    return series, str(generate_uid(entropy_srcs=[*parts, "instance"]))


def export_rtstruct_from_case(
    store: CaseRepository,
    case: Case,
    out: Path,
    *,
    ct_dir: Path,
    time_point: str | None = None,
    names: list[str] | None = None,
) -> Path:
    """Write the VOIs of a time point as an RT Structure Set on its CT slices."""
    from dosimetry_core.io.rtstruct import export_rtstruct

    masks, geometry, tp = _masks_for_export(store, case, time_point, names)
    ctx = _context(case, tp, f"VOIs {tp.label}")
    ct_uids: list[str] = []
    files = ct_series_files(ct_dir, tp, ct_uids)
    ctx.series_instance_uid, _ = _content_uids(case, tp, "RTSTRUCT", names, ct_uids)
    return export_rtstruct(out, masks, geometry, ctx, files)


def export_seg_from_case(
    store: CaseRepository,
    case: Case,
    out: Path,
    *,
    ct_dir: Path,
    time_point: str | None = None,
    names: list[str] | None = None,
) -> Path:
    """Write the VOIs of a time point as a BINARY DICOM SEG referencing its CT."""
    from dosimetry_core.io.seg import export_seg

    masks, geometry, tp = _masks_for_export(store, case, time_point, names)
    ct_uids: list[str] = []
    files = ct_series_files(ct_dir, tp, ct_uids)
    series_uid, sop_uid = _content_uids(case, tp, "SEG", names, ct_uids)
    return export_seg(
        out,
        masks,
        geometry,
        files,
        series_description=f"VOIs {tp.label}",
        series_instance_uid=series_uid,
        sop_instance_uid=sop_uid,
    )


def export_nifti_from_case(
    store: CaseRepository,
    case: Case,
    out: Path,
    *,
    time_point: str | None = None,
    names: list[str] | None = None,
) -> Path:
    """Write the VOIs of a time point as a NIfTI label map (+ JSON sidecar)."""
    from dosimetry_core.io.nifti import write_nifti_labels

    masks, geometry, _ = _masks_for_export(store, case, time_point, names)
    return write_nifti_labels(
        out, {k: v[0] for k, v in masks.items()}, geometry, {k: v[1] for k, v in masks.items()}
    )


def _place_masks(
    store: CaseRepository,
    case: Case,
    masks: dict[str, tuple[NDArray[np.bool_], Geometry, tuple[int, int, int] | None]],
    source: str,
    time_point: str | None,
    user: str | None,
) -> list[VOI]:
    """Put masks from a file on a time point's CT grid (nearest-neighbour if grids differ)."""
    from dosimetry_core.imaging.resample import resample
    from dosimetry_core.model import ImageUnits, Volume

    if not masks:
        raise InvalidInputError(f"{source}: no segment or label in the file")
    for_uids = {g.frame_of_reference_uid for _, g, _ in masks.values() if g.frame_of_reference_uid}
    if time_point is not None:
        tp = time_point_of(case, time_point)
    else:
        same = [
            t
            for t in case.sorted_time_points()
            if t.anatomical is not None and t.anatomical.frame_of_reference_uid in for_uids
        ]
        if not same:
            raise InvalidInputError(
                f"{source}: its frame of reference ({', '.join(sorted(for_uids)) or 'unknown'}) "
                f"is not that of any CT of case {case.case_id}; "
                "choose the time point with --time-point"
            )
        tp = same[0]
    ct = ct_of(store, tp)
    tp_for = ct.geometry.frame_of_reference_uid
    vois = []
    for name, (mask, geometry, colour) in masks.items():
        if geometry.frame_of_reference_uid and tp_for and geometry.frame_of_reference_uid != tp_for:
            raise InvalidInputError(
                f"{source}: segment {name!r} is in frame of reference "
                f"{geometry.frame_of_reference_uid}, the CT of {tp.label} is in {tp_for}"
            )
        if not mask.any():
            continue
        if not geometry.same_grid(ct.geometry):
            moved = resample(
                Volume(mask.astype(np.float32), geometry, ImageUnits.MASK), ct.geometry, order=1
            )
            mask = moved.array >= 0.5
            if not mask.any():
                continue
        vois.append(
            set_voi_mask(
                store,
                case,
                name,
                mask,
                ct.geometry,
                time_point=tp,
                operation=f"{source} segment {name}",
                user=user,
                color_rgb=colour,
            )
        )
    return vois


def import_seg_into_case(
    store: CaseRepository,
    case: Case,
    path: Path,
    *,
    time_point: str | None = None,
    user: str | None = None,
) -> list[VOI]:
    """Import the segments of a DICOM SEG as VOIs on a time point's CT grid."""
    from dosimetry_core.io.seg import read_seg

    return _place_masks(store, case, read_seg(path), f"SEG {Path(path).name}", time_point, user)


def import_nifti_into_case(
    store: CaseRepository, case: Case, path: Path, *, time_point: str, user: str | None = None
) -> list[VOI]:
    """Import a NIfTI label map (+ sidecar names/colours) as VOIs.

    NIfTI carries no DICOM frame of reference unless our sidecar recorded it, so
    the time point is required: the label map must be in that CT's patient space.
    """
    from dosimetry_core.io.nifti import read_nifti_label_colors, read_nifti_labels

    masks, geometry = read_nifti_labels(path)
    colours = read_nifti_label_colors(path)
    spec = {name: (m, geometry, colours.get(name)) for name, m in masks.items()}
    return _place_masks(store, case, spec, f"NIfTI {Path(path).name}", time_point, user)
