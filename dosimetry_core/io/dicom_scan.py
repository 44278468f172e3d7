"""Find DICOM series in a folder tree by reading file headers only.

:func:`scan_directory` walks a folder (thousands of files, several patients,
studies and series, DICOMDIR index files, non-DICOM files) and groups the DICOM
instances by Series Instance UID (0020,000E).  Pixel data are never decoded; a
file whose pixel data are shorter than its header announces is reported as
truncated.  One bad file never stops the scan: it goes to ``skipped`` with a
one-line reason.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections import Counter
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
from dosimetry_core.io.types import Conflict, ScanResult, SeriesFiles, Skipped
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
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "PixelSpacing",
    "SliceThickness",
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
            try:
                regular = p.is_file()  # devices, FIFOs, dangling or looping links: no
            except OSError:  # e.g. no permission: listed, and reported by the reader
                regular = True
            if regular:
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
                        f"truncated DICOM file: pixel data need {expected} bytes "
                        f"(Rows x Columns x NumberOfFrames x SamplesPerPixel x BitsAllocated "
                        f"= {int(rows)} x {int(cols)} x {frames} x {spp} x {int(bits)} bits), "
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


def _scan_one(path: Path) -> Skipped | tuple[Dataset, str, str]:
    """Read one file's header: a reason to skip it, or (header, series UID, SOP UID)."""
    if path.name.upper() == "DICOMDIR":
        return Skipped(str(path), "DICOMDIR index file (the files it lists are scanned directly)")
    try:
        ds = read_dataset(path, specific_tags=_SCAN_TAGS, defer_size=_DEFER_SIZE)
    except DicomError as exc:
        reason = str(exc)
        prefix = f"{path}: "
        return Skipped(str(path), reason[len(prefix) :] if reason.startswith(prefix) else reason)
    meta_sop = ""
    file_meta = getattr(ds, "file_meta", None)
    if file_meta is not None:
        meta_sop = get_str(file_meta, "MediaStorageSOPClassUID")
    sop_class = get_str(ds, "SOPClassUID") or meta_sop
    if meta_sop == MEDIA_STORAGE_DIRECTORY_STORAGE or sop_class == MEDIA_STORAGE_DIRECTORY_STORAGE:
        return Skipped(str(path), "DICOMDIR index file (the files it lists are scanned directly)")
    series_uid = get_str(ds, "SeriesInstanceUID")
    if not series_uid:
        reason = "DICOM file without Series Instance UID (0020,000E)"
        if _ends_inside_an_element(path):
            reason = "truncated DICOM file (header cut off before the Series Instance UID)"
        return Skipped(str(path), reason)
    if sop_class and is_image_sop_class(sop_class) and _pixel_element(ds) is None:
        reason = f"{sop_class_name(sop_class)} object without pixel data"
        if _ends_inside_an_element(path):
            name = sop_class_name(sop_class)
            reason = f"truncated DICOM file ({name} cut off before its pixel data)"
        return Skipped(str(path), reason)
    truncated = _truncation_reason(ds, path)
    if truncated:
        return Skipped(str(path), truncated)
    return ds, series_uid, get_str(ds, "SOPInstanceUID")


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


#: Header attributes a file must share with the other files of its series
#: (General Study/Series, Frame of Reference, Image Plane and Image Pixel modules).
_CONSISTENCY_KEYS = (
    "PatientID",
    "StudyInstanceUID",
    "Modality",
    "SOPClassUID",
    "FrameOfReferenceUID",
    "Rows",
    "Columns",
    "BitsAllocated",
    "PixelSpacing",
    "ImageOrientationPatient",
    "SliceThickness",
)


def _text(ds: Dataset, keyword: str) -> str:
    try:
        return get_str(ds, keyword)
    except Exception:
        return "?"


def _mismatches(ds: Dataset, others: list[Dataset]) -> int:
    """How many attributes of ``ds`` differ from the most common value among ``others``.

    Also counts an Image Position (Patient) already taken by another file of the
    series (a second slice at the same place).
    """
    if not others:
        return 0
    count = 0
    for key in _CONSISTENCY_KEYS:
        common = Counter(_text(o, key) for o in others).most_common(1)[0][0]
        if _text(ds, key) != common:
            count += 1
    position = _text(ds, "ImagePositionPatient")
    if position and any(_text(o, "ImagePositionPatient") == position for o in others):
        count += 1
    return count


