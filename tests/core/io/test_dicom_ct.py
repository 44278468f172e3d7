"""CT Image Storage write/read round trips, geometry checks and enhanced CT."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from dosimetry_core.errors import DicomError
from dosimetry_core.io.dicom_read import read_series
from dosimetry_core.io.dicom_scan import scan_directory
from dosimetry_core.io.dicom_write import write_ct_series
from dosimetry_core.model import CalibrationStatus, ImageUnits, Volume
from tests.core.io.conftest import (
    ACQUISITION,
    DIRECTIONS,
    SHAPE_ZYX,
    assert_same_image,
    make_ctx,
    make_geometry,
    read_one,
)


def ct_volume(orientation: str = "axial", seed: int = 0) -> Volume:
    rng = np.random.default_rng(seed)
    hu = rng.integers(-1000, 2000, SHAPE_ZYX).astype(np.int16)
    return Volume(hu, make_geometry(orientation), ImageUnits.HU, "CT")


def _write(tmp_path, volume=None, **ctx):
    volume = volume if volume is not None else ct_volume()
    paths = write_ct_series(volume, tmp_path / "CT", make_ctx(series_description="CT", **ctx))
    return volume, paths


@pytest.mark.parametrize("orientation", list(DIRECTIONS))
def test_ct_round_trip(tmp_path, orientation):
    original, paths = _write(tmp_path, ct_volume(orientation))
    assert [p.name for p in paths[:2]] == ["CT_0001.dcm", "CT_0002.dcm"]
    assert len(paths) == SHAPE_ZYX[0]

    loaded = read_one(tmp_path / "CT")

    vol = loaded.volume
    assert vol.units == ImageUnits.HU and vol.array.dtype == np.int16
    assert_same_image(original, vol, 0.0)
    if np.linalg.det(original.geometry.direction_matrix) > 0:
        assert vol.geometry.same_grid(original.geometry, atol_mm=0.01)
        assert np.array_equal(vol.array, original.array)
    else:  # slices stored in decreasing order come back sorted along the normal
        assert np.array_equal(vol.array, original.array[::-1])
    info = loaded.info
    assert info.calibration_status == CalibrationStatus.NOT_APPLICABLE
    assert info.n_files == SHAPE_ZYX[0] and info.modality == "CT"
    assert loaded.acquired_at == ACQUISITION and loaded.duration_s is None
    assert loaded.administration is None
    assert loaded.warnings == []


def test_ct_file_order_does_not_matter(tmp_path):
    original, _ = _write(tmp_path)
    series = scan_directory(tmp_path).series[0]
    series.paths = list(reversed(series.paths))
    loaded = read_series(series)
    assert np.array_equal(loaded.volume.array, original.array)


def test_ct_files_are_valid_and_unique(tmp_path):
    _, paths = _write(tmp_path, ct_volume("oblique30"))
    uids: set[str] = set()
    series: set[str] = set()
    for p in paths:
        ds = pydicom.dcmread(p)
        assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
        assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2"
        assert ds.PixelRepresentation == 1 and float(ds.RescaleIntercept) == -1024
        uids.add(ds.SOPInstanceUID)
        series.add(ds.SeriesInstanceUID)
    assert len(uids) == len(paths)
    assert len(series) == 1 and series != {""}  # generated once for the series


def test_ct_non_integer_rescale_gives_float(tmp_path):
    original, paths = _write(tmp_path)
    for p in paths:
        ds = pydicom.dcmread(p)
        ds.RescaleSlope = "0.5"
        ds.save_as(p)
    loaded = read_one(tmp_path / "CT")
    expected = (original.array.astype(float) + 1024) * 0.5 - 1024
    assert loaded.volume.array.dtype == np.float32
    assert np.allclose(loaded.volume.array, expected)


def _shift_slice(path, delta_mm):
    ds = pydicom.dcmread(path)
    ipp = [float(v) for v in ds.ImagePositionPatient]
    ipp[2] += delta_mm
    ds.ImagePositionPatient = [f"{v:.6f}" for v in ipp]
    ds.save_as(path)


def test_tiny_spacing_variation_is_accepted_with_warning(tmp_path):
    _, paths = _write(tmp_path)
    _shift_slice(paths[5], 0.02)  # 0.4 % of the 5 mm spacing
    loaded = read_one(tmp_path / "CT")
    assert any("slice spacing varies" in w for w in loaded.warnings)
    assert loaded.volume.geometry.spacing_mm[2] == pytest.approx(5.0)


def test_irregular_spacing_is_refused(tmp_path):
    _, paths = _write(tmp_path)
    _shift_slice(paths[5], 0.6)
    with pytest.raises(DicomError, match="irregular slice spacing") as exc:
        read_one(tmp_path / "CT")
    assert "CT_000" in str(exc.value)


def test_missing_slice_is_refused(tmp_path):
    _, paths = _write(tmp_path)
    paths[6].unlink()
    with pytest.raises(DicomError, match="missing slice") as exc:
        read_one(tmp_path / "CT")
    assert "CT_0006.dcm" in str(exc.value) and "CT_0008.dcm" in str(exc.value)


def test_duplicated_position_is_refused(tmp_path):
    _, paths = _write(tmp_path)
    ds = pydicom.dcmread(paths[4])
    ds.ImagePositionPatient = pydicom.dcmread(paths[3]).ImagePositionPatient
    ds.save_as(paths[4])
    with pytest.raises(DicomError, match="duplicated slice position") as exc:
        read_one(tmp_path / "CT")
    assert "CT_0004.dcm" in str(exc.value) and "CT_0005.dcm" in str(exc.value)


def test_gantry_tilt_tag_is_refused(tmp_path):
    _, paths = _write(tmp_path)
    ds = pydicom.dcmread(paths[0])
    ds.GantryDetectorTilt = "15"
    ds.save_as(paths[0])
    with pytest.raises(DicomError, match="gantry tilt of 15 degrees") as exc:
        read_one(tmp_path / "CT")
    assert "CT_0001.dcm" in str(exc.value)


def test_sheared_positions_are_refused(tmp_path):
    _, paths = _write(tmp_path)
    for k, p in enumerate(paths):  # positions drift in y: a tilted acquisition
        ds = pydicom.dcmread(p)
        ipp = [float(v) for v in ds.ImagePositionPatient]
        ipp[1] += k * 5.0 * np.tan(np.deg2rad(10))
        ds.ImagePositionPatient = [f"{v:.6f}" for v in ipp]
        ds.save_as(p)
    with pytest.raises(DicomError, match="not along the slice normal"):
        read_one(tmp_path / "CT")


def test_single_slice_uses_slice_thickness(tmp_path):
    _, paths = _write(tmp_path)
    for p in paths[1:]:
        p.unlink()
    loaded = read_one(tmp_path / "CT")
    assert loaded.volume.shape == (1, 16, 20)
    assert loaded.volume.geometry.spacing_mm == pytest.approx((4.0, 4.5, 5.0))


def test_legacy_converted_enhanced_ct_reads_like_the_slices(tmp_path):
    hd = pytest.importorskip("highdicom")
    from highdicom.legacy import LegacyConvertedEnhancedCTImage

    original, paths = _write(tmp_path, ct_volume("sagittal"))
    image = LegacyConvertedEnhancedCTImage(
        [pydicom.dcmread(p) for p in paths],
        series_instance_uid=hd.UID(),
        series_number=9,
        sop_instance_uid=hd.UID(),
        instance_number=1,
    )
    out = tmp_path / "enhanced"
    out.mkdir()
    image.save_as(out / "enhanced_ct.dcm")

    loaded = read_one(out)

    assert loaded.info.extra["sop_class_uid"] == "1.2.840.10008.5.1.4.1.1.2.2"
    assert loaded.volume.units == ImageUnits.HU
    assert_same_image(original, loaded.volume, 0.0)
    assert loaded.acquired_at == ACQUISITION
