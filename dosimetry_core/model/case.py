"""The case: a patient, what was given, what was measured, and what was derived.

All classes are plain dataclasses with explicit ``to_dict``/``from_dict`` for the
store and the CLI's JSON.  Units follow :mod:`dosimetry_core.model.units`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from dosimetry_core.model.results import (
    DoseSummary,
    KineticsRecord,
    ProtocolRun,
    Result,
    result_from_dict,
    superseded_copy,
)
from dosimetry_core.model.units import ImageUnits
from dosimetry_core.model.volume import VolumeRef


def _dt(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse_dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def new_id(prefix: str = "") -> str:
    """Short random identifier (12 hex digits), optionally prefixed."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"


# --------------------------------------------------------------------- patient
@dataclass
class Patient:
    """Who the case is about (identifying data; anonymised export removes it)."""

    patient_id: str
    name: str = ""
    birth_date: date | None = None
    sex: str = ""  # DICOM code: M, F, O or empty
    weight_kg: float | None = None
    height_cm: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "patient_id": self.patient_id,
            "name": self.name,
            "birth_date": self.birth_date.isoformat() if self.birth_date else None,
            "sex": self.sex,
            "weight_kg": self.weight_kg,
            "height_cm": self.height_cm,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Patient:
        bd = d.get("birth_date")
        return cls(
            patient_id=d["patient_id"],
            name=d.get("name", ""),
            birth_date=date.fromisoformat(bd) if bd else None,
            sex=d.get("sex", ""),
            weight_kg=d.get("weight_kg"),
            height_cm=d.get("height_cm"),
        )


