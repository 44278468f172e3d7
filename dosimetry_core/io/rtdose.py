"""RT Dose (PS3.3 A.18) export of an absorbed-dose map, and its reader.

highdicom (0.28) has no RT Dose class, so the object is built with pydicom.

What is written (module by module, PS3.3):

* Patient (C.7.1.1), General Study (C.7.2.1): the identity and Study Instance UID
  of the source study, so that a reader files the dose with the images;
* RT Series (C.8.8.1): Modality RTDOSE, a new series;
* Frame of Reference (C.7.4.1): the Frame of Reference UID of the images the dose
  grid lives on (the SPECT/CT of the reference time point);
* General Equipment (C.7.5.1): manufacturer and Software Versions;
* General Image (C.7.6.1) with, when known, a Referenced Image Sequence
  (0008,1140) to the images the dose was computed on;
* Image Plane (C.7.6.2): Image Position (Patient) = centre of voxel ``[0, 0, 0]``
  of the first frame, Image Orientation (Patient) = direction columns 0 and 1,
  Pixel Spacing = (row spacing, column spacing);
* Image Pixel (C.7.6.3), Multi-frame (C.7.6.6) with Frame Increment Pointer to
  Grid Frame Offset Vector (3004,000C);
* RT Dose (C.8.8.3): 32-bit unsigned stored values, Dose Grid Scaling
  (3004,000E) so that ``dose_gy = stored * scaling``, Dose Units GY, Dose Type
  PHYSICAL, Dose Summation Type (default ``RECORD``: a dose that was delivered,
  not planned), Grid Frame Offset Vector relative to the first frame
  (first value 0, C.8.8.3.2).

Quantisation: the scaling is ``max(dose) / (2**32 - 1)`` rounded up to its DS text,
so every voxel comes back within half a scaling step (``max / 8.6e9``).
A left-handed grid (slice axis against row x column) is written with its frames
in reverse order, so the offsets increase; it reads back with the k axis
reversed: the same voxels at the same LPS positions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid
from pydicom.valuerep import format_number_as_ds

from dosimetry_core.errors import DicomError, InvalidInputError
from dosimetry_core.io._dicom_common import (
    format_da,
    format_tm,
    get_float,
    get_floats,
    get_str,
    read_dataset,
)
from dosimetry_core.model import Geometry, ImageUnits, Patient, Volume

__all__ = [
    "DOSE_SUMMATION_TYPES",
    "RT_DOSE_STORAGE",
    "ReadDose",
    "StudyRef",
    "read_rtdose",
    "write_rtdose",
]

#: RT Dose Storage SOP Class (PS3.6 Annex A).
RT_DOSE_STORAGE = "1.2.840.10008.5.1.4.1.1.481.2"
#: Dose Summation Type (3004,000A) defined terms (PS3.3 C.8.8.3); RECORD suits a
#: delivered radiopharmaceutical dose, which has no RT Plan.
DOSE_SUMMATION_TYPES = (
    "PLAN",
    "MULTI_PLAN",
    "PLAN_OVERVIEW",
    "FRACTION",
    "BEAM",
    "BRACHY",
    "FRACTION_SESSION",
    "BEAM_SESSION",
    "BRACHY_SESSION",
    "CONTROL_POINT",
    "RECORD",
)
_TAG_GRID_FRAME_OFFSET_VECTOR = 0x3004000C
_UINT32_MAX = float(np.iinfo(np.uint32).max)
_CHARSET = "ISO_IR 192"  # UTF-8 (PS3.3 C.12.1.1.2)


@dataclass(frozen=True)
class StudyRef:
    """The source study a derived object is filed with (General Study module, C.7.2.1)."""

    study_instance_uid: str
    study_datetime: datetime
    study_id: str = "1"
    accession_number: str = ""
    study_description: str = ""
    referring_physician_name: str = ""


@dataclass
class ReadDose:
    """An RT Dose read back: the dose volume (Gy) and the identifying UIDs."""

    volume: Volume
    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    frame_of_reference_uid: str
    dose_grid_scaling: float
    """Gy per stored unit: the quantisation step."""
    dose_summation_type: str
    referenced_instances: list[tuple[str, str]]


def _ds(value: float) -> str:
    return str(format_number_as_ds(float(value)))


def _patient_study(ds: Dataset, patient: Patient, study: StudyRef) -> None:
    """Patient (C.7.1.1), General Study (C.7.2.1), Patient Study (C.7.2.2)."""
    ds.PatientName = patient.name
    ds.PatientID = patient.patient_id
    ds.PatientBirthDate = format_da(patient.birth_date) if patient.birth_date else ""
    ds.PatientSex = patient.sex if patient.sex in ("M", "F", "O") else ""
    if patient.weight_kg is not None:
        ds.PatientWeight = _ds(patient.weight_kg)
    if patient.height_cm is not None:
        ds.PatientSize = _ds(patient.height_cm / 100.0)
    ds.StudyInstanceUID = UID(study.study_instance_uid)
    ds.StudyDate = format_da(study.study_datetime)
    ds.StudyTime = format_tm(study.study_datetime)
    ds.ReferringPhysicianName = study.referring_physician_name
    ds.StudyID = study.study_id[:16]
    ds.AccessionNumber = study.accession_number[:16]
    if study.study_description:
        ds.StudyDescription = study.study_description[:64]


def new_file_dataset(sop_class: str, sop_uid: str) -> FileDataset:
    """An empty data set with PS3.10 File Meta Information (Explicit VR Little Endian)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationVersionName = "MRTDOSE_0_1"
    ds = FileDataset("", Dataset(), file_meta=meta, preamble=b"\0" * 128)
    ds.SpecificCharacterSet = _CHARSET
    ds.SOPClassUID = UID(sop_class)
    ds.SOPInstanceUID = UID(sop_uid)
    return ds


