"""The scan and the reader never let one hostile file stop the others (issue 13).

Any exception from one file's header becomes a skipped entry naming the file;
an ``AssertionError`` (a bug of ours) is not swallowed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dosimetry_core.errors import DicomError
from dosimetry_core.io import dicom_read, dicom_scan
from dosimetry_core.io.dicom_read import read_series
from dosimetry_core.io.dicom_scan import scan_directory


@pytest.fixture()
def two_files(small_demo_image_dirs, tmp_path: Path) -> Path:
    root = small_demo_image_dirs["siemens-bqml"]
    for tp in ("tp1_004h", "tp2_024h"):
        src = next((root / tp / "NM").glob("*.dcm"))
        shutil.copyfile(src, tmp_path / f"{tp}.dcm")
    return tmp_path


def test_an_exception_of_any_type_in_one_header_skips_that_file_only(
    two_files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = dicom_scan._scan_one

    def hostile(path: Path):
        if path.name.startswith("tp1"):
            raise OverflowError("int too large to convert")
        return real(path)

    monkeypatch.setattr(dicom_scan, "_scan_one", hostile)
    scan = scan_directory(two_files)
    assert [s.paths[0].name for s in scan.series] == ["tp2_024h.dcm"]
    (skip,) = scan.skipped
    assert skip.path.endswith("tp1_004h.dcm") and "OverflowError" not in skip.reason
    assert "int too large" in skip.reason


def test_an_assertion_error_is_a_bug_and_surfaces(
    two_files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def buggy(path: Path):
        raise AssertionError("internal invariant")

    monkeypatch.setattr(dicom_scan, "_scan_one", buggy)
    with pytest.raises(AssertionError):
        scan_directory(two_files)


@pytest.mark.parametrize(
    "exc",
    [TypeError("x"), KeyError("x"), MemoryError(), UnicodeDecodeError("utf-8", b"", 0, 1, "x")],
)
def test_read_series_turns_any_exception_into_a_dicom_error_naming_the_file(
    two_files: Path, monkeypatch: pytest.MonkeyPatch, exc: Exception
) -> None:
    scan = scan_directory(two_files)

    def boom(*args, **kwargs):
        raise exc

    monkeypatch.setattr(dicom_read, "_nm_frames", boom)
    with pytest.raises(DicomError) as err:
        read_series(scan.series[0])
    assert str(scan.series[0].paths[0]) in str(err.value)


def test_read_series_lets_an_assertion_error_through(
    two_files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scan = scan_directory(two_files)

    def buggy(*args, **kwargs):
        raise AssertionError("bug")

    monkeypatch.setattr(dicom_read, "_nm_frames", buggy)
    with pytest.raises(AssertionError):
        read_series(scan.series[0])
