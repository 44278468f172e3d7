"""Fuzz tests of the DICOM readers (issue 13), deterministic for CI.

A small valid SPECT (8 x 8 x 4) and CT slice (8 x 8) are made from the demo
patient; hypothesis then mutates their bytes (flips, overwrites, insertions,
truncation) and their header values (any text or number in the elements the
reader uses).  Whatever the file, :func:`~dosimetry_core.io.dicom_read.read_series`
returns a valid volume (finite values, finite positive spacing) or raises a
:class:`~dosimetry_core.errors.DosimetryError` with a message -- never another
exception type -- and :func:`~dosimetry_core.io.dicom_scan.scan_directory`
never raises at all.  ``derandomize=True`` makes every run try the same files.
"""

from __future__ import annotations

import io
import math
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.dataelem import DataElement

from dosimetry_core.errors import DosimetryError
from dosimetry_core.io.dicom_read import read_series
from dosimetry_core.io.dicom_scan import scan_directory

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

FUZZ = settings(
    derandomize=True,
    deadline=None,
    max_examples=250,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    database=None,
)


def _lenient():
    s = pydicom.config.settings
    return s.writing_validation_mode, s.reading_validation_mode


@pytest.fixture(scope="module")
def small_files(small_demo_image_dirs) -> dict[str, bytes]:
    """Valid tiny NM and CT files (bytes), cut from the demo's 24 h SPECT/CT."""
    root = small_demo_image_dirs["siemens-bqml"]
    nm = pydicom.dcmread(next((root / "tp2_024h" / "NM").glob("*.dcm")))
    arr = nm.pixel_array[:4, 28:36, 28:36].copy()
    nm.Rows, nm.Columns = 8, 8
    nm.NumberOfFrames = 4
    nm.NumberOfSlices = 4
    nm.SliceVector = [1, 2, 3, 4]
    nm.PixelData = arr.astype(np.uint16).tobytes()
    ct = pydicom.dcmread(sorted((root / "tp2_024h" / "CT").glob("*.dcm"))[30])
    carr = ct.pixel_array[100:108, 100:108].copy()
    ct.Rows, ct.Columns = 8, 8
    ct.PixelData = carr.astype(ct.pixel_array.dtype).tobytes()
    out = {}
    for name, ds in (("nm", nm), ("ct", ct)):
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=False)
        out[name] = buf.getvalue()
    return out


def _check(data: bytes) -> None:
    """The contract: a valid volume or a DosimetryError with a message; scan never raises."""
    from dosimetry_core.io.types import SeriesFiles

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.dcm"
        path.write_bytes(data)
        scan = scan_directory(tmp)  # must not raise
        assert scan.n_files_seen == 1
        series = SeriesFiles(
            patient_id="",
            patient_name="",
            study_instance_uid="",
            series_instance_uid="x",
            modality="",
            sop_class_uid="",
            series_description="",
            frame_of_reference_uid="",
            acquisition_datetime=None,
            paths=[path],
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                ls = read_series(series)
            except DosimetryError as exc:
                assert str(exc).strip()
                return
        vol = ls.volume
        assert np.all(np.isfinite(vol.array))
        assert all(math.isfinite(s) and s > 0 for s in vol.geometry.spacing_mm)


_mutation = st.tuples(
    st.sampled_from(["flip", "set", "insert", "delete"]),
    st.integers(min_value=0, max_value=4000),
    st.integers(min_value=0, max_value=255),
)


@FUZZ
@given(kind=st.sampled_from(["nm", "ct"]), mutations=st.lists(_mutation, min_size=1, max_size=8))
def test_mutated_bytes_give_a_volume_or_a_dosimetry_error(small_files, kind, mutations):
    data = bytearray(small_files[kind])
    for op, at, value in mutations:
        at = at % max(len(data), 1)
        if op == "flip":
            data[at] ^= 1 << (value % 8)
        elif op == "set":
            data[at] = value
        elif op == "insert":
            data[at:at] = bytes([value])
        else:
            del data[at : at + 1 + value % 16]
    _check(bytes(data))


@FUZZ
@given(kind=st.sampled_from(["nm", "ct"]), cut=st.integers(min_value=0, max_value=100_000))
def test_truncated_files_give_a_volume_or_a_dosimetry_error(small_files, kind, cut):
    data = small_files[kind]
    _check(data[: cut % (len(data) + 1)])


_KEYWORDS = [
    "Rows",
    "Columns",
    "NumberOfFrames",
    "BitsAllocated",
    "BitsStored",
    "PixelRepresentation",
    "SamplesPerPixel",
    "RescaleSlope",
    "RescaleIntercept",
    "PixelSpacing",
    "SliceThickness",
    "SpacingBetweenSlices",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "AcquisitionDate",
    "AcquisitionTime",
    "SeriesDate",
    "SeriesTime",
    "StudyDate",
    "PatientID",
    "Units",
    "DecayCorrection",
    "NumberOfSlices",
    "SliceVector",
    "SOPClassUID",
    "Modality",
    "ImageType",
    "FrameOfReferenceUID",
]

_values = st.one_of(
    st.sampled_from(
        ["", "0", "-1", "NaN", "nan", "inf", "-inf", "1e308", "1e-308", "abc", "120i", "20261345"]
    ),
    st.text(max_size=24),
    st.integers(min_value=-(2**40), max_value=2**40).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.lists(st.sampled_from(["1", "0", "nan", "-1", "x"]), min_size=1, max_size=7).map("\\".join),
)


@FUZZ
@given(
    kind=st.sampled_from(["nm", "ct"]),
    edits=st.lists(st.tuples(st.sampled_from(_KEYWORDS), _values), min_size=1, max_size=4),
    vr=st.sampled_from(["LO", "UT", "SH"]),
)
def test_mutated_header_values_give_a_volume_or_a_dosimetry_error(small_files, kind, edits, vr):
    settings_ = pydicom.config.settings
    before = _lenient()
    settings_.writing_validation_mode = pydicom.config.IGNORE
    settings_.reading_validation_mode = pydicom.config.IGNORE
    try:
        ds = pydicom.dcmread(io.BytesIO(small_files[kind]))
        for keyword, value in edits:
            tag = pydicom.datadict.tag_for_keyword(keyword)
            assert tag is not None
            ds[tag] = DataElement(tag, vr, value)  # any text, whatever the element's VR
        buf = io.BytesIO()
        try:
            ds.save_as(buf, enforce_file_format=False)
        except (ValueError, TypeError, OverflowError, UnicodeError):
            return  # pydicom cannot write it: not a file anyone can hand us
    finally:
        settings_.writing_validation_mode, settings_.reading_validation_mode = before
    _check(buf.getvalue())
