"""Export a case as DICOM: RT Dose, RTSTRUCT/SEG, report PDF, optionally anonymised.

Everything is first written *identified* into a staging folder, linked to the
source study (same Study Instance UID and Frame of Reference UID as the
reference time point's SPECT/CT), then either moved to ``out_dir`` or passed
through :func:`dosimetry_core.io.anonymize.anonymize_file` -- one de-identification
path for every object, so pseudonyms, UIDs and date shifts agree across the
exported files (and across exports made with the same secret).

Source images: the store keeps voxels, not the original files.  With
``images=True`` (the default of an anonymised export) each time point's SPECT
(Bq/mL, or counts when uncalibrated) and CT (HU) are written back with
:mod:`dosimetry_core.io.dicom_write` under their original study/series/frame of
reference UIDs, with the case's administration in the Radiopharmaceutical
Information Sequence, so the export re-imports as a case with the same time
intervals.  RTSTRUCT/SEG reference those CT files, or the original CT files of a
folder given as ``ct_dir``.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom.uid import generate_uid

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.io.types import DicomWriteContext
from dosimetry_core.model import Case, DerivedKind, ImageUnits, TimePoint
from dosimetry_core.progress import ProgressCallback, report
from dosimetry_core.store.repository import CaseRepository

__all__ = ["ExportResult", "export_case"]


@dataclass
class ExportResult:
    """What an export wrote."""

    out_dir: Path
    files: dict[str, list[Path]] = field(default_factory=dict)
    """Written files by kind: CT, NM, RTDOSE, RTSTRUCT, SEG, DOC."""
    anonymized: bool = False
    pseudonym: str | None = None
    date_shift_days: int | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def n_files(self) -> int:
        return sum(len(v) for v in self.files.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "out_dir": str(self.out_dir),
            "anonymized": self.anonymized,
            "pseudonym": self.pseudonym,
            "date_shift_days": self.date_shift_days,
            "n_files": self.n_files,
            "files": {k: [str(p) for p in v] for k, v in self.files.items()},
            "warnings": list(self.warnings),
        }


def _software_version() -> str:
    from dosimetry_core import __version__

    return f"mrtdose {__version__}"


def _context(case: Case, tp: TimePoint, modality: str) -> DicomWriteContext:
    p = case.patient
    series = tp.functional if modality != "CT" else tp.anatomical
    assert series is not None
    adm = case.first_administration
    return DicomWriteContext(
        patient_id=p.patient_id,
        patient_name=p.name,
        study_instance_uid=series.study_instance_uid or str(generate_uid()),
        frame_of_reference_uid=series.frame_of_reference_uid,
        study_datetime=tp.acquired_at,
        acquisition_datetime=tp.acquired_at,
        series_number=1 if modality != "CT" else 2,
        series_description=series.series_description,
        series_instance_uid=series.series_instance_uid,
        patient_birth_date=p.birth_date,
        patient_sex=p.sex,
        patient_weight_kg=p.weight_kg,
        patient_height_cm=p.height_cm,
        manufacturer=series.manufacturer,
        manufacturer_model=series.manufacturer_model,
        station_name=series.station_name,
        device_serial_number=series.device_serial_number,
        nuclide=(adm.nuclide if adm else None) if modality != "CT" else None,
        radiopharmaceutical=adm.radiopharmaceutical if adm else "",
        injected_activity_mbq=adm.activity_mbq if adm and modality != "CT" else None,
        injection_datetime=adm.time if adm and modality != "CT" else None,
        acquisition_duration_s=tp.duration_s if modality != "CT" else None,
    )


def _write_images(
    store: CaseRepository, case: Case, staging: Path
) -> tuple[dict[str, list[Path]], list[str]]:
    """Write every time point's SPECT and CT; returns files by time point id + "NM"/"CT"."""
    from dosimetry_core.io.dicom_write import write_ct_series, write_nm_tomo

    out: dict[str, list[Path]] = {}
    warnings: list[str] = []
    for tp in case.sorted_time_points():
        f = tp.functional
        if f.volume is not None and tp.modality == "NM":
            vol = store.load_volume(f.volume)
            style = "siemens-bqml" if vol.units == ImageUnits.BQML else "hermes-counts"
            out[f"NM:{tp.time_point_id}"] = write_nm_tomo(
                vol, staging / tp.label / "NM", _context(case, tp, "NM"), style=style
            )
        elif f.volume is not None:
            warnings.append(f"{tp.label}: {tp.modality} images are not re-written (SPECT only)")
        if tp.anatomical is not None and tp.anatomical.volume is not None:
            ct = store.load_volume(tp.anatomical.volume)
            out[f"CT:{tp.time_point_id}"] = write_ct_series(
                ct, staging / tp.label / "CT", _context(case, tp, "CT")
            )
    return out, warnings


