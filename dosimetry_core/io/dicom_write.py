"""Write CT, SPECT (NM), PET and RT Structure Set objects as DICOM files.

Used by the round-trip tests and by the synthetic demo generator.  The files
follow PS3.10 (preamble, File Meta Information, Explicit VR Little Endian) and
the IODs of PS3.3 Annex A: CT Image (A.3), NM Image (A.5), PET Image (A.21),
Enhanced PET Image (A.56) and RT Structure Set (A.19).  Vendor "styles" reproduce
where real cameras put the quantitative information, so that the reader is
tested against each convention:

========================  ==================================================================
NM style                  what is written
========================  ==================================================================
``siemens-bqml``          Bq/mL; uint16 pixels with a Real World Value Mapping (0040,9096)
                          (slope, Measurement Units 'Bq/ml', UCUM), Units BQML, no Rescale
                          Slope (xSPECT-like); position/orientation in the Detector
                          Information Sequence only
``ge-counts``             counts; uint16 with top-level Rescale Slope (0028,1053), Units CNTS,
                          Rotation Information Sequence timing (time per view x views per
                          detector); position/orientation at top level and per detector
``ge-bqml``               Bq/mL; int16 with Rescale Slope and a Bq/ml Real World Value
                          Mapping (Q.Metrix-like), Units BQML
``philips-counts``        counts; int16 with Rescale Slope/Intercept, Units CNTS
``hermes-bqml``           Bq/mL; uint16 "float via Rescale Slope", Units BQML, minimal tags:
                          no Slice Vector, position/orientation at top level only
``hermes-counts``         counts, as ``hermes-bqml``; timing only as top-level Actual Frame
                          Duration and Number of Frames in Rotation
========================  ==================================================================

The Hermes styles reproduce non-conformant exports on purpose (no Slice Vector
or Frame Increment Pointer, position only at top level, timing as top-level
elements); the other styles pass ``dciodvfy`` without errors.

PET styles: ``bqml`` (one file per slice, per-slice Rescale Slope, Units BQML,
Decay Correction START), ``suv`` (Units GML, SUV body weight) and ``enhanced``
(Enhanced PET Image Storage, one multi-frame file with functional groups).  The
PET decay correction can be switched with ``ctx.extra["decay_correction"]``
(``"START"`` default, ``"ADMIN"``, ``"NONE"``); the volume given is always the
activity concentration at the acquisition start.

Values are stored in 16 bits with a slope chosen from the largest magnitude
(per file for NM, per slice for PET), so a reader gets them back within half a
quantisation step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid
from pydicom.valuerep import format_number_as_ds

from dosimetry_core.errors import DicomError, InvalidInputError
from dosimetry_core.io._dicom_common import (
    CT_IMAGE_STORAGE,
    ENHANCED_PET_IMAGE_STORAGE,
    NM_IMAGE_STORAGE,
    PET_IMAGE_STORAGE,
    RADIONUCLIDE_CODES,
    RT_STRUCTURE_SET_STORAGE,
    TAG_SLICE_VECTOR,
    format_da,
    format_dt,
    format_tm,
    get_floats,
    get_str,
    normalize_nuclide_or_none,
    nuclide_code_meaning,
    read_dataset,
)
from dosimetry_core.io.types import DicomWriteContext, RoiContours
from dosimetry_core.model import Geometry, ImageUnits, Volume

__all__ = [
    "NM_STYLES",
    "PET_STYLES",
    "write_ct_series",
    "write_nm_tomo",
    "write_pet_series",
    "write_rtstruct",
]

NM_STYLES = (
    "siemens-bqml",
    "ge-counts",
    "ge-bqml",
    "philips-counts",
    "hermes-bqml",
    "hermes-counts",
)
PET_STYLES = ("bqml", "suv", "enhanced")

_IMPLEMENTATION_VERSION = "MRTDOSE_0_1"
_CHARSET = "ISO_IR 192"  # UTF-8 (PS3.3 C.12.1.1.2)

# Main photopeak (keV) per nuclide for the energy window of NM files (20 % wide).
# Positron fraction per decay (ICRP-107) written in the PET isotope module.
_POSITRON_FRACTION = {
    "F-18": 0.9673,
    "Ga-68": 0.8891,
    "Cu-64": 0.1752,
    "Y-90": 3.186e-5,
    "I-124": 0.2256,
    "Zr-89": 0.2274,
}

_PHOTOPEAK_KEV = {
    "Lu-177": 208.4,
    "Tc-99m": 140.5,
    "I-131": 364.5,
    "I-123": 159.0,
    "In-111": 245.4,
    "Ga-67": 184.6,
    "Y-90": 150.0,  # bremsstrahlung window centre
    "Ho-166": 80.6,
    "Tb-161": 74.6,
}

# Style properties.
#   values: "bqml" or "counts" (what the volume given must hold)
#   pixel: "uint16" | "int16"
#   rwvm: write a Real World Value Mapping (Bq/ml)
#   rescale: write Rescale Slope (and Intercept)
#   ipp_top / ipp_detector: where Image Position/Orientation (Patient) go
#   slice_vector: write Slice Vector + Frame Increment Pointer
#   timing: "rotation" (Rotation Information Sequence) | "top" (top-level elements)
_NM_STYLE_SPEC: dict[str, dict[str, Any]] = {
    "siemens-bqml": dict(
        values="bqml",
        pixel="uint16",
        rwvm=True,
        rescale=False,
        ipp_top=False,
        ipp_detector=True,
        slice_vector=True,
        timing="rotation",
        manufacturer="SIEMENS NM",
        model="Symbia Intevo Bold",
        software="VA60A",
    ),
    "ge-counts": dict(
        values="counts",
        pixel="uint16",
        rwvm=False,
        rescale=True,
        ipp_top=True,
        ipp_detector=True,
        slice_vector=True,
        timing="rotation",
        manufacturer="GE MEDICAL SYSTEMS",
        model="Discovery NM/CT 670",
        software="Xeleris 4.1",
    ),
    "ge-bqml": dict(
        values="bqml",
        pixel="int16",
        rwvm=True,
        rescale=True,
        ipp_top=True,
        ipp_detector=True,
        slice_vector=True,
        timing="rotation",
        manufacturer="GE MEDICAL SYSTEMS",
        model="Discovery NM/CT 670",
        software="Q.Metrix 1.1",
    ),
    "philips-counts": dict(
        values="counts",
        pixel="int16",
        rwvm=False,
        rescale=True,
        ipp_top=False,
        ipp_detector=True,
        slice_vector=True,
        timing="rotation",
        manufacturer="Philips Medical Systems",
        model="BrightView XCT",
        software="JETStream 4",
    ),
    "hermes-bqml": dict(
        values="bqml",
        pixel="uint16",
        rwvm=False,
        rescale=True,
        ipp_top=True,
        ipp_detector=False,
        slice_vector=False,
        timing="top",
        manufacturer="HERMES Medical Solutions",
        model="HybridRecon",
        software="4.0",
    ),
    "hermes-counts": dict(
        values="counts",
        pixel="uint16",
        rwvm=False,
        rescale=True,
        ipp_top=True,
        ipp_detector=False,
        slice_vector=False,
        timing="top",
        manufacturer="HERMES Medical Solutions",
        model="HybridRecon",
        software="4.0",
    ),
}

#: Views per detector and detectors written in the timing of SPECT styles
#: (override with ``ctx.extra["views_per_detector"]`` / ``ctx.extra["n_detectors"]``).
DEFAULT_VIEWS_PER_DETECTOR = 60
DEFAULT_N_DETECTORS = 2


# ------------------------------------------------------------------ helpers
def _ds(value: float) -> str:
    """A DS string of at most 16 characters (PS3.5 Table 6.2-1)."""
    return str(format_number_as_ds(float(value)))


def _ds_list(values: Sequence[float] | NDArray[np.float64]) -> list[str]:
    return [_ds(float(v)) for v in values]


def _clean(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Remove -0.0 and tiny rounding noise from direction cosines."""
    out = np.where(np.abs(values) < 1e-12, 0.0, values)
    return out + 0.0


