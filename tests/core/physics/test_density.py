"""HU to density calibration: default table, validation, user files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dosimetry_core.errors import CalibrationError
from dosimetry_core.physics.density import DEFAULT_CALIBRATION_PATH, HuDensityCalibration


def test_default_table_end_points_and_water():
    cal = HuDensityCalibration.load()
    rho = cal.density_g_cm3([-1024.0, -1000.0, 0.0, 3071.0, 4000.0])
    np.testing.assert_allclose(rho, [0.001205, 0.001205, 1.0, 2.68905, 2.68905])
    # Soft-tissue branch: straight line air-water; bone branch 0.00055 g/cm3 per HU.
    assert cal.density_g_cm3(-500.0) == pytest.approx(0.5006025)
    assert cal.density_g_cm3(1000.0) == pytest.approx(1.55)
    assert cal.source and "not a measured calibration" in cal.source.lower()
    assert cal.density_g_cm3(np.zeros((2, 3, 4))).shape == (2, 3, 4)


def test_default_file_is_the_documented_format():
    data = json.loads(DEFAULT_CALIBRATION_PATH.read_text(encoding="utf-8"))
    assert data["format"].startswith("mrt-dosimetry HU-to-density calibration")
    hu = [p["hu"] for p in data["points"]]
    assert hu == sorted(hu)


@pytest.mark.parametrize(
    "hu,rho,message",
    [
        ((0.0, -1000.0), (1.0, 0.0), "increase strictly"),
        ((-1000.0, 0.0, 0.0), (0.0, 1.0, 1.1), "increase strictly"),
        ((-1000.0, 0.0), (1.0, 0.5), "not decrease"),
        ((-1000.0, 0.0), (-0.1, 1.0), ">= 0"),
        ((0.0,), (1.0,), "two points"),
        ((-1000.0, 0.0), (0.0,), "densities"),
        ((-1000.0, float("nan")), (0.0, 1.0), "finite"),
    ],
)
def test_invalid_points_are_refused(hu, rho, message):
    with pytest.raises(CalibrationError, match=message):
        HuDensityCalibration(points_hu=hu, points_density_g_cm3=rho)


def test_user_file_round_trip_and_errors(tmp_path):
    cal = HuDensityCalibration(
        points_hu=(-1000.0, -100.0, 0.0, 1500.0),
        points_density_g_cm3=(0.0012, 0.93, 1.0, 1.9),
        name="Scanner A 120 kV",
        source="CIRS phantom 2026-01-05",
        kvp=120,
    )
    path = tmp_path / "cal.json"
    cal.save(path)
    again = HuDensityCalibration.load(path)
    assert again == cal
    assert again.density_g_cm3(-50.0) == pytest.approx(0.965)
    with pytest.raises(CalibrationError, match="not found"):
        HuDensityCalibration.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(CalibrationError, match="cannot read"):
        HuDensityCalibration.load(tmp_path / "bad.json")
    (tmp_path / "nopoints.json").write_text('{"name": "x"}', encoding="utf-8")
    with pytest.raises(CalibrationError, match="points"):
        HuDensityCalibration.load(tmp_path / "nopoints.json")
    (tmp_path / "down.json").write_text(
        '{"points": [{"hu": 0, "density_g_cm3": 1}, {"hu": 100, "density_g_cm3": 0.5}]}',
        encoding="utf-8",
    )
    with pytest.raises(CalibrationError, match="down.json"):
        HuDensityCalibration.load(tmp_path / "down.json")
