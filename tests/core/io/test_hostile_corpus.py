"""Hostile corpus (issue 13): bad DICOM files, each alone and beside a good study.

Every kind of bad file is made on the fly from the small demo patient (pydicom
edits or byte surgery) and imported with the CLI in-process:

* **alone** -- ``mrtdose import`` exits 1 (nothing imported), the store holds no
  case, and the file is reported in ``skipped`` with a reason naming the field;
* **beside a good study** (the demo's 4 h SPECT/CT, 59 files) -- exit 0, the good
  study imported completely (its SPECT and its 58-slice CT, one time point) and
  the bad file reported with its reason.

A few kinds are files a hostile header cannot make unusable (control characters
in names, a non-UTF-8 file name): they import, and the text output shows the
control characters escaped.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
from pydicom.dataelem import DataElement
from pydicom.encaps import encapsulate
from pydicom.uid import RLELossless, generate_uid

from dosimetry_core.cli.main import main

GOOD_NM = "Lu-177 SPECT 4 h p.i. (demo)"
CT_FILES = 58
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class Templates:
    nm: Path  # the 24 h SPECT (another series than the good study's)
    ct: Path  # one slice of the 24 h CT
    good_nm: Path  # the good study's SPECT (4 h)
    good_ct: list[Path]  # the good study's CT slices
    rtstruct: Path  # the demo's structure set on the good study's CT


@dataclass(frozen=True)
class Kind:
    name: str
    make: Callable[[Path, Templates], None]
    expect: str | None  # regex the reason must match (None: any reason)
    imports: bool = False  # a file that is usable despite its hostile text


@contextmanager
def _lenient() -> Iterator[None]:
    """Let pydicom write values it would refuse (that is the point of the corpus)."""
    settings = pydicom.config.settings
    before = settings.writing_validation_mode, settings.reading_validation_mode
    settings.writing_validation_mode = pydicom.config.IGNORE
    settings.reading_validation_mode = pydicom.config.IGNORE
    try:
        yield
    finally:
        settings.writing_validation_mode, settings.reading_validation_mode = before


def _nm(edit: Callable[[pydicom.Dataset], None], name: str = "bad_nm.dcm") -> Callable:
    def make(d: Path, t: Templates) -> None:
        with _lenient():
            ds = pydicom.dcmread(t.nm)
            edit(ds)
            ds.save_as(d / name, enforce_file_format=False)

    return make


def _ct(edit: Callable[[pydicom.Dataset], None]) -> Callable:
    def make(d: Path, t: Templates) -> None:
        with _lenient():
            ds = pydicom.dcmread(t.ct)
            ds.SeriesInstanceUID = generate_uid()
            ds.SOPInstanceUID = generate_uid()
            edit(ds)
            ds.save_as(d / "bad_ct.dcm", enforce_file_format=False)

    return make


def _rt(edit: Callable[[pydicom.Dataset], None]) -> Callable:
    def make(d: Path, t: Templates) -> None:
        with _lenient():
            ds = pydicom.dcmread(t.rtstruct)
            ds.SOPInstanceUID = generate_uid()
            ds.SeriesInstanceUID = generate_uid()
            edit(ds)
            ds.save_as(d / "bad_rtstruct.dcm", enforce_file_format=False)

    return make


def _contour_nan(ds: pydicom.Dataset) -> None:
    for roi in ds.ROIContourSequence:
        for c in roi.ContourSequence:
            c.ContourData = ["NaN"] * len(c.ContourData)


def _roi_number_text(ds: pydicom.Dataset) -> None:
    for roi in ds.ROIContourSequence:
        roi[0x30060084] = DataElement(0x30060084, "LO", "x")  # Referenced ROI Number


def _contour_odd(ds: pydicom.Dataset) -> None:
    for roi in ds.ROIContourSequence:
        for c in roi.ContourSequence:
            c.ContourData = list(c.ContourData)[:4]  # not triplets
            c.NumberOfContourPoints = 1000000


def _set(keyword: str, value: object) -> Callable[[pydicom.Dataset], None]:
    def edit(ds: pydicom.Dataset) -> None:
        setattr(ds, keyword, value)

    return edit


def _raw(tag: int, vr: str, value: object) -> Callable[[pydicom.Dataset], None]:
    """Replace an element with one of another VR (e.g. Rows as the text 'abc')."""

    def edit(ds: pydicom.Dataset) -> None:
        ds[tag] = DataElement(tag, vr, value)

    return edit


def _as_is(tag: int, text: str, *, ct: bool = False) -> Callable:
    """An element written as IS holding ``text`` (pydicom refuses to write it, so
    it is written as LO and its VR bytes patched)."""
    group, element = tag >> 16, tag & 0xFFFF
    key = group.to_bytes(2, "little") + element.to_bytes(2, "little")

    def make(d: Path, t: Templates) -> None:
        with _lenient():
            ds = pydicom.dcmread(t.ct if ct else t.nm)
            if ct:
                ds.SeriesInstanceUID = generate_uid()
                ds.SOPInstanceUID = generate_uid()
            ds[tag] = DataElement(tag, "LO", text)
            path = d / ("bad_ct.dcm" if ct else "bad_nm.dcm")
            ds.save_as(path, enforce_file_format=False)
        raw = path.read_bytes()
        i = raw.index(key + b"LO")
        path.write_bytes(raw[: i + 4] + b"IS" + raw[i + 6 :])

    return make


def _transfer_syntax(uid: str) -> Callable:
    """The file meta Transfer Syntax UID replaced by ``uid`` (same length, 20 bytes)."""
    new = uid.encode().ljust(20, b"\0")
    assert len(new) == 20

    def make(d: Path, t: Templates) -> None:
        raw = t.nm.read_bytes()
        old = b"1.2.840.10008.1.2.1\0"
        (d / "bad_ts.dcm").write_bytes(raw.replace(old, new, 1))

    return make


def _rwvm(keyword: str, value: object) -> Callable[[pydicom.Dataset], None]:
    def edit(ds: pydicom.Dataset) -> None:
        setattr(ds.RealWorldValueMappingSequence[0], keyword, value)

    return edit


def _detector(keyword: str, value: object) -> Callable[[pydicom.Dataset], None]:
    def edit(ds: pydicom.Dataset) -> None:
        item = ds.DetectorInformationSequence[0]
        if keyword in item:
            setattr(item, keyword, value)
        else:
            setattr(ds, keyword, value)

    return edit


def _radio(keyword: str, value: object) -> Callable[[pydicom.Dataset], None]:
    def edit(ds: pydicom.Dataset) -> None:
        setattr(ds.RadiopharmaceuticalInformationSequence[0], keyword, value)

    return edit


def _dates(day: str) -> Callable[[pydicom.Dataset], None]:
    def edit(ds: pydicom.Dataset) -> None:
        for kw in ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate"):
            setattr(ds, kw, day)

    return edit


def _all(*edits: Callable[[pydicom.Dataset], None]) -> Callable[[pydicom.Dataset], None]:
    def edit(ds: pydicom.Dataset) -> None:
        for e in edits:
            e(ds)

    return edit


def _delete(*keywords: str) -> Callable[[pydicom.Dataset], None]:
    def edit(ds: pydicom.Dataset) -> None:
        for kw in keywords:
            if kw in ds:
                delattr(ds, kw)

    return edit


def _bytes(make_bytes: Callable[[bytes], bytes], name: str = "bad.dcm") -> Callable:
    def make(d: Path, t: Templates) -> None:
        (d / name).write_bytes(make_bytes(t.nm.read_bytes()))

    return make


def _encapsulated_absurd(d: Path, t: Templates) -> None:
    ds = pydicom.dcmread(t.nm)
    ds.file_meta.TransferSyntaxUID = RLELossless
    ds.Rows = 65535
    ds.Columns = 65535
    ds.NumberOfFrames = "60"
    ds.PixelData = encapsulate([b"\x00" * 64] * 60)
    ds["PixelData"].VR = "OB"
    ds.save_as(d / "encaps.dcm", enforce_file_format=False)


def _absurd_dims_tiny(d: Path, t: Templates) -> None:
    ds = pydicom.dcmread(t.nm)
    ds.Rows = 65535
    ds.Columns = 65535
    ds.NumberOfFrames = "65535"
    ds.PixelData = b"\x00" * 64
    ds.save_as(d / "tiny.dcm", enforce_file_format=False)


def _nested(raw: bytes) -> bytes:
    """Append 3000 nested undefined-length sequences (private group 7FE1) after the pixels."""
    depth = 3000
    open_sq = b"\xe1\x7f\x10\x10SQ\x00\x00\xff\xff\xff\xff"  # (7FE1,1010) SQ, undefined length
    open_item = b"\xfe\xff\x00\xe0\xff\xff\xff\xff"
    close_item = b"\xfe\xff\x0d\xe0\x00\x00\x00\x00"
    close_sq = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
    return raw + (open_sq + open_item) * depth + (close_item + close_sq) * depth


def _huge_length(raw: bytes) -> bytes:
    """Series Description (0008,103E) LO announcing 0xFFF0 bytes in a short file."""
    i = raw.index(b"\x08\x00\x3e\x10LO")
    return raw[: i + 6] + b"\xf0\xff" + raw[i + 8 :]


def _ob_huge(raw: bytes) -> bytes:
    """A private OB element announcing 4 GB just before the pixel data."""
    i = raw.index(b"\xe0\x7f\x10\x00")
    return raw[:i] + b"\xe1\x7f\x10\x10OB\x00\x00\xf0\xff\xff\xff" + raw[i:]


def _random_dicm(raw: bytes) -> bytes:
    rng = random.Random(13)
    return b"\x00" * 128 + b"DICM" + bytes(rng.randrange(256) for _ in range(4000))


def _meta_random(raw: bytes) -> bytes:
    """Valid file meta, then random bytes."""
    ds = pydicom.dcmread(__import__("io").BytesIO(raw), stop_before_pixels=True)
    n = 132 + 12 + int(ds.file_meta.FileMetaInformationGroupLength)
    rng = random.Random(7)
    return raw[:n] + bytes(rng.randrange(256) for _ in range(5000))


def _symlink_loop(d: Path, t: Templates) -> None:
    (d / "loop").symlink_to(d)
    (d / "a.dcm").symlink_to(d / "b.dcm")
    (d / "b.dcm").symlink_to(d / "a.dcm")


def _devices(d: Path, t: Templates) -> None:
    """A FIFO (an open would block) and a link to /dev/zero (a read would never end)."""
    os.mkfifo(d / "pipe.dcm")
    (d / "zero.dcm").symlink_to("/dev/zero")


def _dir_named_dcm(d: Path, t: Templates) -> None:
    (d / "evil.dcm").mkdir()
    (d / "evil.dcm" / "inner.dcm").mkdir()


def _non_utf8_name_bad(d: Path, t: Templates) -> None:
    ds = pydicom.dcmread(t.nm)
    ds.RealWorldValueMappingSequence[0].RealWorldValueSlope = float("nan")
    ds.save_as(os.fsdecode(bytes(d) + b"/\xff\xfe-bad-\x1b[31m.dcm"), enforce_file_format=False)


def _non_utf8_name_good(d: Path, t: Templates) -> None:
    shutil.copyfile(t.nm, os.fsdecode(bytes(d) + b"/\xff\xfe-SPECT.dcm"))


def _planted_other_series(d: Path, t: Templates) -> None:
    """A file reusing the good SPECT's SOP Instance UID, another series, sorting first."""
    real = pydicom.dcmread(t.good_nm)
    ds = pydicom.dcmread(t.nm)
    ds.SOPInstanceUID = real.SOPInstanceUID
    ds.RealWorldValueMappingSequence[0].RealWorldValueSlope = -1.0
    ds.save_as(d / "0000_planted.dcm", enforce_file_format=False)