def _sop_uid(series_uid: str, kind: str, index: int) -> UID:
    """SOP Instance UID, deterministic for a given series UID (unique per file)."""
    return generate_uid(entropy_srcs=[str(series_uid), kind, str(index)])


def _series_uid(ctx: DicomWriteContext) -> str:
    return ctx.series_instance_uid or str(generate_uid())


def _new_file(sop_class: str, sop_uid: str) -> FileDataset:
    """An empty data set with PS3.10 File Meta Information (Explicit VR Little Endian)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationVersionName = _IMPLEMENTATION_VERSION
    ds = FileDataset("", Dataset(), file_meta=meta, preamble=b"\0" * 128)
    ds.SpecificCharacterSet = _CHARSET
    ds.SOPClassUID = UID(sop_class)
    ds.SOPInstanceUID = UID(sop_uid)
    return ds


def _save(ds: FileDataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def _patient_study(ds: Dataset, ctx: DicomWriteContext) -> None:
    """Patient (C.7.1.1), General Study (C.7.2.1) and Patient Study (C.7.2.2) modules."""
    ds.PatientName = ctx.patient_name
    ds.PatientID = ctx.patient_id
    ds.PatientBirthDate = format_da(ctx.patient_birth_date) if ctx.patient_birth_date else ""
    ds.PatientSex = ctx.patient_sex if ctx.patient_sex in ("M", "F", "O") else ""
    if ctx.patient_weight_kg is not None:
        ds.PatientWeight = _ds(ctx.patient_weight_kg)
    if ctx.patient_height_cm is not None:
        ds.PatientSize = _ds(ctx.patient_height_cm / 100.0)
    ds.StudyInstanceUID = UID(ctx.study_instance_uid)
    ds.StudyDate = format_da(ctx.study_datetime)
    ds.StudyTime = format_tm(ctx.study_datetime)
    ds.ReferringPhysicianName = ""
    ds.StudyID = ctx.study_id[:16]
    ds.AccessionNumber = ctx.accession_number[:16]
    if ctx.study_description:
        ds.StudyDescription = ctx.study_description[:64]


def _series(
    ds: Dataset, ctx: DicomWriteContext, modality: str, series_uid: str, series_dt: datetime
) -> None:
    """General Series module (C.7.3.1)."""
    ds.Modality = modality
    ds.SeriesInstanceUID = UID(series_uid)
    ds.SeriesNumber = int(ctx.series_number)
    ds.SeriesDate = format_da(series_dt)
    ds.SeriesTime = format_tm(series_dt)
    if ctx.series_description:
        ds.SeriesDescription = ctx.series_description[:64]
    ds.OperatorsName = ""
    if modality != "RTSTRUCT":
        ds.BodyPartExamined = str(ctx.extra.get("body_part_examined", "ABDOMEN"))[:16]


def _equipment(
    ds: Dataset, ctx: DicomWriteContext, manufacturer: str, model: str, software: str
) -> None:
    """General Equipment module (C.7.5.1); the context wins over the style defaults."""
    ds.Manufacturer = ctx.manufacturer or manufacturer
    if ctx.institution_name:
        ds.InstitutionName = ctx.institution_name[:64]
    ds.StationName = (ctx.station_name or "MRTDOSE")[:16]
    ds.ManufacturerModelName = (ctx.manufacturer_model or model)[:64]
    ds.DeviceSerialNumber = (ctx.device_serial_number or "0")[:64]
    ds.SoftwareVersions = software


def _frame_of_reference(ds: Dataset, ctx: DicomWriteContext) -> None:
    """Frame of Reference module (C.7.4.1)."""
    ds.FrameOfReferenceUID = UID(ctx.frame_of_reference_uid or str(generate_uid()))
    ds.PositionReferenceIndicator = ""


def _image_times(ds: Dataset, acq: datetime, content: datetime | None = None) -> None:
    ds.AcquisitionDate = format_da(acq)
    ds.AcquisitionTime = format_tm(acq)
    c = content or acq
    ds.ContentDate = format_da(c)
    ds.ContentTime = format_tm(c)


def _orientation(geometry: Geometry) -> list[str]:
    d = _clean(geometry.direction_matrix)
    return _ds_list(np.concatenate([d[:, 0], d[:, 1]]))


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def _nuclide(ctx: DicomWriteContext) -> str | None:
    if not ctx.nuclide:
        return None
    n = normalize_nuclide_or_none(ctx.nuclide)
    if n is None:
        raise InvalidInputError(f"unknown nuclide {ctx.nuclide!r} in the write context")
    return n


def _radiopharmaceutical_sequence(ctx: DicomWriteContext, with_half_life: bool) -> DicomSequence:
    """Radiopharmaceutical Information Sequence (0054,0016) (NM/PET Isotope modules,
    C.8.4.10, C.8.9.2): nuclide code, total dose in Bq, start date/time."""
    nuclide = _nuclide(ctx)
    if nuclide is None and ctx.injected_activity_mbq is None:
        return DicomSequence([])
    item = Dataset()
    if nuclide is not None:
        code = RADIONUCLIDE_CODES.get(nuclide)
        if code is not None:
            item.RadionuclideCodeSequence = DicomSequence([_code(code[0], "SCT", code[1])])
        else:
            item.RadionuclideCodeSequence = DicomSequence(
                [
                    _code(
                        nuclide.replace("-", "").upper(), "99MRTDOSE", nuclide_code_meaning(nuclide)
                    )
                ]
            )
    else:
        item.RadionuclideCodeSequence = DicomSequence([])
    if ctx.radiopharmaceutical:
        item.Radiopharmaceutical = ctx.radiopharmaceutical[:64]
    item.RadiopharmaceuticalRoute = "Intravenous"
    if ctx.injection_datetime is not None:
        item.RadiopharmaceuticalStartTime = format_tm(ctx.injection_datetime)
        item.RadiopharmaceuticalStartDateTime = format_dt(ctx.injection_datetime)
    if ctx.injected_activity_mbq is not None:
        item.RadionuclideTotalDose = _ds(ctx.injected_activity_mbq * 1e6)
    if with_half_life and nuclide is not None:
        from dosimetry_core.physics.nuclides import half_life_h

        item.RadionuclideHalfLife = _ds(half_life_h(nuclide) * 3600.0)
        if "positron_fraction" in ctx.extra:
            item.RadionuclidePositronFraction = _ds(float(ctx.extra["positron_fraction"]))
    return DicomSequence([item])


@dataclass(frozen=True)
class _Quantised:
    stored: NDArray[Any]
    slope: float
    signed: bool


def _quantise(values: NDArray[Any], signed: bool, ds_slope: bool) -> _Quantised:
    """16-bit stored values and the slope that maps them back (intercept 0).

    The slope is chosen from the largest magnitude so the range is used fully;
    negative values force signed storage.  With ``ds_slope`` the slope is rounded
    to its DS text (16 characters) first so that writer and reader use the very
    same number.
    """
    v = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(v)):
        raise InvalidInputError("cannot write NaN or infinite voxel values to DICOM")
    signed = signed or bool(v.size and v.min() < 0)
    limit = 32767.0 if signed else 65535.0
    peak = float(np.max(np.abs(v))) if v.size else 0.0
    slope = peak / limit if peak > 0 else 1.0
    if ds_slope:
        for _ in range(8):
            candidate = float(_ds(slope))
            if peak / candidate <= limit:
                slope = candidate
                break
            slope *= 1.0 + 1e-12
        else:  # pragma: no cover - format_number_as_ds keeps 12+ significant digits
            slope = float(_ds(slope * 1.000001))
    stored = np.rint(v / slope)
    lo, hi = (-32768, 32767) if signed else (0, 65535)
    stored = np.clip(stored, lo, hi).astype(np.int16 if signed else np.uint16)
    return _Quantised(stored, slope, signed)


def _pixel_module(ds: Dataset, rows: int, cols: int, signed: bool) -> None:
    """Image Pixel module (C.7.6.3) for 16-bit monochrome data."""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = cols
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1 if signed else 0


def _rwvm_item(slope: float, signed: bool, first: int, last: int) -> Dataset:
    """Real World Value Mapping item (C.7.6.16.2.11) to Bq/ml (UCUM)."""
    item = Dataset()
    item.LUTExplanation = "Activity concentration"
    item.LUTLabel = "BQML"
    item.MeasurementUnitsCodeSequence = DicomSequence(
        [_code("Bq/ml", "UCUM", "becquerels/milliliter")]
    )
    item.RealWorldValueFirstValueMapped = int(first)
    item.RealWorldValueLastValueMapped = int(last)
    vr = "SS" if signed else "US"
    item["RealWorldValueFirstValueMapped"].VR = vr
    item["RealWorldValueLastValueMapped"].VR = vr
    item.RealWorldValueIntercept = 0.0
    item.RealWorldValueSlope = float(slope)
    return item


def _check_units(volume: Volume, expected: str, style: str) -> None:
    if expected == "bqml" and volume.units not in (ImageUnits.BQML, ImageUnits.UNKNOWN):
        raise InvalidInputError(f"style {style!r} writes Bq/mL; the volume is in {volume.units}")
    if expected == "counts" and volume.units not in (ImageUnits.COUNTS, ImageUnits.UNKNOWN):
        raise InvalidInputError(f"style {style!r} writes counts; the volume is in {volume.units}")


# ----------------------------------------------------------------------- CT
def write_ct_series(volume: Volume, out_dir: Path, ctx: DicomWriteContext) -> list[Path]:
    """Write a CT volume as one CT Image Storage file per slice (PS3.3 A.3).

    Parameters
    ----------
    volume
        CT in HU, any orientation (``volume.geometry``).
    out_dir
        Folder for ``CT_0001.dcm``, ``CT_0002.dcm``, ... (created).
    ctx
        Patient, study, series and equipment attributes.

    Returns
    -------
    list of Path
        The files, in slice-index order.

    Notes
    -----
    Stored values are int16 with Rescale Intercept (0028,1052) = -1024 and Rescale
    Slope 1 (CT Image module, C.8.2.1): HU are rounded to integers and clipped to
    the int16 range (-33792 to 31743 HU).  Image Position (Patient) of slice k is
    the centre of voxel ``[k, 0, 0]``; Image Orientation (Patient) holds the direction
    columns 0 and 1.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    geometry = volume.geometry
    series_uid = _series_uid(ctx)
    intercept = -1024.0
    hu = np.asarray(volume.array, dtype=np.float64)
    stored_all = np.clip(np.rint(hu - intercept), -32768, 32767).astype(np.int16)
    nz, ny, nx = geometry.shape_zyx
    sx, sy, sz = geometry.spacing_mm
    normal = np.cross(geometry.direction_matrix[:, 0], geometry.direction_matrix[:, 1])
    iop = _orientation(geometry)
    paths: list[Path] = []
    for k in range(nz):
        sop_uid = _sop_uid(series_uid, "CT", k)
        ds = _new_file(CT_IMAGE_STORAGE, sop_uid)
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        _patient_study(ds, ctx)
        _series(ds, ctx, "CT", series_uid, ctx.acquisition_datetime)
        ds.PatientPosition = str(ctx.extra.get("patient_position", "HFS"))
        _frame_of_reference(ds, ctx)
        _equipment(ds, ctx, "MRTDOSE", "Synthetic CT", "mrtdose 0.1")
        ds.InstanceNumber = k + 1
        ds.PatientOrientation = ""
        _image_times(ds, ctx.acquisition_datetime)
        ds.AcquisitionNumber = 1
        ipp = geometry.index_to_world([k, 0, 0])
        ds.ImagePositionPatient = _ds_list(ipp)
        ds.ImageOrientationPatient = iop
        ds.PixelSpacing = [_ds(sy), _ds(sx)]
        ds.SliceThickness = _ds(sz)
        ds.SliceLocation = _ds(float(ipp @ normal))
        _pixel_module(ds, ny, nx, signed=True)
        ds.RescaleIntercept = _ds(intercept)
        ds.RescaleSlope = "1"
        ds.RescaleType = "HU"
        ds.KVP = "120"
        ds.WindowCenter = "40"
        ds.WindowWidth = "400"
        ds.PixelData = np.ascontiguousarray(stored_all[k]).tobytes()
        paths.append(_save(ds, out_dir / f"CT_{k + 1:04d}.dcm"))
    return paths


