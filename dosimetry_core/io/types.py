"""Data passed between DICOM discovery, readers, writers and the import pipeline.

These types are the contract of :mod:`dosimetry_core.io`; keep them stable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dosimetry_core.model import Administration, Patient, SeriesInfo, Volume


@dataclass(frozen=True)
class Skipped:
    """A file (or series) that was not imported, and why (one line, for users)."""

    path: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason}


@dataclass
class SeriesFiles:
    """Files of one DICOM series found by a directory scan (headers only read)."""

    patient_id: str
    patient_name: str
    study_instance_uid: str
    series_instance_uid: str
    modality: str  # CT, NM, PT, RTSTRUCT, SEG, RTDOSE, ...
    sop_class_uid: str
    series_description: str
    frame_of_reference_uid: str
    acquisition_datetime: datetime | None
    paths: list[Path] = field(default_factory=list)


@dataclass(frozen=True)
class Conflict:
    """Files sharing one SOP Instance UID (0008,0018) with different content.

    A SOP Instance UID names one object world-wide (PS3.5 9.1), so two files
    carrying it with different bytes cannot both be that object.  ``kept`` are
    the files used (the one consistent with its series, one per series), ``paths``
    every file involved; the others are also listed in ``skipped``.
    """

    sop_instance_uid: str
    paths: tuple[str, ...]
    kept: tuple[str, ...]
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "sop_instance_uid": self.sop_instance_uid,
            "paths": list(self.paths),
            "kept": list(self.kept),
            "reason": self.reason,
        }


@dataclass
class ScanResult:
    """Outcome of :func:`dosimetry_core.io.dicom_scan.scan_directory`."""

    series: list[SeriesFiles]
    skipped: list[Skipped]
    n_files_seen: int = 0
    conflicts: list[Conflict] = field(default_factory=list)


@dataclass
class LoadedSeries:
    """A series read into memory, ready for the case model.

    ``volume`` units: HU for CT; Bq/mL for quantitative NM/PT (vendor BQML, or
    counts converted with a calibration factor, or SUV converted back);
    counts for NM without a calibration factor (``info.calibration_status`` is
    then ``UNCALIBRATED``).
    """

    volume: Volume
    info: SeriesInfo
    patient: Patient
    acquired_at: datetime | None
    """Acquisition start (Acquisition Date/Time, else Series Date/Time)."""
    duration_s: float | None
    """Total acquisition duration in seconds (SPECT: time per view x views per detector)."""
    administration: Administration | None = None
    """From the Radiopharmaceutical Information Sequence, when present."""
    warnings: list[str] = field(default_factory=list)


@dataclass
class DicomWriteContext:
    """Everything a writer needs besides the voxels (one series).

    Times are naive local wall-clock, as DICOM stores them.
    """

    patient_id: str
    patient_name: str
    study_instance_uid: str
    frame_of_reference_uid: str
    study_datetime: datetime
    acquisition_datetime: datetime
    series_number: int = 1
    series_description: str = ""
    series_instance_uid: str = ""  # generated when empty
    study_description: str = ""
    study_id: str = "1"
    accession_number: str = ""
    patient_birth_date: date | None = None
    patient_sex: str = ""
    patient_weight_kg: float | None = None
    patient_height_cm: float | None = None
    manufacturer: str = ""
    manufacturer_model: str = ""
    station_name: str = ""
    device_serial_number: str = ""
    institution_name: str = ""
    # functional series only
    nuclide: str | None = None  # "Lu-177"
    radiopharmaceutical: str = ""
    injected_activity_mbq: float | None = None
    injection_datetime: datetime | None = None
    acquisition_duration_s: float | None = None
    """Total acquisition duration (s). SPECT writers split it into views x time per view."""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class RoiContours:
    """Planar contours of one ROI for an RTSTRUCT (LPS mm, closed polygons)."""

    name: str
    color_rgb: tuple[int, int, int]
    kind: str = "ORGAN"  # RT ROI Interpreted Type: ORGAN, GTV, PTV, AVOIDANCE, ...
    polygons: list[NDArray[np.float64]] = field(default_factory=list)
    """Each polygon an (N, 3) array of LPS points on one plane."""
