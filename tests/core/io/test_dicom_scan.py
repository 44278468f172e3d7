"""Directory scan: grouping by series, skipped files and their reasons, speed."""

from __future__ import annotations

import shutil
import time
from datetime import datetime

import numpy as np
import pydicom
import pytest

from dosimetry_core.errors import Cancelled, DicomError
from dosimetry_core.io.dicom_read import read_series
from dosimetry_core.io.dicom_scan import scan_directory
from dosimetry_core.io.dicom_write import (
    write_ct_series,
    write_nm_tomo,
    write_pet_series,
    write_rtstruct,
)
from dosimetry_core.io.types import RoiContours
from dosimetry_core.model import Geometry, ImageUnits, Volume
from tests.core.io.conftest import activity_array, make_ctx, make_geometry

UID = "1.2.826.0.1.3680043.8.498."


def _ct(n_slices: int = 4) -> Volume:
    return Volume(
        np.zeros((n_slices, 8, 8), np.int16),
        Geometry((n_slices, 8, 8), (2.0, 2.0, 3.0)),
        ImageUnits.HU,
    )


@pytest.fixture()
def tree(tmp_path):
    """Two patients, several series, and files that must be skipped."""
    root = tmp_path / "import"
    a = dict(patient_id="A1", patient_name="Alpha^Ann", study_instance_uid=UID + "1")
    b = dict(
        patient_id="B2",
        patient_name="Beta^Bob",
        study_instance_uid=UID + "2",
        frame_of_reference_uid=UID + "8",
        acquisition_datetime=datetime(2024, 3, 6, 9, 0),
    )
    ct_a = write_ct_series(_ct(), root / "A" / "CT", make_ctx(series_instance_uid=UID + "11", **a))
    nm_a = write_nm_tomo(
        Volume(activity_array(0), make_geometry(), ImageUnits.BQML),
        root / "A" / "NM",
        make_ctx(series_instance_uid=UID + "12", **a),
    )
    pt_b = write_pet_series(
        Volume(activity_array(1), make_geometry(), ImageUnits.BQML),
        root / "B" / "deep" / "PET",
        make_ctx(series_instance_uid=UID + "21", nuclide="F-18", **b),
    )
    ct_b = write_ct_series(_ct(3), root / "B" / "CT", make_ctx(series_instance_uid=UID + "22", **b))
    rt = write_rtstruct(
        root / "A" / "RT" / "rois.dcm",
        make_ctx(series_instance_uid=UID + "13", **a),
        ct_a,
        [RoiContours("box", (255, 0, 0), polygons=[np.array([[0, 0, 0], [4, 0, 0], [4, 4, 0.0]])])],
    )
    junk = root / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("patient notes, not DICOM\n")
    (junk / "empty.dcm").write_bytes(b"")
    (junk / "garbage.dcm").write_bytes(b"\x08\x00\x05\x00" + bytes(range(256)) * 4)
    data = ct_b[0].read_bytes()
    (junk / "truncated.dcm").write_bytes(data[: len(data) - 50])
    ds = pydicom.dcmread(ct_b[1])
    del ds.PixelData
    ds.SOPInstanceUID = UID + "999"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(junk / "nopixels.dcm")
    dicomdir = pydicom.dcmread(ct_b[2])
    dicomdir.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.1.3.10"
    dicomdir.save_as(root / "DICOMDIR")
    shutil.copy(nm_a[0], junk / "copy_of_nm.dcm")
    # a file without preamble / 'DICM' (old export): accepted
    raw = pydicom.dcmread(ct_b[2])
    raw.SeriesInstanceUID = UID + "23"
    raw.SOPInstanceUID = UID + "230"
    del raw.file_meta
    raw.preamble = None
    raw.save_as(root / "B" / "raw.dcm", implicit_vr=True, little_endian=True)
    return dict(root=root, ct_a=ct_a, nm_a=nm_a, pt_b=pt_b, ct_b=ct_b, rt=rt, junk=junk)