# ----------------------------------------------------------------------- NM
def write_nm_tomo(
    volume: Volume, out_dir: Path, ctx: DicomWriteContext, style: str = "siemens-bqml"
) -> list[Path]:
    """Write a SPECT reconstruction as one multi-frame NM Image Storage file (PS3.3 A.5).

    Parameters
    ----------
    volume
        Bq/mL for the ``*-bqml`` styles, counts (whole acquisition) for the
        ``*-counts`` styles; any orientation.
    out_dir
        Folder for ``NM_0001.dcm`` (created).
    ctx
        Attributes; ``acquisition_duration_s`` becomes the acquisition timing
        (``ctx.extra["views_per_detector"]``, default 60, views of
        ``duration / views`` seconds each; ``ctx.extra["n_detectors"]``, default 2).
        ``ctx.extra["corrections"]`` overrides Corrected Image (default ATTN, SCAT:
        SPECT is not decay corrected).
    style
        One of :data:`NM_STYLES` (see the module docstring).

    Returns
    -------
    list of Path
        The one file written.

    Notes
    -----
    Image Type ``ORIGINAL\\PRIMARY\\RECON TOMO\\EMISSION``; Frame Increment Pointer
    -> Slice Vector (0054,0080) (C.8.4.8.1.1); Image Position (Patient) = centre of
    the first voxel of the first frame; Spacing Between Slices positive along the
    normal (row x column cosines).  A left-handed grid (slice axis against the
    normal) is written with its frames in reverse order so that the spacing stays
    positive.  Energy window: photopeak of the nuclide +-10 % (Lu-177: 208 keV).
    """
    if style not in _NM_STYLE_SPEC:
        raise InvalidInputError(f"unknown NM style {style!r}; choose one of {', '.join(NM_STYLES)}")
    spec = _NM_STYLE_SPEC[style]
    _check_units(volume, spec["values"], style)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    geometry = volume.geometry
    series_uid = _series_uid(ctx)
    sop_uid = _sop_uid(series_uid, "NM", 0)
    nz, ny, nx = geometry.shape_zyx
    sx, sy, sz = geometry.spacing_mm
    d = geometry.direction_matrix
    normal = np.cross(d[:, 0], d[:, 1])
    array = np.asarray(volume.array, dtype=np.float64)
    first_index = 0
    if float(normal @ d[:, 2]) < 0:  # left-handed: write frames from the last slice
        array = array[::-1]
        first_index = nz - 1
    ipp = geometry.index_to_world([first_index, 0, 0])
    iop = _orientation(geometry)
    q = _quantise(array, signed=spec["pixel"] == "int16", ds_slope=spec["rescale"])

    ds = _new_file(NM_IMAGE_STORAGE, sop_uid)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "RECON TOMO", "EMISSION"]
    _patient_study(ds, ctx)
    _series(ds, ctx, "NM", series_uid, ctx.acquisition_datetime)
    _frame_of_reference(ds, ctx)
    _equipment(ds, ctx, spec["manufacturer"], spec["model"], spec["software"])
    ds.InstanceNumber = 1
    ds.PatientOrientation = ""
    _image_times(ds, ctx.acquisition_datetime)
    # NM/PET Patient Orientation module (C.8.4.6)
    ds.PatientOrientationCodeSequence = DicomSequence([])
    ds.PatientGantryRelationshipCodeSequence = DicomSequence([])
    ds.AcquisitionContextSequence = DicomSequence([])
    # NM Image Pixel (C.8.4.7) + Multi-frame (C.7.6.6) + NM Multi-frame (C.8.4.8)
    _pixel_module(ds, ny, nx, q.signed)
    ds.PixelSpacing = [_ds(sy), _ds(sx)]
    ds.NumberOfFrames = nz
    if spec["slice_vector"]:
        ds.FrameIncrementPointer = TAG_SLICE_VECTOR
        ds.SliceVector = list(range(1, nz + 1))
    ds.NumberOfSlices = nz
    ds.NumberOfEnergyWindows = 1
    ds.NumberOfDetectors = 1
    ds.NumberOfRotations = 1
    # NM Image module (C.8.4.9)
    ds.LossyImageCompression = "00"
    corrections = list(ctx.extra.get("corrections", ["ATTN", "SCAT"]))
    ds.CorrectedImage = corrections
    if "decay_correction" in ctx.extra:
        ds.DecayCorrection = str(ctx.extra["decay_correction"])
    ds.Units = "BQML" if spec["values"] == "bqml" else "CNTS"
    ds.ImageID = ""
    ds.CountsAccumulated = (
        int(min(max(float(array.sum()), 0.0), 2**31 - 1)) if spec["values"] == "counts" else 0
    )
    # Rescale / Real World Value Mapping
    if spec["rescale"]:
        ds.RescaleIntercept = "0"
        ds.RescaleSlope = _ds(q.slope)
        ds.RescaleType = "BQML" if spec["values"] == "bqml" else "CNTS"
    if spec["rwvm"]:
        lo, hi = (-32768, 32767) if q.signed else (0, 65535)
        ds.RealWorldValueMappingSequence = DicomSequence([_rwvm_item(q.slope, q.signed, lo, hi)])
    # NM Isotope module (C.8.4.10)
    nuclide = _nuclide(ctx)
    peak = _PHOTOPEAK_KEV.get(nuclide or "Lu-177", 208.4)
    window = Dataset()
    rng = Dataset()
    rng.EnergyWindowLowerLimit = _ds(round(peak * 0.9, 2))
    rng.EnergyWindowUpperLimit = _ds(round(peak * 1.1, 2))
    window.EnergyWindowRangeSequence = DicomSequence([rng])
    window.EnergyWindowName = f"{(nuclide or 'Lu-177').replace('-', '')}_{peak:.0f}keV"
    ds.EnergyWindowInformationSequence = DicomSequence([window])
    ds.RadiopharmaceuticalInformationSequence = _radiopharmaceutical_sequence(ctx, False)
    # NM Detector module (C.8.4.11)
    det = Dataset()
    det.CollimatorGridName = "MEGP" if peak > 170 else "LEHR"
    det.CollimatorType = "PARA"
    det.FieldOfViewDimensions = [533, 387]
    if spec["ipp_detector"]:
        det.ImagePositionPatient = _ds_list(ipp)
        det.ImageOrientationPatient = iop
    ds.DetectorInformationSequence = DicomSequence([det])
    if spec["ipp_top"]:
        ds.ImagePositionPatient = _ds_list(ipp)
        ds.ImageOrientationPatient = iop
    # NM TOMO Acquisition module (C.8.4.12)
    views = int(ctx.extra.get("views_per_detector", DEFAULT_VIEWS_PER_DETECTOR))
    n_det = int(ctx.extra.get("n_detectors", DEFAULT_N_DETECTORS))
    rot = Dataset()
    rot.StartAngle = "0"
    rot.AngularStep = _ds(360.0 / (views * n_det))
    rot.RotationDirection = "CW"
    rot.ScanArc = _ds(360.0 / n_det)
    rot.NumberOfFramesInRotation = views
    rot.TableTraverse = "0"
    if ctx.acquisition_duration_s is not None and ctx.acquisition_duration_s > 0:
        frame_ms = int(round(ctx.acquisition_duration_s * 1000.0 / views))
        if spec["timing"] == "rotation":
            rot.ActualFrameDuration = frame_ms
            ds.RotationInformationSequence = DicomSequence([rot])
        else:
            ds.ActualFrameDuration = frame_ms
            ds.NumberOfFramesInRotation = views
            ds.RotationInformationSequence = DicomSequence([])
    else:
        ds.RotationInformationSequence = DicomSequence([])
    ds.TypeOfDetectorMotion = "STEP AND SHOOT"
    # NM Reconstruction module (C.8.4.15)
    ds.SpacingBetweenSlices = _ds(sz)
    ds.SliceThickness = _ds(sz)
    ds.ReconstructionDiameter = _ds(max(nx * sx, ny * sy))
    ds.ConvolutionKernel = str(ctx.extra.get("reconstruction", "OSEM 4i8s"))[:16]
    ds.PixelData = np.ascontiguousarray(q.stored).tobytes()
    return [_save(ds, out_dir / "NM_0001.dcm")]


