"""Non-imaging series: hand-worked numbers (half-lives from the ICRP-107 table)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import pytest

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.kinetics.measurements import (
    WellCounterCalibration,
    blood_concentration_bq_per_ml,
    blood_series,
    case_blood_series,
    case_probe_uptake,
    case_whole_body_retention,
    probe_uptake,
    whole_body_retention,
)
from dosimetry_core.model.case import (
    Administration,
    Case,
    Measurement,
    MeasurementKind,
    Patient,
)
from dosimetry_core.physics.nuclides import half_life_h

LN2 = math.log(2.0)
T_I131 = half_life_h("I-131")  # 192.5 h (8.02 d)
T_LU = half_life_h("Lu-177")  # 159.5 h (6.65 d)
T0 = datetime(2026, 2, 1, 10, 0, 0)


# ------------------------------------------------------------ dose rate
def test_whole_body_first_reading_is_100_percent():
    # readings 50.1, 20.06, 5.1 uSv/h at 1 m, background 0.1:
    # net 50, 19.96, 5.0 -> 1, 0.3992, 0.1 of the first (self-calibration)
    s = whole_body_retention(
        [0.5, 24.0, 72.0],
        [50.1, 20.06, 5.1],
        administered_activity_mbq=1000.0,
        nuclide="I-131",
        background=0.1,
    )
    d0 = math.exp(-LN2 * 0.5 / T_I131)  # decay before the first reading
    assert s.unit == "MBq"
    assert s.fraction == pytest.approx([d0, 0.3992 * d0, 0.1 * d0], rel=1e-9)
    assert s.values == pytest.approx([1000 * d0, 399.2 * d0, 100 * d0], rel=1e-9)
    # decay corrected: biological retention, 100 % at the first reading
    assert s.fraction_decay_corrected[0] == pytest.approx(1.0, rel=1e-12)
    assert s.fraction_decay_corrected[2] == pytest.approx(
        0.1 * d0 * math.exp(LN2 * 72.0 / T_I131), rel=1e-9
    )


def test_whole_body_sorted_and_bad_input():
    s = whole_body_retention(
        [24.0, 1.0], [10.0, 40.0], administered_activity_mbq=100.0, nuclide="I-131"
    )
    assert s.time_h == [1.0, 24.0]
    assert s.fraction[1] / s.fraction[0] == pytest.approx(0.25)
    with pytest.raises(InvalidInputError, match="not above background"):
        whole_body_retention(
            [1.0, 24.0],
            [40.0, 0.5],
            administered_activity_mbq=100.0,
            nuclide="I-131",
            background=1.0,
        )
    with pytest.raises(InvalidInputError, match="before the administration"):
        whole_body_retention(
            [-1.0, 24.0], [40.0, 5.0], administered_activity_mbq=100.0, nuclide="I-131"
        )
    with pytest.raises(InvalidInputError, match="administered activity"):
        whole_body_retention([1.0], [40.0], administered_activity_mbq=0.0, nuclide="I-131")


def _case(*measurements: Measurement) -> Case:
    return Case(
        patient=Patient("P"),
        administrations=[Administration("I-131", 3700.0, T0)],
        measurements=list(measurements),
    )


def test_case_dose_rate_series():
    ms = [
        Measurement(MeasurementKind.DOSE_RATE, 80.0, "uSv/h", T0 + timedelta(hours=1)),
        Measurement(
            MeasurementKind.DOSE_RATE,
            40.5,
            "uSv/h",
            T0 + timedelta(hours=48),
            extra={"background": 0.5},
        ),
    ]
    s = case_whole_body_retention(_case(*reversed(ms)))
    d0 = math.exp(-LN2 * 1.0 / T_I131)
    assert s.time_h == pytest.approx([1.0, 48.0])
    assert s.values == pytest.approx([3700 * d0, 1850 * d0], rel=1e-9)
    assert s.measurement_ids == [m.measurement_id for m in ms]
    ms[1].unit = "mSv/h"
    with pytest.raises(InvalidInputError, match="several units"):
        case_whole_body_retention(_case(*ms))
    with pytest.raises(InvalidInputError, match="no dose rate"):
        case_whole_body_retention(_case())


# ---------------------------------------------------------------- blood
def test_blood_sample_hand_worked():
    cal = WellCounterCalibration(cps_per_bq=0.3)
    # 60000 counts / 60 s = 1000 cps; background 600 / 60 s = 10 cps; net 990 cps
    # 990 / 0.3 = 3300 Bq in 1.0 mL, counted 24 h after sampling (Lu-177)
    c = blood_concentration_bq_per_ml(
        60000,
        60.0,
        1.0,
        cal,
        nuclide="Lu-177",
        hours_sampling_to_counting=24.0,
        background_counts=600,
        background_time_s=60.0,
    )
    x = LN2 / T_LU / 3600.0 * 60.0
    expected = 3300.0 * math.exp(LN2 * 24.0 / T_LU) * x / (1.0 - math.exp(-x))
    assert c == pytest.approx(expected, rel=1e-12)
    assert c == pytest.approx(3300.0 * 1.1099, rel=1e-3)  # exp(ln2 24/159.5) = 1.1099


def test_blood_decay_during_counting_short_lived():
    # Tc-99m, 1 h count: lambda t = ln2/6.015 = 0.11523 -> factor 1.0587
    cal = WellCounterCalibration(cps_per_bq=1.0, background_cps=0.0)
    c = blood_concentration_bq_per_ml(3600.0 * 100.0, 3600.0, 1.0, cal, nuclide="Tc-99m")
    x = LN2 / 6.015
    assert c == pytest.approx(100.0 * x / (1.0 - math.exp(-x)), rel=1e-9)
    assert c == pytest.approx(105.87, rel=1e-3)


def test_blood_bad_input():
    cal = WellCounterCalibration(cps_per_bq=0.3, background_cps=20.0)
    with pytest.raises(InvalidInputError, match="calibration"):
        blood_concentration_bq_per_ml(100, 60, 1, None, nuclide="Lu-177")
    with pytest.raises(InvalidInputError, match="calibration"):
        blood_concentration_bq_per_ml(
            100, 60, 1, WellCounterCalibration(cps_per_bq=0.0), nuclide="Lu-177"
        )
    with pytest.raises(InvalidInputError, match="below background"):
        blood_concentration_bq_per_ml(600, 60, 1, cal, nuclide="Lu-177")  # 10 < 20 cps
    with pytest.raises(InvalidInputError, match="sample volume"):
        blood_concentration_bq_per_ml(6000, 60, 0.0, cal, nuclide="Lu-177")
    with pytest.raises(InvalidInputError, match="before it was taken"):
        blood_concentration_bq_per_ml(
            6000, 60, 1, cal, nuclide="Lu-177", hours_sampling_to_counting=-1
        )
    with pytest.raises(InvalidInputError, match="before the administration"):
        blood_series(
            [-0.1],
            [6000],
            counting_time_s=60,
            sample_volume_ml=1,
            calibration=cal,
            nuclide="Lu-177",
        )


def test_case_blood_series():
    cal = WellCounterCalibration(cps_per_bq=0.5, background_cps=0.0)
    m1 = Measurement(
        MeasurementKind.BLOOD_SAMPLE,
        30000.0,
        "counts",
        T0 + timedelta(hours=2),
        extra={
            "counting_time_s": 60.0,
            "sample_volume_ml": 0.5,
            "counted_at": (T0 + timedelta(hours=26)).isoformat(),
        },
    )
    s = case_blood_series(_case(m1), cal)
    x = LN2 / T_I131 / 3600.0 * 60.0
    # 500 cps / 0.5 cps/Bq / 0.5 mL = 2000 Bq/mL at counting, 24 h after sampling
    expected = 2000.0 * math.exp(LN2 * 24.0 / T_I131) * x / (1.0 - math.exp(-x))
    assert s.unit == "Bq/mL"
    assert s.time_h == pytest.approx([2.0])
    assert s.values == pytest.approx([expected], rel=1e-12)
    del m1.extra["sample_volume_ml"]
    with pytest.raises(InvalidInputError, match="sample_volume_ml"):
        case_blood_series(_case(m1), cal)
    with pytest.raises(InvalidInputError, match="calibration"):
        m1.extra["sample_volume_ml"] = 0.5
        case_blood_series(_case(m1), None)


def test_case_blood_series_mixes_counted_and_entered_concentrations():
    # a sample entered as 1500 Bq/mL at 48 h is used as it is; the counted one at 2 h
    # is converted as in test_case_blood_series; the series comes back in time order
    cal = WellCounterCalibration(cps_per_bq=0.5, background_cps=0.0)
    entered = Measurement(MeasurementKind.BLOOD_SAMPLE, 1500.0, "Bq/mL", T0 + timedelta(hours=48))
    counted = Measurement(
        MeasurementKind.BLOOD_SAMPLE,
        30000.0,
        "counts",
        T0 + timedelta(hours=2),
        extra={"counting_time_s": 60.0, "sample_volume_ml": 0.5, "background_counts": None},
    )
    s = case_blood_series(_case(entered, counted), cal)
    x = LN2 / T_I131 / 3600.0 * 60.0
    assert s.time_h == pytest.approx([2.0, 48.0])
    assert s.values == pytest.approx([2000.0 * x / (1.0 - math.exp(-x)), 1500.0], rel=1e-12)
    assert s.measurement_ids == [counted.measurement_id, entered.measurement_id]
    # concentrations alone need no well-counter calibration
    only = case_blood_series(_case(entered), None)
    assert only.values == [1500.0]
    entered.value = float("nan")
    with pytest.raises(InvalidInputError, match="Bq/mL") as err:
        case_blood_series(_case(entered), None)
    assert err.value.field == "concentration_bq_ml"


# ---------------------------------------------------------------- probe
def test_probe_uptake_hand_worked():
    # standard 10 MBq calibrated 24 h before counting; 110000 gross, 10000 bg in 10 s
    # -> 10000 cps net / (10 exp(-ln2 24/T)) MBq
    # patient at 24 h: 66000 gross, 6000 bg in 60 s -> 1000 cps net
    d24 = math.exp(-LN2 * 24.0 / T_I131)
    sens = 10000.0 / (10.0 * d24)
    s = probe_uptake(
        [24.0],
        [66000.0],
        counting_time_s=60.0,
        background_counts=6000.0,
        standard_counts=110000.0,
        standard_background_counts=10000.0,
        standard_counting_time_s=10.0,
        standard_activity_mbq=10.0,
        hours_standard_calibration_to_counting=24.0,
        administered_activity_mbq=5.0,
        nuclide="I-131",
    )
    assert s.values == pytest.approx([1000.0 / sens], rel=1e-12)  # = 0.1 d24 * 10 = d24 MBq
    assert s.values == pytest.approx([d24], rel=1e-12)
    assert s.fraction == pytest.approx([d24 / 5.0], rel=1e-12)
    # decay corrected to administration: 20 % -- a capsule-equivalent standard
    assert s.fraction_decay_corrected == pytest.approx([0.2], rel=1e-12)


def test_probe_bad_input():
    kw: dict[str, Any] = dict(
        counting_time_s=60.0,
        background_counts=6000.0,
        standard_counts=110000.0,
        standard_background_counts=10000.0,
        standard_counting_time_s=10.0,
        standard_activity_mbq=10.0,
        administered_activity_mbq=5.0,
        nuclide="I-131",
    )
    with pytest.raises(InvalidInputError, match="below background"):
        probe_uptake([24.0], [5000.0], **kw)
    with pytest.raises(InvalidInputError, match="before the administration"):
        probe_uptake([-2.0], [66000.0], **kw)
    kw["standard_counts"] = 9000.0
    with pytest.raises(InvalidInputError, match="standard"):
        probe_uptake([24.0], [66000.0], **kw)


def test_case_probe_uptake_uses_each_sessions_standard():
    """Two sessions; the probe is half as sensitive on day 2 and its standard says so."""
    adm_mbq = 3700.0
    std = {
        "standard_background_counts": 10000.0,
        "standard_counting_time_s": 10.0,
        "standard_activity_mbq": 10.0,
    }
    day1 = Measurement(
        MeasurementKind.PROBE,
        66000.0,  # 1000 cps net over 6000 background in 60 s
        "counts",
        T0 + timedelta(hours=24),
        extra={
            "counting_time_s": 60.0,
            "background_counts": 6000.0,
            "standard_counts": 110000.0,  # 10000 cps net, standard counted at reading time
            **std,
        },
    )
    day2 = Measurement(
        MeasurementKind.PROBE,
        36000.0,  # 500 cps net
        "counts",
        T0 + timedelta(hours=96),
        extra={
            "counting_time_s": 60.0,
            "background_counts": 6000.0,
            "standard_counts": 60000.0,  # 5000 cps net: sensitivity halved
            "standard_calibrated_at": (T0 + timedelta(hours=48)).isoformat(),
            **std,
        },
    )
    case = Case(
        patient=Patient("P"),
        administrations=[Administration("I-131", adm_mbq, T0)],
        measurements=[day2, day1],
    )
    s = case_probe_uptake(case)
    d48 = math.exp(-LN2 * 48.0 / T_I131)  # day-2 standard decayed from its calibration
    # day 1: 1000 cps / (10000 cps / 10 MBq) = 1 MBq; day 2: 500 / (5000 / (10 d48)) = d48 MBq
    assert s.time_h == pytest.approx([24.0, 96.0])
    assert s.values == pytest.approx([1.0, d48], rel=1e-12)
    assert s.fraction == pytest.approx([1.0 / adm_mbq, d48 / adm_mbq], rel=1e-12)
    assert s.measurement_ids == [day1.measurement_id, day2.measurement_id]
    del day2.extra["standard_counts"]
    with pytest.raises(InvalidInputError, match="standard_counts"):
        case_probe_uptake(case)


def test_series_fit_ready():
    """The whole-body series goes into fit_tac as is (mono-exponential, known TIA)."""
    fitting = pytest.importorskip("dosimetry_core.kinetics.fitting")
    lam_eff = LN2 / 40.0  # effective half-life 40 h
    t = [1.0, 6.0, 24.0, 48.0, 96.0]
    a0 = 1000.0
    readings = [math.exp(-lam_eff * x) for x in t]
    s = whole_body_retention(t, readings, administered_activity_mbq=a0, nuclide="I-131")
    # A(t) = A0 exp(-lam t_1) exp(-lam_eff (t - t_1)); TIA from 0 for mono = A(0)/lam_eff
    a_at_0 = s.values[0] * math.exp(lam_eff * t[0])
    res = fitting.fit_tac(s.time_h, s.values, model="mono", nuclide="I-131")
    assert res.tia_mbq_h == pytest.approx(a_at_0 / lam_eff, rel=1e-3)
