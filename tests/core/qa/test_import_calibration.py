"""A count-based demo series imported after a calibration gets the right activity, no flag."""

from __future__ import annotations

from datetime import datetime

import pytest

from dosimetry_core.model import CalibrationStatus
from dosimetry_core.pipeline.importing import import_directory
from dosimetry_core.qa.calibration import calibrate_camera


def test_import_uses_stored_calibration(cylinder_phantom, small_demo_dirs, small_demo_truth, store):
    cal, record = calibrate_camera(
        store,
        cylinder_phantom.out_dir,
        100.0,
        datetime.fromisoformat(cylinder_phantom.truth["activity_time"]),
    )
    report = import_directory(store, small_demo_dirs["ge-counts"])
    assert len(report.cases) == 1
    assert [c["record_id"] for c in report.calibrations] == [record.record_id] * 4
    assert report.to_dict()["calibrations"][0]["cps_per_mbq"] == pytest.approx(cal.cps_per_mbq)
    case = store.load_case(report.cases[0].case_id)
    for tp, tp_truth in zip(
        case.sorted_time_points(), small_demo_truth["time_points"], strict=True
    ):
        f = tp.functional
        assert f.calibration_status == CalibrationStatus.CALIBRATION_FACTOR
        assert f.extra["calibration_record_id"] == record.record_id
        # the image activity of the demo truth (noise-free) within 2 %
        assert tp.total_activity_mbq == pytest.approx(tp_truth["image_activity_mbq"], rel=0.02)


def test_import_without_calibration_stays_uncalibrated(small_demo_dirs, store):
    report = import_directory(store, small_demo_dirs["ge-counts"])
    assert report.calibrations == []
    case = store.load_case(report.cases[0].case_id)
    assert all(
        tp.functional.calibration_status == CalibrationStatus.UNCALIBRATED
        for tp in case.time_points
    )
