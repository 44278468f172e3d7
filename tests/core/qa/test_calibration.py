"""Camera calibration factor from the synthetic cylinder phantom (truth: 9.0 cps/MBq)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import pytest

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.phantoms.qa_phantoms import QaScanConfig, write_cylinder_phantom
from dosimetry_core.qa.calibration import calibrate_camera, calibration_factor, read_nm_scan
from dosimetry_core.qa.records import list_records


def _activity_time(files) -> datetime:
    return datetime.fromisoformat(files.truth["activity_time"])


def test_cylinder_factor_recovered_within_2_percent(cylinder_phantom):
    scan = read_nm_scan(cylinder_phantom.out_dir)
    cal = calibration_factor(scan, 100.0, _activity_time(cylinder_phantom))
    truth = cylinder_phantom.truth["cps_per_mbq"]
    assert truth == 9.0
    assert cal.cps_per_mbq == pytest.approx(truth, rel=0.02)
    # the VOI found: 200 mm diameter, 200 mm long cylinder (edges at half the plateau)
    assert 2 * cal.voi.radius_mm == pytest.approx(200.0, abs=5.0)
    assert 2 * cal.voi.half_length_mm == pytest.approx(200.0, abs=10.0)
    # counting SD: 1/sqrt(N) with ~1.08e6 counts (100 MBq x 9 cps/MBq x 1200 s) -> ~0.1 %
    assert cal.counts_in_voi == pytest.approx(100.0 * 9.0 * 1200.0, rel=0.02)
    assert cal.cps_per_mbq_sd == pytest.approx(cal.cps_per_mbq / math.sqrt(cal.counts_in_voi))
    assert abs(cal.margin_sensitivity_percent) < 0.5


def test_decay_to_scan_start_is_applied(cylinder_phantom):
    """Lu-177, 2 h: A(t_scan) = 100 MBq x 2^(-2 h / T1/2); T1/2 = 6.647 d (ICRP-107)."""
    scan = read_nm_scan(cylinder_phantom.out_dir)
    cal = calibration_factor(scan, 100.0, _activity_time(cylinder_phantom))
    assert cal.activity_at_scan_mbq == pytest.approx(100.0 * 2 ** (-2.0 / (6.647 * 24)), rel=1e-3)
    # entering the same source as measured 1 h earlier with the activity of that time
    # (decayed back) gives the same factor
    earlier = _activity_time(cylinder_phantom) - timedelta(hours=1)
    a_earlier = 100.0 * 2 ** (1.0 / (6.647 * 24))
    cal2 = calibration_factor(scan, a_earlier, earlier)
    assert cal2.cps_per_mbq == pytest.approx(cal.cps_per_mbq, rel=2e-4)


def test_point_source_geometry(tmp_path):
    """A small uniform 'syringe' (20 mm cylinder) analysed as a point source."""
    files = write_cylinder_phantom(
        tmp_path, activity_mbq=50.0, diameter_mm=20.0, length_mm=30.0, config=QaScanConfig()
    )
    scan = read_nm_scan(files.out_dir)
    cal = calibration_factor(scan, 50.0, _activity_time(files), geometry="point")
    assert cal.cps_per_mbq == pytest.approx(9.0, rel=0.02)


def test_activity_time_after_scan_refused_and_nothing_stored(cylinder_phantom, store):
    scan_time = datetime.fromisoformat(cylinder_phantom.truth["scan_datetime"])
    with pytest.raises(InvalidInputError, match="after the scan start"):
        calibrate_camera(store, cylinder_phantom.out_dir, 100.0, scan_time + timedelta(minutes=5))
    assert list_records(store) == []


def test_nuclide_mismatch_refused_and_nothing_stored(cylinder_phantom, store):
    with pytest.raises(InvalidInputError, match="nuclide mismatch.*I-131.*Lu-177"):
        calibrate_camera(
            store,
            cylinder_phantom.out_dir,
            100.0,
            _activity_time(cylinder_phantom),
            nuclide="I-131",
        )
    assert list_records(store) == []


def test_voi_outside_field_refused_and_nothing_stored(tmp_path, store):
    # 200 mm cylinder moved 60 mm off centre in a 307 mm field: the 40 mm margin leaves it
    files = write_cylinder_phantom(
        tmp_path, config=QaScanConfig(center_offset_mm=(60.0, 0.0, 0.0), noise=False)
    )
    with pytest.raises(InvalidInputError, match="outside the field of view"):
        calibrate_camera(store, files.out_dir, 100.0, _activity_time(files))
    assert list_records(store) == []


def test_bad_activity_refused(cylinder_phantom):
    scan = read_nm_scan(cylinder_phantom.out_dir)
    with pytest.raises(InvalidInputError, match="positive"):
        calibration_factor(scan, -1.0, _activity_time(cylinder_phantom))


def test_calibrate_camera_stores_under_device_key(cylinder_phantom, store):
    cal, record = calibrate_camera(
        store, cylinder_phantom.out_dir, 100.0, _activity_time(cylinder_phantom), created_by="mpe"
    )
    assert record.device_key == cal.device.key
    assert "DEMO-0001" in record.device_key and "MEGP" in record.device_key
    assert "OSEM 4i8s" in record.device_key
    assert record.kind == "camera-calibration" and record.nuclide == "Lu-177"
    assert record.status == "ok"
    assert record.valid_until == record.measured_at + timedelta(days=365)
    (stored,) = list_records(store)
    assert stored.payload["cps_per_mbq"] == pytest.approx(cal.cps_per_mbq)
    assert stored.created_by == "mpe"
