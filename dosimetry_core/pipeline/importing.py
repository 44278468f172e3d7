"""Import a DICOM folder tree into the case store.

Flow: scan headers -> read every image series -> group by patient and
administration -> pair each quantitative (SPECT/PET) series with its CT ->
one time point per functional acquisition -> save the cases in one store
transaction.  A series that cannot be read is reported in ``skipped`` with the
reason; the others still import; nothing half-imported is left in the store.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from dosimetry_core.errors import DosimetryError, InvalidInputError
from dosimetry_core.io.types import LoadedSeries, SeriesFiles, Skipped
from dosimetry_core.model import (
    Administration,
    CalibrationStatus,
    Case,
    ImageUnits,
    SeriesInfo,
    TimePoint,
    Volume,
)
from dosimetry_core.progress import (
    CancelCheck,
    ProgressCallback,
    check_cancel,
    report,
    sub_progress,
)

log = logging.getLogger(__name__)

FUNCTIONAL_MODALITIES = ("NM", "PT")
ANATOMICAL_MODALITIES = ("CT",)
IMAGE_MODALITIES = FUNCTIONAL_MODALITIES + ANATOMICAL_MODALITIES

#: Two administrations of one patient closer than this are taken as the same one.
SAME_ADMINISTRATION_TOLERANCE = timedelta(minutes=5)
#: A CT is paired with a functional series of the same study acquired within this window.
CT_PAIRING_WINDOW = timedelta(hours=2)


@dataclass
class ImportedCase:
    case_id: str
    patient_id: str
    time_points: int
    new_time_points: int
    created: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "time_points": self.time_points,
            "patient_id": self.patient_id,
            "new_time_points": self.new_time_points,
            "created": self.created,
        }


@dataclass
class ImportReport:
    """What an import did: cases created or extended, and what was skipped and why."""

    cases: list[ImportedCase] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    n_files_seen: int = 0
    calibrations: list[dict[str, Any]] = field(default_factory=list)
    """Stored camera calibrations applied automatically (one entry per series)."""

    def to_dict(self) -> dict[str, Any]:
        """The public JSON shape of ``mrtdose import --json`` (plus ``warnings``
        and ``calibrations``, the stored QA calibrations applied)."""
        return {
            "cases": [c.to_dict() for c in self.cases],
            "skipped": [s.to_dict() for s in self.skipped],
            "warnings": list(self.warnings),
            "calibrations": list(self.calibrations),
        }


def _series_path(series: SeriesFiles) -> str:
    if not series.paths:
        return series.series_instance_uid
    parents = {p.parent for p in series.paths}
    return (
        str(series.paths[0].parent)
        if len(parents) == 1 and len(series.paths) > 1
        else str(series.paths[0])
    )


def _compact_ct(volume: Volume) -> Volume:
    """Store CT as int16 when its HU values are integers in range (halves the blob)."""
    arr = volume.array
    if arr.dtype == np.int16:
        return volume
    if np.issubdtype(arr.dtype, np.floating):
        rounded = np.rint(arr)
        if (
            np.all(rounded == arr)
            and rounded.min(initial=0) >= np.iinfo(np.int16).min
            and rounded.max(initial=0) <= np.iinfo(np.int16).max
        ):
            return volume.with_array(rounded.astype(np.int16))
        return volume.with_array(arr.astype(np.float32))
    if np.issubdtype(arr.dtype, np.integer) and arr.min() >= -32768 and arr.max() <= 32767:
        return volume.with_array(arr.astype(np.int16))
    return volume


def _functional_array(volume: Volume) -> Volume:
    return (
        volume
        if volume.array.dtype == np.float32
        else volume.with_array(volume.array.astype(np.float32))
    )


def _pair_ct(functional: LoadedSeries, cts: list[LoadedSeries]) -> LoadedSeries | None:
    """Choose the CT of a functional series: same frame of reference first, then same study."""
    f = functional.info
    same_for = [
        c
        for c in cts
        if f.frame_of_reference_uid and c.info.frame_of_reference_uid == f.frame_of_reference_uid
    ]
    candidates = same_for or [c for c in cts if c.info.study_instance_uid == f.study_instance_uid]
    if not candidates:
        return None
    if functional.acquired_at is None:
        return candidates[0]
    t = functional.acquired_at

    def distance(c: LoadedSeries) -> float:
        return abs((c.acquired_at - t).total_seconds()) if c.acquired_at else float("inf")

    best = min(candidates, key=distance)
    if not same_for and distance(best) > CT_PAIRING_WINDOW.total_seconds():
        return None
    return best


def _same_administration(a: Administration, b: Administration) -> bool:
    return a.nuclide == b.nuclide and abs(a.time - b.time) <= SAME_ADMINISTRATION_TOLERANCE


def _existing_series_uids(case: Case) -> set[str]:
    uids: set[str] = set()
    for tp in case.time_points:
        uids.add(tp.functional.series_instance_uid)
        if tp.anatomical is not None:
            uids.add(tp.anatomical.series_instance_uid)
    return uids


def relabel_time_points(case: Case) -> None:
    """Label time points TP1, TP2, ... in acquisition order."""
    for n, tp in enumerate(case.sorted_time_points(), start=1):
        tp.label = f"TP{n}"


def import_directory(
    store: Any,
    root: str | Path,
    *,
    calibration_cps_per_mbq: float | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
) -> ImportReport:
    """Import every SPECT/CT and PET/CT acquisition found under ``root``.

    Parameters
    ----------
    store
        A :class:`dosimetry_core.store.CaseStore`.
    root
        Folder to scan recursively (non-DICOM files are skipped with a reason).
    calibration_cps_per_mbq
        Camera calibration factor (cps/MBq) applied to count-based NM series
        that need one (see :func:`dosimetry_core.io.dicom_read.read_series` for
        the duration convention).  Vendor Bq/mL series ignore it.  When None,
        a count-based NM series gets the camera calibration stored in the QA
        records for its device key and nuclide, valid at its acquisition
        (``mrtdose qa calibrate``), when there is one.

    Returns
    -------
    ImportReport
        Cases created or extended, and skipped files/series with reasons.

    Raises
    ------
    InvalidInputError
        If ``root`` does not exist or the calibration factor is not positive.
    """
    from dosimetry_core.io.dicom_read import read_series
    from dosimetry_core.io.dicom_scan import scan_directory

    root = Path(root)
    if not root.exists():
        raise InvalidInputError(f"{root}: no such file or folder")
    if calibration_cps_per_mbq is not None and not (calibration_cps_per_mbq > 0):
        raise InvalidInputError(
            "calibration factor must be a positive number of cps/MBq, "
            f"got {calibration_cps_per_mbq}"
        )
    out = ImportReport()
    report(progress, 0.0, f"scanning {root}")
    scan = scan_directory(root, progress=sub_progress(progress, 0.0, 0.2), cancel=cancel)
    out.skipped.extend(scan.skipped)
    out.n_files_seen = scan.n_files_seen

    loaded: list[LoadedSeries] = []
    image_series = [s for s in scan.series if s.modality in IMAGE_MODALITIES]
    for s in scan.series:
        if s.modality not in IMAGE_MODALITIES:
            out.skipped.append(
                Skipped(
                    _series_path(s),
                    f"{s.modality or 'unknown'} series is not an image series for a time point",
                )
            )
    for n, s in enumerate(image_series):
        check_cancel(cancel)
        report(
            progress,
            0.2 + 0.6 * n / max(len(image_series), 1),
            f"reading {s.modality} series {n + 1}/{len(image_series)}",
        )
        try:
            ls = read_series(s, calibration_cps_per_mbq=calibration_cps_per_mbq)
            if calibration_cps_per_mbq is None:
                ls = _apply_stored_calibration(store, s, ls, out)
        except DosimetryError as exc:
            out.skipped.append(Skipped(_series_path(s), str(exc)))
            continue
        ls.info.extra.setdefault("source_path", _series_path(s))
        loaded.append(ls)
        out.warnings.extend(f"{_series_path(s)}: {w}" for w in ls.warnings)

    report(progress, 0.8, "building time points")
    by_patient: dict[str, list[LoadedSeries]] = {}
    for ls in loaded:
        by_patient.setdefault(ls.patient.patient_id, []).append(ls)

    pending: list[tuple[Case, int, bool]] = []
    for patient_id, series in by_patient.items():
        functionals = [ls for ls in series if ls.info.modality in FUNCTIONAL_MODALITIES]
        cts = [ls for ls in series if ls.info.modality in ANATOMICAL_MODALITIES]
        if not functionals:
            for ct in cts:
                out.skipped.append(
                    Skipped(
                        ct.info.extra.get("source_path", ct.info.series_instance_uid),
                        "CT without a SPECT or PET acquisition of the same patient: no time point",
                    )
                )
            continue
        cases = _cases_for_patient(store, patient_id, pending)
        used_ct: set[str] = set()
        for f in sorted(functionals, key=lambda x: x.acquired_at or datetime.min):
            check_cancel(cancel)
            if f.acquired_at is None:
                out.skipped.append(Skipped(f.info.series_instance_uid, "no acquisition date/time"))
                continue
            case, created = _case_for(f, cases, patient_id, out)
            if f.info.series_instance_uid in _existing_series_uids(case):
                out.warnings.append(
                    f"series {f.info.series_instance_uid} is already in case "
                    f"{case.case_id}; not imported again"
                )
                continue
            paired = _pair_ct(f, cts)
            if paired is None:
                out.warnings.append(
                    f"{f.info.modality} series '{f.info.series_description}' has no CT in the same "
                    "frame of reference or study: time point without anatomy"
                )
            tp = _make_time_point(store, f, paired)
            if paired is not None:
                used_ct.add(paired.info.series_instance_uid)
            case.time_points.append(tp)
            entry = next((p for p in pending if p[0] is case), None)
            if entry is None:
                pending.append((case, 1, created))
            else:
                pending[pending.index(entry)] = (case, entry[1] + 1, entry[2])
        for ct in cts:
            if ct.info.series_instance_uid not in used_ct:
                out.warnings.append(
                    f"CT series '{ct.info.series_description}' ({ct.info.series_instance_uid}) "
                    "is not paired with a functional series"
                )

    report(progress, 0.9, "saving cases")
    with store.transaction():
        for case, n_new, created in pending:
            relabel_time_points(case)
            store.save_case(case, audit=store.audit_spec("import", source=str(root)))
            out.cases.append(
                ImportedCase(
                    case.case_id, case.patient.patient_id, len(case.time_points), n_new, created
                )
            )
    report(progress, 1.0, f"imported {sum(c.new_time_points for c in out.cases)} time point(s)")
    return out


def _apply_stored_calibration(
    store: Any, series: SeriesFiles, ls: LoadedSeries, out: ImportReport
) -> LoadedSeries:
    """Re-read an uncalibrated count-based NM series with the stored QA calibration.

    The camera calibration valid at the acquisition for the series' device key
    (manufacturer, model, serial, collimator, energy window, reconstruction) and
    nuclide (:func:`dosimetry_core.qa.records.lookup_calibration`); the record used
    is named in ``info.extra`` and in the import report.  Without one the series
    stays uncalibrated, as before.
    """
    from dosimetry_core.io.dicom_read import read_series

    if (
        ls.info.modality != "NM"
        or ls.info.calibration_status != CalibrationStatus.UNCALIBRATED
        or ls.acquired_at is None
        or not ls.info.nuclide
        or not series.paths
        or not hasattr(store, "_read")
    ):
        return ls
    from dosimetry_core.qa.records import device_key_from_file, lookup_calibration

    key = device_key_from_file(series.paths[0]).key
    record = lookup_calibration(store, key, ls.info.nuclide, ls.acquired_at)
    if record is None:
        return ls
    cf = float(record.payload["cps_per_mbq"])
    calibrated = read_series(series, calibration_cps_per_mbq=cf)
    calibrated.info.extra["calibration_record_id"] = record.record_id
    calibrated.info.extra["calibration_device_key"] = key
    out.calibrations.append(
        {
            "series_instance_uid": calibrated.info.series_instance_uid,
            "record_id": record.record_id,
            "cps_per_mbq": cf,
            "device_key": key,
            "nuclide": record.nuclide,
            "measured_at": record.measured_at.isoformat(),
            "status": record.status,
        }
    )
    if record.status != "ok":
        calibrated.warnings.append(
            f"stored calibration {record.record_id} ({cf:.4g} cps/MBq) has constancy status "
            f"{record.status!r}: review it"
        )
    return calibrated


def _cases_for_patient(
    store: Any, patient_id: str, pending: list[tuple[Case, int, bool]]
) -> list[Case]:
    cases = [p[0] for p in pending if p[0].patient.patient_id == patient_id]
    known = {c.case_id for c in cases}
    for summary in store.find_cases(patient_id=patient_id):
        if summary.case_id not in known:
            cases.append(store.load_case(summary.case_id))
    return cases


def _case_for(
    f: LoadedSeries, cases: list[Case], patient_id: str, out: ImportReport
) -> tuple[Case, bool]:
    """Find the case of this acquisition's administration, or start a new one."""
    adm = f.administration
    if adm is not None:
        for case in cases:
            if any(_same_administration(adm, a) for a in case.administrations):
                return case, False
        # A case without any administration yet but with the same patient can take it
        for case in cases:
            if not case.administrations:
                case.administrations.append(adm)
                return case, False
        case = Case(patient=f.patient, administrations=[adm], description=adm.radiopharmaceutical)
        cases.append(case)
        return case, True
    if cases:
        # No administration in the header: attach to the latest case of the patient
        latest = max(
            cases,
            key=lambda c: c.first_administration.time if c.first_administration else c.created_at,
        )
        return latest, False
    out.warnings.append(
        f"patient {patient_id}: no administration found in the DICOM headers; "
        "enter it before kinetics (activity, nuclide, time)"
    )
    case = Case(patient=f.patient)
    cases.append(case)
    return case, True


def _make_time_point(store: Any, f: LoadedSeries, ct: LoadedSeries | None) -> TimePoint:
    fvol = _functional_array(f.volume)
    finfo: SeriesInfo = f.info
    finfo.volume = store.put_volume(fvol, description=finfo.series_description)
    total = fvol.total_activity_mbq() if fvol.units == ImageUnits.BQML else None
    if (
        fvol.units == ImageUnits.BQML
        and finfo.calibration_status == CalibrationStatus.NOT_APPLICABLE
    ):
        finfo.calibration_status = CalibrationStatus.VENDOR_BQML
    ainfo: SeriesInfo | None = None
    if ct is not None:
        cvol = _compact_ct(ct.volume)
        ainfo = ct.info
        ainfo.volume = store.put_volume(cvol, description=ainfo.series_description)
    assert f.acquired_at is not None
    return TimePoint(
        acquired_at=f.acquired_at,
        modality=finfo.modality,
        functional=finfo,
        anatomical=ainfo,
        duration_s=f.duration_s,
        total_activity_mbq=total,
    )
