"""Import a DICOM folder tree into the case store.

Flow: scan headers -> read every image series -> group by patient and
administration -> pair each quantitative (SPECT/PET) series with its CT ->
one time point per functional acquisition -> attach the RT Structure Sets and
DICOM SEGs of the folder as draft VOIs on the CT of the same frame of reference
-> save the cases in one store transaction.  A series that cannot be read is
reported in ``skipped`` with the reason; the others still import; nothing
half-imported is left in the store.

The report (:class:`ImportReport`) speaks in series descriptions and times
(:meth:`ImportReport.summary_lines`), so a technologist can check the import
without reading UIDs; ``ImportReport.to_dict`` is the JSON contract of
``mrtdose import --json`` (keys are only ever added).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from dosimetry_core.errors import DosimetryError, InvalidInputError
from dosimetry_core.io.text import printable
from dosimetry_core.io.types import Conflict, LoadedSeries, SeriesFiles, Skipped
from dosimetry_core.model import (
    Administration,
    CalibrationStatus,
    Case,
    Geometry,
    ImageUnits,
    SeriesInfo,
    TimePoint,
    VoiKind,
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


#: A time point may hold up to this fraction more activity than the net
#: administered activity decayed to its acquisition before it is refused
#: (project choice: quantitative SPECT/CT recovers the activity of a phantom to
#: within about 10 %, MIRD Pamphlet No. 23, Dewaraja et al., J Nucl Med
#: 2012;53:1310-1325).
ACTIVITY_EXCESS_TOLERANCE = 0.10

#: Modalities of the contour objects attached to a case as draft VOIs.
STRUCTURE_MODALITIES = ("RTSTRUCT", "SEG")

_CALIBRATION_WORDS = {
    CalibrationStatus.VENDOR_BQML: "vendor",
    CalibrationStatus.CALIBRATION_FACTOR: "calibrated",
    CalibrationStatus.SUV_CONVERTED: "from SUV",
    CalibrationStatus.UNCALIBRATED: "uncalibrated",
    CalibrationStatus.NOT_APPLICABLE: "",
}


def _files(n: int) -> str:
    return f"{n} file" if n == 1 else f"{n} files"


@dataclass(frozen=True)
class ImportedTimePoint:
    """One time point of an imported case, described for people (no UIDs).

    Attributes
    ----------
    label
        ``TP1``, ``TP2``, ... in acquisition order.
    modality
        ``NM`` (SPECT) or ``PT``.
    series_description
        Series Description (0008,103E) of the SPECT/PET series.
    acquired_at
        Acquisition start of the SPECT/PET series.
    hours_after_administration
        Time of the acquisition after the case's first administration (h), or
        None when the case has no administration yet.
    n_files
        Number of DICOM files of the SPECT/PET series.
    units
        Units of the stored voxel values (``Bq/mL``, ``counts``).
    calibration
        How the values became Bq/mL (``vendor``, ``calibrated 9 cps/MBq``,
        ``uncalibrated``, ...).
    ct_description, ct_n_files
        Description and file count of the paired CT ("" and 0 without one).
    new
        True when this import added the time point (False: it was there).
    """

    label: str
    modality: str
    series_description: str
    acquired_at: datetime
    hours_after_administration: float | None
    n_files: int
    units: str
    calibration: str
    ct_description: str = ""
    ct_n_files: int = 0
    new: bool = True

    def words(self) -> str:
        """One line, e.g. ``TP2 · 24.0 h · NM 'SPECT Lu177 24h' · 128 files · Bq/mL vendor``."""
        hours = (
            f"{self.hours_after_administration:.1f} h"
            if self.hours_after_administration is not None
            else self.acquired_at.strftime("%Y-%m-%d %H:%M")
        )
        units = f"{self.units} {self.calibration}".strip()
        parts = [
            self.label,
            hours,
            f"{self.modality} '{self.series_description}'",
            _files(self.n_files),
            units,
        ]
        if self.ct_description or self.ct_n_files:
            parts.append(f"CT '{self.ct_description}' ({_files(self.ct_n_files)})")
        else:
            parts.append("no CT")
        return " · ".join(p for p in parts if p)

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "modality": self.modality,
            "series_description": self.series_description,
            "acquired_at": self.acquired_at.isoformat(),
            "hours_after_administration": self.hours_after_administration,
            "n_files": self.n_files,
            "units": self.units,
            "calibration": self.calibration,
            "ct_description": self.ct_description,
            "ct_n_files": self.ct_n_files,
            "new": self.new,
            "words": self.words(),
        }


@dataclass
class ImportedStructureSet:
    """An RT Structure Set or DICOM SEG found in the folder: where its VOIs went, or why not.

    Attributes
    ----------
    path
        The file.
    kind
        ``RTSTRUCT`` or ``SEG``.
    label
        Structure Set Label, else Series Description.
    patient_id
        Patient ID of the file.
    roi_names
        Names of its ROIs (RTSTRUCT) or segment labels (SEG).
    case_id, time_point
        Case and time point label (``TP1``) it is attached to; "" when not attached.
    vois_attached
        VOIs this import created (status draft).
    vois_existing
        ROIs already on that time point as VOIs of the same name (an earlier
        import of this file, or a VOI drawn since): left as they are.
    reason
        Why nothing of the file was attached ("" when attached).
    warnings
        Empty ROIs, contours outside the CT, ...
    """

    path: str
    kind: str
    label: str
    patient_id: str
    roi_names: list[str] = field(default_factory=list)
    case_id: str = ""
    time_point: str = ""
    vois_attached: list[str] = field(default_factory=list)
    vois_existing: list[str] = field(default_factory=list)
    reason: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def attached(self) -> bool:
        return bool(self.case_id) and not self.reason

    def words(self) -> str:
        """One line about the file for the summary."""
        what = f"{self.kind} '{self.label}'"
        if not self.attached:
            return f"{what} not attached: {self.reason}"
        line = f"{what} on {self.time_point}"
        if self.vois_attached:
            line += f": {len(self.vois_attached)} draft VOI(s) {', '.join(self.vois_attached)}"
        if self.vois_existing:
            line += f"; already in the case: {', '.join(self.vois_existing)}"
        return line

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "label": self.label,
            "patient_id": self.patient_id,
            "roi_names": list(self.roi_names),
            "case_id": self.case_id,
            "time_point": self.time_point,
            "attached": self.attached,
            "vois_attached": list(self.vois_attached),
            "vois_existing": list(self.vois_existing),
            "reason": self.reason,
            "warnings": list(self.warnings),
        }


@dataclass
class ImportedCase:
    """A case this import created or changed, with its time points and VOIs in words."""

    case_id: str
    patient_id: str
    time_points: int
    new_time_points: int
    created: bool
    patient_name: str = ""
    description: str = ""
    series: list[ImportedTimePoint] = field(default_factory=list)
    """Every time point of the case after the import (``new`` marks this import's)."""
    vois_attached: list[str] = field(default_factory=list)
    """Names of the draft VOIs this import attached from RTSTRUCT/SEG files."""

    def words(self) -> str:
        """Header line, e.g. ``Case case-1 · Demo^Lutetium (MRT-DEMO-001) · created · ...``."""
        verb = "created" if self.created else "updated"
        who = f"{self.patient_name} ({self.patient_id})" if self.patient_name else self.patient_id
        return (
            f"Case {self.case_id} · {who} · {verb} · {self.time_points} time point(s), "
            f"{self.new_time_points} new"
            + (f" · {len(self.vois_attached)} draft VOI(s) attached" if self.vois_attached else "")
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "time_points": self.time_points,
            "patient_id": self.patient_id,
            "new_time_points": self.new_time_points,
            "created": self.created,
            "patient_name": self.patient_name,
            "description": self.description,
            "series": [s.to_dict() for s in self.series],
            "vois_attached": list(self.vois_attached),
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
    structure_sets: list[ImportedStructureSet] = field(default_factory=list)
    """Every RTSTRUCT/SEG file of the folder: attached as draft VOIs, or why not."""
    conflicts: list[Conflict] = field(default_factory=list)
    """Files sharing a SOP Instance UID with other content (all paths named)."""
    n_already_present: int = 0
    """Functional series found in the folder that the store already held."""
    activity_above_administered: list[dict[str, Any]] = field(default_factory=list)
    """Time points imported with more activity than administered (flag given)."""

    @property
    def imported_anything(self) -> bool:
        """True when a case was created or changed, or the store already held a series."""
        return bool(self.cases) or self.n_already_present > 0

    def to_dict(self) -> dict[str, Any]:
        """The public JSON shape of ``mrtdose import --json`` (plus ``warnings``,
        ``calibrations`` — the stored QA calibrations applied —, ``structure_sets``,
        ``conflicts``, ``already_present``, ``imported`` and
        ``activity_above_administered``).  Strings are raw (JSON escapes them)."""
        return {
            "cases": [c.to_dict() for c in self.cases],
            "skipped": [s.to_dict() for s in self.skipped],
            "warnings": list(self.warnings),
            "calibrations": list(self.calibrations),
            "structure_sets": [s.to_dict() for s in self.structure_sets],
            "conflicts": [c.to_dict() for c in self.conflicts],
            "already_present": self.n_already_present,
            "imported": self.imported_anything,
            "activity_above_administered": list(self.activity_above_administered),
        }

    def summary_lines(self) -> list[str]:
        """The import in words: cases, time points, structure sets, skipped files, warnings.

        Series are named by their description, time after administration and
        file count, never by UID (the ``mrtdose import`` text output).  Every
        line goes through :func:`dosimetry_core.io.text.printable`: CR/LF, ANSI
        escapes and other control characters from headers or file names are
        escaped, so a header cannot forge or hide a line.
        """
        lines: list[str] = []
        for c in self.cases:
            lines.append(c.words())
            lines += [f"  {tp.words()}" + ("" if tp.new else " (already there)") for tp in c.series]
            for ss in self.structure_sets:
                if ss.case_id == c.case_id:
                    lines.append(f"  {ss.words()}")
        if not self.cases:
            lines.append("no case imported")
        for ss in self.structure_sets:
            if not ss.attached or ss.case_id not in {c.case_id for c in self.cases}:
                lines.append(ss.words())
        for conflict in self.conflicts:
            lines.append(f"conflict: {conflict.reason}")
        for s in self.skipped:
            lines.append(f"skipped {s.path}: {s.reason}")
        for w in self.warnings:
            lines.append(f"warning: {w}")
        return [printable(line) for line in lines]


def _storable(text: str) -> str:
    """``text`` as valid UTF-8 for the case store.

    A file name that is not valid UTF-8 reaches Python as lone surrogates
    (PEP 383); they cannot be written to the database, so each such byte is kept
    as ``\\xNN``.
    """
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")


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
    allow_activity_above_administered: bool = False,
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
    allow_activity_above_administered
        Import a time point whose total activity exceeds the case's net
        administered activity decayed to its acquisition (by more than
        :data:`ACTIVITY_EXCESS_TOLERANCE`); such time points are named in the
        report and in the audit entry.  By default they are refused.

    Returns
    -------
    ImportReport
        Cases created or extended (time points and VOIs described in words),
        the RTSTRUCT/SEG files and where they went, and skipped files/series
        with reasons.

    Raises
    ------
    InvalidInputError
        If ``root`` does not exist or the calibration factor is not positive.
    PermissionDeniedError
        If the store has accounts and nobody is logged in, or the user's role
        may not import (checked before anything is read or written).

    Notes
    -----
    An RT Structure Set or DICOM SEG is attached to the case of its patient
    whose time point has a CT in the same frame of reference (the CT series it
    references first): each ROI or segment becomes a VOI on that CT grid, status
    draft, kind from the standard organ list (:func:`dosimetry_core.segmentation.
    organs.match_organ`; else the RT ROI Interpreted Type; else the name), source
    ``"RTSTRUCT <SOP Instance UID>"`` or ``"SEG <SOP Instance UID>"``, in the same
    audited save as the images.  A VOI of the same name already on that time
    point is left as it is, so importing a folder again adds nothing.  A file
    whose frame of reference matches no CT is listed with the reason in
    ``structure_sets`` and ``skipped``.

    **Refusals.**  Every problem of one file or series is a ``skipped`` entry
    naming the file and the field, never an exception that stops the import:
    unreadable or hostile headers, non-finite or non-positive slopes and
    spacings, unparseable or impossible dates (before 1970, in the future, an
    acquisition before the administration in its header or in the case it
    would join), a SPECT/PET series without Patient ID (0010,0020) -- refused, so
    that it can never join another patient's case --, and a time point holding
    more activity than administered (unless allowed).  Files sharing a SOP
    Instance UID with different content are ``conflicts`` (see
    :func:`dosimetry_core.io.dicom_scan.scan_directory`).
    """
    from dosimetry_core.io.dicom_read import read_series
    from dosimetry_core.io.dicom_scan import scan_directory

    root = Path(root)
    if not root.exists():
        raise InvalidInputError(
            f"DICOM_DIR {printable(str(root))}: no such file or folder", field="dicom_dir"
        )
    if calibration_cps_per_mbq is not None and not (
        np.isfinite(calibration_cps_per_mbq) and calibration_cps_per_mbq > 0
    ):
        raise InvalidInputError(
            "--calibration-cps-per-mbq: calibration factor must be a positive number of "
            f"cps/MBq, got {calibration_cps_per_mbq}",
            field="calibration_cps_per_mbq",
        )
    _require_import_permission(store)
    out = ImportReport()
    report(progress, 0.0, f"scanning {root}")
    scan = scan_directory(root, progress=sub_progress(progress, 0.0, 0.2), cancel=cancel)
    out.skipped.extend(scan.skipped)
    out.conflicts.extend(scan.conflicts)
    out.n_files_seen = scan.n_files_seen

    loaded: list[LoadedSeries] = []
    image_series = [s for s in scan.series if s.modality in IMAGE_MODALITIES]
    structure_series = [s for s in scan.series if s.modality in STRUCTURE_MODALITIES]
    for s in scan.series:
        if s.modality not in IMAGE_MODALITIES + STRUCTURE_MODALITIES:
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
        except AssertionError:
            raise
        except Exception as exc:  # read_series names its errors; anything else is the file's
            out.skipped.append(
                Skipped(_series_path(s), f"cannot read the series ({type(exc).__name__}: {exc})")
            )
            continue
        if not ls.patient.patient_id:
            out.skipped.append(
                Skipped(
                    _series_path(s),
                    f"{ls.info.modality} series '{ls.info.series_description}' has no Patient ID "
                    "(0010,0020): refused, a study without a patient ID could join another "
                    "patient's case",
                )
            )
            continue
        ls.info.extra.setdefault("source_path", _storable(_series_path(s)))
        loaded.append(ls)
        out.warnings.extend(f"{_series_path(s)}: {w}" for w in ls.warnings)

    report(progress, 0.8, "building time points")
    by_patient: dict[str, list[LoadedSeries]] = {}
    for ls in loaded:
        by_patient.setdefault(ls.patient.patient_id, []).append(ls)

    pending: list[tuple[Case, int, bool]] = []
    new_series_uids: set[str] = set()
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
                out.skipped.append(
                    Skipped(
                        f.info.extra.get("source_path", f.info.series_description),
                        f"{f.info.modality} series '{f.info.series_description}' has no "
                        "acquisition date/time",
                    )
                )
                continue
            case, created = _case_for(f, cases, patient_id, out)
            if f.info.series_instance_uid in _existing_series_uids(case):
                out.n_already_present += 1
                out.warnings.append(
                    f"{f.info.modality} series '{f.info.series_description}' acquired "
                    f"{f.acquired_at:%Y-%m-%d %H:%M} is already in case "
                    f"{case.case_id}; not imported again"
                )
                continue
            refusal = _time_point_refusal(case, f, allow_activity_above_administered, out)
            if refusal:
                out.skipped.append(
                    Skipped(f.info.extra.get("source_path", f.info.series_description), refusal)
                )
                if created and not case.time_points:
                    cases.remove(case)
                continue
            paired = _pair_ct(f, cts)
            if paired is None:
                out.warnings.append(
                    f"{f.info.modality} series '{f.info.series_description}' has no CT in the same "
                    "frame of reference or study: time point without anatomy"
                )
            tp = _make_time_point(store, f, paired)
            new_series_uids.add(f.info.series_instance_uid)
            if paired is not None:
                used_ct.add(paired.info.series_instance_uid)
            case.time_points.append(tp)
            entry = next((p for p in pending if p[0] is case), None)
            if entry is None:
                pending.append((case, 1, created))
            else:
                pending[pending.index(entry)] = (case, entry[1] + 1, entry[2])
        known = set().union(*(_existing_series_uids(c) for c in cases)) if cases else set()
        for ct in cts:
            uid = ct.info.series_instance_uid
            if uid not in used_ct and uid not in known:  # a CT already in a case is no news
                when = f" acquired {ct.acquired_at:%Y-%m-%d %H:%M}" if ct.acquired_at else ""
                out.warnings.append(
                    f"CT series '{ct.info.series_description}'{when} "
                    "is not paired with a functional series"
                )

    for case, _, _ in pending:
        relabel_time_points(case)
    new_tp_ids = {
        tp.time_point_id
        for case, _, _ in pending
        for tp in case.time_points
        if tp.functional.series_instance_uid in new_series_uids
    }
    for n, s in enumerate(structure_series):
        check_cancel(cancel)
        report(
            progress,
            0.85 + 0.05 * n / max(len(structure_series), 1),
            f"attaching {s.modality} {n + 1}/{len(structure_series)}",
        )
        for path in s.paths:
            _attach_structure_file(store, s, path, pending, out)

    report(progress, 0.9, "saving cases")
    with store.transaction():
        for case, n_new, created in pending:
            attached = [
                v
                for ss in out.structure_sets
                if ss.case_id == case.case_id
                for v in ss.vois_attached
            ]
            store.save_case(
                case,
                audit=store.audit_spec(
                    "import",
                    source=_storable(str(root)),
                    new_time_points=n_new,
                    activity_above_administered_allowed=[
                        a["series_description"]
                        for a in out.activity_above_administered
                        if a["case_id"] == case.case_id
                    ],
                    vois_attached=attached,
                    structure_sets=[
                        _storable(ss.path)
                        for ss in out.structure_sets
                        if ss.case_id == case.case_id and ss.vois_attached
                    ],
                ),
            )
            out.cases.append(
                ImportedCase(
                    case.case_id,
                    case.patient.patient_id,
                    len(case.time_points),
                    n_new,
                    created,
                    patient_name=case.patient.name,
                    description=case.description,
                    series=[
                        _describe_time_point(case, tp, new_tp_ids)
                        for tp in case.sorted_time_points()
                    ],
                    vois_attached=attached,
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


def _administered_at_mbq(case: Case, at: datetime) -> float | None:
    """Net activity administered to the case before ``at``, decayed to ``at`` (MBq).

    Sum over the case's administrations at or before ``at`` of the net activity
    (:func:`dosimetry_core.physics.decay.net_administered_activity_mbq`) decayed
    from the administration to ``at``.  None when it cannot be computed (no
    administration, unknown nuclide).
    """
    from dosimetry_core.physics.decay import decay_activity_mbq, net_administered_activity_mbq

    total = 0.0
    found = False
    for adm in case.administrations:
        if adm.time > at:
            continue
        try:
            total += decay_activity_mbq(
                net_administered_activity_mbq(adm), adm.nuclide, adm.time, at
            )
        except DosimetryError:
            return None
        found = True
    return total if found else None


def _time_point_refusal(case: Case, f: LoadedSeries, allow_above: bool, out: ImportReport) -> str:
    """Why this acquisition cannot become a time point of ``case`` ("" when it can).

    * the acquisition is before the case's first administration;
    * its total activity (Bq/mL volumes) exceeds the net administered activity
      decayed to the acquisition by more than :data:`ACTIVITY_EXCESS_TOLERANCE`,
      unless ``allow_above`` (then recorded in ``out.activity_above_administered``).
    """
    assert f.acquired_at is not None
    what = f"{f.info.modality} series '{f.info.series_description}'"
    first = case.first_administration
    if first is not None and f.acquired_at < first.time:
        return (
            f"{what}: acquisition {f.acquired_at:%Y-%m-%d %H:%M} is before the administration "
            f"of {first.time:%Y-%m-%d %H:%M} in case {case.case_id} (AcquisitionDate/Time)"
        )
    if f.volume.units != ImageUnits.BQML:
        return ""
    total = float(f.volume.total_activity_mbq())
    if not np.isfinite(total):
        return f"{what}: total activity is not a finite number (RescaleSlope)"
    administered = _administered_at_mbq(case, f.acquired_at)
    if administered is None or total <= administered * (1.0 + ACTIVITY_EXCESS_TOLERANCE):
        return ""
    words = (
        f"{what}: total activity {total:.4g} MBq is more than the net administered "
        f"activity decayed to the scan, {administered:.4g} MBq, in case {case.case_id}"
    )
    if not allow_above:
        return (
            words + " (check RescaleSlope, Units and the administration; "
            "--allow-activity-above-administered imports it anyway)"
        )
    out.warnings.append(words + "; imported as asked (--allow-activity-above-administered)")
    out.activity_above_administered.append(
        {
            "case_id": case.case_id,
            "series_description": f.info.series_description,
            "series_instance_uid": f.info.series_instance_uid,
            "total_activity_mbq": total,
            "administered_at_scan_mbq": administered,
        }
    )
    return ""


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


# ------------------------------------------------------------------ permission
def _require_import_permission(store: Any) -> None:
    """Refuse before reading anything when the store has accounts and the user may not import."""
    from dosimetry_core.errors import PermissionDeniedError
    from dosimetry_core.store.permissions import require

    has_users = getattr(store, "has_users", None)
    if has_users is None or not has_users():
        return
    actor = getattr(store, "actor", None)
    if actor is None:
        raise PermissionDeniedError("this store has user accounts: log in to import studies")
    require(actor, "import")


# -------------------------------------------------------------------- summary
def _calibration_words(info: SeriesInfo) -> str:
    words = _CALIBRATION_WORDS.get(info.calibration_status, str(info.calibration_status))
    if info.calibration_status == CalibrationStatus.CALIBRATION_FACTOR and info.cps_per_mbq:
        words = f"calibrated {info.cps_per_mbq:g} cps/MBq"
    return words


def _describe_time_point(case: Case, tp: TimePoint, new_ids: set[str]) -> ImportedTimePoint:
    ct = tp.anatomical
    return ImportedTimePoint(
        label=tp.label,
        modality=tp.modality,
        series_description=tp.functional.series_description,
        acquired_at=tp.acquired_at,
        hours_after_administration=case.hours_after_administration(tp),
        n_files=tp.functional.n_files,
        units=str(tp.units),
        calibration=_calibration_words(tp.functional),
        ct_description=ct.series_description if ct is not None else "",
        ct_n_files=ct.n_files if ct is not None else 0,
        new=tp.time_point_id in new_ids,
    )


# ------------------------------------------------------------ structure sets
def _kind_for_roi(name: str, rt_type: str) -> VoiKind | None:
    """VOI kind of an ROI: the standard organ list by name, else the RT ROI Interpreted Type.

    None lets :func:`dosimetry_core.pipeline.contouring.set_voi_mask` decide by
    the name (``Tumour_1`` -> lesion, otherwise organ).
    """
    from dosimetry_core.segmentation.organs import match_organ

    spec = match_organ(name)
    if spec is not None:
        return VoiKind(spec.kind)
    from dosimetry_core.pipeline.contour_io import _kind_from_rt

    return _kind_from_rt(rt_type)


@dataclass
class _Contours:
    """What one RTSTRUCT/SEG file holds, before it is put on a CT grid."""

    sop_instance_uid: str
    label: str
    frame_of_reference_uids: set[str]
    referenced_series_uid: str
    names: list[str]
    rt_types: dict[str, str]
    colours: dict[str, tuple[int, int, int] | None]
    structure_set: Any = None
    """The RTSTRUCT's :class:`~dosimetry_core.io.rtstruct.StructureSet` (None for SEG)."""
    seg_masks: dict[str, tuple[Any, Geometry]] = field(default_factory=dict)
    """SEG: segment label -> (mask [z, y, x], its geometry)."""


def _read_contours(series: SeriesFiles, path: Path) -> _Contours:
    import pydicom

    from dosimetry_core.io.rtstruct import read_rtstruct
    from dosimetry_core.io.seg import read_seg

    try:
        head = pydicom.dcmread(path, stop_before_pixels=True)
    except Exception as exc:  # the scan read it; a failure here is a damaged file
        raise DosimetryError(f"cannot read the header again ({type(exc).__name__})") from exc
    sop = str(getattr(head, "SOPInstanceUID", "") or "")
    description = str(getattr(head, "SeriesDescription", "") or series.series_description)
    if series.modality == "RTSTRUCT":
        ss = read_rtstruct(path)
        fors = {ss.frame_of_reference_uid} | {r.frame_of_reference_uid for r in ss.rois}
        return _Contours(
            sop_instance_uid=sop,
            label=ss.label or description,
            frame_of_reference_uids={u for u in fors if u},
            referenced_series_uid=ss.referenced_series_uid,
            names=ss.names,
            rt_types={r.name: r.kind for r in ss.rois},
            colours={r.name: r.color_rgb for r in ss.rois},
            structure_set=ss,
        )
    masks = read_seg(path)
    ref_series = ""
    refs = getattr(head, "ReferencedSeriesSequence", None)
    if refs:
        ref_series = str(getattr(refs[0], "SeriesInstanceUID", "") or "")
    fors = {g.frame_of_reference_uid for _, g, _ in masks.values()}
    fors.add(str(getattr(head, "FrameOfReferenceUID", "") or ""))
    return _Contours(
        sop_instance_uid=sop,
        label=description,
        frame_of_reference_uids={u for u in fors if u},
        referenced_series_uid=ref_series,
        names=list(masks),
        rt_types={},
        colours={name: c for name, (_, _, c) in masks.items()},
        seg_masks={name: (m, g) for name, (m, g, _) in masks.items()},
    )


def _target_time_point(cases: list[Case], contours: _Contours) -> tuple[Case, TimePoint] | None:
    """The case and time point whose CT is in the file's frame of reference.

    The CT series the file references wins; otherwise the earliest time point
    of that frame of reference.
    """
    matches = [
        (case, tp)
        for case in cases
        for tp in case.sorted_time_points()
        if tp.anatomical is not None
        and tp.anatomical.volume is not None
        and tp.anatomical.frame_of_reference_uid in contours.frame_of_reference_uids
    ]
    for case, tp in matches:
        assert tp.anatomical is not None
        if (
            contours.referenced_series_uid
            and tp.anatomical.series_instance_uid == contours.referenced_series_uid
        ):
            return case, tp
    return matches[0] if matches else None


def _attach_structure_file(
    store: Any,
    series: SeriesFiles,
    path: Path,
    pending: list[tuple[Case, int, bool]],
    out: ImportReport,
) -> None:
    """Attach the ROIs of one RTSTRUCT/SEG file to its case as draft VOIs (see import_directory)."""
    from dosimetry_core.imaging.resample import resample
    from dosimetry_core.io.rtstruct import rtstruct_to_masks
    from dosimetry_core.pipeline.contouring import ct_of, set_voi_mask

    entry = ImportedStructureSet(
        path=str(path),
        kind=series.modality,
        label=series.series_description,
        patient_id=series.patient_id,
    )
    out.structure_sets.append(entry)

    def refuse(reason: str) -> None:
        entry.reason = reason
        out.skipped.append(Skipped(str(path), f"{series.modality} not attached: {reason}"))

    try:
        contours = _read_contours(series, path)
    except DosimetryError as exc:
        refuse(str(exc))
        return
    except AssertionError:
        raise
    except Exception as exc:  # a hostile structure set: reported, the import goes on
        refuse(f"malformed {series.modality} ({type(exc).__name__}: {exc})")
        return
    entry.label = contours.label or entry.label
    entry.roi_names = list(contours.names)
    if not series.patient_id:
        refuse("no Patient ID (0010,0020): it could be attached to another patient's case")
        return
    cases = _cases_for_patient(store, series.patient_id, pending)
    if not cases:
        refuse(
            f"no case of patient {series.patient_id} in this folder or in the store "
            "(import its SPECT/CT or PET/CT first)"
        )
        return
    target = _target_time_point(cases, contours)
    if target is None:
        fors = ", ".join(sorted(contours.frame_of_reference_uids)) or "none"
        refuse(
            f"its frame of reference ({fors}) is not that of any CT of patient "
            f"{series.patient_id} ({', '.join(c.case_id for c in cases)}); register the "
            "images and import it on a chosen time point (mrtdose contour import-rtstruct "
            "--time-point)"
        )
        return
    case, tp = target
    ct = ct_of(store, tp)
    try:
        if contours.structure_set is not None:
            raster = rtstruct_to_masks(contours.structure_set, ct.geometry)
            masks = dict(raster.masks)
            entry.warnings.extend(raster.warnings)
        else:
            masks = {}
            for name, (mask, geometry) in contours.seg_masks.items():
                if not geometry.same_grid(ct.geometry):
                    moved = resample(
                        Volume(mask.astype(np.float32), geometry, ImageUnits.MASK),
                        ct.geometry,
                        order=1,
                    )
                    mask = moved.array >= 0.5
                masks[name] = mask
    except DosimetryError as exc:
        refuse(str(exc))
        return
    except AssertionError:
        raise
    except Exception as exc:  # contours that cannot be put on the CT grid
        refuse(f"contours cannot be rasterised ({type(exc).__name__}: {exc})")
        return
    source = f"{series.modality} {contours.sop_instance_uid}"
    actor = getattr(store, "actor", None)
    user = actor.username if actor is not None else None
    on_tp = {v.name.lower() for v in case.vois if v.time_point_id == tp.time_point_id}
    for name in contours.names:
        mask = masks.get(name)
        if mask is None:
            continue
        if name.lower() in on_tp:
            entry.vois_existing.append(name)
            continue
        if not mask.any():
            entry.warnings.append(f"ROI {name!r} covers no voxel of the CT of {tp.label}; skipped")
            continue
        set_voi_mask(
            store,
            case,
            name,
            mask,
            ct.geometry,
            time_point=tp,
            operation=source,
            user=user,
            kind=_kind_for_roi(name, contours.rt_types.get(name, "")),
            color_rgb=contours.colours.get(name),
        )
        on_tp.add(name.lower())
        entry.vois_attached.append(name)
    entry.case_id = case.case_id
    entry.time_point = tp.label
    out.warnings.extend(f"{path.name}: {w}" for w in entry.warnings)
    if entry.vois_attached and not any(p[0] is case for p in pending):
        pending.append((case, 0, False))