def _ct_instances(paths: list[Path]) -> list[tuple[str, str]]:
    import pydicom

    refs = []
    for p in paths:
        ds = pydicom.dcmread(p, stop_before_pixels=True)
        refs.append((str(ds.SOPClassUID), str(ds.SOPInstanceUID)))
    return refs


def export_case(
    store: CaseRepository,
    case_id: str,
    out_dir: str | Path,
    *,
    rtdose: bool = True,
    rtstruct: bool = True,
    seg: bool = False,
    report_pdf: bytes | None = None,
    anonymize: bool = False,
    secret: str | None = None,
    date_shift_days: int | None = None,
    images: bool | None = None,
    ct_dir: str | Path | None = None,
    retain_patient_characteristics: bool = False,
    retain_structure_names: bool = True,
    progress: ProgressCallback | None = None,
) -> ExportResult:
    """Export a case's results as DICOM objects linked to its source study.

    Parameters
    ----------
    store
        A :class:`dosimetry_core.store.CaseStore`.
    case_id
        The case.
    out_dir
        Destination folder (created; files of the same name are overwritten).
    rtdose
        One RT Dose per current dose map (``RTDOSE/``).
    rtstruct, seg
        The VOIs of every time point that has VOIs, as RTSTRUCT / DICOM SEG on that
        time point's CT; needs the CT files: ``images`` or ``ct_dir``.  A time
        point without VOIs is skipped with a warning.
    report_pdf
        A PDF report to file as Encapsulated PDF (``DOC/``).  Refused in an
        anonymised export: its text cannot be de-identified here (PS3.15 Table
        E.1-1 replaces Encapsulated Document).
    anonymize
        De-identify every file (:mod:`dosimetry_core.io.anonymize`).
    secret
        Project secret for the pseudonyms (required with ``anonymize``).
    date_shift_days
        Days added to all dates; default a per-patient shift from the secret.
    images
        Re-write the SPECT and CT of every time point from the store; default
        ``anonymize``.  (Not anonymised, the files carry the original series UIDs
        with new instance UIDs: do not send them back to the source PACS.)
    ct_dir
        Folder with the original CT files, used by RTSTRUCT/SEG when ``images``
        is off.
    retain_patient_characteristics
        Keep sex, age, size and weight in an anonymised export (PS3.15 E.3.5).
    retain_structure_names
        Keep ROI names (organ/lesion names, which the Basic Profile empties) when they
        contain no part of the patient's name or ID
        (:func:`dosimetry_core.io.anonymize.anonymize_dataset`).

    Returns
    -------
    ExportResult

    Raises
    ------
    InvalidInputError
        Anonymisation without a secret, a PDF in an anonymised export, RTSTRUCT/SEG
        without CT files, nothing to export.
    """
    from dosimetry_core.io.anonymize import Pseudonymiser, anonymize_file
    from dosimetry_core.io.encapsulated_pdf import write_encapsulated_pdf
    from dosimetry_core.io.rtdose import StudyRef, write_rtdose
    from dosimetry_core.pipeline.contour_io import (
        export_rtstruct_from_case,
        export_seg_from_case,
    )
    from dosimetry_core.pipeline.tia_map import reference_time_point

    pseudo = None
    if anonymize:
        if not secret:
            raise InvalidInputError("anonymised export needs the project secret (--secret-file)")
        pseudo = Pseudonymiser(secret, date_shift_days)
        if report_pdf is not None:
            raise InvalidInputError(
                "a report PDF cannot be de-identified automatically (its text names the "
                "patient); export it without anonymisation or give an anonymised report"
            )
    elif date_shift_days is not None:
        raise InvalidInputError("date_shift_days applies only to an anonymised export")
    if store.actor is not None:
        from dosimetry_core.store.permissions import require

        require(store.actor, "export")  # before any file is written
    case = store.load_case(case_id)
    ref = reference_time_point(case)
    do_images = anonymize if images is None else bool(images)
    out = Path(out_dir)
    result = ExportResult(out_dir=out, anonymized=anonymize)
    staged: list[tuple[str, Path]] = []  # (kind, path) in the staging folder
    with tempfile.TemporaryDirectory(prefix="mrtdose-export-") as tmp:
        staging = Path(tmp)
        image_files: dict[str, list[Path]] = {}
        if do_images:
            report(progress, 0.05, "writing the SPECT and CT images")
            image_files, warns = _write_images(store, case, staging)
            result.warnings.extend(warns)
            for key, paths in image_files.items():
                staged.extend((key.split(":")[0], p) for p in paths)

        def ct_folder(tp: TimePoint) -> Path | None:
            paths = image_files.get(f"CT:{tp.time_point_id}")
            if paths:
                return paths[0].parent
            return Path(ct_dir) if ct_dir is not None else None

        if rtdose:
            report(progress, 0.4, "writing RT Dose")
            dose_maps = case.derived_maps(DerivedKind.DOSE)
            if not dose_maps:
                result.warnings.append(f"case {case_id} has no dose map: no RT Dose written")
            ref_ct = image_files.get(f"CT:{ref.time_point_id}", [])
            refs = _ct_instances(ref_ct) if ref_ct else []
            study = StudyRef(
                study_instance_uid=ref.functional.study_instance_uid
                or (ref.anatomical.study_instance_uid if ref.anatomical else ""),
                study_datetime=ref.acquired_at,
            )
            if not study.study_instance_uid:
                raise InvalidInputError(
                    f"case {case_id}: the reference time point has no Study Instance UID"
                )
            for d in dose_maps:
                vol = store.load_volume(d.volume)
                for_uid = vol.geometry.frame_of_reference_uid or (
                    ref.anatomical.frame_of_reference_uid if ref.anatomical else ""
                )
                method = str(d.provenance.get("method", "dose"))
                path = staging / "RTDOSE" / f"RTDOSE_{method}_{d.derived_id}.dcm"
                staged.append(
                    (
                        "RTDOSE",
                        write_rtdose(
                            vol,
                            path,
                            patient=case.patient,
                            study=study,
                            frame_of_reference_uid=for_uid,
                            referenced_instances=refs,
                            series_instance_uid=str(generate_uid(entropy_srcs=[d.derived_id])),
                            description=d.label,
                            software_version=str(
                                d.provenance.get("software_version") or _software_version()
                            ),
                            content_datetime=d.created_at,
                        ),
                    )
                )
        for kind, wanted in (("RTSTRUCT", rtstruct), ("SEG", seg)):
            if not wanted:
                continue
            report(progress, 0.6, f"writing {kind}")
            tps = [
                t
                for t in case.sorted_time_points()
                if any(v.time_point_id == t.time_point_id for v in case.vois)
            ]
            if not tps:
                result.warnings.append(f"case {case_id} has no VOI: no {kind} written")
            for tp in tps:
                folder = ct_folder(tp)
                if folder is None:
                    raise InvalidInputError(
                        f"{kind} export needs the CT files of {tp.label}: "
                        "re-write the images (images=True) or give the CT folder (ct_dir)"
                    )
                path = staging / kind / f"{kind}_{tp.label}.dcm"
                fn = export_rtstruct_from_case if kind == "RTSTRUCT" else export_seg_from_case
                try:
                    staged.append(
                        (kind, fn(store, case, path, ct_dir=folder, time_point=tp.time_point_id))
                    )
                except InvalidInputError as exc:
                    result.warnings.append(f"{kind} of {tp.label} not written: {exc}")
        if report_pdf is not None:
            staged.append(
                (
                    "DOC",
                    write_encapsulated_pdf(
                        report_pdf,
                        staging / "DOC" / "REPORT.dcm",
                        patient=case.patient,
                        study=StudyRef(ref.functional.study_instance_uid, ref.acquired_at),
                        software_version=_software_version(),
                        # the same PDF bytes, the same UIDs: a report sent again
                        # replaces itself in the PACS (an amended version is new)
                        series_instance_uid=str(
                            generate_uid(
                                entropy_srcs=[case_id, hashlib.sha256(report_pdf).hexdigest()]
                            )
                        ),
                    ),
                )
            )
        if not staged:
            raise InvalidInputError(f"nothing to export for case {case_id}")
        report(progress, 0.8, "anonymising" if anonymize else "copying")
        out.mkdir(parents=True, exist_ok=True)
        for kind, src in staged:
            dst = out / src.relative_to(staging)
            dst.parent.mkdir(parents=True, exist_ok=True)
            if pseudo is not None:
                result.pseudonym = anonymize_file(
                    src,
                    dst,
                    pseudo,
                    retain_patient_characteristics=retain_patient_characteristics,
                    retain_structure_names=retain_structure_names,
                )
            else:
                shutil.move(str(src), dst)
            result.files.setdefault(kind, []).append(dst)
    if pseudo is not None:
        result.date_shift_days = pseudo.shift_days(case.patient.patient_id)
    _record_export(store, case_id, result, anonymize)
    report(progress, 1.0, f"exported {result.n_files} file(s)")
    return result


def _record_export(store: CaseRepository, case_id: str, result: Any, anonymized: bool) -> None:
    """Audit entry for the export (issue 7): who exported which files, anonymised or not."""
    from dosimetry_core.store import audit
    from dosimetry_core.store.permissions import require

    actor = store.actor
    if actor is not None:
        require(actor, "export")
    if not hasattr(store, "engine"):
        return
    audit.record(
        store,
        actor,
        "export",
        case_id,
        {
            "anonymized": anonymized,
            "n_files": result.n_files,
            "kinds": sorted(result.files),
            "out_dir": str(result.out_dir),
        },
    )
