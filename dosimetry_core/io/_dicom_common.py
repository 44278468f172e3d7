"""Helpers shared by the DICOM scanner, readers and writers (private module).

Nothing here is part of the public contract; use :mod:`dosimetry_core.io.dicom_scan`,
:mod:`dosimetry_core.io.dicom_read` and :mod:`dosimetry_core.io.dicom_write`.

References are to the DICOM standard (NEMA PS3, current edition): PS3.3 for
information object definitions and attributes, PS3.5 for value representations
(DA, TM, DT, DS, ...), PS3.6 for the data dictionary, PS3.10 for the file format.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from dosimetry_core.errors import DicomError, InvalidInputError
from dosimetry_core.model import Administration, Patient

# ------------------------------------------------------------------ SOP classes
# PS3.4 Annex B.5 (Standard SOP Classes) and PS3.6 Annex A (UID registry).
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
ENHANCED_CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2.1"
LEGACY_ENHANCED_CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2.2"
NM_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.20"
NM_IMAGE_STORAGE_RETIRED = "1.2.840.10008.5.1.4.1.1.5"
PET_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.128"
LEGACY_ENHANCED_PET_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.128.1"
ENHANCED_PET_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.130"
RT_STRUCTURE_SET_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
MEDIA_STORAGE_DIRECTORY_STORAGE = "1.2.840.10008.1.3.10"

CT_SOP_CLASSES = frozenset(
    {CT_IMAGE_STORAGE, ENHANCED_CT_IMAGE_STORAGE, LEGACY_ENHANCED_CT_IMAGE_STORAGE}
)
NM_SOP_CLASSES = frozenset({NM_IMAGE_STORAGE, NM_IMAGE_STORAGE_RETIRED})
PET_SOP_CLASSES = frozenset(
    {PET_IMAGE_STORAGE, LEGACY_ENHANCED_PET_IMAGE_STORAGE, ENHANCED_PET_IMAGE_STORAGE}
)
SUPPORTED_IMAGE_SOP_CLASSES = CT_SOP_CLASSES | NM_SOP_CLASSES | PET_SOP_CLASSES

# Tags by number, for elements pydicom may not name in every context.
TAG_PIXEL_DATA = 0x7FE00010
TAG_FLOAT_PIXEL_DATA = 0x7FE00008
TAG_DOUBLE_FLOAT_PIXEL_DATA = 0x7FE00009
TAG_SLICE_VECTOR = 0x00540080


def sop_class_name(uid: str) -> str:
    """Human-readable name of a SOP Class UID (PS3.6 Annex A), or the UID itself."""
    try:
        name = pydicom.uid.UID(uid).name
    except Exception:
        return uid
    return name if name and name != uid else uid


def is_image_sop_class(uid: str) -> bool:
    """True for storage SOP classes whose instances must carry pixel data.

    Uses the registered name ("... Image Storage", PS3.6 Annex A); unknown
    (private) SOP classes are not assumed to be images.
    """
    name = sop_class_name(uid)
    return name != uid and "Image Storage" in name


# ------------------------------------------------------------ element access
def get_value(ds: Dataset, keyword: str, default: Any = None) -> Any:
    """Value of a top-level element, or ``default`` when absent or empty."""
    try:
        elem = ds[keyword] if keyword in ds else None
    except Exception:
        return default
    if elem is None:
        return default
    value = elem.value
    if (
        value is None
        or (isinstance(value, str | bytes) and not value)
        or (isinstance(value, list | tuple) and len(value) == 0)
    ):
        return default
    return value


def get_str(ds: Dataset, keyword: str) -> str:
    """Top-level element as a stripped string ('' when absent); multi-values joined by '\\'."""
    value = get_value(ds, keyword)
    if value is None:
        return ""
    if isinstance(value, list | tuple | pydicom.multival.MultiValue):
        return "\\".join(str(v).strip() for v in value)
    return str(value).strip()


def get_float(ds: Dataset, keyword: str) -> float | None:
    """Top-level numeric element (DS, IS, FD, US, ...) as float, None when absent/invalid."""
    value = get_value(ds, keyword)
    if value is None:
        return None
    if isinstance(value, list | tuple | pydicom.multival.MultiValue):
        if len(value) == 0:
            return None
        value = value[0]
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def get_floats(ds: Dataset, keyword: str) -> list[float] | None:
    """Multi-valued numeric element as a list of floats, None when absent/invalid."""
    value = get_value(ds, keyword)
    if value is None:
        return None
    if not isinstance(value, list | tuple | pydicom.multival.MultiValue):
        value = [value]
    try:
        return [float(v) for v in value]
    except (TypeError, ValueError):
        return None


def get_strs(ds: Dataset, keyword: str) -> list[str]:
    """Multi-valued string element (CS, LO, ...) as a list of stripped strings."""
    value = get_value(ds, keyword)
    if value is None:
        return []
    if not isinstance(value, list | tuple | pydicom.multival.MultiValue):
        value = [value]
    return [str(v).strip() for v in value if str(v).strip()]


def first_item(ds: Dataset | None, keyword: str) -> Dataset | None:
    """First item of a sequence element, or None."""
    if ds is None:
        return None
    seq = get_value(ds, keyword)
    if not seq:
        return None
    try:
        item: Dataset = seq[0]
        return item
    except (IndexError, TypeError):
        return None


# ------------------------------------------------------------- date and time
_TM_RE = re.compile(r"^(\d{2})(\d{2})?(\d{2})?(?:\.(\d{1,6}))?$")


def parse_da(value: Any) -> date | None:
    """Parse a DA value (PS3.5 Table 6.2-1: ``YYYYMMDD``; legacy ``YYYY.MM.DD`` accepted)."""
    if value is None:
        return None
    s = str(value).strip().replace(".", "").replace("-", "")
    if len(s) != 8 or not s.isdigit():
        return None
    try:
        return date(int(s[:4]), int(s[4:6]), int(s[6:8]))
    except ValueError:
        return None


def parse_tm(value: Any) -> time | None:
    """Parse a TM value (PS3.5 Table 6.2-1: ``HH[MM[SS[.F{1,6}]]]``; also ``HH:MM:SS``)."""
    if value is None:
        return None
    s = str(value).strip().replace(":", "")
    if not s:
        return None
    m = _TM_RE.match(s)
    if not m:
        return None
    hh, mm, ss, frac = m.groups()
    try:
        sec = int(ss or 0)
        return time(
            int(hh),
            int(mm or 0),
            min(sec, 59),  # leap second 60 is legal in TM
            int((frac or "0").ljust(6, "0")[:6]),
        )
    except ValueError:
        return None


def parse_dt(value: Any) -> datetime | None:
    """Parse a DT value (PS3.5 Table 6.2-1: ``YYYYMMDDHHMMSS.FFFFFF&ZZXX``) as naive local time.

    A UTC offset suffix is dropped: the workstation keeps wall-clock times as DICOM
    records them (see :mod:`dosimetry_core.model.units`).
    """
    if value is None:
        return None
    s = str(value).strip()
    if not s:
        return None
    s = re.split(r"[+-]", s, maxsplit=1)[0] if len(s) > 8 else s
    d = parse_da(s[:8])
    if d is None:
        return None
    t = parse_tm(s[8:]) if len(s) > 8 else time(0, 0)
    if t is None:
        return None
    return datetime.combine(d, t)


def combine_da_tm(da: Any, tm: Any) -> datetime | None:
    """Combine a DA and a TM value into a naive datetime (None if either is missing)."""
    d = parse_da(da)
    t = parse_tm(tm)
    if d is None or t is None:
        return None
    return datetime.combine(d, t)


def format_da(value: date | datetime) -> str:
    """Format a DA value (PS3.5 Table 6.2-1)."""
    return value.strftime("%Y%m%d")


def format_tm(value: datetime | time) -> str:
    """Format a TM value with microseconds when present (PS3.5 Table 6.2-1)."""
    if value.microsecond:
        return value.strftime("%H%M%S.%f")
    return value.strftime("%H%M%S")


def format_dt(value: datetime) -> str:
    """Format a DT value without UTC offset (PS3.5 Table 6.2-1)."""
    return format_da(value) + format_tm(value)


def acquisition_datetime(ds: Dataset) -> tuple[datetime | None, str]:
    """Acquisition start of one instance and the attributes it came from.

    Order: Acquisition Date/Time (0008,0022)/(0008,0032); Acquisition DateTime
    (0008,002A); Acquisition Time with the Series or Study Date; Series
    Date/Time (0008,0021)/(0008,0031); Content Date/Time (0008,0023)/(0008,0033).
    All are in the General Image / General Series modules (PS3.3 C.7.6.1, C.7.3.1);
    Acquisition DateTime in the Enhanced modules (C.7.6.16.2.2, C.8.22.3).
    """
    candidates: list[tuple[datetime | None, str]] = [
        (
            combine_da_tm(get_value(ds, "AcquisitionDate"), get_value(ds, "AcquisitionTime")),
            "AcquisitionDate/AcquisitionTime",
        ),
        (parse_dt(get_value(ds, "AcquisitionDateTime")), "AcquisitionDateTime"),
        (
            combine_da_tm(
                get_value(ds, "SeriesDate") or get_value(ds, "StudyDate"),
                get_value(ds, "AcquisitionTime"),
            ),
            "AcquisitionTime with SeriesDate/StudyDate",
        ),
        (
            combine_da_tm(get_value(ds, "SeriesDate"), get_value(ds, "SeriesTime")),
            "SeriesDate/SeriesTime",
        ),
        (
            combine_da_tm(get_value(ds, "ContentDate"), get_value(ds, "ContentTime")),
            "ContentDate/ContentTime",
        ),
    ]
    for value, source in candidates:
        if value is not None:
            return value, source
    return None, ""


def series_datetime(ds: Dataset) -> datetime | None:
    """Series Date/Time (0008,0021)/(0008,0031): the PET decay-correction reference (C.8.9.1)."""
    return combine_da_tm(get_value(ds, "SeriesDate"), get_value(ds, "SeriesTime"))


# -------------------------------------------------------------------- reading
def looks_like_raw_dicom(path: Path) -> bool:
    """Cheap test for a DICOM data set without the PS3.10 preamble.

    Such files (old ACR-NEMA style exports) start directly with an element of
    group 0x0002, 0x0008 (little or big endian) -- anything else is not DICOM.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return False
    if len(head) < 4:
        return False
    group_le = int.from_bytes(head[:2], "little")
    group_be = int.from_bytes(head[:2], "big")
    return group_le in (0x0002, 0x0008) or group_be in (0x0002, 0x0008)


