"""Bad input: each problem raises a project exception naming the file and the problem."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from dosimetry_core.errors import CalibrationError, DicomError, UnitsError
from dosimetry_core.io.dicom_read import read_series
from dosimetry_core.io.dicom_scan import scan_directory
from dosimetry_core.io.dicom_write import write_ct_series, write_nm_tomo, write_rtstruct
from dosimetry_core.io.types import RoiContours, SeriesFiles
from dosimetry_core.model import ImageUnits, Volume
from tests.core.io.conftest import SHAPE_ZYX, activity_array, make_ctx, make_geometry, read_one


def _nm(tmp_path, style="siemens-bqml", **ctx):
    units = ImageUnits.BQML if style.endswith("bqml") else ImageUnits.COUNTS
    vol = Volume(activity_array(0, 500.0), make_geometry(), units)
    (path,) = write_nm_tomo(vol, tmp_path / "NM", make_ctx(**ctx), style=style)
    return path


def _ct(tmp_path):
    vol = Volume(np.zeros(SHAPE_ZYX, np.int16), make_geometry(), ImageUnits.HU)
    return write_ct_series(vol, tmp_path / "CT", make_ctx())


def _edit(path, change):
    ds = pydicom.dcmread(path)
    change(ds)
    ds.save_as(path)


def _series(paths, modality="CT"):
    return SeriesFiles("P", "N", "1.2", "1.2.3", modality, "", "", "", None, list(paths))


def test_truncated_pixel_data(tmp_path):
    path = _nm(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[:-1000])
    # the scanner already refuses it; reading it directly names the problem too
    assert scan_directory(tmp_path).skipped[0].reason.startswith("truncated DICOM file")
    with pytest.raises(DicomError, match="truncated or corrupt pixel data") as exc:
        read_series(_series([path], "NM"))
    assert str(path) in str(exc.value)


def test_missing_image_position_ct(tmp_path):
    paths = _ct(tmp_path)

    def drop(ds):
        del ds.ImagePositionPatient

    _edit(paths[3], drop)
    with pytest.raises(DicomError, match=r"missing ImagePositionPatient \(0020,0032\)") as exc:
        read_one(tmp_path / "CT")
    assert str(paths[3]) in str(exc.value)


def test_missing_image_position_nm(tmp_path):
    path = _nm(tmp_path, style="ge-bqml")

    def drop(ds):
        del ds.ImagePositionPatient
        del ds.DetectorInformationSequence[0].ImagePositionPatient

    _edit(path, drop)
    with pytest.raises(DicomError, match="missing ImagePositionPatient") as exc:
        read_one(tmp_path / "NM")
    assert str(path) in str(exc.value)


def test_mixed_frames_of_reference(tmp_path):
    paths = _ct(tmp_path)
    _edit(paths[7], lambda ds: setattr(ds, "FrameOfReferenceUID", "1.2.826.0.1.3680043.8.498.66"))
    with pytest.raises(DicomError, match="mixed frames of reference") as exc:
        read_one(tmp_path / "CT")
    assert "CT_0008.dcm" in str(exc.value)


def test_unknown_units_code(tmp_path):
    path = _nm(tmp_path, style="philips-counts")
    _edit(path, lambda ds: setattr(ds, "Units", "MLMING"))
    with pytest.raises(UnitsError, match="'MLMING'") as exc:
        read_one(tmp_path / "NM", calibration_cps_per_mbq=9.0)
    assert str(path) in str(exc.value)


def test_not_an_image_series(tmp_path):
    ct = _ct(tmp_path)
    rt = write_rtstruct(
        tmp_path / "RT" / "rs.dcm",
        make_ctx(),
        ct,
        [RoiContours("a", (1, 2, 3), polygons=[np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0.0]])])],
    )
    scan = scan_directory(tmp_path / "RT")
    with pytest.raises(DicomError, match="not an image series") as exc:
        read_series(scan.series[0])
    assert str(rt) in str(exc.value) and "RT Structure Set Storage" in str(exc.value)


def test_projection_data_is_not_a_volume(tmp_path):
    path = _nm(tmp_path)
    _edit(path, lambda ds: setattr(ds, "ImageType", ["ORIGINAL", "PRIMARY", "TOMO", "EMISSION"]))
    with pytest.raises(DicomError, match="projection data") as exc:
        read_one(tmp_path / "NM")
    assert str(path) in str(exc.value)


def test_no_acquisition_time(tmp_path):
    path = _nm(tmp_path)

    def drop(ds):
        for kw in (
            "AcquisitionDate",
            "AcquisitionTime",
            "SeriesDate",
            "SeriesTime",
            "ContentDate",
            "ContentTime",
        ):
            delattr(ds, kw)

    _edit(path, drop)
    with pytest.raises(DicomError, match="no acquisition date/time") as exc:
        read_one(tmp_path / "NM")
    assert str(path) in str(exc.value)


@pytest.mark.parametrize("style", ["ge-counts", "hermes-counts"])
def test_counts_with_factor_but_no_timing(tmp_path, style):
    path = _nm(tmp_path, style=style, acquisition_duration_s=None)
    with pytest.raises(
        DicomError, match=r"no acquisition duration \(RotationInformationSequence"
    ) as exc:
        read_one(tmp_path / "NM", calibration_cps_per_mbq=9.0)
    assert str(path) in str(exc.value)
    # without a factor the same file still reads, uncalibrated
    assert read_one(tmp_path / "NM").volume.units == ImageUnits.COUNTS


@pytest.mark.parametrize("bad", [0.0, -3.0, float("nan")])
def test_bad_calibration_factor(tmp_path, bad):
    _nm(tmp_path, style="ge-counts")
    with pytest.raises(CalibrationError, match="positive number of cps/MBq"):
        read_one(tmp_path / "NM", calibration_cps_per_mbq=bad)


def test_several_energy_windows_in_one_file(tmp_path):
    path = _nm(tmp_path)

    def windows(ds):
        ds.EnergyWindowVector = [1, 2] * 6
        ds.NumberOfEnergyWindows = 2

    _edit(path, windows)
    with pytest.raises(DicomError, match="EnergyWindowVector has 2 different values") as exc:
        read_one(tmp_path / "NM")
    assert str(path) in str(exc.value)


def test_gated_spect_is_refused(tmp_path):
    path = _nm(tmp_path)
    _edit(
        path,
        lambda ds: setattr(
            ds, "ImageType", ["ORIGINAL", "PRIMARY", "RECON GATED TOMO", "EMISSION"]
        ),
    )
    with pytest.raises(DicomError, match="gated SPECT"):
        read_one(tmp_path / "NM")


def test_unreadable_file_in_series(tmp_path):
    paths = _ct(tmp_path)
    paths[2].write_text("not dicom at all")
    with pytest.raises(DicomError, match="not a DICOM file") as exc:
        read_series(_series(paths))
    assert str(paths[2]) in str(exc.value)


def test_missing_file(tmp_path):
    with pytest.raises(DicomError, match="file not found"):
        read_series(_series([tmp_path / "gone.dcm"]))


def test_empty_series():
    with pytest.raises(DicomError, match="no files"):
        read_series(_series([]))