def test_grouping_and_skipped_reasons(tree):
    progress: list[float] = []
    scan = scan_directory(tree["root"], progress=lambda f, m: progress.append(f))

    by_uid = {s.series_instance_uid: s for s in scan.series}
    assert set(by_uid) == {UID + n for n in ("11", "12", "13", "21", "22", "23")}
    assert by_uid[UID + "11"].paths == sorted(tree["ct_a"])
    assert by_uid[UID + "12"].paths == tree["nm_a"]
    assert by_uid[UID + "21"].paths == sorted(tree["pt_b"])
    assert by_uid[UID + "22"].paths == sorted(tree["ct_b"])
    assert by_uid[UID + "13"].modality == "RTSTRUCT"
    assert [by_uid[UID + n].modality for n in ("11", "12", "21", "23")] == ["CT", "NM", "PT", "CT"]
    assert {s.patient_id for s in scan.series} == {"A1", "B2"}
    assert by_uid[UID + "21"].patient_name == "Beta^Bob"
    assert by_uid[UID + "21"].acquisition_datetime == datetime(2024, 3, 6, 9, 0)
    assert by_uid[UID + "12"].sop_class_uid == "1.2.840.10008.5.1.4.1.1.20"
    assert by_uid[UID + "12"].frame_of_reference_uid == "1.2.826.0.1.3680043.8.498.7"
    assert [s.patient_id for s in scan.series] == sorted(s.patient_id for s in scan.series)

    reasons = {s.path.split("/")[-1]: s.reason for s in scan.skipped}
    assert set(reasons) == {
        "notes.txt",
        "empty.dcm",
        "garbage.dcm",
        "truncated.dcm",
        "nopixels.dcm",
        "DICOMDIR",
        "copy_of_nm.dcm",
    }
    assert reasons["notes.txt"].startswith("not a DICOM file")
    assert reasons["empty.dcm"].startswith("not a DICOM file")
    assert reasons["garbage.dcm"].startswith("not a DICOM file")
    assert reasons["truncated.dcm"].startswith("truncated DICOM file")
    assert reasons["nopixels.dcm"] == "CT Image Storage object without pixel data"
    assert reasons["DICOMDIR"].startswith("DICOMDIR")
    assert reasons["copy_of_nm.dcm"].startswith(f"duplicate of {tree['nm_a'][0]}")
    assert all("\n" not in r for r in reasons.values())
    assert scan.n_files_seen == 4 + 1 + 12 + 3 + 1 + 7 + 1
    assert progress[0] == 0.0 and progress[-1] == 1.0

    # the preamble-less file is read like any other
    raw = read_series(by_uid[UID + "23"])
    assert raw.volume.shape == (1, 8, 8)


def test_cut_header_is_reported_as_truncated(tmp_path):
    (path,) = write_ct_series(_ct(1), tmp_path / "CT", make_ctx())
    data = path.read_bytes()
    path.write_bytes(data[:705])
    scan = scan_directory(tmp_path)
    assert scan.series == []
    assert scan.skipped[0].reason.startswith("truncated DICOM file")


def test_cancel_and_missing_root(tree, tmp_path):
    with pytest.raises(Cancelled):
        scan_directory(tree["root"], cancel=lambda: True)
    with pytest.raises(DicomError, match="no such file or folder"):
        scan_directory(tmp_path / "nowhere")


def test_scan_is_fast(tmp_path):
    """Headers of ~1000 files in well under a few seconds (measured ~1 s)."""
    (path,) = write_ct_series(_ct(1), tmp_path / "src", make_ctx())
    many = tmp_path / "many"
    for d in range(10):
        sub = many / f"d{d}"
        sub.mkdir(parents=True)
        for i in range(100):
            shutil.copy(path, sub / f"{i}.dcm")
    start = time.perf_counter()
    scan = scan_directory(many)
    elapsed = time.perf_counter() - start
    assert scan.n_files_seen == 1000
    assert len(scan.series) == 1 and len(scan.skipped) == 999  # same SOP Instance UID
    assert elapsed < 5.0