def read_dataset(
    path: Path,
    *,
    stop_before_pixels: bool = False,
    specific_tags: list[int | str] | None = None,
    defer_size: int | None = None,
) -> Dataset:
    """Read one DICOM file (PS3.10), tolerating a missing preamble.

    ``force=False`` is tried first.  A file without the 'DICM' prefix is read with
    ``force=True`` and accepted only if it has SOP Class UID (0008,0016) and
    Series Instance UID (0020,000E); its Transfer Syntax UID (0002,0010) is then
    set from the encoding pydicom detected (implicit/explicit VR, endianness) so
    that its pixel data can be decoded.

    Raises
    ------
    DicomError
        Not a DICOM file, or unreadable (message names the file).
    """
    kwargs: dict[str, Any] = dict(
        stop_before_pixels=stop_before_pixels, specific_tags=specific_tags, defer_size=defer_size
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about odd values; we judge the result
        try:
            return pydicom.dcmread(path, **kwargs)
        except InvalidDicomError:
            pass
        except Exception as exc:  # pydicom raises many types on corrupt files
            raise DicomError(f"unreadable DICOM file ({_short(exc)})", str(path)) from exc
        if not looks_like_raw_dicom(path):
            raise DicomError("not a DICOM file", str(path))
        try:
            ds = pydicom.dcmread(path, force=True, **kwargs)
        except Exception as exc:
            raise DicomError(f"not a DICOM file ({_short(exc)})", str(path)) from exc
    if not get_str(ds, "SOPClassUID") or not get_str(ds, "SeriesInstanceUID"):
        raise DicomError(
            "not a DICOM file (no 'DICM' prefix and no SOP Class UID / Series Instance UID)",
            str(path),
        )
    meta = getattr(ds, "file_meta", None)
    if meta is None:
        meta = ds.file_meta = FileMetaDataset()
    if "TransferSyntaxUID" not in meta:
        implicit, little = getattr(ds, "original_encoding", (True, True))
        if implicit:
            meta.TransferSyntaxUID = ImplicitVRLittleEndian
        else:
            meta.TransferSyntaxUID = ExplicitVRLittleEndian if little else ExplicitVRBigEndian
    return ds


def _short(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return msg if len(msg) <= 160 else msg[:157] + "..."


short_exception = _short


# --------------------------------------------------------------- patient data
def patient_from_dataset(ds: Dataset) -> Patient:
    """Patient module (PS3.3 C.7.1.1) and Patient Study module (C.7.2.2) to a Patient.

    Patient's Size (0010,1020) is in metres and becomes ``height_cm``; Patient's
    Weight (0010,1030) is in kg.
    """
    weight = get_float(ds, "PatientWeight")
    size_m = get_float(ds, "PatientSize")
    sex = get_str(ds, "PatientSex").upper()
    return Patient(
        patient_id=get_str(ds, "PatientID"),
        name=get_str(ds, "PatientName"),
        birth_date=parse_da(get_value(ds, "PatientBirthDate")),
        sex=sex if sex in ("M", "F", "O") else "",
        weight_kg=weight if weight is not None and weight > 0 else None,
        height_cm=round(size_m * 100.0, 3) if size_m is not None and size_m > 0 else None,
    )


# ------------------------------------------------------------------ nuclides
# Radionuclide codes (SNOMED CT, CID 18 / CID 4020, PS3.16) with the code meaning
# spelling used by DICOM ("^177^Lutetium").
RADIONUCLIDE_CODES: dict[str, tuple[str, str]] = {
    "Lu-177": ("447553000", "^177^Lutetium"),
    "Y-90": ("14691008", "^90^Yttrium"),
    "I-131": ("1368003", "^131^Iodine"),
    "I-123": ("21572004", "^123^Iodine"),
    "I-124": ("40937006", "^124^Iodine"),
    "Tc-99m": ("72454006", "^99m^Technetium"),
    "In-111": ("56609000", "^111^Indium"),
    "F-18": ("77004003", "^18^Fluorine"),
    "Ga-68": ("35337001", "^68^Gallium"),
    "Ga-67": ("2008008", "^67^Gallium"),
    "Cu-64": ("3932008", "^64^Copper"),
    "Cu-67": ("53700003", "^67^Copper"),
    "Ra-223": ("24853006", "^223^Radium"),
}
_CODE_TO_NUCLIDE = {code: n for n, (code, _) in RADIONUCLIDE_CODES.items()}

_ELEMENT_NAMES = {
    "Lu": "Lutetium",
    "Y": "Yttrium",
    "I": "Iodine",
    "Tc": "Technetium",
    "In": "Indium",
    "F": "Fluorine",
    "Ga": "Gallium",
    "Cu": "Copper",
    "Ra": "Radium",
    "Ho": "Holmium",
    "Tb": "Terbium",
    "Ac": "Actinium",
    "Pb": "Lead",
    "Bi": "Bismuth",
    "Sm": "Samarium",
    "Re": "Rhenium",
    "Er": "Erbium",
    "Sr": "Strontium",
    "Zr": "Zirconium",
    "Sc": "Scandium",
    "At": "Astatine",
    "Th": "Thorium",
    "Rb": "Rubidium",
    "Tl": "Thallium",
    "Xe": "Xenon",
}


def nuclide_code_meaning(nuclide: str) -> str:
    """DICOM-style code meaning of a normalised nuclide ('Lu-177' -> '^177^Lutetium')."""
    if nuclide in RADIONUCLIDE_CODES:
        return RADIONUCLIDE_CODES[nuclide][1]
    sym, _, mass = nuclide.partition("-")
    return f"^{mass}^{_ELEMENT_NAMES.get(sym, sym)}"


def normalize_nuclide_or_none(text: str) -> str | None:
    """Normalised nuclide name ('Lu-177') or None when the text is not a nuclide."""
    from dosimetry_core.physics.nuclides import normalize_nuclide

    if not text or not text.strip():
        return None
    try:
        return normalize_nuclide(text)
    except InvalidInputError:
        return None


def nuclide_from_radiopharmaceutical_item(item: Dataset) -> tuple[str | None, str]:
    """Nuclide of a Radiopharmaceutical Information Sequence item and what was found.

    Radionuclide Code Sequence (0054,0300) code meaning (e.g. '^177^Lutetium') or
    SNOMED code value; else the retired Radionuclide (0018,0030) text (PS3.3
    C.8.4.10.1 NM Isotope, C.8.9.2 PET Isotope).
    """
    raw = ""
    code = first_item(item, "RadionuclideCodeSequence")
    if code is not None:
        meaning = get_str(code, "CodeMeaning")
        raw = meaning or get_str(code, "CodeValue")
        n = normalize_nuclide_or_none(meaning)
        if n:
            return n, meaning
        value = get_str(code, "CodeValue")
        if value in _CODE_TO_NUCLIDE:
            return _CODE_TO_NUCLIDE[value], value
    text = get_str(item, "Radionuclide")
    if text:
        raw = raw or text
        n = normalize_nuclide_or_none(text)
        if n:
            return n, text
    return None, raw


def radiopharmaceutical_item(ds: Dataset) -> Dataset | None:
    """First Radiopharmaceutical Information Sequence (0054,0016) item, if any."""
    return first_item(ds, "RadiopharmaceuticalInformationSequence")


#: Below this, Radionuclide Total Dose (which PS3.3 defines in Bq) is taken to be in MBq.
BQ_PLAUSIBILITY_LIMIT = 1.0e5


def administration_from_dataset(
    ds: Dataset, acquired_at: datetime | None, warnings: list[str]
) -> Administration | None:
    """Administration from the Radiopharmaceutical Information Sequence (0054,0016).

    * nuclide: Radionuclide Code Sequence (0054,0300) (see
      :func:`nuclide_from_radiopharmaceutical_item`);
    * activity: Radionuclide Total Dose (0018,1074) in Bq (PS3.3 C.8.4.10.1),
      returned in MBq.  Values below 1e5 cannot be a patient administration in Bq
      and are taken as MBq (some exports write MBq), with a warning;
    * time: Radiopharmaceutical Start DateTime (0018,1078), else Radiopharmaceutical
      Start Time (0018,1072) on the Study Date (0008,0020) -- moved one day back if
      that would be after the acquisition -- with a warning that the date is assumed;
    * name: Radiopharmaceutical (0018,0031) or the Radiopharmaceutical Code
      Sequence (0054,0304) code meaning.

    Returns None (with a warning) when nuclide, activity or time is missing.
    """
    item = radiopharmaceutical_item(ds)
    if item is None:
        return None
    nuclide, raw = nuclide_from_radiopharmaceutical_item(item)
    dose_bq = get_float(item, "RadionuclideTotalDose")
    start = parse_dt(get_value(item, "RadiopharmaceuticalStartDateTime"))
    if start is None:
        start_tm = parse_tm(get_value(item, "RadiopharmaceuticalStartTime"))
        study_day = parse_da(get_value(ds, "StudyDate")) or parse_da(get_value(ds, "SeriesDate"))
        if start_tm is not None and study_day is not None:
            start = datetime.combine(study_day, start_tm)
            if acquired_at is not None and start > acquired_at:
                start -= timedelta(days=1)
            warnings.append(
                "administration date assumed from the Study Date (only Radiopharmaceutical "
                f"Start Time in the header): {start:%Y-%m-%d %H:%M}; check it"
            )
    name = get_str(item, "Radiopharmaceutical")
    if not name:
        code = first_item(item, "RadiopharmaceuticalCodeSequence")
        name = get_str(code, "CodeMeaning") if code is not None else ""
    missing = []
    if nuclide is None:
        missing.append(f"nuclide ({raw!r} not recognised)" if raw else "nuclide")
    if dose_bq is None or dose_bq <= 0:
        missing.append("injected activity (Radionuclide Total Dose)")
    if start is None:
        missing.append("injection time (Radiopharmaceutical Start DateTime)")
    if missing:
        warnings.append(
            "radiopharmaceutical information incomplete, no administration read: missing "
            + ", ".join(missing)
        )
        return None
    assert dose_bq is not None and nuclide is not None and start is not None
    if dose_bq < BQ_PLAUSIBILITY_LIMIT:
        warnings.append(f"Radionuclide Total Dose {dose_bq:g} is implausible in Bq; taken as MBq")
        activity_mbq = dose_bq
    else:
        activity_mbq = dose_bq * 1e-6
    return Administration(
        nuclide=nuclide,
        activity_mbq=activity_mbq,
        time=start,
        radiopharmaceutical=name,
        source="dicom",
    )


def half_life_s(ds: Dataset, nuclide: str | None) -> float | None:
    """Half-life in seconds: Radionuclide Half Life (0018,1075), else from the nuclide."""
    item = radiopharmaceutical_item(ds)
    if item is not None:
        value = get_float(item, "RadionuclideHalfLife")
        if value is not None and value > 0:
            return value
    if nuclide:
        from dosimetry_core.physics.nuclides import half_life_h

        try:
            return half_life_h(nuclide) * 3600.0
        except InvalidInputError:
            return None
    return None


def join_paths(paths: Iterable[Path | str], limit: int = 3) -> str:
    """Short human-readable list of file names for messages."""
    items = [str(p) for p in paths]
    if len(items) <= limit:
        return ", ".join(items)
    return ", ".join(items[:limit]) + f" and {len(items) - limit} more"
