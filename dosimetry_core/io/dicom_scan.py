"""Find DICOM series in a folder tree by reading file headers only.

:func:`scan_directory` walks a folder (thousands of files, several patients,
studies and series, DICOMDIR index files, non-DICOM files) and groups the DICOM
instances by Series Instance UID (0020,000E).  Pixel data are never decoded; a
file whose pixel data are shorter than its header announces is reported as
truncated.  One bad file never stops the scan: it goes to ``skipped`` with a
one-line reason.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset

from dosimetry_core.errors import DicomError
from dosimetry_core.io._dicom_common import (
    MEDIA_STORAGE_DIRECTORY_STORAGE,
    TAG_DOUBLE_FLOAT_PIXEL_DATA,
    TAG_FLOAT_PIXEL_DATA,
    TAG_PIXEL_DATA,
    acquisition_datetime,
    get_str,
    get_value,
    is_image_sop_class,
    read_dataset,
    short_exception,
    sop_class_name,
)
from dosimetry_core.io.types import ScanResult, SeriesFiles, Skipped
from dosimetry_core.progress import CancelCheck, ProgressCallback, check_cancel, report

#: Header elements read by the scanner (PS3.6 keywords).  Reading only these
#: (``specific_tags``) and deferring large values keeps a scan of thousands of
#: files to seconds.
_SCAN_TAGS: list[int | str] = [
    "SOPClassUID",
    "SOPInstanceUID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "PatientID",
    "PatientName",
    "Modality",
    "SeriesDescription",
    "FrameOfReferenceUID",
    "StudyDate",
    "SeriesDate",
    "SeriesTime",
    "AcquisitionDate",
    "AcquisitionTime",
    "AcquisitionDateTime",
    "ContentDate",
    "ContentTime",
    "Rows",
    "Columns",
    "NumberOfFrames",
    "BitsAllocated",
    "SamplesPerPixel",
    TAG_PIXEL_DATA,
    TAG_FLOAT_PIXEL_DATA,
    TAG_DOUBLE_FLOAT_PIXEL_DATA,
]

#: Values larger than this (bytes) are not read during the scan.
_DEFER_SIZE = 1024

#: Progress is reported every this many files.
_PROGRESS_EVERY = 25


@dataclass
class _SeriesAccumulator:
    first: Dataset
    paths: list[Path] = field(default_factory=list)
    times: list[datetime] = field(default_factory=list)


def _iter_files(root: Path, cancel: CancelCheck | None) -> list[Path]:
    """All regular files below ``root`` (or ``root`` itself), sorted (no symlinked dirs)."""
    if root.is_file():
        return [root]
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        check_cancel(cancel)
        dirnames.sort()
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if p.is_file():
                files.append(p)
    return files


def _pixel_element(ds: Dataset) -> RawDataElement | None:
    for tag in (TAG_PIXEL_DATA, TAG_FLOAT_PIXEL_DATA, TAG_DOUBLE_FLOAT_PIXEL_DATA):
        if tag in ds:
            elem = ds.get_item(tag, keep_deferred=True)
            if elem is not None:
                return elem  # type: ignore[return-value]
    return None


def _truncation_reason(ds: Dataset, path: Path) -> str | None:
    """Reason string if the pixel data element runs past the end of the file.

    Compares the element's announced length -- and for native (uncompressed)
    pixel data the size implied by Rows x Columns x Number of Frames x Samples
    per Pixel x Bits Allocated (PS3.3 C.7.6.3) -- with the bytes present.
    """
    elem = _pixel_element(ds)
    if elem is None:
        return None
    value_tell = getattr(elem, "value_tell", None)
    length = getattr(elem, "length", None)
    if value_tell is None or length is None:
        return None
    try:
        size = path.stat().st_size
    except OSError:
        return None
    available = size - int(value_tell)
    if length != 0xFFFFFFFF and available < length:
        present = max(available, 0)
        return f"truncated DICOM file: pixel data need {length} bytes, only {present} present"
    if length != 0xFFFFFFFF:
        rows = get_value(ds, "Rows")
        cols = get_value(ds, "Columns")
        bits = get_value(ds, "BitsAllocated")
        try:
            frames = int(get_value(ds, "NumberOfFrames", 1) or 1)
            spp = int(get_value(ds, "SamplesPerPixel", 1) or 1)
            if rows and cols and bits:
                expected = int(rows) * int(cols) * frames * spp * int(bits) // 8
                if length < expected and available < expected:
                    return (
                        f"truncated DICOM file: pixel data need {expected} bytes, "
                        f"only {length} present"
                    )
        except (TypeError, ValueError):
            return None
    return None


def _ends_inside_an_element(path: Path) -> bool:
    """True when the file does not end at the end of its last element (cut-off file).

    A complete PS3.10 file ends exactly where its last top-level element ends.
    Only used for files that already look wrong (no Series Instance UID, or an
    image without pixel data), to tell a truncated file from an incomplete one;
    a file cut exactly at an element boundary cannot be told apart.
    """
    try:
        size = path.stat().st_size
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path, defer_size=256, force=True)
        last_tell, last_length = -1, 0
        for elem in ds.elements():
            tell = getattr(elem, "value_tell", None)
            if tell is not None and tell > last_tell:
                last_tell, last_length = tell, getattr(elem, "length", 0)
    except Exception:
        return True
    if last_tell < 0:  # nothing after the File Meta Information: cut off
        return True
    if last_length == 0xFFFFFFFF:
        return False
    return bool(last_tell + last_length != size)


def scan_directory(
    root: str | Path,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
) -> ScanResult:
    """Find the DICOM series under ``root`` by reading headers only.

    Parameters
    ----------
    root
        Folder to walk recursively (or a single file).
    progress
        ``progress(fraction, message)`` called every few files.
    cancel
        Returns True to stop; the scan then raises :class:`~dosimetry_core.errors.Cancelled`.

    Returns
    -------
    ScanResult
        ``series``: one :class:`SeriesFiles` per Series Instance UID (0020,000E),
        paths sorted, series sorted by patient, study, acquisition time.
        ``skipped``: files not used, each with a one-line reason (not DICOM,
        unreadable or truncated, DICOMDIR index, image object without pixel
        data, no Series Instance UID, duplicate SOP Instance UID).
        ``n_files_seen``: number of files looked at.

    Notes
    -----
    Files are read with ``force=False`` first; a file without the PS3.10 'DICM'
    prefix is accepted only if it parses with ``force=True`` and has SOP Class UID
    (0008,0016) and Series Instance UID (0020,000E).  A DICOMDIR (Media Storage
    Directory, PS3.10 section 8, PS3.3 F.3) is skipped: the files it indexes are
    found by the walk itself.  Modality, study and frame of reference come from
    the first file of each series; ``acquisition_datetime`` is the earliest over
    its files (see :func:`dosimetry_core.io._dicom_common.acquisition_datetime`).

    Raises
    ------
    DicomError
        If ``root`` does not exist.
    Cancelled
        If ``cancel`` returns True.
    """
    root = Path(root)
    if not root.exists():
        raise DicomError("no such file or folder", str(root))
    report(progress, 0.0, f"listing files in {root}")
    files = _iter_files(root, cancel)
    n = len(files)
    skipped: list[Skipped] = []
    series: dict[str, _SeriesAccumulator] = {}
    seen_instances: dict[str, Path] = {}

    for i, path in enumerate(files):
        if i % _PROGRESS_EVERY == 0:
            check_cancel(cancel)
            report(progress, i / max(n, 1), f"reading DICOM headers {i}/{n}")
        if path.name.upper() == "DICOMDIR":
            skipped.append(
                Skipped(str(path), "DICOMDIR index file (the files it lists are scanned directly)")
            )
            continue
        try:
            ds = read_dataset(path, specific_tags=_SCAN_TAGS, defer_size=_DEFER_SIZE)
        except DicomError as exc:
            reason = str(exc)
            prefix = f"{path}: "
            skipped.append(
                Skipped(str(path), reason[len(prefix) :] if reason.startswith(prefix) else reason)
            )
            continue
        except Exception as exc:
            skipped.append(Skipped(str(path), f"unreadable DICOM file ({short_exception(exc)})"))
            continue

        meta_sop = ""
        file_meta = getattr(ds, "file_meta", None)
        if file_meta is not None:
            meta_sop = get_str(file_meta, "MediaStorageSOPClassUID")
        sop_class = get_str(ds, "SOPClassUID") or meta_sop
        if (
            meta_sop == MEDIA_STORAGE_DIRECTORY_STORAGE
            or sop_class == MEDIA_STORAGE_DIRECTORY_STORAGE
        ):
            skipped.append(
                Skipped(str(path), "DICOMDIR index file (the files it lists are scanned directly)")
            )
            continue
        series_uid = get_str(ds, "SeriesInstanceUID")
        if not series_uid:
            reason = "DICOM file without Series Instance UID (0020,000E)"
            if _ends_inside_an_element(path):
                reason = "truncated DICOM file (header cut off before the Series Instance UID)"
            skipped.append(Skipped(str(path), reason))
            continue
        if sop_class and is_image_sop_class(sop_class) and _pixel_element(ds) is None:
            reason = f"{sop_class_name(sop_class)} object without pixel data"
            if _ends_inside_an_element(path):
                name = sop_class_name(sop_class)
                reason = f"truncated DICOM file ({name} cut off before its pixel data)"
            skipped.append(Skipped(str(path), reason))
            continue
        truncated = _truncation_reason(ds, path)
        if truncated:
            skipped.append(Skipped(str(path), truncated))
            continue
        sop_instance = get_str(ds, "SOPInstanceUID")
        if sop_instance:
            if sop_instance in seen_instances:
                skipped.append(
                    Skipped(
                        str(path),
                        f"duplicate of {seen_instances[sop_instance]} (same SOP Instance UID)",
                    )
                )
                continue
            seen_instances[sop_instance] = path

        acc = series.get(series_uid)
        if acc is None:
            acc = series[series_uid] = _SeriesAccumulator(first=ds)
        acc.paths.append(path)
        t, _ = acquisition_datetime(ds)
        if t is not None:
            acc.times.append(t)

    out: list[SeriesFiles] = []
    for uid, acc in series.items():
        ds = acc.first
        out.append(
            SeriesFiles(
                patient_id=get_str(ds, "PatientID"),
                patient_name=get_str(ds, "PatientName"),
                study_instance_uid=get_str(ds, "StudyInstanceUID"),
                series_instance_uid=uid,
                modality=get_str(ds, "Modality").upper(),
                sop_class_uid=get_str(ds, "SOPClassUID"),
                series_description=get_str(ds, "SeriesDescription"),
                frame_of_reference_uid=get_str(ds, "FrameOfReferenceUID"),
                acquisition_datetime=min(acc.times) if acc.times else None,
                paths=sorted(acc.paths),
            )
        )
    out.sort(
        key=lambda s: (
            s.patient_id,
            s.study_instance_uid,
            s.acquisition_datetime or datetime.min,
            s.series_instance_uid,
        )
    )
    report(progress, 1.0, f"found {len(out)} series in {n} files ({len(skipped)} skipped)")
    return ScanResult(series=out, skipped=skipped, n_files_seen=n)
