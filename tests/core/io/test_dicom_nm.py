"""SPECT (NM Image Storage) write/read round trips in each vendor style."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pydicom
import pytest

from dosimetry_core.io.dicom_read import read_series
from dosimetry_core.io.dicom_scan import scan_directory
from dosimetry_core.io.dicom_write import NM_STYLES, write_nm_tomo
from dosimetry_core.model import CalibrationStatus, ImageUnits, Volume
from tests.core.io.conftest import (
    ACQUISITION,
    DIRECTIONS,
    INJECTION,
    activity_array,
    assert_same_image,
    make_ctx,
    make_geometry,
    read_one,
)

BQML_STYLES = [s for s in NM_STYLES if s.endswith("bqml")]
COUNTS_STYLES = [s for s in NM_STYLES if s.endswith("counts")]
LU177_HALF_LIFE_H = 6.647 * 24.0  # ICRP-107


def _quantum(path, volume_max: float) -> float:
    """Half the quantisation step of the written file (slope / 2)."""
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    if "RealWorldValueMappingSequence" in ds:
        slope = float(ds.RealWorldValueMappingSequence[0].RealWorldValueSlope)
    else:
        slope = float(ds.RescaleSlope)
    assert slope <= volume_max / 32767 * 1.000001
    return slope / 2


@pytest.mark.parametrize("style", BQML_STYLES)
@pytest.mark.parametrize("orientation", list(DIRECTIONS))
def test_bqml_styles_round_trip(tmp_path, style, orientation):
    geometry = make_geometry(orientation)
    original = Volume(activity_array(1), geometry, ImageUnits.BQML)
    paths = write_nm_tomo(original, tmp_path / "NM", make_ctx(), style=style)
    assert [p.name for p in paths] == ["NM_0001.dcm"]

    loaded = read_one(tmp_path / "NM", calibration_cps_per_mbq=9.0)

    vol = loaded.volume
    assert vol.units == ImageUnits.BQML
    assert loaded.info.calibration_status == CalibrationStatus.VENDOR_BQML
    assert loaded.info.cps_per_mbq is None  # vendor Bq/mL ignores the factor
    half_step = _quantum(paths[0], float(original.array.max()))
    assert_same_image(original, vol, half_step * 1.001)
    assert vol.total_activity_mbq() == pytest.approx(original.total_activity_mbq(), rel=1e-3)
    if np.linalg.det(geometry.direction_matrix) > 0:
        assert vol.geometry.same_grid(geometry, atol_mm=0.01)
    # chosen voxels: same world position for the same physical voxel
    for idx in [(0, 0, 0), (11, 15, 19), (5, 7, 3)]:
        world = geometry.index_to_world(idx)
        k = np.rint(vol.geometry.world_to_index(world))
        assert np.allclose(vol.geometry.index_to_world(k), world, atol=0.01)


@pytest.mark.parametrize("style", COUNTS_STYLES)
def test_counts_styles_with_calibration_factor(tmp_path, style):
    geometry = make_geometry("oblique30")
    counts = Volume(activity_array(2, scale=900.0), geometry, ImageUnits.COUNTS)
    paths = write_nm_tomo(
        counts, tmp_path / "NM", make_ctx(acquisition_duration_s=1800.0), style=style
    )
    cf = 9.0

    loaded = read_one(tmp_path / "NM", calibration_cps_per_mbq=cf)

    assert loaded.duration_s == pytest.approx(1800.0)  # 60 views x 30 s
    assert loaded.volume.units == ImageUnits.BQML
    assert loaded.info.calibration_status == CalibrationStatus.CALIBRATION_FACTOR
    assert loaded.info.cps_per_mbq == cf
    to_bqml = 1.0 / (1800.0 * cf) * 1e6 / geometry.voxel_volume_ml
    expected = counts.with_array(counts.array * to_bqml, ImageUnits.BQML)
    half_step = _quantum(paths[0], float(counts.array.max())) * to_bqml
    assert_same_image(expected, loaded.volume, half_step * 1.001 + 1e-6 * expected.array.max())
    # total activity = total counts / (duration * CF)
    total_counts = float(counts.array.sum())
    assert loaded.volume.total_activity_mbq() == pytest.approx(
        total_counts / (1800.0 * cf), rel=1e-3
    )


@pytest.mark.parametrize("style", COUNTS_STYLES)
def test_counts_without_calibration_factor_stay_counts(tmp_path, style):
    counts = Volume(activity_array(3, scale=700.0), make_geometry(), ImageUnits.COUNTS)
    paths = write_nm_tomo(counts, tmp_path / "NM", make_ctx(), style=style)

    loaded = read_one(tmp_path / "NM")

    assert loaded.volume.units == ImageUnits.COUNTS
    assert loaded.info.calibration_status == CalibrationStatus.UNCALIBRATED
    assert any("no calibration factor" in w for w in loaded.warnings)
    assert_same_image(counts, loaded.volume, _quantum(paths[0], 700.0) * 1.001)
    assert float(loaded.volume.array.sum()) == pytest.approx(float(counts.array.sum()), rel=1e-4)


def test_ge_counts_timing_is_two_heads_of_sixty_views(tmp_path):
    counts = Volume(activity_array(4, scale=100.0), make_geometry(), ImageUnits.COUNTS)
    (path,) = write_nm_tomo(
        counts, tmp_path, make_ctx(acquisition_duration_s=1200.0), style="ge-counts"
    )
    ds = pydicom.dcmread(path)
    rot = ds.RotationInformationSequence[0]
    assert rot.NumberOfFramesInRotation == 60
    assert int(rot.ActualFrameDuration) == 20000  # ms per view
    assert float(rot.ScanArc) == 180.0  # two detectors cover 360 degrees
    assert ds.Units == "CNTS" and ds.PixelRepresentation == 0 and float(ds.RescaleSlope) > 0
    assert list(ds.ImageType) == ["ORIGINAL", "PRIMARY", "RECON TOMO", "EMISSION"]
    assert ds.FrameIncrementPointer == 0x00540080
    assert list(ds.SliceVector) == list(range(1, 13))
    win = ds.EnergyWindowInformationSequence[0].EnergyWindowRangeSequence[0]
    assert (float(win.EnergyWindowLowerLimit), float(win.EnergyWindowUpperLimit)) == pytest.approx(
        (187.56, 229.24), abs=0.01
    )
    assert "DECY" not in ds.CorrectedImage
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian


def test_metadata(tmp_path):
    ctx = make_ctx(
        manufacturer="SIEMENS NM",
        manufacturer_model="Symbia Intevo Bold",
        station_name="SPECT1",
        device_serial_number="1234",
    )
    vol = Volume(activity_array(5), make_geometry(), ImageUnits.BQML)
    write_nm_tomo(vol, tmp_path, ctx, style="siemens-bqml")

    loaded = read_one(tmp_path)

    p = loaded.patient
    assert (p.patient_id, p.name, p.sex) == ("PAT-001", "Test^Patient", "F")
    assert p.birth_date.isoformat() == "1960-05-17"
    assert p.weight_kg == pytest.approx(72.5) and p.height_cm == pytest.approx(168.0)
    assert loaded.acquired_at == ACQUISITION
    assert loaded.duration_s == pytest.approx(1800.0)
    adm = loaded.administration
    assert adm is not None
    assert (adm.nuclide, adm.time, adm.source) == ("Lu-177", INJECTION, "dicom")
    assert adm.activity_mbq == pytest.approx(7400.0)
    assert adm.radiopharmaceutical == "Lu-177 DOTATATE"
    info = loaded.info
    assert info.modality == "NM" and info.n_files == 1
    assert (info.manufacturer, info.manufacturer_model) == ("SIEMENS NM", "Symbia Intevo Bold")
    assert (info.station_name, info.device_serial_number) == ("SPECT1", "1234")
    assert info.corrections == ["ATTN", "SCAT"]
    assert info.decay_corrected_to is None
    assert info.nuclide == "Lu-177"
    assert info.source_units == "BQML"
    assert info.frame_of_reference_uid == "1.2.826.0.1.3680043.8.498.7"
    assert loaded.volume.geometry.frame_of_reference_uid == info.frame_of_reference_uid
    assert info.volume is None
    assert info.series_description == "SPECT Lu-177"
    assert loaded.warnings == []


def test_rwvm_is_preferred_over_rescale(tmp_path):
    vol = Volume(activity_array(6), make_geometry(), ImageUnits.BQML)
    (path,) = write_nm_tomo(vol, tmp_path, make_ctx(), style="siemens-bqml")
    ds = pydicom.dcmread(path)
    ds.Units = "CNTS"
    ds.RescaleSlope = "123.0"  # a count scaling that must not be used
    ds.save_as(path)

    loaded = read_one(tmp_path, calibration_cps_per_mbq=9.0)

    assert loaded.volume.units == ImageUnits.BQML
    assert loaded.info.calibration_status == CalibrationStatus.VENDOR_BQML
    assert "RealWorldValueMapping" in loaded.info.extra["value_mapping"]
    assert loaded.volume.total() == pytest.approx(vol.total(), rel=1e-3)


def test_negative_spacing_between_slices_legacy_convention(tmp_path):
    """Slices progressing against the normal with a negative Spacing Between Slices."""
    geometry = make_geometry("decreasing")
    vol = Volume(activity_array(7), geometry, ImageUnits.BQML)
    (path,) = write_nm_tomo(vol, tmp_path, make_ctx(), style="ge-bqml")
    ds = pydicom.dcmread(path)
    # the writer stored the frames reversed with positive spacing; re-store them in
    # array order from voxel [0,0,0] with a negative spacing (old GE exports)
    frames = ds.pixel_array[::-1].copy()
    ds.PixelData = frames.tobytes()
    first = [f"{v:.6f}" for v in geometry.origin_mm]
    ds.ImagePositionPatient = first
    ds.DetectorInformationSequence[0].ImagePositionPatient = first
    ds.SpacingBetweenSlices = "-5.0"
    ds.save_as(path)

    loaded = read_one(tmp_path)

    assert loaded.volume.geometry.same_grid(geometry, atol_mm=0.01)
    assert np.allclose(loaded.volume.array, vol.array, rtol=1e-3, atol=5.0)


def test_frames_ordered_by_slice_vector(tmp_path):
    vol = Volume(activity_array(8), make_geometry("coronal"), ImageUnits.BQML)
    (path,) = write_nm_tomo(vol, tmp_path, make_ctx(), style="siemens-bqml")
    ds = pydicom.dcmread(path)
    perm = np.random.default_rng(0).permutation(12)
    ds.PixelData = ds.pixel_array[perm].copy().tobytes()
    ds.SliceVector = [int(i) + 1 for i in perm]
    ds.save_as(path)

    loaded = read_one(tmp_path)

    assert loaded.volume.geometry.same_grid(vol.geometry, atol_mm=0.01)
    assert np.allclose(loaded.volume.array, vol.array, rtol=1e-3, atol=5.0)


def test_decay_corrected_to_administration_is_brought_to_acquisition_start(tmp_path):
    vol = Volume(activity_array(9), make_geometry(), ImageUnits.BQML)
    elapsed_h = (ACQUISITION - INJECTION).total_seconds() / 3600.0
    at_admin = vol.with_array(vol.array * 2.0 ** (elapsed_h / LU177_HALF_LIFE_H))
    ctx = make_ctx()
    ctx.extra.update(decay_correction="ADMIN", corrections=["ATTN", "SCAT", "DECY"])
    write_nm_tomo(at_admin, tmp_path, ctx, style="siemens-bqml")

    loaded = read_one(tmp_path)

    assert loaded.info.decay_corrected_to == ACQUISITION
    assert loaded.volume.total() == pytest.approx(vol.total(), rel=1e-3)


def test_total_dose_written_in_mbq_is_recognised(tmp_path):
    vol = Volume(activity_array(10), make_geometry(), ImageUnits.BQML)
    (path,) = write_nm_tomo(vol, tmp_path, make_ctx(), style="siemens-bqml")
    ds = pydicom.dcmread(path)
    ds.RadiopharmaceuticalInformationSequence[0].RadionuclideTotalDose = "7400"
    ds.save_as(path)

    loaded = read_one(tmp_path)

    assert loaded.administration.activity_mbq == pytest.approx(7400.0)
    assert any("taken as MBq" in w for w in loaded.warnings)


def test_start_time_without_date_uses_study_date(tmp_path):
    ctx = make_ctx(injection_datetime=datetime(2024, 3, 4, 14, 5, 0))
    vol = Volume(activity_array(11), make_geometry(), ImageUnits.BQML)
    (path,) = write_nm_tomo(vol, tmp_path, ctx, style="hermes-bqml")
    ds = pydicom.dcmread(path)
    del ds.RadiopharmaceuticalInformationSequence[0].RadiopharmaceuticalStartDateTime
    ds.save_as(path)

    loaded = read_one(tmp_path)

    # Study Date 2024-03-05 + 14:05 is after the scan (10:15): the day before is taken
    assert loaded.administration.time == datetime(2024, 3, 4, 14, 5, 0)
    assert any("administration date assumed" in w for w in loaded.warnings)


def test_nm_without_units_is_counts_with_warning(tmp_path):
    counts = Volume(activity_array(12, scale=500.0), make_geometry(), ImageUnits.COUNTS)
    (path,) = write_nm_tomo(counts, tmp_path, make_ctx(), style="philips-counts")
    ds = pydicom.dcmread(path)
    del ds.Units
    ds.save_as(path)

    loaded = read_one(tmp_path, calibration_cps_per_mbq=10.0)

    assert loaded.volume.units == ImageUnits.BQML
    assert any("without Units" in w for w in loaded.warnings)


def test_scan_groups_and_reads_every_style(tmp_path):
    for n, style in enumerate(NM_STYLES):
        units = ImageUnits.BQML if style.endswith("bqml") else ImageUnits.COUNTS
        ctx = make_ctx(series_instance_uid=f"1.2.826.0.1.3680043.8.498.9{n}", series_number=n + 1)
        write_nm_tomo(
            Volume(activity_array(n), make_geometry(), units), tmp_path / style, ctx, style
        )
    scan = scan_directory(tmp_path)
    assert len(scan.series) == len(NM_STYLES) and not scan.skipped
    for s in scan.series:
        loaded = read_series(s, calibration_cps_per_mbq=9.0)
        assert loaded.volume.units == ImageUnits.BQML


def test_nm_with_functional_groups_and_per_frame_rescale(tmp_path):
    """NM objects carrying enhanced functional groups: per-frame position and rescale."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence
    from pydicom.valuerep import format_number_as_ds

    geometry = make_geometry("oblique30")
    vol = Volume(activity_array(13), geometry, ImageUnits.BQML)
    (path,) = write_nm_tomo(vol, tmp_path, make_ctx(), style="siemens-bqml")
    ds = pydicom.dcmread(path)
    del ds.RealWorldValueMappingSequence
    slopes, stored = [], []
    per_frame = []
    for k in range(12):
        slope = float(format_number_as_ds(vol.array[k].max() / 65535 * 1.0000001))
        slopes.append(slope)
        stored.append(np.rint(vol.array[k] / slope).astype(np.uint16))
        item = Dataset()
        pos = Dataset()
        pos.ImagePositionPatient = [f"{v:.8f}" for v in geometry.index_to_world([k, 0, 0])]
        item.PlanePositionSequence = Sequence([pos])
        pvt = Dataset()
        pvt.RescaleSlope = format_number_as_ds(slope)
        pvt.RescaleIntercept = "0"
        pvt.RescaleType = "US"
        item.PixelValueTransformationSequence = Sequence([pvt])
        per_frame.append(item)
    shared = Dataset()
    meas = Dataset()
    meas.PixelSpacing = ["4.5", "4.0"]
    meas.SliceThickness = "5.0"
    shared.PixelMeasuresSequence = Sequence([meas])
    ori = Dataset()
    ori.ImageOrientationPatient = ds.DetectorInformationSequence[0].ImageOrientationPatient
    shared.PlaneOrientationSequence = Sequence([ori])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    ds.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    ds.PixelData = np.stack(stored).tobytes()
    ds.save_as(path)

    loaded = read_one(tmp_path)

    assert loaded.volume.units == ImageUnits.BQML
    assert loaded.volume.geometry.same_grid(geometry, atol_mm=0.01)
    assert_same_image(vol, loaded.volume, np.repeat(np.asarray(slopes) / 2, 16 * 20) * 1.001)