def _resolve_instance_uids(
    accepted: list[tuple[Path, Dataset, str, str]], skipped: list[Skipped]
) -> tuple[list[Conflict], set[Path]]:
    """Deal with files sharing a SOP Instance UID (0008,0018).

    * identical bytes: a true duplicate (the same object exported twice); the
      later path is skipped as "duplicate of", as before;
    * different content: a **conflict**, reported on all files.  Within one
      series the file most consistent with the series' other files (same study,
      frame of reference, size, spacing, orientation, a slice position of its
      own) is kept; on a tie none is kept, since it cannot be told which one is
      real.  Files of different series are each judged within their own series,
      so a file planted in another series never displaces the real one.

    Returns the conflicts and the paths not to use (also added to ``skipped``).
    """
    by_sop: dict[str, list[int]] = {}
    for i, (_, _, _, sop) in enumerate(accepted):
        if sop:
            by_sop.setdefault(sop, []).append(i)
    dropped: set[Path] = set()
    conflicts: list[Conflict] = []
    clashing = {i for idxs in by_sop.values() if len(idxs) > 1 for i in idxs}
    for sop, idxs in by_sop.items():
        if len(idxs) < 2:
            continue
        unique: list[int] = []
        first_of: dict[str, Path] = {}
        for i in idxs:
            path = accepted[i][0]
            try:
                digest = _digest(path)
            except OSError:
                digest = f"unreadable:{path}"
            if digest in first_of:
                skipped.append(
                    Skipped(str(path), f"duplicate of {first_of[digest]} (same SOP Instance UID)")
                )
                dropped.add(path)
                continue
            first_of[digest] = path
            unique.append(i)
        if len(unique) < 2:
            continue
        paths = tuple(str(accepted[i][0]) for i in unique)
        kept: list[str] = []
        by_series: dict[str, list[int]] = {}
        for i in unique:
            by_series.setdefault(accepted[i][2], []).append(i)
        for series_uid, members in by_series.items():
            others = [
                ds
                for j, (_, ds, s_uid, _) in enumerate(accepted)
                if s_uid == series_uid and j not in clashing
            ]
            scores = {i: _mismatches(accepted[i][1], others) for i in members}
            best = min(scores.values())
            winners = [i for i in members if scores[i] == best]
            keep = winners[0] if len(winners) == 1 else None
            for i in members:
                if i == keep:
                    kept.append(str(accepted[i][0]))
                    continue
                path = accepted[i][0]
                dropped.add(path)
                other = ", ".join(p for p in paths if p != str(path))
                why = (
                    "less consistent with its series than"
                    if keep is not None
                    else "as consistent with its series as"
                )
                skipped.append(
                    Skipped(
                        str(path),
                        f"conflict: SOP Instance UID {sop} also in {other} with other content; "
                        f"this file is {why} the other, not used",
                    )
                )
        kept_text = ", ".join(kept) if kept else "none (cannot tell which one is real)"
        conflicts.append(
            Conflict(
                sop_instance_uid=sop,
                paths=paths,
                kept=tuple(kept),
                reason=f"SOP Instance UID {sop} in {len(paths)} files with different "
                f"content ({', '.join(paths)}); kept: {kept_text}",
            )
        )
    return conflicts, dropped


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
        data, no Series Instance UID, duplicate SOP Instance UID, the losing side
        of a conflict).  ``n_files_seen``: number of files looked at.
        ``conflicts``: SOP Instance UIDs carried by files of different content
        (see :func:`_resolve_instance_uids`).

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

    accepted: list[tuple[Path, Dataset, str, str]] = []  # path, header, series, SOP
    for i, path in enumerate(files):
        if i % _PROGRESS_EVERY == 0:
            check_cancel(cancel)
            report(progress, i / max(n, 1), f"reading DICOM headers {i}/{n}")
        try:
            outcome = _scan_one(path)
        except AssertionError:
            raise
        except Exception as exc:  # whatever a hostile file does, the others go on
            outcome = Skipped(str(path), f"unreadable DICOM file ({short_exception(exc)})")
        if isinstance(outcome, Skipped):
            skipped.append(outcome)
            continue
        ds, series_uid, sop_instance = outcome
        accepted.append((path, ds, series_uid, sop_instance))

    conflicts, dropped = _resolve_instance_uids(accepted, skipped)
    for path, ds, series_uid, _ in accepted:
        if path in dropped:
            continue
        acc = series.get(series_uid)
        if acc is None:
            acc = series[series_uid] = _SeriesAccumulator(first=ds)
        acc.paths.append(path)
        try:
            t, _ = acquisition_datetime(ds)
        except Exception:  # judged when the series is read
            t = None
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
    return ScanResult(series=out, skipped=skipped, n_files_seen=n, conflicts=conflicts)