def fill_patient_study(ds: Dataset, patient: Patient, study: StudyRef) -> None:
    """Public alias of the Patient/General Study filling, shared by the PDF writer."""
    _patient_study(ds, patient, study)


def _scaling(peak_gy: float) -> float:
    """Dose Grid Scaling (Gy per stored unit) as the very number its DS text holds."""
    if peak_gy <= 0:
        return 1.0
    scaling = peak_gy / _UINT32_MAX
    for _ in range(16):
        candidate = float(_ds(scaling))
        if peak_gy / candidate <= _UINT32_MAX:
            return candidate
        scaling *= 1.0 + 1e-11
    raise AssertionError("no DS value for the dose grid scaling")  # pragma: no cover


def write_rtdose(
    volume_gy: Volume,
    path: str | Path,
    *,
    patient: Patient,
    study: StudyRef,
    frame_of_reference_uid: str | None = None,
    referenced_instances: Sequence[tuple[str, str]] = (),
    series_instance_uid: str | None = None,
    series_number: int = 900,
    description: str = "Absorbed dose",
    dose_summation_type: str = "RECORD",
    software_version: str = "",
    content_datetime: datetime | None = None,
    manufacturer: str = "MRT Dosimetry Workstation",
    institution_name: str = "",
) -> Path:
    """Write an absorbed-dose map as one RT Dose file (PS3.3 A.18; module docstring).

    Parameters
    ----------
    volume_gy
        Absorbed dose in Gy on any regular grid (``units`` GY or UNKNOWN); no
        negative, NaN or infinite values.
    path
        Output file (its folder is created).
    patient, study
        Identity of the source study the dose belongs to.
    frame_of_reference_uid
        Frame of Reference UID of the images the grid lives on; default that of
        ``volume_gy.geometry`` (required: a dose without one cannot be placed).
    referenced_instances
        (SOP Class UID, SOP Instance UID) of the images the dose was computed on,
        written as the Referenced Image Sequence (0008,1140).
    series_instance_uid
        Default: a new UID.
    dose_summation_type
        One of :data:`DOSE_SUMMATION_TYPES`; default ``RECORD``.
    software_version
        Written in Software Versions (0018,1020).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    InvalidInputError
        Wrong units, negative or non-finite dose, unknown summation type, no frame
        of reference.
    """
    if volume_gy.units not in (ImageUnits.GY, ImageUnits.UNKNOWN):
        raise InvalidInputError(f"an RT Dose holds Gy; the volume is in {volume_gy.units}")
    if dose_summation_type not in DOSE_SUMMATION_TYPES:
        raise InvalidInputError(
            f"dose summation type {dose_summation_type!r} is not one of "
            + ", ".join(DOSE_SUMMATION_TYPES)
        )
    g = volume_gy.geometry
    for_uid = frame_of_reference_uid or g.frame_of_reference_uid
    if not for_uid:
        raise InvalidInputError(
            "the dose grid has no frame of reference UID: it cannot be placed on the images"
        )
    dose = np.asarray(volume_gy.array, dtype=np.float64)
    if not np.all(np.isfinite(dose)):
        raise InvalidInputError("the dose map holds NaN or infinite values; cannot write RT Dose")
    if dose.size and float(dose.min()) < 0:
        raise InvalidInputError(
            f"the dose map holds negative values (min {float(dose.min()):.4g} Gy); "
            "an RT Dose stores absorbed dose >= 0"
        )
    path = Path(path)
    d = g.direction_matrix
    normal = np.cross(d[:, 0], d[:, 1])
    first = 0
    if float(normal @ d[:, 2]) < 0:  # left-handed: write frames from the last slice
        dose = dose[::-1]
        first = g.shape_zyx[0] - 1
    nz, ny, nx = g.shape_zyx
    sx, sy, sz = g.spacing_mm
    scaling = _scaling(float(dose.max()) if dose.size else 0.0)
    stored = np.clip(np.rint(dose / scaling), 0, _UINT32_MAX).astype("<u4")

    series_uid = series_instance_uid or str(generate_uid())
    sop_uid = generate_uid(entropy_srcs=[series_uid, "RTDOSE"])
    ds = new_file_dataset(RT_DOSE_STORAGE, sop_uid)
    when = content_datetime or datetime.now().replace(microsecond=0)
    ds.InstanceCreationDate = format_da(when)
    ds.InstanceCreationTime = format_tm(when)
    _patient_study(ds, patient, study)
    # RT Series (C.8.8.1)
    ds.Modality = "RTDOSE"
    ds.SeriesInstanceUID = UID(series_uid)
    ds.SeriesNumber = int(series_number)
    ds.SeriesDate = format_da(when)
    ds.SeriesTime = format_tm(when)
    ds.SeriesDescription = description[:64]
    ds.OperatorsName = ""
    # Frame of Reference (C.7.4.1)
    ds.FrameOfReferenceUID = UID(for_uid)
    ds.PositionReferenceIndicator = ""
    # General Equipment (C.7.5.1)
    ds.Manufacturer = manufacturer
    if institution_name:
        ds.InstitutionName = institution_name[:64]
    ds.ManufacturerModelName = "mrtdose"
    if software_version:
        ds.SoftwareVersions = software_version[:64]
    # General Image (C.7.6.1)
    ds.InstanceNumber = 1
    ds.PatientOrientation = ""
    ds.ContentDate = format_da(when)
    ds.ContentTime = format_tm(when)
    if referenced_instances:
        items = []
        for sop_class, sop_instance in referenced_instances:
            item = Dataset()
            item.ReferencedSOPClassUID = UID(sop_class)
            item.ReferencedSOPInstanceUID = UID(sop_instance)
            items.append(item)
        ds.ReferencedImageSequence = DicomSequence(items)
    # Image Plane (C.7.6.2)
    ipp = g.index_to_world([first, 0, 0])
    cos = np.where(np.abs(d) < 1e-12, 0.0, d) + 0.0
    ds.ImagePositionPatient = [_ds(v) for v in ipp]
    ds.ImageOrientationPatient = [_ds(v) for v in np.concatenate([cos[:, 0], cos[:, 1]])]
    ds.PixelSpacing = [_ds(sy), _ds(sx)]
    ds.SliceThickness = _ds(sz)
    # Image Pixel (C.7.6.3) as restricted by the RT Dose module (C.8.8.3.4)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ny
    ds.Columns = nx
    ds.BitsAllocated = 32
    ds.BitsStored = 32
    ds.HighBit = 31
    ds.PixelRepresentation = 0
    # Multi-frame (C.7.6.6)
    ds.NumberOfFrames = nz
    ds.FrameIncrementPointer = _TAG_GRID_FRAME_OFFSET_VECTOR
    # RT Dose (C.8.8.3)
    ds.DoseUnits = "GY"
    ds.DoseType = "PHYSICAL"
    ds.DoseSummationType = dose_summation_type
    ds.GridFrameOffsetVector = [_ds(k * sz) for k in range(nz)]
    ds.DoseGridScaling = _ds(scaling)
    ds.TissueHeterogeneityCorrection = "IMAGE"
    ds.PixelData = np.ascontiguousarray(stored).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def read_rtdose(path: str | Path) -> ReadDose:
    """Read an RT Dose file (grid-based, PS3.3 C.8.8.3) back into a dose volume in Gy.

    The Grid Frame Offset Vector may be relative (first value 0) or absolute
    (offsets along the normal from the origin, C.8.8.3.2); frames must be evenly
    spaced.

    Raises
    ------
    DicomError
        Not an RT Dose, missing geometry, unevenly spaced frames, units not GY.
    """
    path = Path(path)
    ds = read_dataset(path)
    if get_str(ds, "SOPClassUID") != RT_DOSE_STORAGE:
        raise DicomError("not an RT Dose (SOP Class UID)", str(path))
    units = get_str(ds, "DoseUnits").upper()
    if units != "GY":
        raise DicomError(f"Dose Units {units or '(none)'}: only GY is read", str(path))
    ipp = get_floats(ds, "ImagePositionPatient")
    iop = get_floats(ds, "ImageOrientationPatient")
    spacing = get_floats(ds, "PixelSpacing")
    offsets = get_floats(ds, "GridFrameOffsetVector")
    scaling = get_float(ds, "DoseGridScaling")
    if not ipp or not iop or not spacing or offsets is None or scaling is None:
        raise DicomError("RT Dose without grid geometry or Dose Grid Scaling", str(path))
    row = np.asarray(iop[:3])
    col = np.asarray(iop[3:])
    normal = np.cross(row, col)
    frames = int(get_float(ds, "NumberOfFrames") or 1)
    rel = np.asarray(offsets, dtype=float)
    if len(rel) != frames:
        raise DicomError(
            f"Grid Frame Offset Vector has {len(rel)} values for {frames} frames", str(path)
        )
    if rel[0] != 0.0:  # absolute offsets along the normal (C.8.8.3.2)
        rel = rel - float(np.asarray(ipp) @ normal)
    steps = np.diff(rel)
    sz = float(steps.mean()) if frames > 1 else float(get_float(ds, "SliceThickness") or 1.0)
    if frames > 1 and (np.ptp(steps) > 1e-3 * abs(sz) or sz == 0):
        raise DicomError("unevenly spaced dose frames are not supported", str(path))
    k_axis = normal if sz > 0 else -normal
    origin = np.asarray(ipp) + rel[0] * normal
    d = np.column_stack([row, col, k_axis])
    direction = tuple((float(r[0]), float(r[1]), float(r[2])) for r in d)
    geometry = Geometry(
        (frames, int(ds.Rows), int(ds.Columns)),
        (float(spacing[1]), float(spacing[0]), abs(sz)),
        (float(origin[0]), float(origin[1]), float(origin[2])),
        direction,
        get_str(ds, "FrameOfReferenceUID"),
    )
    pixels = np.asarray(ds.pixel_array, dtype=np.float64).reshape(geometry.shape_zyx)
    refs = [
        (get_str(i, "ReferencedSOPClassUID"), get_str(i, "ReferencedSOPInstanceUID"))
        for i in (ds.get("ReferencedImageSequence") or [])
    ]
    return ReadDose(
        volume=Volume(pixels * scaling, geometry, ImageUnits.GY, get_str(ds, "SeriesDescription")),
        study_instance_uid=get_str(ds, "StudyInstanceUID"),
        series_instance_uid=get_str(ds, "SeriesInstanceUID"),
        sop_instance_uid=get_str(ds, "SOPInstanceUID"),
        frame_of_reference_uid=get_str(ds, "FrameOfReferenceUID"),
        dose_grid_scaling=float(scaling),
        dose_summation_type=get_str(ds, "DoseSummationType"),
        referenced_instances=refs,
    )