# ---------------------------------------------------------------------- PET
def _pet_decay(ctx: DicomWriteContext) -> tuple[str, float, float | None]:
    """Decay Correction mode, factor that turns values at acquisition start into
    written values, and the half-life in s."""
    mode = str(ctx.extra.get("decay_correction", "START")).upper()
    if mode not in ("START", "ADMIN", "NONE"):
        raise InvalidInputError(f"decay_correction must be START, ADMIN or NONE, got {mode!r}")
    nuclide = _nuclide(ctx)
    t_half: float | None = None
    if nuclide is not None:
        from dosimetry_core.physics.nuclides import half_life_h

        t_half = half_life_h(nuclide) * 3600.0
    if mode != "ADMIN":
        return mode, 1.0, t_half
    if ctx.injection_datetime is None or t_half is None:
        raise InvalidInputError("ADMIN decay correction needs the nuclide and injection time")
    elapsed = (ctx.acquisition_datetime - ctx.injection_datetime).total_seconds()
    return mode, 2.0 ** (elapsed / t_half), t_half


def _pet_common(
    ds: Dataset, ctx: DicomWriteContext, series_uid: str, units: str, mode: str, nz: int
) -> None:
    _patient_study(ds, ctx)
    _series(ds, ctx, "PT", series_uid, ctx.acquisition_datetime)
    _frame_of_reference(ds, ctx)
    _equipment(ds, ctx, "MRTDOSE", "Synthetic PET", "mrtdose 0.1")
    ds.PatientOrientation = ""
    ds.PatientOrientationCodeSequence = DicomSequence([])
    ds.PatientGantryRelationshipCodeSequence = DicomSequence([])
    ds.RadiopharmaceuticalInformationSequence = _radiopharmaceutical_sequence(ctx, True)
    corrections = ["ATTN", "SCAT", "DTIM", "RAN", "NORM"]
    if mode != "NONE":
        corrections.insert(0, "DECY")
    ds.CorrectedImage = list(ctx.extra.get("corrections", corrections))
    ds.Units = units


