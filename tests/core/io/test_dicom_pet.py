"""PET write/read round trips: per-slice rescale, decay correction, SUV, enhanced PET."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pydicom
import pytest

from dosimetry_core.errors import UnitsError
from dosimetry_core.io.dicom_write import write_pet_series
from dosimetry_core.model import CalibrationStatus, ImageUnits, Volume
from tests.core.io.conftest import (
    DIRECTIONS,
    activity_array,
    assert_same_image,
    make_ctx,
    make_geometry,
    read_one,
)

F18_HALF_LIFE_S = 109.77 * 60.0  # ICRP-107
ACQ = datetime(2024, 6, 1, 11, 0, 0)
INJ = ACQ - timedelta(minutes=62)


def pet_ctx(**kw):
    base = dict(
        nuclide="F-18",
        radiopharmaceutical="Fluorodeoxyglucose",
        injected_activity_mbq=300.0,
        injection_datetime=INJ,
        acquisition_datetime=ACQ,
        study_datetime=ACQ,
        acquisition_duration_s=180.0,
        series_description="PET WB",
    )
    base.update(kw)
    return make_ctx(**base)


def pet_volume(orientation="axial", seed=0) -> Volume:
    return Volume(activity_array(seed, scale=2.0e4), make_geometry(orientation), ImageUnits.BQML)


def half_steps(paths, n_slices):
    """Per-voxel half quantisation step from each slice's own Rescale Slope."""
    slopes = [float(pydicom.dcmread(p, stop_before_pixels=True).RescaleSlope) for p in paths]
    return np.repeat(np.asarray(slopes) / 2, 16 * 20), slopes


@pytest.mark.parametrize("orientation", list(DIRECTIONS))
def test_bqml_round_trip_with_per_slice_slopes(tmp_path, orientation):
    original = pet_volume(orientation)
    paths = write_pet_series(original, tmp_path / "PT", pet_ctx(), style="bqml")
    assert len(paths) == 12 and paths[0].name == "PT_0001.dcm"
    atol, slopes = half_steps(paths, 12)
    assert len(set(slopes)) > 1  # slopes differ from slice to slice

    loaded = read_one(tmp_path / "PT")

    assert loaded.volume.units == ImageUnits.BQML
    assert loaded.info.calibration_status == CalibrationStatus.VENDOR_BQML
    assert loaded.info.decay_corrected_to == ACQ
    assert loaded.info.extra["decay_correction"] == "START"
    assert loaded.acquired_at == ACQ and loaded.duration_s == pytest.approx(180.0)
    # file k holds original slice k, so the steps are in the original voxel order
    assert_same_image(original, loaded.volume, atol * 1.001)
    assert loaded.volume.total() == pytest.approx(original.total(), rel=1e-3)
    assert loaded.administration.nuclide == "F-18"
    assert loaded.info.nuclide == "F-18"
    assert "DECY" in loaded.info.corrections


def test_start_and_admin_give_activity_at_acquisition_start(tmp_path):
    original = pet_volume(seed=3)
    start_ctx = pet_ctx()
    admin_ctx = pet_ctx(series_instance_uid="1.2.826.0.1.3680043.8.498.555")
    admin_ctx.extra["decay_correction"] = "ADMIN"
    start_paths = write_pet_series(original, tmp_path / "start", start_ctx)
    admin_paths = write_pet_series(original, tmp_path / "admin", admin_ctx)
    # known answer: stored ADMIN values are larger by 2^(62 min / 109.77 min)
    factor = 2.0 ** (62 * 60 / F18_HALF_LIFE_S)
    a = pydicom.dcmread(admin_paths[0])
    s = pydicom.dcmread(start_paths[0])
    raw_a = a.pixel_array * float(a.RescaleSlope)
    raw_s = s.pixel_array * float(s.RescaleSlope)
    assert raw_a.sum() / raw_s.sum() == pytest.approx(factor, rel=1e-4)
    assert a.DecayCorrection == "ADMIN" and float(a.DecayFactor) == pytest.approx(factor, rel=1e-6)

    from_start = read_one(tmp_path / "start")
    from_admin = read_one(tmp_path / "admin")

    for loaded in (from_start, from_admin):
        assert loaded.info.decay_corrected_to == ACQ
        assert loaded.volume.total() == pytest.approx(original.total(), rel=1e-3)
    assert from_admin.info.extra["decay_factor_applied"] == pytest.approx(1 / factor, rel=1e-4)


def test_start_reference_before_acquisition_time_is_decayed(tmp_path):
    original = pet_volume(seed=4)
    paths = write_pet_series(original, tmp_path, pet_ctx())
    for p in paths:  # series start 10 min before the acquisition of these slices
        ds = pydicom.dcmread(p)
        ds.SeriesTime = "105000"
        ds.save_as(p)

    loaded = read_one(tmp_path)

    expected = 2.0 ** (-600 / F18_HALF_LIFE_S)
    assert loaded.volume.total() == pytest.approx(original.total() * expected, rel=1e-3)
    assert loaded.info.decay_corrected_to == ACQ


def test_no_decay_correction(tmp_path):
    ctx = pet_ctx()
    ctx.extra["decay_correction"] = "NONE"
    original = pet_volume(seed=5)
    write_pet_series(original, tmp_path, ctx)
    loaded = read_one(tmp_path)
    assert loaded.info.decay_corrected_to is None
    assert "DECY" not in loaded.info.corrections
    assert loaded.volume.total() == pytest.approx(original.total(), rel=1e-3)


