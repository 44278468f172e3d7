"""Single-time-point methods: hand-worked numbers and limiting cases."""

import math

import pytest

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.kinetics.stp import compare_stp_with_multipoint, haenscheid, madsen, stp_tia

LN2 = math.log(2)


def test_haenscheid_by_hand():
    r = haenscheid(96.0, 40.0)
    assert r.tia_mbq_h == pytest.approx(40.0 * 2 * 96.0 / LN2)
    assert r.tia_mbq_h == pytest.approx(11079.898, rel=1e-6)
    assert r.tia_sd_mbq_h is None
    r = haenscheid(96.0, 40.0, activity_sd_mbq=2.0)
    assert r.tia_sd_mbq_h == pytest.approx(2.0 * 2 * 96.0 / LN2)


def test_haenscheid_is_exact_when_the_scan_is_at_one_effective_half_life():
    t_eff = 70.0
    a0 = 100.0
    a = a0 * math.exp(-LN2 / t_eff * t_eff)
    r = haenscheid(t_eff, a, t_eff_h=t_eff)
    assert r.tia_mbq_h == pytest.approx(a0 * t_eff / LN2, rel=1e-12)
    assert r.extra["relative_bias_vs_mono_t_eff"] == pytest.approx(0.0, abs=1e-12)


def test_haenscheid_injection_time_offset():
    assert haenscheid(106.0, 40.0, injection_time_h=10.0).tia_mbq_h == pytest.approx(
        haenscheid(96.0, 40.0).tia_mbq_h
    )


def test_madsen_reduces_to_the_exact_mono_exponential_integral():
    a0, t_eff, t = 150.0, 55.0, 96.0
    lam = LN2 / t_eff
    r = madsen(t, a0 * math.exp(-lam * t), t_eff)
    assert r.tia_mbq_h == pytest.approx(a0 / lam, rel=1e-12)
    # by hand: A = 40 MBq at 96 h, T_eff = 70 h
    r = madsen(96.0, 40.0, 70.0)
    assert r.tia_mbq_h == pytest.approx(40.0 * math.exp(LN2 / 70.0 * 96.0) / (LN2 / 70.0))


def test_madsen_uncertainty_propagation():
    t, a, t_eff, sd_t, sd_a = 24.0, 50.0, 70.0, 7.0, 2.5
    r = madsen(t, a, t_eff, t_eff_sd_h=sd_t, activity_sd_mbq=sd_a, mc_samples=50000, seed=1)

    def f(tt, aa):
        lam = LN2 / tt
        return aa * math.exp(lam * t) / lam

    h = 1e-4
    d_t = (f(t_eff + h, a) - f(t_eff - h, a)) / (2 * h)
    expected = math.hypot(d_t * sd_t, f(t_eff, a) / a * sd_a)
    assert r.tia_sd_mbq_h == pytest.approx(expected, rel=1e-6)
    assert r.tia_sd_mc_mbq_h == pytest.approx(expected, rel=0.1)
    assert r.extra["optimal_time_h"] == pytest.approx(t_eff / LN2)


def test_madsen_first_order_sd_vanishes_at_the_optimal_time_mc_does_not():
    t_eff = 70.0
    r = madsen(t_eff / LN2, 40.0, t_eff, t_eff_sd_h=14.0)
    assert r.tia_sd_mbq_h == pytest.approx(0.0, abs=1e-6 * r.tia_mbq_h)
    assert r.tia_sd_mc_mbq_h > 0


def test_compare_stp_with_multipoint():
    a0, t_eff = 100.0, 60.0
    lam = LN2 / t_eff
    times = [24.0, 60.0, 120.0]
    acts = [a0 * math.exp(-lam * x) for x in times]
    rows = compare_stp_with_multipoint(times, acts, a0 / lam, method="madsen", t_eff_h=t_eff)
    assert all(abs(r["relative_difference"]) < 1e-12 for r in rows)
    # Hänscheid / exact = (2/ln2) x exp(-x), x = lambda t: 1 at t = T_eff and 2 T_eff,
    # maximum 2/(e ln2) at t = T_eff/ln2, below 1 outside [T_eff, 2 T_eff]
    times = [24.0, 60.0, 60.0 / LN2, 120.0, 240.0]
    acts = [a0 * math.exp(-lam * x) for x in times]
    rows = compare_stp_with_multipoint(times, acts, a0 / lam, method="haenscheid")
    d = [r["relative_difference"] for r in rows]
    assert d[1] == pytest.approx(0.0, abs=1e-12)
    assert d[3] == pytest.approx(0.0, abs=1e-12)
    assert d[2] == pytest.approx(2 / (math.e * LN2) - 1, rel=1e-12)
    assert d[0] < 0 and d[4] < 0


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: haenscheid(0.0, 40.0), "not after the injection"),
        (lambda: haenscheid(96.0, -1.0), "negative activity"),
        (lambda: haenscheid(float("nan"), 1.0), "not a number"),
        (lambda: madsen(96.0, 40.0, 0.0), "positive"),
        (lambda: madsen(96.0, 40.0, 70.0, t_eff_sd_h=-1.0), "non-negative"),
        (lambda: stp_tia("madsen", 96.0, 40.0), "needs an effective half-life"),
        (lambda: stp_tia("guess", 96.0, 40.0), "unknown single-time-point method"),
    ],
)
def test_stp_bad_input(call, match):
    with pytest.raises(InvalidInputError, match=match):
        call()