def write_pet_series(
    volume: Volume, out_dir: Path, ctx: DicomWriteContext, style: str = "bqml"
) -> list[Path]:
    """Write a PET volume (Bq/mL at the acquisition start) as DICOM.

    Parameters
    ----------
    volume
        Activity concentration in Bq/mL at ``ctx.acquisition_datetime``.
    out_dir
        Folder for ``PT_0001.dcm``, ... (created).
    ctx
        Attributes.  ``ctx.extra["decay_correction"]``: ``"START"`` (default; values
        as given, Series Date/Time = acquisition start), ``"ADMIN"`` (values
        decay-corrected back to ``ctx.injection_datetime``), ``"NONE"``.
    style
        ``"bqml"``: PET Image Storage (A.21), one file per slice, int16 with a
        per-slice Rescale Slope, Units BQML.  ``"suv"``: the same in Units GML
        (SUV body weight = C x weight_g / dose decayed to the reference time;
        needs weight, activity, injection time, nuclide).  ``"enhanced"``: one
        Enhanced PET Image Storage file (A.56) with per-frame Plane Position and
        Pixel Value Transformation functional groups and a Bq/ml Real World Value
        Mapping.

    Returns
    -------
    list of Path
        Files written (slice-index order for the single-frame styles).
    """
    if style not in PET_STYLES:
        raise InvalidInputError(
            f"unknown PET style {style!r}; choose one of {', '.join(PET_STYLES)}"
        )
    if volume.units not in (ImageUnits.BQML, ImageUnits.UNKNOWN):
        raise InvalidInputError(f"PET writer needs a Bq/mL volume, got {volume.units}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    mode, factor, t_half = _pet_decay(ctx)
    values = np.asarray(volume.array, dtype=np.float64) * factor
    units = "BQML"
    if style == "suv":
        if (
            ctx.patient_weight_kg is None
            or ctx.injected_activity_mbq is None
            or (ctx.injection_datetime is None or t_half is None)
        ):
            raise InvalidInputError(
                "SUV style needs patient weight, injected activity, injection time and nuclide"
            )
        ref = ctx.injection_datetime if mode == "ADMIN" else ctx.acquisition_datetime
        elapsed = (ref - ctx.injection_datetime).total_seconds()
        dose_bq = ctx.injected_activity_mbq * 1e6 * 2.0 ** (-elapsed / t_half)
        values = values * ctx.patient_weight_kg * 1000.0 / dose_bq
        units = "GML"
    if style == "enhanced":
        return [_write_enhanced_pet(values, volume.geometry, out_dir, ctx, mode, factor)]

    geometry = volume.geometry
    series_uid = _series_uid(ctx)
    nz, ny, nx = geometry.shape_zyx
    sx, sy, sz = geometry.spacing_mm
    iop = _orientation(geometry)
    duration_ms = int(round((ctx.acquisition_duration_s or 600.0) * 1000.0))
    paths: list[Path] = []
    for k in range(nz):
        q = _quantise(values[k], signed=True, ds_slope=True)
        ds = _new_file(PET_IMAGE_STORAGE, _sop_uid(series_uid, "PT", k))
        ds.ImageType = ["ORIGINAL", "PRIMARY"]
        _pet_common(ds, ctx, series_uid, units, mode, nz)
        # PET Series module (C.8.9.1)
        ds.CountsSource = "EMISSION"
        ds.SeriesType = ["STATIC", "IMAGE"]
        ds.NumberOfSlices = nz
        ds.DecayCorrection = mode
        ds.RandomsCorrectionMethod = "DLYD"
        ds.AttenuationCorrectionMethod = "CTAC"
        ds.ReconstructionMethod = "OSEM"
        ds.CollimatorType = "NONE"
        ds.InstanceNumber = k + 1
        _image_times(ds, ctx.acquisition_datetime)
        ipp = geometry.index_to_world([k, 0, 0])
        ds.ImagePositionPatient = _ds_list(ipp)
        ds.ImageOrientationPatient = iop
        ds.PixelSpacing = [_ds(sy), _ds(sx)]
        ds.SliceThickness = _ds(sz)
        _pixel_module(ds, ny, nx, signed=True)
        # PET Image module (C.8.9.4)
        ds.RescaleIntercept = "0"
        ds.RescaleSlope = _ds(q.slope)
        ds.FrameReferenceTime = "0"
        ds.ImageIndex = k + 1
        ds.ActualFrameDuration = duration_ms
        if mode != "NONE":
            ds.DecayFactor = _ds(factor)
        ds.LossyImageCompression = "00"
        ds.PixelData = np.ascontiguousarray(q.stored).tobytes()
        paths.append(_save(ds, out_dir / f"PT_{k + 1:04d}.dcm"))
    return paths


def _write_enhanced_pet(
    values: NDArray[np.float64],
    geometry: Geometry,
    out_dir: Path,
    ctx: DicomWriteContext,
    mode: str,
    factor: float,
) -> Path:
    """One Enhanced PET Image Storage file (PS3.3 A.56) with functional groups.

    Per frame: Frame Content (0020,9111), Plane Position (0020,9113), Pixel Value
    Transformation (0028,9145, own Rescale Slope) and Real World Value Mapping
    (0040,9096, Bq/ml).  Shared: Pixel Measures, Plane Orientation, Frame Anatomy,
    PET Frame Type / Acquisition / Detector Motion / Position / Correction Factors /
    Reconstruction and Radiopharmaceutical Usage macros (C.8.22.5).  Decay
    correction is given by Decay Corrected (0018,9758) and Decay Correction DateTime
    (0018,9701) (Enhanced PET Corrections module, C.8.22.4).
    """
    series_uid = _series_uid(ctx)
    nz, ny, nx = geometry.shape_zyx
    sx, sy, sz = geometry.spacing_mm
    acq = ctx.acquisition_datetime
    duration_s = float(ctx.acquisition_duration_s or 600.0)
    quantised = [_quantise(values[k], signed=True, ds_slope=True) for k in range(nz)]
    nuclide = _nuclide(ctx)
    ds = _new_file(ENHANCED_PET_IMAGE_STORAGE, _sop_uid(series_uid, "PT-enhanced", 0))
    # Enhanced PET Image module (C.8.22.3) + Common CT/MR Image Description (C.8.16.2)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "VOLUME", "NONE"]
    ds.PixelPresentation = "MONOCHROME"
    ds.VolumetricProperties = "VOLUME"
    ds.VolumeBasedCalculationTechnique = "NONE"
    _pet_common(ds, ctx, series_uid, "BQML", mode, nz)
    del ds.Units  # Enhanced PET: the units are those of the Real World Value Mapping
    del ds.CorrectedImage
    del ds.PatientOrientation
    ds.InstanceNumber = 1
    ds.ContentDate = format_da(acq)
    ds.ContentTime = format_tm(acq)
    ds.AcquisitionDateTime = format_dt(acq)
    ds.AcquisitionDuration = duration_s
    ds.PresentationLUTShape = "IDENTITY"
    ds.LossyImageCompression = "00"
    ds.BurnedInAnnotation = "NO"
    ds.RecognizableVisualFeatures = "NO"
    ds.ContentQualification = "RESEARCH"
    ds.AcquisitionContextSequence = DicomSequence([])
    _pixel_module(ds, ny, nx, signed=True)
    ds.NumberOfFrames = nz
    # Enhanced PET Isotope module (C.8.22.2): agent number, route and agent codes
    for item in ds.RadiopharmaceuticalInformationSequence:
        item.RadiopharmaceuticalAgentNumber = 1
        item.AdministrationRouteCodeSequence = DicomSequence(
            [_code("47625008", "SCT", "Intravenous route")]
        )
        if "RadionuclidePositronFraction" not in item:
            item.RadionuclidePositronFraction = _ds(
                float(
                    ctx.extra.get("positron_fraction", _POSITRON_FRACTION.get(nuclide or "", 1.0))
                )
            )
        name = ctx.radiopharmaceutical or (nuclide or "unknown")
        item.RadiopharmaceuticalCodeSequence = DicomSequence(
            [_code(name.replace(" ", "")[:16].upper(), "99MRTDOSE", name[:64])]
        )
    # Enhanced PET Acquisition module (C.8.22.1.2? C.8.22.1)
    ds.AcquisitionStartCondition = "MANU"
    ds.AcquisitionTerminationCondition = "TIME"
    ds.TerminationTimeThreshold = duration_s
    ds.TypeOfDetectorMotion = "STATIONARY"
    ds.DetectorGeometry = "CYLINDRICAL_RING"
    ds.TransverseDetectorSeparation = 820.0
    ds.AxialDetectorDimension = 260.0
    ds.CoincidenceWindowWidth = "4.5"
    rng = Dataset()
    rng.EnergyWindowLowerLimit = "435"
    rng.EnergyWindowUpperLimit = "650"
    ds.EnergyWindowRangeSequence = DicomSequence([rng])
    ds.CollimatorType = "NONE"
    ds.TableMotion = "STATIC"
    ds.TimeOfFlightInformationUsed = "TRUE"
    ds.ViewCodeSequence = DicomSequence([_code("62824007", "SCT", "transverse")])
    # Enhanced PET Corrections module (C.8.22.4)
    ds.CountsSource = "EMISSION"
    ds.AttenuationCorrected = "YES"
    ds.ScatterCorrected = "YES"
    ds.DeadTimeCorrected = "YES"
    ds.GantryMotionCorrected = "NO"
    ds.PatientMotionCorrected = "NO"
    ds.CountLossNormalizationCorrected = "YES"
    ds.RandomsCorrected = "YES"
    ds.NonUniformRadialSamplingCorrected = "YES"
    ds.SensitivityCalibrated = "YES"
    ds.DetectorNormalizationCorrection = "YES"
    ds.DecayCorrected = "NO" if mode == "NONE" else "YES"
    if mode != "NONE":
        ref = ctx.injection_datetime if mode == "ADMIN" else acq
        assert ref is not None
        ds.DecayCorrectionDateTime = format_dt(ref)
    ds.RandomsCorrectionMethod = "DLYD"
    ds.AttenuationCorrectionSource = ["CT"]
    ds.AttenuationCorrectionTemporalRelationship = "CONCURRENT"
    ds.ScatterCorrectionMethod = "MODEL"
    ds.DecayFactor = _ds(factor) if mode != "NONE" else "1"
    # Multi-frame Functional Groups (C.7.6.16), shared part
    shared = Dataset()
    meas = Dataset()
    meas.PixelSpacing = [_ds(sy), _ds(sx)]
    meas.SliceThickness = _ds(sz)
    meas.SpacingBetweenSlices = _ds(sz)
    shared.PixelMeasuresSequence = DicomSequence([meas])
    ori = Dataset()
    ori.ImageOrientationPatient = _orientation(geometry)
    shared.PlaneOrientationSequence = DicomSequence([ori])
    anatomy = Dataset()
    anatomy.AnatomicRegionSequence = DicomSequence([_code("818981001", "SCT", "Abdomen")])
    anatomy.FrameLaterality = "U"
    shared.FrameAnatomySequence = DicomSequence([anatomy])
    frame_type = Dataset()
    frame_type.FrameType = ["ORIGINAL", "PRIMARY", "VOLUME", "NONE"]
    frame_type.PixelPresentation = "MONOCHROME"
    frame_type.VolumetricProperties = "VOLUME"
    frame_type.VolumeBasedCalculationTechnique = "NONE"
    shared.PETFrameTypeSequence = DicomSequence([frame_type])
    usage = Dataset()
    usage.RadiopharmaceuticalAgentNumber = 1
    shared.RadiopharmaceuticalUsageSequence = DicomSequence([usage])
    pet_acq = Dataset()
    pet_acq.TableHeight = "150"
    pet_acq.GantryDetectorTilt = "0"
    pet_acq.GantryDetectorSlew = "0"
    pet_acq.DataCollectionDiameter = "700"
    shared.PETFrameAcquisitionSequence = DicomSequence([pet_acq])
    motion = Dataset()
    motion.RotationDirection = "CW"
    motion.RevolutionTime = 0.0
    shared.PETDetectorMotionDetailsSequence = DicomSequence([motion])
    position = Dataset()
    position.TableHeight = "150"
    position.TablePosition = 0.0
    centre = [float(v) for v in geometry.center_world()]
    position.DataCollectionCenterPatient = centre
    position.ReconstructionTargetCenterPatient = centre
    shared.PETPositionSequence = DicomSequence([position])
    factors = Dataset()
    factors.PrimaryPromptsCountsAccumulated = 0
    factors.SliceSensitivityFactor = "1"
    factors.DecayFactor = _ds(factor) if mode != "NONE" else "1"
    factors.ScatterFractionFactor = "0"
    factors.DeadTimeFactor = "1"
    shared.PETFrameCorrectionFactorsSequence = DicomSequence([factors])
    recon = Dataset()
    recon.ReconstructionType = "3D"
    recon.ReconstructionAlgorithm = "OSEM"
    recon.IterativeReconstructionMethod = "YES"
    recon.NumberOfIterations = 4
    recon.NumberOfSubsets = 8
    recon.ReconstructionDiameter = _ds(max(nx * sx, ny * sy))
    shared.PETReconstructionSequence = DicomSequence([recon])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
    # per-frame part
    per_frame = []
    for k in range(nz):
        q = quantised[k]
        item = Dataset()
        content = Dataset()
        content.FrameAcquisitionDateTime = format_dt(acq)
        content.FrameReferenceDateTime = format_dt(acq)
        content.FrameAcquisitionDuration = duration_s * 1000.0
        content.StackID = "1"
        content.InStackPositionNumber = k + 1
        content.TemporalPositionIndex = 1
        content.DimensionIndexValues = [1, k + 1]
        item.FrameContentSequence = DicomSequence([content])
        pos = Dataset()
        pos.ImagePositionPatient = _ds_list(geometry.index_to_world([k, 0, 0]))
        item.PlanePositionSequence = DicomSequence([pos])
        pvt = Dataset()
        pvt.RescaleIntercept = "0"
        pvt.RescaleSlope = _ds(q.slope)
        pvt.RescaleType = "US"
        item.PixelValueTransformationSequence = DicomSequence([pvt])
        item.RealWorldValueMappingSequence = DicomSequence(
            [_rwvm_item(q.slope, True, int(q.stored.min()), int(q.stored.max()))]
        )
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(per_frame)
    # Multi-frame Dimension module (C.7.6.17): stack position
    dim_uid = _sop_uid(series_uid, "dimension", 0)
    org = Dataset()
    org.DimensionOrganizationUID = dim_uid
    ds.DimensionOrganizationSequence = DicomSequence([org])
    ds.DimensionOrganizationType = "3D"
    dims = []
    for pointer in (0x00209056, 0x00209057):  # Stack ID, In-Stack Position Number
        di = Dataset()
        di.DimensionOrganizationUID = dim_uid
        di.DimensionIndexPointer = pointer
        di.FunctionalGroupPointer = 0x00209111  # Frame Content Sequence
        dims.append(di)
    ds.DimensionIndexSequence = DicomSequence(dims)
    ds.PixelData = np.ascontiguousarray(np.stack([q.stored for q in quantised])).tobytes()
    return _save(ds, out_dir / "PT_0001.dcm")


# ----------------------------------------------------------------- RTSTRUCT
@dataclass
class _CtSlice:
    sop_class: str
    sop_instance: str
    series_uid: str
    study_uid: str
    position_along_normal: float


def _ct_slices(paths: list[Path]) -> tuple[list[_CtSlice], NDArray[np.float64] | None]:
    slices = []
    normal: NDArray[np.float64] | None = None
    for p in paths:
        ds = read_dataset(Path(p), stop_before_pixels=True)
        iop = get_floats(ds, "ImageOrientationPatient")
        ipp = get_floats(ds, "ImagePositionPatient")
        if iop is None or ipp is None or len(iop) != 6 or len(ipp) != 3:
            raise DicomError("referenced image has no Image Position/Orientation (Patient)", str(p))
        n = np.cross(np.asarray(iop[:3]), np.asarray(iop[3:]))
        n = n / np.linalg.norm(n)
        if normal is None:
            normal = n
        slices.append(
            _CtSlice(
                get_str(ds, "SOPClassUID"),
                get_str(ds, "SOPInstanceUID"),
                get_str(ds, "SeriesInstanceUID"),
                get_str(ds, "StudyInstanceUID"),
                float(np.asarray(ipp) @ normal),
            )
        )
    return slices, normal


def _image_ref(s: _CtSlice) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = UID(s.sop_class)
    item.ReferencedSOPInstanceUID = UID(s.sop_instance)
    return item


def write_rtstruct(
    path: Path,
    ctx: DicomWriteContext,
    referenced_ct_paths: list[Path],
    rois: list[RoiContours],
) -> Path:
    """Write an RT Structure Set (PS3.3 A.19) with closed planar contours.

    Parameters
    ----------
    path
        Output file (its folder is created).
    ctx
        Patient, study and series attributes; ``ctx.frame_of_reference_uid`` is the
        frame of reference of the contours (that of the CT).
    referenced_ct_paths
        The CT slices the contours are drawn on (headers are read).
    rois
        ROIs with polygons as (N, 3) LPS points, one plane per polygon.

    Returns
    -------
    Path
        ``path``.

    Notes
    -----
    Structure Set module (C.8.8.5): Referenced Frame of Reference Sequence with the
    CT study/series and every CT slice in the Contour Image Sequence; Structure Set
    ROI Sequence.  ROI Contour module (C.8.8.6): ROI Display Color, one
    CLOSED_PLANAR contour per polygon, whose Contour Image Sequence references the
    CT slice at the polygon's plane (within half a slice spacing; none if no slice
    matches).  RT ROI Observations module (C.8.8.8): RT ROI Interpreted Type from
    ``RoiContours.kind``.
    """
    path = Path(path)
    series_uid = _series_uid(ctx)
    slices, normal = _ct_slices([Path(p) for p in referenced_ct_paths])
    positions = np.array([s.position_along_normal for s in slices]) if slices else np.zeros(0)
    half_gap = 0.5 * float(np.min(np.diff(np.sort(positions)))) if len(slices) > 1 else 0.5
    ds = _new_file(RT_STRUCTURE_SET_STORAGE, _sop_uid(series_uid, "RTSTRUCT", 0))
    _patient_study(ds, ctx)
    _series(ds, ctx, "RTSTRUCT", series_uid, ctx.acquisition_datetime)
    _frame_of_reference(ds, ctx)
    _equipment(ds, ctx, "MRTDOSE", "mrtdose", "mrtdose 0.1")
    ds.InstanceNumber = 1
    # Structure Set module
    ds.StructureSetLabel = (ctx.extra.get("structure_set_label") or "ROIs")[:16]
    ds.StructureSetName = (ctx.series_description or "ROIs")[:64]
    ds.StructureSetDate = format_da(ctx.acquisition_datetime)
    ds.StructureSetTime = format_tm(ctx.acquisition_datetime)
    for_uid = UID(ctx.frame_of_reference_uid)
    ref_for = Dataset()
    ref_for.FrameOfReferenceUID = for_uid
    if slices:
        ref_study = Dataset()
        ref_study.ReferencedSOPClassUID = UID("1.2.840.10008.3.1.2.3.1")  # Study Component Mgmt
        ref_study.ReferencedSOPInstanceUID = UID(slices[0].study_uid or ctx.study_instance_uid)
        ref_series = Dataset()
        ref_series.SeriesInstanceUID = UID(slices[0].series_uid)
        ref_series.ContourImageSequence = DicomSequence([_image_ref(s) for s in slices])
        ref_study.RTReferencedSeriesSequence = DicomSequence([ref_series])
        ref_for.RTReferencedStudySequence = DicomSequence([ref_study])
    ds.ReferencedFrameOfReferenceSequence = DicomSequence([ref_for])
    ss_rois, contours, observations = [], [], []
    for number, roi in enumerate(rois, start=1):
        item = Dataset()
        item.ROINumber = number
        item.ReferencedFrameOfReferenceUID = for_uid
        item.ROIName = roi.name[:64]
        item.ROIGenerationAlgorithm = "MANUAL"
        ss_rois.append(item)
        rc = Dataset()
        rc.ROIDisplayColor = [int(c) for c in roi.color_rgb]
        rc.ReferencedROINumber = number
        contour_items = []
        for c_number, polygon in enumerate(roi.polygons, start=1):
            pts = np.asarray(polygon, dtype=float).reshape(-1, 3)
            if len(pts) < 3:
                raise InvalidInputError(
                    f"ROI {roi.name!r}: a closed planar contour needs 3 points or more"
                )
            c = Dataset()
            if slices and normal is not None:
                d = float(pts.mean(axis=0) @ normal)
                nearest = int(np.argmin(np.abs(positions - d)))
                if abs(positions[nearest] - d) <= half_gap + 1e-6:
                    c.ContourImageSequence = DicomSequence([_image_ref(slices[nearest])])
            c.ContourGeometricType = "CLOSED_PLANAR"
            c.NumberOfContourPoints = len(pts)
            c.ContourNumber = c_number
            c.ContourData = _ds_list(pts.reshape(-1))
            contour_items.append(c)
        if contour_items:
            rc.ContourSequence = DicomSequence(contour_items)
        contours.append(rc)
        obs = Dataset()
        obs.ObservationNumber = number
        obs.ReferencedROINumber = number
        obs.RTROIInterpretedType = (roi.kind or "ORGAN").upper()[:16]
        obs.ROIInterpreter = ""
        observations.append(obs)
    ds.StructureSetROISequence = DicomSequence(ss_rois)
    ds.ROIContourSequence = DicomSequence(contours)
    ds.RTROIObservationsSequence = DicomSequence(observations)
    ds.ApprovalStatus = "UNAPPROVED"
    return _save(ds, path)