@pytest.mark.parametrize("mode", ["START", "ADMIN"])
def test_suv_round_trip(tmp_path, mode):
    ctx = pet_ctx(patient_weight_kg=80.0)
    ctx.extra["decay_correction"] = mode
    original = pet_volume(seed=6)
    paths = write_pet_series(original, tmp_path, ctx, style="suv")
    ds = pydicom.dcmread(paths[0])
    assert ds.Units == "GML"
    # known answer for START: SUV = C * 80000 g / (300 MBq decayed over 62 min)
    if mode == "START":
        dose = 300e6 * 2.0 ** (-62 * 60 / F18_HALF_LIFE_S)
        suv = ds.pixel_array * float(ds.RescaleSlope)
        assert suv == pytest.approx(original.array[0] * 80000.0 / dose, rel=1e-3, abs=1e-4)

    loaded = read_one(tmp_path)

    assert loaded.volume.units == ImageUnits.BQML
    assert loaded.info.calibration_status == CalibrationStatus.SUV_CONVERTED
    assert loaded.info.source_units == "GML"
    assert loaded.volume.total() == pytest.approx(original.total(), rel=1e-3)
    assert np.allclose(loaded.volume.array, original.array, rtol=2e-3, atol=0.5)


@pytest.mark.parametrize("orientation", ["axial", "oblique30", "decreasing"])
def test_enhanced_pet_round_trip(tmp_path, orientation):
    original = pet_volume(orientation, seed=7)
    (path,) = write_pet_series(original, tmp_path, pet_ctx(), style="enhanced")
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.130" and ds.NumberOfFrames == 12
    slopes = [
        float(f.PixelValueTransformationSequence[0].RescaleSlope)
        for f in ds.PerFrameFunctionalGroupsSequence
    ]
    assert len(set(slopes)) > 1

    loaded = read_one(tmp_path)

    assert loaded.volume.units == ImageUnits.BQML
    assert loaded.info.decay_corrected_to == ACQ
    assert loaded.info.extra["decay_correction"] == "DATETIME"
    assert loaded.acquired_at == ACQ
    assert loaded.duration_s == pytest.approx(180.0)
    assert_same_image(original, loaded.volume, max(slopes) / 2 * 1.001)
    assert loaded.volume.total() == pytest.approx(original.total(), rel=1e-3)


def test_enhanced_pet_admin_decay(tmp_path):
    ctx = pet_ctx()
    ctx.extra["decay_correction"] = "ADMIN"
    original = pet_volume(seed=8)
    write_pet_series(original, tmp_path, ctx, style="enhanced")
    loaded = read_one(tmp_path)
    assert loaded.volume.total() == pytest.approx(original.total(), rel=1e-3)


def test_legacy_converted_enhanced_pet(tmp_path):
    hd = pytest.importorskip("highdicom")
    from highdicom.legacy import LegacyConvertedEnhancedPETImage

    original = pet_volume("coronal", seed=9)
    paths = write_pet_series(original, tmp_path / "slices", pet_ctx())
    atol, _ = half_steps(paths, 12)
    image = LegacyConvertedEnhancedPETImage(
        [pydicom.dcmread(p) for p in paths],
        series_instance_uid=hd.UID(),
        series_number=7,
        sop_instance_uid=hd.UID(),
        instance_number=1,
    )
    (tmp_path / "lce").mkdir()
    image.save_as(tmp_path / "lce" / "pet.dcm")

    loaded = read_one(tmp_path / "lce")

    assert loaded.volume.units == ImageUnits.BQML
    assert loaded.info.decay_corrected_to == ACQ
    assert_same_image(original, loaded.volume, atol * 1.001)


def test_philips_counts_with_activity_scale_factor(tmp_path):
    original = pet_volume(seed=10)
    paths = write_pet_series(original, tmp_path, pet_ctx())
    scale = 2.5
    for p in paths:
        ds = pydicom.dcmread(p)
        ds.Units = "CNTS"
        ds.RescaleSlope = pydicom.valuerep.format_number_as_ds(float(ds.RescaleSlope) / scale)
        block = ds.private_block(0x7053, "Philips PET Private Group", create=True)
        block.add_new(0x09, "DS", str(scale))
        ds.save_as(p)

    loaded = read_one(tmp_path)

    assert loaded.volume.units == ImageUnits.BQML
    assert loaded.volume.total() == pytest.approx(original.total(), rel=1e-3)


def test_pet_counts_without_scale_factor_are_uncalibrated(tmp_path):
    paths = write_pet_series(pet_volume(seed=11), tmp_path, pet_ctx())
    for p in paths:
        ds = pydicom.dcmread(p)
        ds.Units = "CNTS"
        ds.save_as(p)
    loaded = read_one(tmp_path, calibration_cps_per_mbq=9.0)
    assert loaded.volume.units == ImageUnits.COUNTS
    assert loaded.info.calibration_status == CalibrationStatus.UNCALIBRATED
    assert loaded.warnings


@pytest.mark.parametrize("units", [None, "MGMINML"])
def test_unknown_pet_units_raise(tmp_path, units):
    paths = write_pet_series(pet_volume(seed=12), tmp_path, pet_ctx())
    for p in paths:
        ds = pydicom.dcmread(p)
        if units is None:
            del ds.Units
        else:
            ds.Units = units
        ds.save_as(p)
    with pytest.raises(UnitsError) as exc:
        read_one(tmp_path)
    assert "PT_0001.dcm" in str(exc.value)
    assert ("MGMINML" if units else "without Units") in str(exc.value)
