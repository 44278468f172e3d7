"""Read one DICOM image series (CT, SPECT or PET) into a :class:`LoadedSeries`.

Supported objects (PS3.3 Annex A):

* CT Image (A.3, one file per slice), Enhanced CT (A.38) and Legacy Converted
  Enhanced CT (A.70) multi-frame images;
* NM Image (A.5) reconstructed tomography (Image Type value 3 ``RECON TOMO``), one
  multi-frame file, in the conventions of Siemens (incl. xSPECT-like Real World
  Value Mapping), GE (counts with a rescale slope; Q.Metrix-like Bq/mL), Philips
  and Hermes exports; NM files carrying functional groups are read like enhanced
  images;
* PET Image (A.21, one file per slice, per-slice Rescale Slope), Enhanced PET
  (A.56) and Legacy Converted Enhanced PET (A.72).

Geometry follows :mod:`dosimetry_core.model.geometry`: arrays ``[z, y, x]``,
``origin_mm`` = centre of voxel ``[0, 0, 0]`` in LPS mm, spacing and direction in
index order (i, j, k).  Voxel values follow :class:`LoadedSeries`: HU for CT,
Bq/mL for quantitative NM/PT, counts for NM without a calibration factor.

Every user-caused problem raises a project exception
(:class:`~dosimetry_core.errors.DicomError`,
:class:`~dosimetry_core.errors.UnitsError`,
:class:`~dosimetry_core.errors.CalibrationError`) whose message names the file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from numpy.typing import NDArray
from pydicom.dataset import Dataset

from dosimetry_core.errors import CalibrationError, DicomError, DosimetryError, UnitsError
from dosimetry_core.io._dicom_common import (
    CT_SOP_CLASSES,
    NM_SOP_CLASSES,
    PET_SOP_CLASSES,
    TAG_SLICE_VECTOR,
    acquisition_datetime,
    administration_from_dataset,
    first_item,
    get_float,
    get_floats,
    get_str,
    get_strs,
    get_value,
    half_life_s,
    is_image_sop_class,
    join_paths,
    nuclide_from_radiopharmaceutical_item,
    parse_da,
    parse_dt,
    parse_tm,
    patient_from_dataset,
    radiopharmaceutical_item,
    read_dataset,
    series_datetime,
    short_exception,
    sop_class_name,
)
from dosimetry_core.io.types import LoadedSeries, SeriesFiles
from dosimetry_core.model import (
    Administration,
    CalibrationStatus,
    Geometry,
    ImageUnits,
    SeriesInfo,
    Volume,
)

__all__ = ["read_series", "read_rtstruct_polygons"]

# ------------------------------------------------------------------ tolerances
#: Image Orientation (Patient) of two slices may differ by this much (direction cosines).
ORIENTATION_TOLERANCE = 1e-3
#: Two slices closer than this along the normal are duplicates (mm).
DUPLICATE_POSITION_TOLERANCE_MM = 0.01
#: Relative slice-spacing variation accepted silently.
SPACING_SILENT_TOLERANCE = 1e-3
#: Relative slice-spacing variation accepted with a warning; above it the series is refused.
SPACING_WARNING_TOLERANCE = 1e-2
#: In-plane drift of slice positions (fraction of the pixel spacing) taken as gantry tilt.
IN_PLANE_DRIFT_TOLERANCE = 0.02
#: Decay corrections for reference-time differences below this (s) are not applied.
DECAY_TIME_TOLERANCE_S = 1.0

#: Largest number of voxels of one series (2**28, 2 GiB as float64): beyond it the
#: volume is refused before any pixel data are decoded (a header may announce
#: 65535 x 65535 x 65535 voxels in a file of a few bytes).
MAX_SERIES_VOXELS = 2**28
#: Compressed (encapsulated) pixel data may announce at most this many times
#: their stored bytes once decoded; lossless DICOM compressions of images reach
#: ratios of a few to a few tens, so a larger claim is a damaged or hostile header.
MAX_ENCAPSULATED_RATIO = 256
#: Pixel spacing and slice spacing must lie in this range (mm): a voxel of
#: a micrometre or of more than a metre is not a patient image.
MIN_SPACING_MM = 1e-3
MAX_SPACING_MM = 1000.0
#: Rescaled CT values beyond this magnitude (HU) are not Hounsfield units.
MAX_ABS_HU = 1.0e6

# NM Multi-frame module vectors (PS3.3 C.8.4.8, Table C.8-..) other than the Slice Vector.
_NM_OTHER_VECTORS = {
    0x00540010: ("EnergyWindowVector", "energy windows"),
    0x00540020: ("DetectorVector", "detectors"),
    0x00540030: ("PhaseVector", "phases"),
    0x00540050: ("RotationVector", "rotations"),
    0x00540060: ("RRIntervalVector", "R-R intervals"),
    0x00540070: ("TimeSlotVector", "gate time slots"),
    0x00540090: ("AngularViewVector", "angular views (projection data)"),
    0x00540100: ("TimeSliceVector", "time slices"),
}

# Measurement Units Code Sequence (0040,08EA) code values (UCUM, PS3.16 CID 7181)
# mapped to the Units (0054,1001) defined terms of PS3.3 C.8.9.1.1.3.
_UCUM_TO_UNITS = {
    "bq/ml": "BQML",
    "bq/cm3": "BQML",
    "kbq/ml": "KBQML",
    "{counts}": "CNTS",
    "counts": "CNTS",
    "{cnts}": "CNTS",
    "cnts": "CNTS",
    "{propcounts}": "PROPCNTS",
    "{propcnts}": "PROPCNTS",
    "{counts}/s": "CPS",
    "/s": "CPS",
    "{cps}": "CPS",
    "g/ml": "GML",
    "{suvbw}g/ml": "GML",
    "[hnsf'u]": "HU",
    "hu": "HU",
}

_COUNT_UNITS = {"CNTS", "PROPCNTS", "NONE", ""}


# ------------------------------------------------------------------ internals
@dataclass(frozen=True)
class _Mapping:
    """One Real World Value Mapping item (PS3.3 C.7.6.16.2.11): slope * stored + intercept."""

    slope: float
    intercept: float
    units_code: str
    label: str

    @property
    def units(self) -> str:
        """Units (0054,1001)-style code of the mapping ('BQML', 'CNTS', ...), '' when unknown."""
        key = self.units_code.strip().lower()
        if key in _UCUM_TO_UNITS:
            return _UCUM_TO_UNITS[key]
        lab = self.label.strip().upper()
        return lab if lab in ("BQML", "CNTS", "GML", "PROPCNTS", "CPS") else ""


@dataclass
class _Frame:
    """One image plane: where it is, how its stored values map to real values."""

    source: str
    path: Path
    ds: Dataset
    frame: int | None
    position: NDArray[np.float64] | None
    orientation: NDArray[np.float64] | None
    pixel_spacing: tuple[float, float] | None  # (row spacing, column spacing), PS3.3 10.7.1.3
    rows: int
    cols: int
    slope: float = 1.0
    intercept: float = 0.0
    mappings: list[_Mapping] = field(default_factory=list)
    acquired_at: datetime | None = None


def _raw_text(ds: Dataset, keyword: str) -> str:
    """The value of ``keyword`` as text for messages, even when it cannot be converted."""
    try:
        return get_str(ds, keyword)
    except Exception:
        pass
    try:
        elem = ds.get_item(keyword)
        raw = getattr(elem, "value", b"")
        text = raw.decode("latin-1") if isinstance(raw, bytes) else str(raw)
    except Exception:
        return "?"
    return text.strip()[:40]


def _present(ds: Dataset | None, keyword: str) -> bool:
    try:
        return ds is not None and keyword in ds and _raw_text(ds, keyword) != ""
    except Exception:
        return True


def _number(
    ds: Dataset | None,
    keyword: str,
    source: str,
    default: float | None = None,
    *,
    positive: bool = False,
    nonzero: bool = False,
) -> float | None:
    """A numeric header value checked for physical sense, ``default`` when absent.

    Raises
    ------
    DicomError
        The element is present but is not a finite number (``'abc'``, NaN,
        infinity), or is not positive (``positive``) or is zero (``nonzero``);
        the message names the file and the element.
    """
    if ds is None or not _present(ds, keyword):
        return default
    value = get_float(ds, keyword)
    if value is None or not math.isfinite(value):
        raise DicomError(f"{keyword} {_raw_text(ds, keyword)!r} is not a finite number", source)
    if positive and not value > 0:
        raise DicomError(f"{keyword} {value:g} must be positive", source)
    if nonzero and value == 0:
        raise DicomError(f"{keyword} is zero", source)
    return value


def _slope(ds: Dataset | None, keyword: str, source: str) -> float:
    """Rescale/Real World Value slope: absent -> 1; present -> finite and positive."""
    value = _number(ds, keyword, source, positive=True)
    return 1.0 if value is None else value


def _intercept(ds: Dataset | None, keyword: str, source: str) -> float:
    value = _number(ds, keyword, source)
    return 0.0 if value is None else value


def _spacing_ok(value: float, keyword: str, source: str) -> float:
    if not (MIN_SPACING_MM <= abs(value) <= MAX_SPACING_MM):
        raise DicomError(
            f"{keyword} {value:g} mm is outside {MIN_SPACING_MM:g}-{MAX_SPACING_MM:g} mm",
            source,
        )
    return value


def _int_value(ds: Dataset, keyword: str, source: str, default: int | None = None) -> int | None:
    """An integer header value (US, IS), refused when present but not a whole number >= 1."""
    if not _present(ds, keyword):
        return default
    try:
        raw = get_value(ds, keyword)
        if isinstance(raw, list | tuple) or hasattr(raw, "__len__") and not isinstance(raw, str):
            raw = list(raw)[0]
        value = float(raw)
    except Exception:
        value = float("nan")
    if not math.isfinite(value) or value != int(value) or value < 1:
        raise DicomError(
            f"{keyword} {_raw_text(ds, keyword)!r} is not a whole number of at least 1", source
        )
    return int(value)


def _rwvm(container: Dataset | None) -> list[_Mapping]:
    """Linear items of a Real World Value Mapping Sequence (0040,9096)."""
    if container is None:
        return []
    out: list[_Mapping] = []
    for item in get_value(container, "RealWorldValueMappingSequence") or []:
        if not _present(item, "RealWorldValueSlope"):
            continue  # LUT-based mappings (0040,9212) are not supported
        slope = _slope(item, "RealWorldValueSlope", "")
        intercept = _intercept(item, "RealWorldValueIntercept", "")
        code = first_item(item, "MeasurementUnitsCodeSequence")
        units_code = get_str(code, "CodeValue") if code is not None else ""
        out.append(_Mapping(slope, intercept, units_code, get_str(item, "LUTLabel")))
    return out


def _pick_mapping(mappings: list[_Mapping]) -> _Mapping | None:
    """The mapping to use: Bq/mL first, then any other with known units."""
    for m in mappings:
        if m.units == "BQML":
            return m
    return None


def _flat(ds: Dataset) -> Dataset:
    """Top-level view of a (legacy converted) enhanced image for header look-ups.

    Adds the attributes of the Unassigned Shared / Per-Frame Converted Attributes
    Sequences (0020,9170)/(0020,9171) (PS3.3 C.7.6.16.2.25) that are not at top level.
    """
    shared = first_item(ds, "SharedFunctionalGroupsSequence")
    per = first_item(ds, "PerFrameFunctionalGroupsSequence")
    extra = [
        first_item(shared, "UnassignedSharedConvertedAttributesSequence"),
        first_item(per, "UnassignedPerFrameConvertedAttributesSequence"),
    ]
    if all(e is None for e in extra):
        return ds
    flat = Dataset()
    for elem in ds:
        if elem.tag in (0x52009229, 0x52009230) or elem.tag.group == 0x7FE0:
            continue
        flat.add(elem)
    for e in extra:
        if e is None:
            continue
        for elem in e:
            if elem.tag not in flat:
                flat.add(elem)
    return flat


def _decode(frame: _Frame, cache: dict[int, NDArray[Any]]) -> NDArray[Any]:
    """Stored pixel values of one frame (2D), decoding each file once."""
    key = id(frame.ds)
    if key not in cache:
        ds = frame.ds
        spp = int(get_value(ds, "SamplesPerPixel", 1) or 1)
        if spp != 1:
            raise DicomError(
                f"colour image (Samples per Pixel = {spp}) cannot be a CT, SPECT or PET volume",
                str(frame.path),
            )
        if not any(t in ds for t in (0x7FE00010, 0x7FE00008, 0x7FE00009)):
            raise DicomError("no pixel data", str(frame.path))
        try:
            arr = ds.pixel_array
        except Exception as exc:
            msg = short_exception(exc)
            low = msg.lower()
            if any(w in low for w in ("length", "truncat", "bytes", "size", "reshape", "expected")):
                raise DicomError(
                    f"truncated or corrupt pixel data ({msg})", str(frame.path)
                ) from exc
            ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "")
            raise DicomError(
                f"cannot decode pixel data (transfer syntax {ts}): {msg}", str(frame.path)
            ) from exc
        n_frames = _n_frames(ds, str(frame.path))
        if arr.ndim == 2:
            arr = arr[None, ...]
        if arr.shape[0] != n_frames or arr.shape[1:] != (frame.rows, frame.cols):
            raise DicomError(
                f"pixel data shape {arr.shape} does not match {n_frames} frame(s) of "
                f"{frame.rows} x {frame.cols}",
                str(frame.path),
            )
        cache[key] = arr
    arr = cache[key]
    return arr[frame.frame if frame.frame is not None else 0]


def _values(frames: list[_Frame], use_mapping: _Mapping | None = None) -> NDArray[np.float64]:
    """Real values ``[z, y, x]``: per frame ``stored * slope + intercept``.

    With ``use_mapping`` the frames' own Real World Value Mapping with the same
    units is used (frames of enhanced images may each carry one), else the frames'
    Rescale Slope/Intercept (Modality LUT, PS3.3 C.11.1).
    """
    cache: dict[int, NDArray[Any]] = {}
    f0 = frames[0]
    out = np.empty((len(frames), f0.rows, f0.cols), dtype=np.float64)
    for k, f in enumerate(frames):
        stored = _decode(f, cache)
        if use_mapping is not None:
            m = next((x for x in f.mappings if x.units == use_mapping.units), use_mapping)
            slope, intercept = m.slope, m.intercept
        else:
            slope, intercept = f.slope, f.intercept
        with np.errstate(over="ignore", invalid="ignore"):
            out[k] = stored.astype(np.float64) * slope + intercept
        if not np.all(np.isfinite(out[k])):
            raise DicomError(
                f"stored values x slope {slope:g} + intercept {intercept:g} are not finite "
                "(RescaleSlope/RescaleIntercept or Real World Value Mapping)",
                f.source,
            )
    return out


def _t3(values: NDArray[np.float64]) -> tuple[float, float, float]:
    return (float(values[0]), float(values[1]), float(values[2]))


def _orthonormal(orientation: NDArray[np.float64], source: str) -> NDArray[np.float64]:
    """3x3 direction (columns: row cosine, column cosine, normal) from Image Orientation (Patient).

    PS3.3 C.7.6.2.1.1: the first triplet is the direction of the rows (increasing
    column index i), the second the direction of the columns (increasing row index j).
    """
    r = np.asarray(orientation[:3], dtype=float)
    c = np.asarray(orientation[3:6], dtype=float)
    nr, nc = np.linalg.norm(r), np.linalg.norm(c)
    if nr < 0.5 or nc < 0.5 or abs(nr - 1) > 0.01 or abs(nc - 1) > 0.01:
        raise DicomError(
            f"ImageOrientationPatient (0020,0037) {list(orientation)} is not made of unit vectors",
            source,
        )
    r = r / nr
    c = c / nc
    if abs(float(r @ c)) > 1e-3:
        raise DicomError(
            f"ImageOrientationPatient (0020,0037) row and column cosines are not orthogonal "
            f"(dot product {float(r @ c):.2g})",
            source,
        )
    c = c - (r @ c) * r
    c = c / np.linalg.norm(c)
    n = np.cross(r, c)
    return np.column_stack([r, c, n])


def _stack(
    frames: list[_Frame],
    warnings: list[str],
    single_slice_spacing_mm: float | None,
    frame_of_reference_uid: str,
) -> tuple[list[_Frame], Geometry]:
    """Sort planes along the slice normal and derive the voxel grid.

    The slice normal is the cross product of the row and column cosines of Image
    Orientation (Patient) (0020,0037); each plane's Image Position (Patient)
    (0020,0032) is projected on it (PS3.3 C.7.6.2.1.1).  Refuses: missing
    position/orientation, differing orientation or size, duplicated positions,
    positions not along the normal (gantry tilt), missing slices or irregular
    spacing (variation above 1 %; 0.1 % to 1 % is accepted with a warning).
    """
    f0 = frames[0]
    for f in frames:
        if f.position is None:
            raise DicomError(
                "missing ImagePositionPatient (0020,0032): cannot place the slice", f.source
            )
        if f.orientation is None:
            raise DicomError(
                "missing ImageOrientationPatient (0020,0037): cannot orient the slice", f.source
            )
        if f.pixel_spacing is None:
            raise DicomError("missing PixelSpacing (0028,0030)", f.source)
        if (f.rows, f.cols) != (f0.rows, f0.cols):
            raise DicomError(
                f"image size {f.rows} x {f.cols} differs from {f0.rows} x {f0.cols} of {f0.source}",
                f.source,
            )
    assert f0.orientation is not None and f0.pixel_spacing is not None
    for f in frames[1:]:
        assert f.orientation is not None and f.pixel_spacing is not None
        if np.max(np.abs(f.orientation - f0.orientation)) > ORIENTATION_TOLERANCE:
            raise DicomError(
                "slices with different ImageOrientationPatient in one series "
                f"(this one and {f0.source}); cannot build one volume",
                f.source,
            )
        if not np.allclose(f.pixel_spacing, f0.pixel_spacing, rtol=1e-4, atol=1e-5):
            raise DicomError(
                f"PixelSpacing {list(f.pixel_spacing)} differs from {list(f0.pixel_spacing)} "
                f"of {f0.source}",
                f.source,
            )
    direction = _orthonormal(f0.orientation, f0.source)
    normal = direction[:, 2]
    positions = np.array([f.position for f in frames], dtype=float)
    along = positions @ normal
    order = np.argsort(along, kind="stable")
    frames = [frames[i] for i in order]
    positions = positions[order]
    along = along[order]
    row_sp, col_sp = f0.pixel_spacing
    n = len(frames)

    if n == 1:
        if single_slice_spacing_mm is None or not single_slice_spacing_mm > 0:
            single_slice_spacing_mm = 1.0
            warnings.append("single slice without slice thickness: slice spacing set to 1 mm")
        spacing_k = float(single_slice_spacing_mm)
    else:
        diffs = np.diff(along)
        dup = np.nonzero(diffs < DUPLICATE_POSITION_TOLERANCE_MM)[0]
        if dup.size:
            a, b = frames[dup[0]], frames[dup[0] + 1]
            raise DicomError(
                f"duplicated slice position ({along[dup[0]]:.3f} mm along the normal) in "
                f"{a.source} and {b.source}; several acquisitions, time frames or echoes in "
                "one series are not supported",
                b.source,
            )
        rel = positions - positions[0]
        in_plane = rel - np.outer(rel @ normal, normal)
        drift = float(np.max(np.linalg.norm(in_plane, axis=1)))
        if drift > max(1e-3, IN_PLANE_DRIFT_TOLERANCE * min(row_sp, col_sp)):
            worst = int(np.argmax(np.linalg.norm(in_plane, axis=1)))
            raise DicomError(
                f"slice positions are not along the slice normal (in-plane shift {drift:.2f} mm "
                f"at {frames[worst].source}): gantry tilt or sheared stack is not supported; "
                "reconstruct without tilt or resample first",
                frames[worst].source,
            )
        spacing_k = float((along[-1] - along[0]) / (n - 1))
        dev = np.abs(diffs - spacing_k) / spacing_k
        worst = int(np.argmax(dev))
        if dev[worst] > SPACING_WARNING_TOLERANCE:
            median = float(np.median(diffs))
            big = np.nonzero(diffs > 1.5 * median)[0]
            if big.size:
                g = int(big[0])
                raise DicomError(
                    f"missing slice(s): gap of {diffs[g]:.3f} mm between {frames[g].source} and "
                    f"{frames[g + 1].source} where the spacing is {median:.3f} mm",
                    frames[g + 1].source,
                )
            raise DicomError(
                f"irregular slice spacing ({diffs.min():.3f} to {diffs.max():.3f} mm, e.g. between "
                f"{frames[worst].source} and {frames[worst + 1].source}); resample first",
                frames[worst + 1].source,
            )
        if dev[worst] > SPACING_SILENT_TOLERANCE:
            warnings.append(
                f"slice spacing varies by up to {100 * dev[worst]:.2f} % "
                f"({diffs.min():.4f} to {diffs.max():.4f} mm); mean {spacing_k:.4f} mm used"
            )
    geometry = Geometry(
        shape_zyx=(n, f0.rows, f0.cols),
        spacing_mm=(col_sp, row_sp, spacing_k),
        origin_mm=_t3(positions[0]),
        direction=(_t3(direction[0]), _t3(direction[1]), _t3(direction[2])),
        frame_of_reference_uid=frame_of_reference_uid,
    )
    return frames, geometry


def _pixel_spacing(ds: Dataset | None, source: str = "") -> tuple[float, float] | None:
    """Pixel Spacing (0028,0030) (row, column) in mm; None when absent.

    Raises
    ------
    DicomError
        Present but not two finite numbers within MIN_SPACING_MM..MAX_SPACING_MM.
    """
    if ds is None or not _present(ds, "PixelSpacing"):
        return None
    values = get_floats(ds, "PixelSpacing")
    if not values or len(values) < 2 or not all(math.isfinite(v) and v > 0 for v in values[:2]):
        raise DicomError(
            f"PixelSpacing (0028,0030) {_raw_text(ds, 'PixelSpacing')!r} is not two finite "
            "positive numbers of mm",
            source or None,
        )
    for v in values[:2]:
        _spacing_ok(v, "PixelSpacing (0028,0030)", source)
    return (values[0], values[1])


def _vec(
    ds: Dataset | None, keyword: str, size: int, source: str = ""
) -> NDArray[np.float64] | None:
    """A vector header value (position, orientation); None when absent.

    Raises
    ------
    DicomError
        Present with a value that is not ``size`` finite numbers.
    """
    if ds is None or not _present(ds, keyword):
        return None
    values = get_floats(ds, keyword)
    if values is None or len(values) != size or not all(math.isfinite(v) for v in values):
        raise DicomError(
            f"{keyword} {_raw_text(ds, keyword)!r} is not {size} finite numbers", source or None
        )
    if max(abs(v) for v in values) > 1e7:
        raise DicomError(f"{keyword} {values} is beyond 10 km from the origin", source or None)
    return np.asarray(values, dtype=float)


def _dims(ds: Dataset, path: Path) -> tuple[int, int]:
    if not _present(ds, "Rows") or not _present(ds, "Columns"):
        raise DicomError("missing Rows/Columns (0028,0010)/(0028,0011)", str(path))
    rows = _int_value(ds, "Rows", str(path))
    cols = _int_value(ds, "Columns", str(path))
    assert rows is not None and cols is not None
    return rows, cols


def _n_frames(ds: Dataset, source: str) -> int:
    """Number of Frames (0028,0008), 1 when absent; refused when not a whole number >= 1."""
    n = _int_value(ds, "NumberOfFrames", source, 1)
    assert n is not None
    return n


def _check_pixel_budget(files: list[tuple[Path, Dataset]]) -> None:
    """Refuse absurd image dimensions before any pixel data are decoded.

    Rows x Columns x Number of Frames of every file together must stay within
    :data:`MAX_SERIES_VOXELS`; native pixel data must hold the bytes the header
    announces (Rows x Columns x Frames x Samples x Bits Allocated / 8, PS3.5
    8.1.1); encapsulated pixel data may not announce more than
    :data:`MAX_ENCAPSULATED_RATIO` times the file size once decoded.
    """
    total = 0
    for path, ds in files:
        src = str(path)
        rows, cols = _dims(ds, path)
        frames = _n_frames(ds, src)
        spp = _int_value(ds, "SamplesPerPixel", src, 1) or 1
        bits = _int_value(ds, "BitsAllocated", src, None)
        if bits is not None and bits not in (1, 8, 16, 32, 64):
            raise DicomError(f"BitsAllocated (0028,0100) {bits} is not 1, 8, 16, 32 or 64", src)
        stored = _int_value(ds, "BitsStored", src, None)
        if stored is not None and bits is not None and stored > bits:
            raise DicomError(
                f"BitsStored (0028,0101) {stored} is more than BitsAllocated {bits}", src
            )
        if _present(ds, "PixelRepresentation") and _raw_text(ds, "PixelRepresentation") not in (
            "0",
            "1",
        ):
            raise DicomError(
                f"PixelRepresentation (0028,0103) {_raw_text(ds, 'PixelRepresentation')!r} "
                "is not 0 (unsigned) or 1 (signed)",
                src,
            )
        voxels = rows * cols * frames
        total += voxels
        if total > MAX_SERIES_VOXELS:
            raise DicomError(
                f"Rows x Columns x NumberOfFrames = {rows} x {cols} x {frames} is beyond the "
                f"{MAX_SERIES_VOXELS} voxels accepted for a series",
                src,
            )
        expected = voxels * spp * (bits or 16) // 8
        try:
            size = path.stat().st_size
        except OSError:
            size = 0
        ts = str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "") or "")
        compressed = False
        try:
            compressed = bool(ts) and pydicom.uid.UID(ts).is_compressed
        except Exception:
            compressed = False
        if compressed:
            if expected > MAX_ENCAPSULATED_RATIO * max(size, 1):
                raise DicomError(
                    f"Rows x Columns x NumberOfFrames = {rows} x {cols} x {frames} "
                    f"({expected} bytes decoded) is impossible for compressed pixel data of a "
                    f"{size}-byte file",
                    src,
                )
        elif expected > size:
            raise DicomError(
                f"Rows x Columns x NumberOfFrames x BitsAllocated = {rows} x {cols} x {frames} "
                f"x {bits or 16} needs {expected} bytes of pixel data; the file has {size}",
                src,
            )


def _single_frame(path: Path, ds: Dataset, check_tilt: bool) -> _Frame:
    """A plane from a single-frame image (CT/PET Image Plane module, PS3.3 C.7.6.2)."""
    if check_tilt:
        tilt = get_float(ds, "GantryDetectorTilt")
        if tilt is not None and abs(tilt) > 1e-3:
            raise DicomError(
                f"gantry tilt of {tilt:g} degrees (GantryDetectorTilt (0018,1120)) is not "
                "supported; reconstruct without tilt or resample first",
                str(path),
            )
    rows, cols = _dims(ds, path)
    src = str(path)
    slope = _slope(ds, "RescaleSlope", src)
    intercept = _intercept(ds, "RescaleIntercept", src)
    t, _ = acquisition_datetime(ds)
    return _Frame(
        source=src,
        path=path,
        ds=ds,
        frame=None,
        position=_vec(ds, "ImagePositionPatient", 3, src),
        orientation=_vec(ds, "ImageOrientationPatient", 6, src),
        pixel_spacing=_pixel_spacing(ds, src),
        rows=rows,
        cols=cols,
        slope=slope,
        intercept=intercept,
        mappings=_rwvm(ds),
        acquired_at=t,
    )


def _fg_frames(path: Path, ds: Dataset) -> list[_Frame]:
    """Planes of a multi-frame image with functional groups (PS3.3 C.7.6.16).

    Per-Frame Functional Groups (5200,9230) override Shared ones (5200,9229):
    Plane Position (0020,9113), Plane Orientation (0020,9116), Pixel Measures
    (0028,9110), Pixel Value Transformation (0028,9145), Real World Value Mapping
    (0040,9096) and Frame Content (0020,9111).
    """
    rows, cols = _dims(ds, path)
    shared = first_item(ds, "SharedFunctionalGroupsSequence")
    per = list(get_value(ds, "PerFrameFunctionalGroupsSequence") or [])
    n = _n_frames(ds, str(path))
    if len(per) != n:
        raise DicomError(
            f"PerFrameFunctionalGroupsSequence has {len(per)} items for {n} frames", str(path)
        )
    src = str(path)
    top_slope = _slope(ds, "RescaleSlope", src)
    top_intercept = _intercept(ds, "RescaleIntercept", src)
    frames: list[_Frame] = []
    for i, pf in enumerate(per):

        def group(keyword: str, pf: Dataset = pf) -> Dataset | None:
            return first_item(pf, keyword) or first_item(shared, keyword)

        fsrc = f"{path} (frame {i + 1})"
        pos = _vec(group("PlanePositionSequence"), "ImagePositionPatient", 3, fsrc)
        ori = _vec(group("PlaneOrientationSequence"), "ImageOrientationPatient", 6, fsrc)
        if ori is None:
            ori = _vec(ds, "ImageOrientationPatient", 6, src)
        meas = group("PixelMeasuresSequence")
        pvt = group("PixelValueTransformationSequence")
        slope = _slope(pvt, "RescaleSlope", fsrc) if pvt is not None else top_slope
        intercept = _intercept(pvt, "RescaleIntercept", fsrc) if pvt is not None else top_intercept
        mappings = _rwvm(pf) or _rwvm(shared) or _rwvm(ds)
        content = first_item(pf, "FrameContentSequence")
        t = (
            parse_dt(get_value(content, "FrameAcquisitionDateTime"))
            if content is not None
            else None
        )
        frames.append(
            _Frame(
                source=f"{path} (frame {i + 1})",
                path=path,
                ds=ds,
                frame=i,
                position=pos,
                orientation=ori,
                pixel_spacing=_pixel_spacing(meas, fsrc) or _pixel_spacing(ds, src),
                rows=rows,
                cols=cols,
                slope=slope,
                intercept=intercept,
                mappings=mappings,
                acquired_at=t,
            )
        )
    return frames


def _fg_slice_thickness(ds: Dataset) -> float | None:
    shared = first_item(ds, "SharedFunctionalGroupsSequence")
    meas = first_item(shared, "PixelMeasuresSequence")
    for src in (meas, ds):
        if src is None:
            continue
        for kw in ("SpacingBetweenSlices", "SliceThickness"):
            v = _number(src, kw, "")
            if v is not None and v > 0:
                return _spacing_ok(v, kw, "")
    return None


def _is_multiframe_fg(ds: Dataset) -> bool:
    return "PerFrameFunctionalGroupsSequence" in ds


# --------------------------------------------------------------------- NM
def _nm_frames(path: Path, ds: Dataset, warnings: list[str]) -> tuple[list[_Frame], Geometry]:
    """Planes and grid of a classic multi-frame NM reconstruction (PS3.3 A.5).

    * Image Position / Orientation (Patient): top level or in the Detector
      Information Sequence (0054,0022) (NM Detector module, C.8.4.11);
    * Pixel Spacing (0028,0030) (NM Image Pixel module, C.8.4.7);
    * slice spacing: Spacing Between Slices (0018,0088), else Slice Thickness
      (0018,0050) (NM Reconstruction module, C.8.4.15).  A negative spacing (a
      legacy GE convention) means slices progress against the normal;
    * frame order: Slice Vector (0054,0080) (NM Multi-frame module, C.8.4.8; the
      Frame Increment Pointer (0028,0009) of RECON TOMO points to it), else file order.
      Other vectors (energy window, detector, time slot, ...) must be constant.
    """
    image_type = [v.upper() for v in get_strs(ds, "ImageType")]
    value3 = image_type[2] if len(image_type) > 2 else ""
    if "GATED" in value3:
        raise DicomError(
            f"gated SPECT (Image Type {value3!r}) is not supported: sum the gates first", str(path)
        )
    if value3 in ("TOMO", "STATIC", "DYNAMIC", "WHOLE BODY"):
        what = "projection data" if value3 == "TOMO" else "a planar image"
        raise DicomError(
            f"NM Image Type {value3!r} is {what}, not a reconstructed SPECT volume "
            "(needs RECON TOMO)",
            str(path),
        )
    if "RECON" not in value3:
        warnings.append(
            f"NM Image Type value 3 is {value3 or 'missing'!r}, not RECON TOMO; "
            "read as a reconstructed volume"
        )
    rows, cols = _dims(ds, path)
    src = str(path)
    n_frames = _n_frames(ds, src)
    detector = first_item(ds, "DetectorInformationSequence")
    ipp = _vec(ds, "ImagePositionPatient", 3, src)
    if ipp is None and detector is not None:
        ipp = _vec(detector, "ImagePositionPatient", 3, src)
    if ipp is None:
        raise DicomError(
            "missing ImagePositionPatient (0020,0032) (neither at top level nor in "
            "DetectorInformationSequence): cannot place the SPECT volume",
            str(path),
        )
    iop = _vec(ds, "ImageOrientationPatient", 6, src)
    if iop is None and detector is not None:
        iop = _vec(detector, "ImageOrientationPatient", 6, src)
    if iop is None:
        iop = np.array([1.0, 0.0, 0.0, 0.0, 1.0, 0.0])
        warnings.append(
            "missing ImageOrientationPatient: axial orientation (1,0,0 / 0,1,0) assumed"
        )
    spacing_rc = _pixel_spacing(ds, src)
    if spacing_rc is None:
        raise DicomError("missing PixelSpacing (0028,0030): voxel size unknown", str(path))
    # A negative Spacing Between Slices is a legacy GE convention (see above); the
    # Slice Thickness is a length and must be positive.
    slice_spacing = _number(ds, "SpacingBetweenSlices", src, nonzero=True)
    thickness = _number(ds, "SliceThickness", src, positive=True)
    if thickness is not None:
        _spacing_ok(thickness, "SliceThickness", src)
    if slice_spacing is not None:
        _spacing_ok(slice_spacing, "SpacingBetweenSlices", src)
    else:
        slice_spacing = thickness
    if slice_spacing is None or slice_spacing == 0:
        raise DicomError(
            "no slice spacing (SpacingBetweenSlices (0018,0088) or SliceThickness (0018,0050))",
            str(path),
        )

    # Frame order and consistency of the NM Multi-frame vectors.
    pointers = get_value(ds, "FrameIncrementPointer")
    if pointers is not None and not isinstance(pointers, list | tuple):
        pointers = [pointers]
    pointer_tags = {int(p) for p in (pointers or [])}
    for tag, (keyword, what) in _NM_OTHER_VECTORS.items():
        vec = get_value(ds, keyword)
        if vec is None:
            continue
        values = (
            vec
            if isinstance(vec, list | tuple)
            else list(vec)
            if hasattr(vec, "__iter__")
            else [vec]
        )
        if len(set(int(v) for v in values)) > 1:
            raise DicomError(
                f"{keyword} has {len(set(values))} different values: {what} in one file; "
                "export one reconstructed volume per file",
                str(path),
            )
        if tag in pointer_tags and len(values) not in (0, n_frames):
            raise DicomError(f"{keyword} has {len(values)} values for {n_frames} frames", str(path))
    order = list(range(n_frames))
    slice_vector = get_value(ds, "SliceVector")
    if slice_vector is not None:
        sv = [
            int(v) for v in (slice_vector if hasattr(slice_vector, "__iter__") else [slice_vector])
        ]
        if len(sv) != n_frames:
            raise DicomError(
                f"SliceVector (0054,0080) has {len(sv)} values for {n_frames} frames", str(path)
            )
        if len(set(sv)) != len(sv):
            raise DicomError(
                "SliceVector (0054,0080) repeats slice numbers: several volumes in one file",
                str(path),
            )
        order = sorted(range(n_frames), key=lambda i: sv[i])
    elif TAG_SLICE_VECTOR in pointer_tags:
        warnings.append(
            "Frame Increment Pointer names SliceVector but it is absent: file order used"
        )
    n_slices = _int_value(ds, "NumberOfSlices", src, None)
    if n_slices is not None and int(n_slices) != n_frames:
        raise DicomError(
            f"NumberOfSlices (0054,0081) = {int(n_slices)} but the file has {n_frames} frames",
            str(path),
        )

    direction = _orthonormal(iop, str(path))
    sign = 1.0 if slice_spacing > 0 else -1.0
    direction[:, 2] *= sign
    spacing_k = abs(float(slice_spacing))
    slope = _slope(ds, "RescaleSlope", src)
    intercept = _intercept(ds, "RescaleIntercept", src)
    mappings = _rwvm(ds)
    frames = [
        _Frame(
            source=f"{path} (frame {i + 1})",
            path=path,
            ds=ds,
            frame=i,
            position=ipp + k * spacing_k * direction[:, 2],
            orientation=iop,
            pixel_spacing=spacing_rc,
            rows=rows,
            cols=cols,
            slope=slope,
            intercept=intercept,
            mappings=mappings,
        )
        for k, i in enumerate(order)
    ]
    geometry = Geometry(
        shape_zyx=(n_frames, rows, cols),
        spacing_mm=(spacing_rc[1], spacing_rc[0], spacing_k),
        origin_mm=_t3(ipp),
        direction=(_t3(direction[0]), _t3(direction[1]), _t3(direction[2])),
        frame_of_reference_uid=get_str(ds, "FrameOfReferenceUID"),
    )
    return frames, geometry


def _nm_duration_s(ds: Dataset) -> tuple[float | None, str]:
    """Total SPECT acquisition duration in seconds and where it came from.

    ``duration = time per view x number of views per detector`` (all detectors
    acquire at the same time), summed over rotations:

    1. Rotation Information Sequence (0054,0052) items (NM TOMO Acquisition
       module, PS3.3 C.8.4.12): Actual Frame Duration (0018,1242, ms) x Number of
       Frames in Rotation (0054,0053) -- the number of views per detector in that
       rotation (C.8.4.8.1.4: Number of Frames = detectors x rotations x frames in
       rotation for TOMO);
    2. top-level Actual Frame Duration x Number of Frames in Rotation (top level or
       from the sequence), as some exports keep them;
    3. Acquisition Duration (0018,9073, s) (Enhanced General Equipment / Acquisition
       modules), when a vendor gives the total directly.
    """
    items = list(get_value(ds, "RotationInformationSequence") or [])
    if items:
        total = 0.0
        ok = True
        for item in items:
            frame_ms = get_float(item, "ActualFrameDuration")
            n_views = get_float(item, "NumberOfFramesInRotation")
            if frame_ms is None or n_views is None or frame_ms <= 0 or n_views <= 0:
                ok = False
                break
            total += frame_ms / 1000.0 * n_views
        if ok:
            return (
                total,
                "RotationInformationSequence: ActualFrameDuration x NumberOfFramesInRotation",
            )
    frame_ms = get_float(ds, "ActualFrameDuration")
    n_views = get_float(ds, "NumberOfFramesInRotation")
    if n_views is None and items:
        n_views = get_float(items[0], "NumberOfFramesInRotation")
    if frame_ms is not None and n_views is not None and frame_ms > 0 and n_views > 0:
        return frame_ms / 1000.0 * n_views, "ActualFrameDuration x NumberOfFramesInRotation"
    total_s = get_float(ds, "AcquisitionDuration")
    if total_s is not None and total_s > 0:
        return total_s, "AcquisitionDuration"
    return None, ""


def _pet_duration_s(ds: Dataset, frames: list[_Frame]) -> float | None:
    """PET frame duration: Actual Frame Duration (0018,1242, ms) or Frame Acquisition Duration."""
    frame_ms = get_float(ds, "ActualFrameDuration")
    if frame_ms is not None and frame_ms > 0:
        return frame_ms / 1000.0
    content = first_item(first_item(ds, "PerFrameFunctionalGroupsSequence"), "FrameContentSequence")
    if content is not None:
        ms = get_float(content, "FrameAcquisitionDuration")
        if ms is not None and ms > 0:
            return ms / 1000.0
    total_s = get_float(ds, "AcquisitionDuration")
    return total_s if total_s is not None and total_s > 0 else None


def _philips_activity_scale(ds: Dataset) -> float | None:
    """Philips PET private Activity Concentration Scale Factor (7053,xx09), if present."""
    try:
        block = ds.private_block(0x7053, "Philips PET Private Group")
        value = block[0x09].value
        f = float(value)
        return f if f > 0 else None
    except (KeyError, ValueError, TypeError):
        return None


# ------------------------------------------------------------ dates and times
#: Earliest credible acquisition or administration (no digital nuclear medicine
#: image or DICOM file predates 1970).
EARLIEST_CREDIBLE = datetime(1970, 1, 1)
#: A time up to this far after the computer's clock is accepted (time zones of
#: the modality and the workstation differ by at most 14 h, UTC-12 .. UTC+14).
CLOCK_MARGIN = timedelta(hours=14)

_DATE_KEYWORDS = ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate")
_TIME_KEYWORDS = ("StudyTime", "SeriesTime", "AcquisitionTime", "ContentTime")


def _check_dates(ds: Dataset, source: str) -> None:
    """Dates and times present in the header must parse (PS3.5 DA, TM, DT).

    Raises
    ------
    DicomError
        e.g. ``AcquisitionDate '20261345' is not a date (YYYYMMDD)``.
    """
    for kw in _DATE_KEYWORDS:
        if _present(ds, kw) and parse_da(get_value(ds, kw)) is None:
            raise DicomError(f"{kw} {_raw_text(ds, kw)!r} is not a date (YYYYMMDD)", source)
    for kw in _TIME_KEYWORDS:
        if _present(ds, kw) and parse_tm(get_value(ds, kw)) is None:
            raise DicomError(f"{kw} {_raw_text(ds, kw)!r} is not a time (HHMMSS)", source)
    if (
        _present(ds, "AcquisitionDateTime")
        and parse_dt(get_value(ds, "AcquisitionDateTime")) is None
    ):
        raise DicomError(
            f"AcquisitionDateTime {_raw_text(ds, 'AcquisitionDateTime')!r} is not a date-time",
            source,
        )
    item = radiopharmaceutical_item(ds)
    kw = "RadiopharmaceuticalStartDateTime"
    if item is not None and _present(item, kw) and parse_dt(get_value(item, kw)) is None:
        raise DicomError(f"{kw} {_raw_text(item, kw)!r} is not a date-time", source)
    if item is not None:
        # PS3.3 C.8.4.10.1: Radionuclide Total Dose (Bq) and Half Life (s) are
        # quantities; when given they must be finite and not negative (0 is
        # written by phantom acquisitions and means "not given").
        for kw in ("RadionuclideTotalDose", "RadionuclideHalfLife"):
            value = _number(item, kw, source)
            if value is not None and value < 0:
                raise DicomError(f"{kw} {value:g} is negative", source)


def _check_time_order(
    acquired_at: datetime | None, administration: Administration | None, source: str
) -> None:
    """Acquisition and administration times are credible and in order.

    Not before :data:`EARLIEST_CREDIBLE`, not after now + :data:`CLOCK_MARGIN`,
    and the acquisition not before the administration read from the same header.
    """
    latest = datetime.now() + CLOCK_MARGIN
    for what, t in (
        ("acquisition date/time", acquired_at),
        (
            "administration date/time (Radiopharmaceutical Start DateTime)",
            (administration.time if administration is not None else None),
        ),
    ):
        if t is None:
            continue
        if t < EARLIEST_CREDIBLE:
            raise DicomError(f"{what} {t:%Y-%m-%d %H:%M} is before 1970", source)
        if t > latest:
            raise DicomError(f"{what} {t:%Y-%m-%d %H:%M} is in the future", source)
    if acquired_at is not None and administration is not None and acquired_at < administration.time:
        raise DicomError(
            f"acquisition {acquired_at:%Y-%m-%d %H:%M} is before the administration "
            f"{administration.time:%Y-%m-%d %H:%M} (Radiopharmaceutical Start DateTime)",
            source,
        )


# --------------------------------------------------------------- the reader
def _kind(sop_class: str, modality: str) -> str | None:
    if sop_class in CT_SOP_CLASSES:
        return "CT"
    if sop_class in NM_SOP_CLASSES:
        return "NM"
    if sop_class in PET_SOP_CLASSES:
        return "PT"
    return None


def _read_all(series: SeriesFiles) -> list[tuple[Path, Dataset]]:
    out = []
    for p in series.paths:
        path = Path(p)
        if not path.is_file():
            raise DicomError("file not found", str(path))
        out.append((path, read_dataset(path)))
    return out


def read_series(series: SeriesFiles, calibration_cps_per_mbq: float | None = None) -> LoadedSeries:
    """Read a CT, SPECT (NM) or PET series into a volume with its metadata.

    Parameters
    ----------
    series
        Files of one series, as found by
        :func:`dosimetry_core.io.dicom_scan.scan_directory`.
    calibration_cps_per_mbq
        Camera calibration factor (cps/MBq) for count-based SPECT.  Vendor Bq/mL
        series (Units BQML or a Bq/ml Real World Value Mapping) ignore it.

    Returns
    -------
    LoadedSeries
        ``volume`` in HU (CT), Bq/mL (quantitative NM/PT) or counts (NM without a
        calibration factor, ``info.calibration_status`` = UNCALIBRATED);
        ``acquired_at`` the acquisition start; ``duration_s``; ``patient``;
        ``administration`` from the Radiopharmaceutical Information Sequence;
        ``warnings`` for the user.  ``info.volume`` is left unset (the store sets it).

    Notes
    -----
    **Value mapping.**  Stored values become real values through, in order of
    preference for NM/PT: a Real World Value Mapping Sequence (0040,9096) item
    whose Measurement Units Code Sequence (0040,08EA) is Bq/ml (PS3.3
    C.7.6.16.2.11; Siemens xSPECT and GE Q.Metrix style); else Rescale Slope /
    Intercept (0028,1053)/(0028,1052) -- per file for PET and CT, per frame from the
    Pixel Value Transformation functional group (0028,9145) of enhanced images --
    interpreted in the Units (0054,1001) of the series (C.8.9.1.1.3).

    **Counts to Bq/mL** (Units CNTS/PROPCNTS, or absent for NM, with a warning)::

        C [Bq/mL] = counts / (duration_s * cps_per_mbq) * 1e6 / voxel_volume_ml

    where ``duration_s`` is the total acquisition duration = time per view x
    number of views per detector (see :func:`_nm_duration_s`).  The calibration
    factor must be measured with the same convention (counts of the reconstructed
    phantom volume divided by that duration and by the phantom activity), so the
    number of detector heads cancels.  Units CPS (count rate) use
    ``C = cps / cps_per_mbq * 1e6 / voxel_volume_ml``.  Without a calibration
    factor the counts volume is returned as UNCALIBRATED with a warning.

    **SUV to Bq/mL** (Units GML, SUV body weight)::

        C(t_ref) [Bq/mL] = SUV * D(t_ref) [Bq] / (weight_kg * 1000)

    with the injected dose D (Radionuclide Total Dose) decayed from the
    administration to the decay-correction reference t_ref.

    **Decay correction** (Decay Correction (0054,1102), C.8.9.1.1.4).  The volume
    is returned as activity concentration at the acquisition start ``acquired_at``:

    * START: values refer to the series start (PET: Series Date/Time, NM: the
      acquisition start); if that differs from ``acquired_at`` by more than 1 s they
      are decayed to it;
    * ADMIN: values refer to the administration (Radiopharmaceutical Start
      DateTime) and are multiplied by ``2 ** (-(acquired_at - t_admin) / T_half)``;
    * NONE: values are used as measured (``decay_corrected_to`` stays None).

    ``info.decay_corrected_to`` is then ``acquired_at``.  The half-life comes from
    Radionuclide Half Life (0018,1075), else from the nuclide
    (:func:`dosimetry_core.physics.nuclides.half_life_h`).  Enhanced PET "Decay
    Corrected" (0018,9758) with Decay Correction DateTime (0018,9701) is handled
    the same way.

    **Geometry.**  Single-frame CT/PET slices and enhanced frames are sorted along
    the slice normal (row cosine x column cosine of Image Orientation (Patient));
    origin = Image Position (Patient) of the first sorted slice.  Classic NM uses
    the position of the first frame, the frame order of the Slice Vector and the
    sign of Spacing Between Slices.

    Raises
    ------
    DicomError
        Unreadable files, non-image series ("not an image series"), truncated pixel
        data, missing Image Position (Patient), mixed frames of reference, gantry
        tilt, duplicated or missing slices, irregular spacing, NM without an
        acquisition date/time, counts with a calibration factor but no acquisition
        duration.
    UnitsError
        Units that cannot be converted (e.g. Units code not known).
    CalibrationError
        A calibration factor that is not a positive number.

    Whatever is wrong with a file -- a header value of the wrong type
    (``Rows`` = ``"abc"``), absurd dimensions, NaN or non-positive slopes and
    spacings, damaged pixel data -- the result is one of these exceptions naming
    the file, never another exception type (an ``AssertionError`` is a bug and
    is not converted).  Image dimensions are checked against the file size and
    :data:`MAX_SERIES_VOXELS` before any pixel data are decoded.
    """
    try:
        return _read_series(series, calibration_cps_per_mbq)
    except DicomError as exc:
        if not exc.path and series.paths:
            raise DicomError(str(exc), _first_path(series)) from exc
        raise
    except (UnitsError, CalibrationError):
        raise
    except AssertionError:
        raise
    except DosimetryError as exc:
        raise DicomError(str(exc), _first_path(series)) from exc
    except MemoryError as exc:
        raise DicomError(
            "image too large for the memory of this computer", _first_path(series)
        ) from exc
    except Exception as exc:  # hostile or damaged header: name the file, never crash
        raise DicomError(
            f"malformed DICOM header or pixel data ({type(exc).__name__}: {short_exception(exc)})",
            _first_path(series),
        ) from exc


def _first_path(series: SeriesFiles) -> str | None:
    return str(series.paths[0]) if series.paths else series.series_instance_uid or None


def _read_series(series: SeriesFiles, calibration_cps_per_mbq: float | None) -> LoadedSeries:
    """The body of :func:`read_series` (exceptions not yet normalised)."""
    cf = calibration_cps_per_mbq
    if cf is not None and not (isinstance(cf, int | float) and math.isfinite(cf) and cf > 0):
        raise CalibrationError(
            f"calibration factor must be a positive number of cps/MBq, got {cf!r}"
        )
    if not series.paths:
        raise DicomError("series has no files", series.series_instance_uid or None)
    files = _read_all(series)
    path0, ds0 = files[0]
    sop = get_str(ds0, "SOPClassUID")
    modality = get_str(ds0, "Modality").upper()
    kind = _kind(sop, modality)
    if kind is None:
        if sop and not is_image_sop_class(sop):
            raise DicomError(
                f"not an image series ({sop_class_name(sop)}, modality {modality or '?'})",
                str(path0),
            )
        raise DicomError(
            f"unsupported image series ({sop_class_name(sop) or 'no SOP class'}, modality "
            f"{modality or '?'}): only CT, NM (SPECT) and PET images are read",
            str(path0),
        )
    for p, ds in files[1:]:
        if get_str(ds, "SOPClassUID") != sop:
            raise DicomError(
                f"mixed SOP classes in one series ({sop_class_name(get_str(ds, 'SOPClassUID'))} "
                f"here, {sop_class_name(sop)} in {path0})",
                str(p),
            )
    _check_pixel_budget(files)
    for p, ds in files:
        _check_dates(ds, str(p))
    fors = {get_str(ds, "FrameOfReferenceUID") for _, ds in files}
    if len(fors) > 1:
        by_for: dict[str, list[Path]] = {}
        for p, ds in files:
            by_for.setdefault(get_str(ds, "FrameOfReferenceUID"), []).append(p)
        detail = "; ".join(f"{uid or '(none)'}: {join_paths(ps, 2)}" for uid, ps in by_for.items())
        raise DicomError(f"mixed frames of reference within one series ({detail})", str(path0))
    warnings: list[str] = []
    flat0 = _flat(ds0)
    for_uid = get_str(flat0, "FrameOfReferenceUID")
    fg = any(_is_multiframe_fg(ds) for _, ds in files)
    if fg and len(files) > 1:
        raise DicomError(
            f"{len(files)} multi-frame files in one series; expected one enhanced image "
            f"({join_paths(p for p, _ in files)})",
            str(path0),
        )

    frames: list[_Frame]
    geometry: Geometry
    if fg:
        frames, geometry = _stack(
            _fg_frames(path0, ds0), warnings, _fg_slice_thickness(ds0), for_uid
        )
    elif kind == "NM":
        multi = [p for p, ds in files if _n_frames(ds, str(p)) > 1]
        if len(files) == 1:
            frames, geometry = _nm_frames(path0, ds0, warnings)
        elif multi:
            raise DicomError(
                f"NM series with {len(files)} files of which {len(multi)} multi-frame "
                f"({join_paths(multi)}): expected one reconstructed volume per series",
                str(path0),
            )
        else:
            planes = [_single_frame(p, ds, check_tilt=False) for p, ds in files]
            frames, geometry = _stack(planes, warnings, _fg_slice_thickness(ds0), for_uid)
    else:
        planes = [_single_frame(p, ds, check_tilt=(kind == "CT")) for p, ds in files]
        frames, geometry = _stack(planes, warnings, _fg_slice_thickness(ds0), for_uid)

    patient = patient_from_dataset(flat0)
    if not patient.patient_id:
        warnings.append("no Patient ID (0010,0020) in the header")
    times = [f.acquired_at for f in frames if f.acquired_at is not None]
    acquired_at, time_source = acquisition_datetime(flat0)
    if times and kind != "NM":
        acquired_at = min(times)
        time_source = time_source or "per-frame acquisition date/time"
    info = SeriesInfo(
        series_instance_uid=get_str(flat0, "SeriesInstanceUID"),
        study_instance_uid=get_str(flat0, "StudyInstanceUID"),
        modality=modality or kind,
        series_description=get_str(flat0, "SeriesDescription"),
        frame_of_reference_uid=for_uid,
        manufacturer=get_str(flat0, "Manufacturer"),
        manufacturer_model=get_str(flat0, "ManufacturerModelName"),
        station_name=get_str(flat0, "StationName"),
        device_serial_number=get_str(flat0, "DeviceSerialNumber"),
        n_files=len(files),
        corrections=[c.upper() for c in get_strs(flat0, "CorrectedImage")],
    )
    info.extra["sop_class_uid"] = sop
    if time_source:
        info.extra["acquired_at_source"] = time_source
    image_type = get_str(flat0, "ImageType")
    if image_type:
        info.extra["image_type"] = image_type

    _check_time_order(acquired_at, None, str(path0))
    if kind == "CT":
        hu = _values(frames)
        if hu.size and float(np.max(np.abs(hu))) > MAX_ABS_HU:
            raise DicomError(
                f"CT values up to {float(np.max(np.abs(hu))):.3g} are not Hounsfield units "
                "(RescaleSlope/RescaleIntercept)",
                str(path0),
            )
        rounded = np.rint(hu)
        if (
            np.array_equal(rounded, hu)
            and hu.size
            and hu.min() >= np.iinfo(np.int16).min
            and hu.max() <= np.iinfo(np.int16).max
        ):
            array: NDArray[Any] = rounded.astype(np.int16)
        else:
            array = hu.astype(np.float32)
        info.source_units = "HU"
        info.calibration_status = CalibrationStatus.NOT_APPLICABLE
        volume = Volume(array, geometry, ImageUnits.HU, info.series_description)
        return LoadedSeries(
            volume=volume,
            info=info,
            patient=patient,
            acquired_at=acquired_at,
            duration_s=None,
            administration=None,
            warnings=warnings,
        )

    # ---- functional (NM / PT)
    src = str(path0)
    if acquired_at is None:
        raise DicomError(
            "no acquisition date/time (AcquisitionDate/AcquisitionTime, AcquisitionDateTime, "
            "SeriesDate/SeriesTime and ContentDate/ContentTime are all missing)",
            src,
        )
    administration = administration_from_dataset(flat0, acquired_at, warnings)
    _check_time_order(acquired_at, administration, src)
    item = radiopharmaceutical_item(flat0)
    nuclide = None
    if item is not None:
        nuclide, _raw = nuclide_from_radiopharmaceutical_item(item)
    info.nuclide = nuclide or ""
    if kind == "NM":
        duration_s, duration_source = _nm_duration_s(flat0)
    else:
        duration_s = _pet_duration_s(flat0, frames)
        duration_source = "ActualFrameDuration" if duration_s else ""
    if duration_source:
        info.extra["duration_source"] = duration_source

    mode, reference = _decay_reference(
        kind, flat0, acquired_at, administration, info, warnings, src
    )
    if mode:
        info.extra["decay_correction"] = mode
    values, units, status = _to_activity(
        kind,
        frames,
        flat0,
        geometry,
        cf,
        duration_s,
        administration,
        warnings,
        src,
        info,
        suv_reference=reference or acquired_at,
    )
    decay_to = _decay_to_acquisition(
        values, flat0, acquired_at, mode, reference, administration, nuclide, info, src
    )
    info.decay_corrected_to = decay_to
    info.calibration_status = status
    if status == CalibrationStatus.CALIBRATION_FACTOR:
        info.cps_per_mbq = float(cf) if cf is not None else None
    volume = Volume(values.astype(np.float32), geometry, units, info.series_description)
    return LoadedSeries(
        volume=volume,
        info=info,
        patient=patient,
        acquired_at=acquired_at,
        duration_s=duration_s,
        administration=administration,
        warnings=warnings,
    )


def _units_code(kind: str, flat: Dataset, frames: list[_Frame]) -> str:
    """Units (0054,1001) of the series; from the mapping units when absent (enhanced PET)."""
    code = get_str(flat, "Units").upper()
    if code:
        return code
    for m in frames[0].mappings:
        if m.units:
            return m.units
    return ""


def _to_activity(
    kind: str,
    frames: list[_Frame],
    flat: Dataset,
    geometry: Geometry,
    cf: float | None,
    duration_s: float | None,
    administration: Administration | None,
    warnings: list[str],
    src: str,
    info: SeriesInfo,
    suv_reference: datetime,
) -> tuple[NDArray[np.float64], ImageUnits, CalibrationStatus]:
    """Real values of a functional series in Bq/mL (or counts when uncalibrated).

    ``suv_reference`` is the time SUV values refer to (their decay-correction
    reference, else the acquisition start).
    """
    units = _units_code(kind, flat, frames)
    mapping = _pick_mapping(frames[0].mappings)
    if mapping is not None:
        info.source_units = units or "BQML"
        info.extra["value_mapping"] = (
            f"RealWorldValueMappingSequence ({mapping.units_code or mapping.label})"
        )
        return _values(frames, use_mapping=mapping), ImageUnits.BQML, CalibrationStatus.VENDOR_BQML
    info.source_units = units
    info.extra["value_mapping"] = "RescaleSlope/RescaleIntercept"
    values = _values(frames)
    if units == "BQML":
        return values, ImageUnits.BQML, CalibrationStatus.VENDOR_BQML
    if units == "KBQML":
        return values * 1e3, ImageUnits.BQML, CalibrationStatus.VENDOR_BQML
    if units == "GML":
        return (
            _suv_to_bqml(values, flat, administration, suv_reference, src, info),
            ImageUnits.BQML,
            (CalibrationStatus.SUV_CONVERTED),
        )
    if kind == "PT" and units in ("CNTS", "PROPCNTS"):
        scale = _philips_activity_scale(flat)
        if scale is not None:
            info.extra["value_mapping"] = (
                "RescaleSlope x Philips activity concentration scale factor"
            )
            return values * scale, ImageUnits.BQML, CalibrationStatus.VENDOR_BQML
        warnings.append(
            f"PET in {units} without an activity concentration scale factor: left in counts "
            "(not quantitative)"
        )
        return values, ImageUnits.COUNTS, CalibrationStatus.UNCALIBRATED
    if kind == "PT" and not units:
        raise UnitsError(
            f"{src}: PET image without Units (0054,1001): cannot tell what the values are"
        )
    if units == "CPS":
        if cf is None:
            if duration_s is None:
                raise UnitsError(
                    f"{src}: image in counts per second (Units CPS) without a calibration factor "
                    "or acquisition duration: cannot express it in counts or Bq/mL"
                )
            warnings.append(
                "SPECT in counts per second converted to counts with the acquisition duration; "
                "no calibration factor given: values are counts, not Bq/mL"
            )
            return values * duration_s, ImageUnits.COUNTS, CalibrationStatus.UNCALIBRATED
        return (
            values / cf * 1e6 / geometry.voxel_volume_ml,
            ImageUnits.BQML,
            CalibrationStatus.CALIBRATION_FACTOR,
        )
    if units not in _COUNT_UNITS:
        raise UnitsError(
            f"{src}: image Units (0054,1001) {units!r} cannot be converted to Bq/mL "
            "(supported: BQML, CNTS, PROPCNTS, CPS, GML)"
        )
    if not units:
        warnings.append("SPECT without Units (0054,1001): values taken as counts")
    elif units == "NONE":
        warnings.append("SPECT with Units NONE: values taken as counts")
    elif units == "PROPCNTS":
        warnings.append("SPECT in PROPCNTS (proportional to counts): taken as counts")
    if cf is None:
        warnings.append(
            "SPECT in counts and no calibration factor given: volume left in counts "
            "(uncalibrated, not quantitative)"
        )
        return values, ImageUnits.COUNTS, CalibrationStatus.UNCALIBRATED
    if duration_s is None or duration_s <= 0:
        raise DicomError(
            "no acquisition duration (RotationInformationSequence/ActualFrameDuration x "
            "NumberOfFramesInRotation): cannot convert counts to Bq/mL with the calibration factor",
            src,
        )
    return (
        values / (duration_s * cf) * 1e6 / geometry.voxel_volume_ml,
        ImageUnits.BQML,
        CalibrationStatus.CALIBRATION_FACTOR,
    )


def _decay_reference(
    kind: str,
    flat: Dataset,
    acquired_at: datetime,
    administration: Administration | None,
    info: SeriesInfo,
    warnings: list[str],
    src: str,
) -> tuple[str, datetime | None]:
    """Decay Correction mode and the time the stored values refer to (None: not corrected)."""
    mode = get_str(flat, "DecayCorrection").upper()
    if not mode and get_str(flat, "DecayCorrected").upper() == "YES":
        ref = parse_dt(get_value(flat, "DecayCorrectionDateTime"))
        if ref is None:
            raise DicomError(
                "Decay Corrected (0018,9758) is YES but Decay Correction DateTime (0018,9701) "
                "is missing",
                src,
            )
        return "DATETIME", ref
    if mode == "START":
        ref = series_datetime(flat) if kind == "PT" else None
        return mode, ref or acquired_at
    if mode == "ADMIN":
        admin_time = administration.time if administration is not None else None
        if admin_time is None:
            item = radiopharmaceutical_item(flat)
            admin_time = (
                parse_dt(get_value(item, "RadiopharmaceuticalStartDateTime"))
                if item is not None
                else None
            )
        if admin_time is None:
            raise DicomError(
                "decay corrected to the administration (Decay Correction ADMIN) but no "
                "Radiopharmaceutical Start DateTime (0018,1078)",
                src,
            )
        return mode, admin_time
    if mode in ("NONE",):
        return mode, None
    if mode:
        raise DicomError(f"unknown Decay Correction (0054,1102) {mode!r}", src)
    if "DECY" in info.corrections:
        if kind == "PT":
            ref = series_datetime(flat) or acquired_at
        else:
            ref = acquired_at
        warnings.append(
            "image decay corrected (Corrected Image DECY) without Decay Correction (0054,1102): "
            "taken as corrected to the acquisition start"
        )
        return "START (assumed)", ref
    return "", None


def _suv_to_bqml(
    suv: NDArray[np.float64],
    flat: Dataset,
    administration: Administration | None,
    reference: datetime,
    src: str,
    info: SeriesInfo,
) -> NDArray[np.float64]:
    """SUV body weight (Units GML) back to Bq/mL at the decay-correction reference.

    ``C = SUV * D(t_ref) / (weight_kg * 1000)``, with the injected dose decayed from
    the administration to the reference time (PS3.3 C.8.9.1.1.3 and the QIBA SUV
    definition).  The decay from t_ref to the acquisition start is done after.
    """
    weight = get_float(flat, "PatientWeight")
    if weight is None or weight <= 0:
        raise DicomError("SUV image (Units GML) without Patient's Weight (0010,1030)", src)
    if administration is None:
        raise DicomError(
            "SUV image (Units GML) without injected dose and time in the "
            "Radiopharmaceutical Information Sequence",
            src,
        )
    t_half = half_life_s(flat, administration.nuclide)
    if t_half is None:
        raise DicomError("SUV image without half-life of the nuclide", src)
    elapsed = (reference - administration.time).total_seconds()
    dose_bq = administration.activity_mbq * 1e6 * 2.0 ** (-elapsed / t_half)
    info.extra["suv_dose_at_reference_bq"] = dose_bq
    return suv * dose_bq / (weight * 1000.0)


def _decay_to_acquisition(
    values: NDArray[np.float64],
    flat: Dataset,
    acquired_at: datetime,
    mode: str,
    ref: datetime | None,
    administration: Administration | None,
    nuclide: str | None,
    info: SeriesInfo,
    src: str,
) -> datetime | None:
    """Bring values decay corrected to ``ref`` to the acquisition start, in place.

    Returns the time the values then refer to (``acquired_at``), or None when the
    series is not decay corrected.
    """
    if ref is None:
        return None
    elapsed = (acquired_at - ref).total_seconds()
    info.extra["decay_reference"] = ref.isoformat()
    if abs(elapsed) > DECAY_TIME_TOLERANCE_S:
        t_half = half_life_s(flat, nuclide or (administration.nuclide if administration else None))
        if t_half is None:
            raise DicomError(
                f"values are decay corrected to {ref:%Y-%m-%d %H:%M:%S} ({mode}) but the "
                "half-life is unknown (no Radionuclide Half Life and no recognised nuclide)",
                src,
            )
        factor = 2.0 ** (-elapsed / t_half)
        values *= factor
        info.extra["decay_factor_applied"] = factor
    return acquired_at


# ------------------------------------------------------------- RTSTRUCT (test aid)
def read_rtstruct_polygons(path: str | Path) -> dict[str, list[NDArray[np.float64]]]:
    """Contours of an RT Structure Set as ``{ROI name: [(N, 3) LPS polygons]}``.

    A minimal reader (Structure Set ROI Sequence (3006,0020) and ROI Contour
    Sequence (3006,0039), PS3.3 C.8.8.5/C.8.8.6) used to check written files; the
    full RTSTRUCT import comes later.
    """
    path = Path(path)
    ds = read_dataset(path)
    names = {
        int(item.ROINumber): get_str(item, "ROIName")
        for item in get_value(ds, "StructureSetROISequence") or []
    }
    out: dict[str, list[NDArray[np.float64]]] = {}
    for roi in get_value(ds, "ROIContourSequence") or []:
        name = names.get(int(roi.ReferencedROINumber), str(roi.ReferencedROINumber))
        polys = out.setdefault(name, [])
        for contour in get_value(roi, "ContourSequence") or []:
            data = get_floats(contour, "ContourData") or []
            polys.append(np.asarray(data, dtype=float).reshape(-1, 3))
    return out