# -------------------------------------------------------------- administration
@dataclass
class Administration:
    """One administration of a radiopharmaceutical.

    ``activity_mbq`` is the activity measured in the syringe at ``time`` (the
    administration time).  A residual left in the syringe/lines is recorded with
    its own measurement time; the net administered activity is computed by
    :func:`dosimetry_core.physics.decay.net_administered_activity_mbq`.
    """

    nuclide: str  # e.g. "Lu-177" (ICRP-107 spelling)
    activity_mbq: float
    time: datetime
    radiopharmaceutical: str = ""
    route: str = "intravenous"
    residual_activity_mbq: float = 0.0
    residual_time: datetime | None = None
    cycle: int = 1
    administration_id: str = field(default_factory=lambda: new_id("adm-"))
    entered_by: str = ""
    source: str = ""  # "dicom" when read from the Radiopharmaceutical Information Sequence
    measured_by: str = ""
    """Who measured the syringe (and the residual)."""
    calibrator: str = ""
    """Which dose calibrator (its id) measured the activity and the residual."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "administration_id": self.administration_id,
            "nuclide": self.nuclide,
            "activity_mbq": self.activity_mbq,
            "time": _dt(self.time),
            "radiopharmaceutical": self.radiopharmaceutical,
            "route": self.route,
            "residual_activity_mbq": self.residual_activity_mbq,
            "residual_time": _dt(self.residual_time),
            "cycle": self.cycle,
            "entered_by": self.entered_by,
            "source": self.source,
            "measured_by": self.measured_by,
            "calibrator": self.calibrator,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Administration:
        t = _parse_dt(d["time"])
        assert t is not None
        return cls(
            administration_id=d["administration_id"],
            nuclide=d["nuclide"],
            activity_mbq=float(d["activity_mbq"]),
            time=t,
            radiopharmaceutical=d.get("radiopharmaceutical", ""),
            route=d.get("route", "intravenous"),
            residual_activity_mbq=float(d.get("residual_activity_mbq", 0.0)),
            residual_time=_parse_dt(d.get("residual_time")),
            cycle=int(d.get("cycle", 1)),
            entered_by=d.get("entered_by", ""),
            source=d.get("source", ""),
            measured_by=d.get("measured_by", ""),
            calibrator=d.get("calibrator", ""),
        )


# ---------------------------------------------------------------------- series
class CalibrationStatus(StrEnum):
    """How the voxel values of a functional series became Bq/mL."""

    VENDOR_BQML = "vendor Bq/mL"
    """The reconstruction stored activity concentration (Units = BQML)."""
    CALIBRATION_FACTOR = "calibration factor"
    """Counts converted with a camera calibration factor (cps/MBq)."""
    SUV_CONVERTED = "converted from SUV"
    UNCALIBRATED = "uncalibrated"
    """Counts without a calibration factor: not quantitative."""
    NOT_APPLICABLE = "n/a"
    """Anatomical series (CT)."""


@dataclass
class SeriesInfo:
    """Where a volume came from: the DICOM series and how it was converted."""

    series_instance_uid: str
    study_instance_uid: str = ""
    modality: str = ""  # CT, NM, PT
    series_description: str = ""
    frame_of_reference_uid: str = ""
    manufacturer: str = ""
    manufacturer_model: str = ""
    station_name: str = ""
    device_serial_number: str = ""
    n_files: int = 0
    source_units: str = ""  # the DICOM Units value or description as found
    calibration_status: CalibrationStatus = CalibrationStatus.NOT_APPLICABLE
    cps_per_mbq: float | None = None
    corrections: list[str] = field(default_factory=list)  # e.g. ["ATTN", "SCAT", "DECY"]
    decay_corrected_to: datetime | None = None
    nuclide: str = ""  # as read from DICOM, normalised (e.g. "Lu-177")
    volume: VolumeRef | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "series_instance_uid": self.series_instance_uid,
            "study_instance_uid": self.study_instance_uid,
            "modality": self.modality,
            "series_description": self.series_description,
            "frame_of_reference_uid": self.frame_of_reference_uid,
            "manufacturer": self.manufacturer,
            "manufacturer_model": self.manufacturer_model,
            "station_name": self.station_name,
            "device_serial_number": self.device_serial_number,
            "n_files": self.n_files,
            "source_units": self.source_units,
            "calibration_status": str(self.calibration_status),
            "cps_per_mbq": self.cps_per_mbq,
            "corrections": list(self.corrections),
            "decay_corrected_to": _dt(self.decay_corrected_to),
            "nuclide": self.nuclide,
            "volume": self.volume.to_dict() if self.volume else None,
            "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SeriesInfo:
        return cls(
            series_instance_uid=d["series_instance_uid"],
            study_instance_uid=d.get("study_instance_uid", ""),
            modality=d.get("modality", ""),
            series_description=d.get("series_description", ""),
            frame_of_reference_uid=d.get("frame_of_reference_uid", ""),
            manufacturer=d.get("manufacturer", ""),
            manufacturer_model=d.get("manufacturer_model", ""),
            station_name=d.get("station_name", ""),
            device_serial_number=d.get("device_serial_number", ""),
            n_files=int(d.get("n_files", 0)),
            source_units=d.get("source_units", ""),
            calibration_status=CalibrationStatus(d.get("calibration_status", "n/a")),
            cps_per_mbq=d.get("cps_per_mbq"),
            corrections=list(d.get("corrections", [])),
            decay_corrected_to=_parse_dt(d.get("decay_corrected_to")),
            nuclide=d.get("nuclide", ""),
            volume=VolumeRef.from_dict(d["volume"]) if d.get("volume") else None,
            extra=dict(d.get("extra", {})),
        )


# ---------------------------------------------------------------- registration
class RegistrationStatus(StrEnum):
    PROPOSED = "proposed"
    """Computed, not yet reviewed."""
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    """Reviewed and refused: redo it (other settings or manual)."""


@dataclass
class Registration:
    """How one time point maps onto the reference time point.

    ``matrix_ref_to_tp`` is a 4x4 homogeneous matrix mapping an LPS point (mm) in
    the **reference** time point's frame to the same anatomical point in this time
    point's frame -- the transform that :func:`dosimetry_core.imaging.resample.resample`
    takes to bring this time point onto the reference grid.  ``translation_mm``
    and ``rotation_deg`` are its decomposition (rotation about the LPS x, y, z
    axes, ``R = Rz Ry Rx``, about ``center_mm``), for display.
    A deformable refinement, if any, is a displacement field (mm, LPS, on the
    reference CT grid, arrays ``[z, y, x, 3]``) applied after the matrix.
    """

    reference_time_point_id: str
    matrix_ref_to_tp: list[list[float]]
    translation_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rotation_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)
    center_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    method: str = ""  # e.g. "rigid MI (SimpleITK Euler3D)", "+ demons"
    deformation: VolumeRef | None = None
    quality: dict[str, Any] = field(default_factory=dict)
    status: RegistrationStatus = RegistrationStatus.PROPOSED
    computed_at: datetime | None = None
    computed_by: str = ""
    reviewed_by: str = ""
    reviewed_at: datetime | None = None
    comment: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference_time_point_id": self.reference_time_point_id,
            "matrix_ref_to_tp": [list(map(float, r)) for r in self.matrix_ref_to_tp],
            "translation_mm": list(self.translation_mm),
            "rotation_deg": list(self.rotation_deg),
            "center_mm": list(self.center_mm),
            "method": self.method,
            "deformation": self.deformation.to_dict() if self.deformation else None,
            "quality": dict(self.quality),
            "status": str(self.status),
            "computed_at": _dt(self.computed_at),
            "computed_by": self.computed_by,
            "reviewed_by": self.reviewed_by,
            "reviewed_at": _dt(self.reviewed_at),
            "comment": self.comment,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Registration:
        t = d.get("translation_mm", [0, 0, 0])
        r = d.get("rotation_deg", [0, 0, 0])
        c = d.get("center_mm", [0, 0, 0])
        return cls(
            reference_time_point_id=d["reference_time_point_id"],
            matrix_ref_to_tp=[list(map(float, row)) for row in d["matrix_ref_to_tp"]],
            translation_mm=(float(t[0]), float(t[1]), float(t[2])),
            rotation_deg=(float(r[0]), float(r[1]), float(r[2])),
            center_mm=(float(c[0]), float(c[1]), float(c[2])),
            method=d.get("method", ""),
            deformation=VolumeRef.from_dict(d["deformation"]) if d.get("deformation") else None,
            quality=dict(d.get("quality", {})),
            status=RegistrationStatus(d.get("status", "proposed")),
            computed_at=_parse_dt(d.get("computed_at")),
            computed_by=d.get("computed_by", ""),
            reviewed_by=d.get("reviewed_by", ""),
            reviewed_at=_parse_dt(d.get("reviewed_at")),
            comment=d.get("comment", ""),
        )


# ------------------------------------------------------------------ time point
@dataclass
class TimePoint:
    """One quantitative acquisition (SPECT or PET) with its anatomical (CT) series.

    ``acquired_at`` is the acquisition start; activities of this time point are
    at that time (not decay corrected) unless a series says otherwise.
    """

    acquired_at: datetime
    modality: str  # "NM" (SPECT) or "PT"
    functional: SeriesInfo
    anatomical: SeriesInfo | None = None
    duration_s: float | None = None
    label: str = ""
    total_activity_mbq: float | None = None
    """Activity in the whole functional field at scan time (MBq), from the calibrated image."""
    registration: Registration | None = None
    """Mapping onto the reference time point (None: not registered, or the reference)."""
    time_point_id: str = field(default_factory=lambda: new_id("tp-"))
    acquired_at_original: datetime | None = None
    """The acquisition time as first recorded, when ``acquired_at`` was corrected by hand."""
    acquired_at_reason: str = ""
    """Why ``acquired_at`` was corrected (e.g. "scanner clock 1 h behind")."""

    @property
    def units(self) -> ImageUnits:
        vol = self.functional.volume
        return vol.units if vol is not None else ImageUnits.UNKNOWN

    def hours_after(self, reference: datetime) -> float:
        """Elapsed time from ``reference`` to acquisition start, in hours."""
        return (self.acquired_at - reference).total_seconds() / 3600.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "time_point_id": self.time_point_id,
            "label": self.label,
            "acquired_at": _dt(self.acquired_at),
            "duration_s": self.duration_s,
            "modality": self.modality,
            "total_activity_mbq": self.total_activity_mbq,
            "functional": self.functional.to_dict(),
            "anatomical": self.anatomical.to_dict() if self.anatomical else None,
            "registration": self.registration.to_dict() if self.registration else None,
            "acquired_at_original": _dt(self.acquired_at_original),
            "acquired_at_reason": self.acquired_at_reason,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TimePoint:
        t = _parse_dt(d["acquired_at"])
        assert t is not None
        return cls(
            time_point_id=d["time_point_id"],
            label=d.get("label", ""),
            acquired_at=t,
            duration_s=d.get("duration_s"),
            modality=d["modality"],
            total_activity_mbq=d.get("total_activity_mbq"),
            functional=SeriesInfo.from_dict(d["functional"]),
            anatomical=SeriesInfo.from_dict(d["anatomical"]) if d.get("anatomical") else None,
            registration=Registration.from_dict(d["registration"])
            if d.get("registration")
            else None,
            acquired_at_original=_parse_dt(d.get("acquired_at_original")),
            acquired_at_reason=d.get("acquired_at_reason", ""),
        )


# ------------------------------------------------------------------------ VOIs
class VoiKind(StrEnum):
    ORGAN = "organ"
    LESION = "lesion"
    REFERENCE = "reference"


class VoiStatus(StrEnum):
    """Physician verification state of a contour."""

    DRAFT = "draft"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"


@dataclass
class VOI:
    """A volume of interest: a mask on a reference grid, with a name and a kind.

    ``mask`` refers to a stored uint8 volume (1 inside) on the grid of the time
    point named by ``time_point_id`` (or the registration reference grid).
    """

    name: str
    kind: VoiKind
    mask: VolumeRef
    color_rgb: tuple[int, int, int] = (255, 0, 0)
    time_point_id: str = ""
    status: VoiStatus = VoiStatus.DRAFT
    source: str = ""  # e.g. "RTSTRUCT <SOP UID>", "threshold 40 %"
    history: list[dict[str, Any]] = field(default_factory=list)
    voi_id: str = field(default_factory=lambda: new_id("voi-"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "voi_id": self.voi_id,
            "name": self.name,
            "kind": str(self.kind),
            "mask": self.mask.to_dict(),
            "color_rgb": list(self.color_rgb),
            "time_point_id": self.time_point_id,
            "status": str(self.status),
            "source": self.source,
            "history": list(self.history),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VOI:
        c = d.get("color_rgb", [255, 0, 0])
        return cls(
            voi_id=d["voi_id"],
            name=d["name"],
            kind=VoiKind(d["kind"]),
            mask=VolumeRef.from_dict(d["mask"]),
            color_rgb=(int(c[0]), int(c[1]), int(c[2])),
            time_point_id=d.get("time_point_id", ""),
            status=VoiStatus(d.get("status", "draft")),
            source=d.get("source", ""),
            history=list(d.get("history", [])),
        )


# ---------------------------------------------------------------- measurements
class MeasurementKind(StrEnum):
    DOSE_RATE = "dose rate"  # external whole-body dose rate, e.g. uSv/h at 1 m
    BLOOD_SAMPLE = "blood sample"  # well-counter reading of a blood sample
    PROBE = "probe"  # thyroid/uptake probe reading
    URINE = "urine"  # urine collection: activity excreted between two times
    OTHER = "other"


@dataclass
class Measurement:
    """A non-imaging reading: value with its unit, when, by whom."""

    kind: MeasurementKind
    value: float
    unit: str
    time: datetime
    entered_by: str = ""
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    measurement_id: str = field(default_factory=lambda: new_id("m-"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "measurement_id": self.measurement_id,
            "kind": str(self.kind),
            "value": self.value,
            "unit": self.unit,
            "time": _dt(self.time),
            "entered_by": self.entered_by,
            "note": self.note,
            "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Measurement:
        t = _parse_dt(d["time"])
        assert t is not None
        return cls(
            measurement_id=d["measurement_id"],
            kind=MeasurementKind(d["kind"]),
            value=float(d["value"]),
            unit=d["unit"],
            time=t,
            entered_by=d.get("entered_by", ""),
            note=d.get("note", ""),
            extra=dict(d.get("extra", {})),
        )


# ------------------------------------------------------------------------ case
class DerivedKind(StrEnum):
    """What a :class:`DerivedMap` holds."""

    TIA_MAP = "tia_map"
    """Voxel-wise time-integrated activity, MBq*h/mL."""
    TIA_MODEL_MAP = "tia_model_map"
    """Which kinetic model each voxel used (codes in ``meta``)."""
    DOSE = "dose"
    """Absorbed dose, Gy."""
    DOSE_UNCERTAINTY = "dose_uncertainty"
    """Relative 1-SD statistical uncertainty of a Monte Carlo dose map."""
    VOI_FRACTION = "voi_fraction"
    """Fraction (0-1) of each dose-grid voxel a VOI covers, on the box of non-zero
    fractions: a cache kept with the case (:mod:`dosimetry_core.pipeline.grid_cache`)."""
    CT_ON_GRID = "ct_on_grid"
    """The reference CT (HU) resampled onto a dose grid: a cache kept with the case
    (:mod:`dosimetry_core.pipeline.grid_cache`)."""


@dataclass
class DerivedMap:
    """A computed map kept with the case: a TIA map, a dose map, its uncertainty.

    ``provenance`` records how it was made (method, engine settings, inputs with
    their content hashes, software version) so that a report can cite it and a
    recomputation can be compared.  ``parent_id`` links e.g. an uncertainty map
    to its dose map.  Derived maps are immutable: recomputing adds a new one;
    ``superseded`` marks older results of the same kind and method.  The cache
    kinds (VOI fractions, CT on a grid) are the exception: a save drops those
    whose source changed.
    """

    kind: DerivedKind
    volume: VolumeRef
    label: str
    provenance: dict[str, Any] = field(default_factory=dict)
    created_at: datetime = field(default_factory=lambda: datetime.now().replace(microsecond=0))
    created_by: str = ""
    parent_id: str | None = None
    superseded: bool = False
    derived_id: str = field(default_factory=lambda: new_id("map-"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "derived_id": self.derived_id,
            "kind": str(self.kind),
            "volume": self.volume.to_dict(),
            "label": self.label,
            "provenance": dict(self.provenance),
            "created_at": _dt(self.created_at),
            "created_by": self.created_by,
            "parent_id": self.parent_id,
            "superseded": self.superseded,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DerivedMap:
        created = _parse_dt(d.get("created_at"))
        return cls(
            derived_id=d["derived_id"],
            kind=DerivedKind(d["kind"]),
            volume=VolumeRef.from_dict(d["volume"]),
            label=d.get("label", ""),
            provenance=dict(d.get("provenance", {})),
            created_at=created if created else datetime.now().replace(microsecond=0),
            created_by=d.get("created_by", ""),
            parent_id=d.get("parent_id"),
            superseded=bool(d.get("superseded", False)),
        )


@dataclass
class Case:
    """Everything known about one patient's therapy dosimetry.

    ``version`` increases at every save; the store refuses a save whose
    ``version`` is older than the stored one (no lost update).
    ``results`` holds the typed result records (:mod:`dosimetry_core.model.results`:
    kinetics, dose summaries, protocol runs), oldest first, versioned like
    ``derived``: :meth:`add_result` appends and supersedes.
    """

    patient: Patient
    administrations: list[Administration] = field(default_factory=list)
    time_points: list[TimePoint] = field(default_factory=list)
    vois: list[VOI] = field(default_factory=list)
    measurements: list[Measurement] = field(default_factory=list)
    derived: list[DerivedMap] = field(default_factory=list)
    results: list[Result] = field(default_factory=list)
    protocol: str = ""
    description: str = ""
    created_at: datetime = field(default_factory=lambda: datetime.now().replace(microsecond=0))
    modified_at: datetime | None = None
    version: int = 0
    case_id: str = field(default_factory=lambda: new_id("case-"))
    extra: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------- helpers
    @property
    def first_administration(self) -> Administration | None:
        """Earliest administration (the reference time t0 of the kinetics), if any."""
        if not self.administrations:
            return None
        return min(self.administrations, key=lambda a: a.time)

    def sorted_time_points(self) -> list[TimePoint]:
        return sorted(self.time_points, key=lambda t: t.acquired_at)

    def time_point(self, key: str) -> TimePoint:
        """Find a time point by id, label, or 1-based position in time order."""
        ordered = self.sorted_time_points()
        for tp in ordered:
            if key in (tp.time_point_id, tp.label):
                return tp
        if key.isdigit() and 1 <= int(key) <= len(ordered):
            return ordered[int(key) - 1]
        raise KeyError(f"case {self.case_id} has no time point {key!r}")

    def hours_after_administration(self, tp: TimePoint) -> float | None:
        adm = self.first_administration
        return tp.hours_after(adm.time) if adm else None

    def volume_refs(self) -> list[VolumeRef]:
        """Every stored volume this case refers to."""
        refs: list[VolumeRef] = []
        for tp in self.time_points:
            for s in (tp.functional, tp.anatomical):
                if s is not None and s.volume is not None:
                    refs.append(s.volume)
            if tp.registration is not None and tp.registration.deformation is not None:
                refs.append(tp.registration.deformation)
        refs.extend(v.mask for v in self.vois)
        refs.extend(d.volume for d in self.derived)
        return refs

    def derived_maps(
        self, kind: DerivedKind | str, *, current_only: bool = True
    ) -> list[DerivedMap]:
        """Derived maps of one kind, newest first; superseded ones only on request."""
        k = DerivedKind(kind)
        found = [d for d in self.derived if d.kind == k and not (current_only and d.superseded)]
        return sorted(found, key=lambda d: d.created_at, reverse=True)

    def find_derived(self, derived_id: str) -> DerivedMap:
        """The derived map with this id (KeyError if absent)."""
        for d in self.derived:
            if d.derived_id == derived_id:
                return d
        raise KeyError(derived_id)

    # ------------------------------------------------------------- results
    def add_result(self, record: Result) -> Result:
        """Append a result record; the current record it replaces is marked superseded.

        Kinetics and protocol runs: every earlier current record of the kind.
        Dose summaries: the earlier current ones of the same dose method.
        """
        for i, old in enumerate(self.results):
            if old.superseded or old.kind != record.kind:
                continue
            if isinstance(record, DoseSummary) and isinstance(old, DoseSummary):
                if old.method != record.method:
                    continue
            self.results[i] = superseded_copy(old)
        self.results.append(record)
        return record

    def result_records(self, kind: str, *, current_only: bool = True) -> list[Result]:
        """Records of one kind (``"kinetics"``, ``"dose"``, ``"protocol_run"``), newest first."""
        found = [r for r in self.results if r.kind == kind and not (current_only and r.superseded)]
        return list(reversed(found))

    def find_result(self, result_id: str) -> Result:
        """The result record with this id (KeyError if absent)."""
        for r in self.results:
            if r.result_id == result_id:
                return r
        raise KeyError(result_id)

    @property
    def kinetics(self) -> KineticsRecord | None:
        """The current kinetics record (per-VOI fits), if any."""
        found = self.result_records(KineticsRecord.kind)
        return found[0] if found and isinstance(found[0], KineticsRecord) else None

    @property
    def protocol_run(self) -> ProtocolRun | None:
        """The current protocol run, if any."""
        found = self.result_records(ProtocolRun.kind)
        return found[0] if found and isinstance(found[0], ProtocolRun) else None

    def dose_summary(self, dose_map_id: str | None = None) -> DoseSummary | None:
        """The dose summary of ``dose_map_id`` (any, current or not), else the newest current."""
        for r in reversed(self.results):
            if not isinstance(r, DoseSummary):
                continue
            if dose_map_id is not None and r.dose_map_id == dose_map_id:
                return r
            if dose_map_id is None and not r.superseded:
                return r
        return None

    # --------------------------------------------------------- persistence
    def to_dict(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "version": self.version,
            "protocol": self.protocol,
            "description": self.description,
            "created_at": _dt(self.created_at),
            "modified_at": _dt(self.modified_at),
            "patient": self.patient.to_dict(),
            "administrations": [a.to_dict() for a in self.administrations],
            "time_points": [t.to_dict() for t in self.time_points],
            "vois": [v.to_dict() for v in self.vois],
            "measurements": [m.to_dict() for m in self.measurements],
            "derived": [d.to_dict() for d in self.derived],
            "results": [r.to_dict() for r in self.results],
            "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Case:
        created = _parse_dt(d.get("created_at"))
        return cls(
            case_id=d["case_id"],
            version=int(d.get("version", 0)),
            protocol=d.get("protocol", ""),
            description=d.get("description", ""),
            created_at=created if created else datetime.now().replace(microsecond=0),
            modified_at=_parse_dt(d.get("modified_at")),
            patient=Patient.from_dict(d["patient"]),
            administrations=[Administration.from_dict(a) for a in d.get("administrations", [])],
            time_points=[TimePoint.from_dict(t) for t in d.get("time_points", [])],
            vois=[VOI.from_dict(v) for v in d.get("vois", [])],
            measurements=[Measurement.from_dict(m) for m in d.get("measurements", [])],
            derived=[DerivedMap.from_dict(x) for x in d.get("derived", [])],
            results=[result_from_dict(x) for x in d.get("results", [])],
            extra=dict(d.get("extra", {})),
        )