def _planted_ct_same_series(d: Path, t: Templates) -> None:
    """A CT slice reusing a good slice's SOP Instance UID and series, at another slice's place."""
    real = pydicom.dcmread(t.good_ct[10])
    other = pydicom.dcmread(t.good_ct[20])
    ds = pydicom.dcmread(t.good_ct[10])
    ds.ImagePositionPatient = other.ImagePositionPatient
    ds.PixelData = bytes(len(real.PixelData))
    ds.save_as(d / "0000_planted_ct.dcm", enforce_file_format=False)


def _name_crlf(ds: pydicom.Dataset) -> None:
    ds.PatientName = "Evil\r\nCase case-0 · forged line\x1b[2J"


def _description_ansi(ds: pydicom.Dataset) -> None:
    ds.SeriesDescription = "\x1b[31mSPECT\x1b[0m\r\nskipped nothing\x9b2J"


KINDS: list[Kind] = [
    # slopes and intercepts
    Kind("rwvm_slope_nan", _nm(_rwvm("RealWorldValueSlope", float("nan"))), "RealWorldValueSlope"),
    Kind("rwvm_slope_inf", _nm(_rwvm("RealWorldValueSlope", float("inf"))), "RealWorldValueSlope"),
    Kind("rwvm_slope_neg", _nm(_rwvm("RealWorldValueSlope", -1.0)), "RealWorldValueSlope"),
    Kind("rwvm_slope_zero", _nm(_rwvm("RealWorldValueSlope", 0.0)), "RealWorldValueSlope"),
    Kind("rwvm_slope_absurd", _nm(_rwvm("RealWorldValueSlope", 1e9)), "total activity"),
    Kind("rwvm_intercept_inf", _nm(_rwvm("RealWorldValueIntercept", float("inf"))), "Intercept"),
    Kind("rescale_slope_nan", _nm(_set("RescaleSlope", "NaN")), "RescaleSlope"),
    Kind("rescale_slope_text", _nm(_raw(0x00281053, "LO", "abc")), "RescaleSlope"),
    Kind("rescale_slope_neg", _nm(_set("RescaleSlope", "-2")), "RescaleSlope"),
    Kind("rescale_intercept_nan", _nm(_set("RescaleIntercept", "nan")), "RescaleIntercept"),
    # spacings and geometry
    Kind("pixel_spacing_nan", _nm(_set("PixelSpacing", ["NaN", "NaN"])), "PixelSpacing"),
    Kind("pixel_spacing_zero", _nm(_set("PixelSpacing", ["0", "0"])), "PixelSpacing"),
    Kind("pixel_spacing_neg", _nm(_set("PixelSpacing", ["-9.6", "-9.6"])), "PixelSpacing"),
    Kind("pixel_spacing_absurd", _nm(_set("PixelSpacing", ["1e9", "1e9"])), "PixelSpacing"),
    Kind("pixel_spacing_text", _nm(_raw(0x00280030, "LO", "abc\\def")), "PixelSpacing"),
    Kind("pixel_spacing_one", _nm(_set("PixelSpacing", ["9.6"])), "PixelSpacing"),
    Kind("slice_spacing_nan", _nm(_set("SpacingBetweenSlices", "NaN")), "SpacingBetweenSlices"),
    Kind("slice_spacing_zero", _nm(_set("SpacingBetweenSlices", "0")), "SpacingBetweenSlices"),
    Kind("slice_spacing_absurd", _nm(_set("SpacingBetweenSlices", "1e12")), "SpacingBetweenSlices"),
    Kind(
        "thickness_neg",
        _nm(_all(_delete("SpacingBetweenSlices"), _set("SliceThickness", "-9.6"))),
        "SliceThickness",
    ),
    Kind(
        "thickness_inf",
        _nm(_all(_delete("SpacingBetweenSlices"), _set("SliceThickness", "inf"))),
        "SliceThickness",
    ),
    Kind(
        "orientation_nan",
        _nm(_detector("ImageOrientationPatient", ["NaN", "0", "0", "0", "1", "0"])),
        "ImageOrientationPatient",
    ),
    Kind(
        "position_inf",
        _nm(_detector("ImagePositionPatient", ["inf", "0", "0"])),
        "ImagePositionPatient",
    ),
    Kind(
        "position_absurd",
        _nm(_detector("ImagePositionPatient", ["1e300", "0", "0"])),
        "ImagePositionPatient",
    ),
    # dimensions and pixel description
    Kind("rows_abc", _as_is(0x00280010, "abc"), "Rows"),
    Kind("columns_zero", _nm(_set("Columns", 0)), "Columns|Rows"),
    Kind("frames_120i", _as_is(0x00280008, "120i"), "NumberOfFrames"),
    Kind("frames_zero", _nm(_set("NumberOfFrames", "0")), "NumberOfFrames"),
    Kind("frames_negative", _nm(_set("NumberOfFrames", "-60")), "NumberOfFrames"),
    Kind("frames_more", _nm(_set("NumberOfFrames", "61")), "NumberOfFrames"),
    Kind("absurd_dims_tiny_file", _absurd_dims_tiny, "Rows x Columns"),
    Kind("encapsulated_absurd_dims", _encapsulated_absurd, "Rows x Columns"),
    Kind("bits_allocated_12", _nm(_set("BitsAllocated", 12)), "BitsAllocated"),
    Kind("bits_allocated_32", _nm(_set("BitsAllocated", 32)), "BitsAllocated"),
    Kind("bits_stored_20", _nm(_set("BitsStored", 20)), "BitsStored"),
    Kind("pixel_representation_2", _nm(_set("PixelRepresentation", 2)), "PixelRepresentation"),
    Kind("samples_per_pixel_3", _nm(_set("SamplesPerPixel", 3)), "SamplesPerPixel"),
    Kind("missing_pixel_data", _nm(_delete("PixelData")), "pixel data"),
    Kind("number_of_slices_61", _nm(_set("NumberOfSlices", 61)), "NumberOfSlices"),
    Kind("slice_vector_repeats", _nm(_set("SliceVector", [1] * 60)), "SliceVector"),
    Kind("decay_correction_unknown", _nm(_set("DecayCorrection", "WEIRD")), "Decay Correction"),
    Kind("sop_class_private", _nm(_set("SOPClassUID", "1.2.3.4.5")), "not an image|unsupported"),
    # patient identity
    Kind("patient_id_missing", _nm(_delete("PatientID")), "Patient ID"),
    Kind("patient_id_empty", _nm(_set("PatientID", "")), "Patient ID"),
    Kind("patient_id_spaces", _nm(_set("PatientID", "    ")), "Patient ID"),
    # dates and times
    Kind("future_date", _nm(_dates("20991231")), "future"),
    Kind("before_1970", _nm(_dates("19600101")), "1970"),
    Kind("acquisition_before_administration", _nm(_dates("20260301")), "before the admin"),
    Kind("impossible_date", _nm(_set("AcquisitionDate", "20261345")), "AcquisitionDate"),
    Kind("impossible_time", _nm(_set("AcquisitionTime", "256199")), "AcquisitionTime"),
    Kind("series_date_text", _nm(_raw(0x00080021, "LO", "yesterday")), "SeriesDate"),
    Kind(
        "administration_date_impossible",
        _nm(_radio("RadiopharmaceuticalStartDateTime", "20260230093000")),
        "RadiopharmaceuticalStartDateTime",
    ),
    Kind(
        "administration_in_future",
        _nm(_radio("RadiopharmaceuticalStartDateTime", "20990101093000")),
        "future",
    ),
    Kind("total_dose_nan", _nm(_radio("RadionuclideTotalDose", "NaN")), "RadionuclideTotalDose"),
    Kind("total_dose_neg", _nm(_radio("RadionuclideTotalDose", "-7.4e9")), "RadionuclideTotalDose"),
    Kind("half_life_neg", _nm(_radio("RadionuclideHalfLife", "-1")), "RadionuclideHalfLife"),
    Kind("half_life_inf", _nm(_radio("RadionuclideHalfLife", "inf")), "RadionuclideHalfLife"),
    # damaged files
    Kind("truncated_half", _bytes(lambda r: r[: len(r) // 2]), "truncated"),
    Kind("truncated_header", _bytes(lambda r: r[:300]), "truncated|unreadable|not a DICOM"),
    Kind("zero_bytes", _bytes(lambda r: b""), "not a DICOM"),
    Kind("random_after_dicm", _bytes(_random_dicm), "unreadable|not a DICOM|truncated"),
    Kind("random_after_meta", _bytes(_meta_random), "unreadable|not a DICOM|truncated"),
    Kind("text_file", _bytes(lambda r: b"hello, not an image\n" * 40, "notes.dcm"), "not a DICOM"),
    Kind("huge_declared_length", _bytes(_huge_length), "truncated"),
    Kind("huge_ob_element", _bytes(_ob_huge), "truncated"),
    Kind("nested_sequences_3000", _bytes(_nested), "unreadable.*recursion"),
    Kind(
        "transfer_syntax_big_endian",
        _transfer_syntax("1.2.840.10008.1.2.2"),
        "truncated|unreadable",
    ),
    Kind("transfer_syntax_rle_native_data", _transfer_syntax("1.2.840.10008.1.2.5"), "pixel data"),
    Kind("transfer_syntax_unknown", _transfer_syntax("1.2.3.4.5.6.7.8.9.10"), "transfer syntax"),
    # CT slices
    Kind("ct_slope_nan", _ct(_set("RescaleSlope", "NaN")), "RescaleSlope"),
    Kind("ct_slope_zero", _ct(_set("RescaleSlope", "0")), "RescaleSlope"),
    Kind("ct_slope_absurd", _ct(_set("RescaleSlope", "1e9")), "Hounsfield"),
    Kind("ct_intercept_inf", _ct(_set("RescaleIntercept", "-inf")), "RescaleIntercept"),
    Kind("ct_pixel_spacing_nan", _ct(_set("PixelSpacing", ["nan", "1"])), "PixelSpacing"),
    Kind("ct_position_nan", _ct(_set("ImagePositionPatient", ["0", "nan", "0"])), "Position"),
    Kind("ct_rows_abc", _as_is(0x00280010, "abc", ct=True), "Rows"),
    Kind("ct_gantry_tilt", _ct(_set("GantryDetectorTilt", "15")), "GantryDetectorTilt"),
    # structure sets on the good study's CT
    Kind("rtstruct_contour_nan", _rt(_contour_nan), "RTSTRUCT|ROI|contour"),
    Kind("rtstruct_roi_number_text", _rt(_roi_number_text), "RTSTRUCT|ROI|contour"),
    Kind("rtstruct_contour_not_triplets", _rt(_contour_odd), "RTSTRUCT|ROI|contour"),
    # file system
    Kind("symlink_loops", _symlink_loop, None),
    Kind("directories_named_dcm", _dir_named_dcm, None),
    Kind("fifo_and_dev_zero_named_dcm", _devices, None),
    Kind("non_utf8_file_name_bad_header", _non_utf8_name_bad, "RealWorldValueSlope"),
    # SOP Instance UID reused by another series' file that sorts first
    Kind("sop_uid_planted_other_series", _planted_other_series, "RealWorldValueSlope"),
    Kind("sop_uid_planted_same_series_ct", _planted_ct_same_series, "conflict|CT without"),
    # hostile text in a usable file: imported, printed escaped
    Kind("patient_name_crlf_ansi", _nm(_name_crlf), None, imports=True),
    Kind("series_description_ansi_c1", _nm(_description_ansi), None, imports=True),
    Kind("non_utf8_file_name_good", _non_utf8_name_good, None, imports=True),
]

#: Kinds whose single file is refused when alone for a reason of its own:
#: the planted CT alone is a CT without a SPECT (no time point).
_NOTHING_TO_READ = {"symlink_loops", "directories_named_dcm", "fifo_and_dev_zero_named_dcm"}
_BESIDE_ONLY_REASON = {"sop_uid_planted_same_series_ct": "CT without|conflict"}


@pytest.fixture(scope="module")
def templates(small_demo_image_dirs, small_demo_dirs) -> Templates:
    root = small_demo_image_dirs["siemens-bqml"]
    return Templates(
        nm=next((root / "tp2_024h" / "NM").glob("*.dcm")),
        ct=sorted((root / "tp2_024h" / "CT").glob("*.dcm"))[30],
        good_nm=next((root / "tp1_004h" / "NM").glob("*.dcm")),
        good_ct=sorted((root / "tp1_004h" / "CT").glob("*.dcm")),
        rtstruct=next((small_demo_dirs["siemens-bqml"] / "tp1_004h" / "RTSTRUCT").glob("*.dcm")),
    )


def _run(store: Path, folder: Path, capsys, *, text: bool = False) -> tuple[int, dict | str]:
    argv = ["--store", str(store)] + ([] if text else ["--json"]) + ["import", str(folder)]
    rc = main(argv)
    out = capsys.readouterr().out
    return rc, (out if text else json.loads(out))


def _cases(store: Path) -> list:
    from dosimetry_core.store import CaseStore

    with CaseStore(store) as s:
        return [s.load_case(c.case_id) for c in s.list_cases()]


def _reasons(data: dict, folder: Path) -> list[str]:
    return (
        [
            f"{s['path']}: {s['reason']}"
            for s in data["skipped"]
            if s["path"].startswith(str(folder))
        ]
        + [c["reason"] for c in data.get("conflicts", [])]
        + [
            w
            for w in data["warnings"]
            if "bad_" in w  # e.g. contours of a structure set ignored
        ]
    )


def test_corpus_has_at_least_60_kinds():
    assert len(KINDS) >= 60
    assert len({k.name for k in KINDS}) == len(KINDS)


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_bad_file_alone(kind: Kind, templates: Templates, tmp_path: Path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    kind.make(folder, templates)
    store = tmp_path / "store"
    rc, data = _run(store, folder, capsys)
    assert isinstance(data, dict)
    if kind.imports:
        assert rc == 0
        assert len(_cases(store)) == 1
        rc2, text = _run(tmp_path / "store2", folder, capsys, text=True)
        assert rc2 == 0 and isinstance(text, str)
        assert not _CONTROL.search(text), text
        return
    assert rc == 1, data
    assert data["cases"] == [] and data["imported"] is False
    assert _cases(store) == []  # nothing written
    reasons = _reasons(data, folder)
    if kind.name in _NOTHING_TO_READ:
        return  # nothing to read: exit 1, no case
    assert reasons, data
    expect = _BESIDE_ONLY_REASON.get(kind.name, kind.expect)
    if expect is not None:
        assert any(re.search(expect, r) for r in reasons), reasons


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_bad_file_beside_a_good_study(kind: Kind, templates: Templates, tmp_path: Path, capsys):
    folder = tmp_path / "in"
    good = folder / "good"
    (good / "CT").mkdir(parents=True)
    (good / "NM").mkdir()
    os.link(templates.good_nm, good / "NM" / templates.good_nm.name)
    for p in templates.good_ct:
        os.link(p, good / "CT" / p.name)
    bad = folder / "bad"
    bad.mkdir()
    if kind.name == "sop_uid_planted_same_series_ct":
        kind.make(good / "CT", templates)  # among the real slices, sorting first
    elif kind.name == "sop_uid_planted_other_series":
        kind.make(folder, templates)  # sorts before good/
    else:
        kind.make(bad, templates)
    store = tmp_path / "store"
    rc, data = _run(store, folder, capsys)
    assert isinstance(data, dict)
    assert rc == 0, data
    cases = _cases(store)
    assert len(cases) == 1
    case = cases[0]
    descriptions = [tp.functional.series_description for tp in case.sorted_time_points()]
    assert GOOD_NM in descriptions
    tp1 = next(tp for tp in case.time_points if tp.functional.series_description == GOOD_NM)
    assert tp1.anatomical is not None and tp1.anatomical.n_files == CT_FILES
    assert len(case.time_points) == (2 if kind.imports else 1), descriptions
    if kind.imports:
        return
    if kind.name in _NOTHING_TO_READ:
        return
    reasons = _reasons(data, folder)
    assert reasons, data
    if kind.expect is not None:
        assert any(re.search(kind.expect, r) for r in reasons), reasons
    if kind.name.startswith("sop_uid_planted"):
        (conflict,) = data["conflicts"]
        assert len(conflict["paths"]) == 2  # both files named
        assert any("planted" in p for p in conflict["paths"])
        real = [p for p in conflict["paths"] if "planted" not in p]
        assert real and real[0] in conflict["kept"]  # the real file is never displaced
