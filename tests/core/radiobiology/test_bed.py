"""BED / EQD2: hand-worked numbers, limits, closed forms vs numerical integration."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.kinetics.fitting import fit_tac
from dosimetry_core.radiobiology.bed import (
    BedResult,
    CycleSum,
    bed_biexponential,
    bed_from_tac,
    bed_mono_exponential,
    bed_numeric,
    compute_bed,
    dose_for_bed,
    eqd2_gy,
    g_factor_biexponential,
    g_factor_sum_of_exponentials,
    sum_over_cycles,
)

LN2 = math.log(2.0)


# ------------------------------------------------------------ hand-worked
def test_mono_hand_worked_kidney_example():
    # D = 20 Gy, T_eff = 50 h, alpha/beta = 2.6 Gy, T_rep = 2.8 h (kidney, Barone 2005).
    # lambda/(lambda+mu) = (1/50)/(1/50 + 1/2.8) = 2.8/(2.8 + 50) = 2.8/52.8 = 0.0530303
    # BED = 20 * (1 + 20 * 0.0530303 / 2.6) = 20 * (1 + 1.0606061/2.6)
    #     = 20 * (1 + 0.4079254) = 28.158508 Gy
    # EQD2 = 28.158508 / (1 + 2/2.6) = 28.158508 / 1.7692308 = 15.915679 Gy
    bed = bed_mono_exponential(20.0, 50.0, 2.6, 2.8)
    assert bed == pytest.approx(28.158508, abs=1e-6)
    assert eqd2_gy(bed, 2.6) == pytest.approx(15.915679, abs=1e-6)
    r = compute_bed(20.0, 50.0, 2.6, 2.8)
    assert r.relative_effectiveness == pytest.approx(1.4079254, abs=1e-7)
    assert r.g_factor == pytest.approx(0.0530303, abs=1e-7)
    assert r.eqd2_gy == pytest.approx(15.915679, abs=1e-6)
    assert r.t_uptake_h is None


def test_eqd2_known_values():
    # alpha/beta = 10 Gy: EQD2 = BED / 1.2; alpha/beta = 2 Gy: EQD2 = BED / 2
    assert eqd2_gy(60.0, 10.0) == pytest.approx(50.0)
    assert eqd2_gy(60.0, 2.0) == pytest.approx(30.0)
    # 2 Gy acute fractions: EQD2 of 1 fraction of 2 Gy is 2 Gy for every alpha/beta
    for ab in (1.5, 2.6, 10.0):
        assert eqd2_gy(2.0 * (1 + 2.0 / ab), ab) == pytest.approx(2.0)


# ------------------------------------------------------------ limits
def test_fast_repair_gives_bed_equal_dose():
    # T_rep -> 0: G = T_rep/(T_rep + T_eff) -> 0, BED -> D
    bed = bed_mono_exponential(30.0, 60.0, 2.6, 1e-9)
    assert bed == pytest.approx(30.0, rel=1e-9)


def test_fast_clearance_tends_to_acute_dose():
    # T_eff << T_rep: G -> 1, BED -> D (1 + D/(alpha/beta)) (single acute fraction)
    assert bed_mono_exponential(10.0, 1e-6, 3.0, 1.5) == pytest.approx(10 * (1 + 10 / 3), rel=1e-5)
    # slower clearance always gives a lower BED for the same dose
    beds = [bed_mono_exponential(20.0, t, 2.6, 2.8) for t in (5.0, 20.0, 50.0, 200.0)]
    assert all(b1 > b2 for b1, b2 in zip(beds[:-1], beds[1:], strict=True))


def test_biexp_tends_to_mono_for_instant_uptake():
    b_mono = bed_mono_exponential(20.0, 50.0, 2.6, 2.8)
    b_bi = bed_biexponential(20.0, 1e-6, 50.0, 2.6, 2.8)
    assert b_bi == pytest.approx(b_mono, rel=1e-6)
    # a slower uptake spreads the dose: lower BED
    assert bed_biexponential(20.0, 10.0, 50.0, 2.6, 2.8) < b_mono


# ------------------------------------------------------------ closed form vs quadrature
def _g_by_double_quadrature(rate, t_end, mu):
    """Definition G D^2 = 2 int_0^T R(t) int_0^t R(w) exp(-mu (t - w)) dw dt, by dblquad."""
    dose = integrate.quad(rate, 0, t_end, limit=500, epsabs=0, epsrel=1e-12)[0]
    inner = integrate.dblquad(
        lambda w, t: rate(t) * rate(w) * math.exp(-mu * (t - w)),
        0,
        t_end,
        0,
        lambda t: t,
        epsabs=0,
        epsrel=1e-11,
    )[0]
    return 2 * inner / dose**2, dose


@pytest.mark.parametrize(
    ("t_up", "t_eff", "t_rep"), [(3.0, 50.0, 2.8), (0.5, 8.0, 1.5), (20.0, 70.0, 0.5)]
)
def test_biexp_closed_form_matches_direct_integration(t_up, t_eff, t_rep):
    lu, le, mu = LN2 / t_up, LN2 / t_eff, LN2 / t_rep
    t_end = 60 * t_eff  # remaining dose fraction 2^-60

    def rate(t):
        return math.exp(-le * t) - math.exp(-lu * t)

    g_num, d_unit = _g_by_double_quadrature(rate, t_end, mu)
    assert d_unit == pytest.approx(1 / le - 1 / lu, rel=1e-10)
    g = g_factor_biexponential(t_up, t_eff, t_rep)
    assert g == pytest.approx(g_num, rel=1e-6)
    # and through the BED: RE = 1 + (2/(a/b)) (1/D) int int ...  for D = 25 Gy
    d, ab = 25.0, 2.6
    re_num = 1 + g_num * d / ab
    assert bed_biexponential(d, t_up, t_eff, ab, t_rep) / d == pytest.approx(re_num, rel=1e-6)


def test_bed_numeric_matches_closed_forms():
    d, t_up, t_eff, ab, tr = 20.0, 3.0, 50.0, 2.6, 2.8
    lu, le = LN2 / t_up, LN2 / t_eff
    scale = d / (1 / le - 1 / lu)

    def rate(t):
        return scale * (math.exp(-le * t) - math.exp(-lu * t))

    r = bed_numeric(rate, 60 * t_eff, ab, tr)
    assert r.dose_gy == pytest.approx(d, rel=1e-9)
    assert r.bed_gy == pytest.approx(bed_biexponential(d, t_up, t_eff, ab, tr), rel=1e-7)
    r_mono = bed_numeric(lambda t: d * le * math.exp(-le * t), 60 * t_eff, ab, tr)
    assert r_mono.bed_gy == pytest.approx(bed_mono_exponential(d, t_eff, ab, tr), rel=1e-7)


def test_bed_numeric_constant_dose_rate_analytic():
    # Constant dose rate for T: G = 2 (mu T - 1 + exp(-mu T)) / (mu T)^2 (Dale 1985)
    tr, t_irr, d, ab = 1.5, 10.0, 12.0, 3.0
    mu = LN2 / tr
    x = mu * t_irr
    g = 2 * (x - 1 + math.exp(-x)) / x**2
    r = bed_numeric(lambda t: d / t_irr if t < t_irr else 0.0, 20.0, ab, tr, breakpoints_h=[t_irr])
    assert r.dose_gy == pytest.approx(d, rel=1e-9)
    assert r.bed_gy == pytest.approx(d * (1 + g * d / ab), rel=1e-8)


def test_sum_of_exponentials_matches_triexp_quadrature():
    c, k, tr = [5.0, 2.0, -7.0], [0.2, 0.01, 1.5], 2.0
    mu = LN2 / tr

    def rate(t):
        return sum(ci * math.exp(-ki * t) for ci, ki in zip(c, k, strict=True))

    g_num, _ = _g_by_double_quadrature(rate, 60 * LN2 / 0.01, mu)
    assert g_factor_sum_of_exponentials(c, k, tr) == pytest.approx(g_num, rel=1e-6)


# ------------------------------------------------------------ fitted TACs
def test_bed_from_tac_mono_fit_equals_closed_form():
    # noise-free mono-exponential TAC with T_eff = 50 h
    t = np.array([4.0, 24.0, 96.0, 168.0])
    a = 100.0 * np.exp(-LN2 / 50.0 * t)
    fit = fit_tac(t, a, model="mono", nuclide="Lu-177", mc_samples=0)
    assert fit.chosen.half_lives_h["T_half_eff"] == pytest.approx(50.0, rel=1e-6)
    r = bed_from_tac(20.0, fit, 2.6, 2.8)
    assert r.model == "fit:mono"
    assert r.t_eff_h == pytest.approx(50.0, rel=1e-6)
    assert r.bed_gy == pytest.approx(28.158508, rel=1e-6)
    r_num = bed_from_tac(20.0, fit, 2.6, 2.8, method="numeric")
    assert r_num.bed_gy == pytest.approx(r.bed_gy, rel=1e-7)


def test_bed_from_tac_biexp_uptake_fit_equals_closed_form():
    t = np.array([1.0, 4.0, 24.0, 96.0, 168.0])
    le, lu = LN2 / 60.0, LN2 / 5.0
    a = 100.0 * (np.exp(-le * t) - np.exp(-lu * t))
    fit = fit_tac(t, a, model="biexp-uptake", nuclide="Lu-177", mc_samples=0)
    r = bed_from_tac(15.0, fit, 2.6, 2.8)
    assert r.t_uptake_h == pytest.approx(5.0, rel=1e-4)
    assert r.bed_gy == pytest.approx(bed_biexponential(15.0, 5.0, 60.0, 2.6, 2.8), rel=1e-5)
    assert bed_from_tac(15.0, fit, 2.6, 2.8, method="numeric").bed_gy == pytest.approx(
        r.bed_gy, rel=1e-7
    )


def test_bed_from_tac_trapezoid_matches_quadrature_of_its_curve():
    t = np.array([4.0, 24.0, 96.0, 168.0])
    a = np.array([60.0, 100.0, 40.0, 18.0])
    fit = fit_tac(t, a, model="trapezoid", nuclide="Lu-177", mc_samples=0)
    lam_tail = LN2 / fit.physical_half_life_h
    tr, d, ab = 2.8, 10.0, 2.6

    def curve(x):  # linear start from 0, straight lines, physical-decay tail
        if x < t[0]:
            return a[0] * x / t[0]
        if x <= t[-1]:
            return float(np.interp(x, t, a))
        return a[-1] * math.exp(-lam_tail * (x - t[-1]))

    t_end = t[-1] + 60 * fit.physical_half_life_h
    r_num = bed_numeric(curve, t_end, ab, tr, breakpoints_h=list(t))
    assert r_num.dose_gy == pytest.approx(fit.tia_mbq_h, rel=1e-8)  # same curve as the TIA
    r = bed_from_tac(d, fit, ab, tr)
    assert r.model == "fit:trapezoid"
    assert r.g_factor == pytest.approx(r_num.g_factor, rel=1e-6)
    assert r.dose_gy == d


# ------------------------------------------------------------ inverse, arrays, cycles
def test_dose_for_bed_round_trip_mono_and_bi():
    for t_up in (None, 4.0):
        for d in (0.0, 1.0, 23.0, 80.0):
            bed = (
                bed_mono_exponential(d, 50.0, 2.6, 2.8)
                if t_up is None
                else bed_biexponential(d, t_up, 50.0, 2.6, 2.8)
            )
            assert dose_for_bed(bed, 50.0, 2.6, 2.8, t_up) == pytest.approx(d, abs=1e-12, rel=1e-12)


def test_dose_for_bed_hand_worked():
    # kidney BED limit 40 Gy, T_eff 50 h: q = G/(a/b) = 0.0530303/2.6 = 0.0203963 /Gy
    # D = (-1 + sqrt(1 + 4 * 0.0203963 * 40)) / (2 * 0.0203963)
    #   = (-1 + sqrt(4.263403)) / 0.0407925 = (2.064801 - 1)/0.0407925 = 26.10284 Gy
    assert dose_for_bed(40.0, 50.0, 2.6, 2.8) == pytest.approx(26.10284, abs=2e-5)


def test_per_voxel_arrays_elementwise():
    dose = np.array([[0.0, 5.0], [20.0, 40.0]])
    t_eff = np.array([[50.0, 30.0], [50.0, 100.0]])
    bed = bed_mono_exponential(dose, t_eff, 2.6, 2.8)
    assert isinstance(bed, np.ndarray) and bed.shape == (2, 2)
    for i in range(2):
        for j in range(2):
            assert bed[i, j] == pytest.approx(
                bed_mono_exponential(float(dose[i, j]), float(t_eff[i, j]), 2.6, 2.8)
            )
    assert bed[1, 0] == pytest.approx(28.158508, abs=1e-6)
    bed_bi = bed_biexponential(dose, 2.0, t_eff, 2.6, 2.8)
    assert bed_bi.shape == (2, 2)
    assert dose_for_bed(bed, t_eff, 2.6, 2.8) == pytest.approx(dose, abs=1e-12)
    eq = eqd2_gy(bed, 2.6)
    assert eq[1, 0] == pytest.approx(15.915679, abs=1e-6)


def test_sum_over_cycles_bed_adds():
    cycles = [compute_bed(d, 50.0, 2.6, 2.8) for d in (5.0, 5.0, 6.0, 4.0)]
    s = sum_over_cycles(cycles)
    assert isinstance(s, CycleSum)
    assert s.bed_total_gy == pytest.approx(sum(c.bed_gy for c in cycles))
    assert s.dose_total_gy == pytest.approx(20.0)
    # 4 cycles of 5 Gy give less BED than 20 Gy at once (repair between cycles)
    assert s.bed_total_gy < compute_bed(20.0, 50.0, 2.6, 2.8).bed_gy
    assert s.eqd2_total_gy == pytest.approx(s.bed_total_gy / (1 + 2 / 2.6))
    s2 = sum_over_cycles([10.0, 12.5], alpha_beta_gy=2.0)
    assert s2.bed_total_gy == 22.5 and s2.eqd2_total_gy == pytest.approx(11.25)
    maps = sum_over_cycles([np.full((2, 2), 3.0), np.full((2, 2), 4.0)], alpha_beta_gy=10.0)
    assert isinstance(maps, tuple)
    np.testing.assert_allclose(maps[0], 7.0)
    np.testing.assert_allclose(maps[1], 7.0 / 1.2)


def test_sum_over_cycles_refuses_mixed_tissues():
    with pytest.raises(InvalidInputError, match="alpha/beta"):
        sum_over_cycles([compute_bed(5, 50, 2.6, 2.8), compute_bed(5, 50, 10.0, 1.5)])
    with pytest.raises(InvalidInputError, match="alpha/beta"):
        sum_over_cycles([10.0, 12.0])


def test_bed_result_to_dict():
    d = compute_bed(20.0, 50.0, 2.6, 2.8, 2.0).to_dict()
    assert set(d) >= {
        "dose_gy", "bed_gy", "eqd2_gy", "alpha_beta_gy", "t_repair_h", "t_eff_h",
        "t_uptake_h", "relative_effectiveness", "model",
    }  # fmt: skip
    assert d["t_uptake_h"] == 2.0
    assert isinstance(compute_bed(1, 2, 3, 4), BedResult)


# ------------------------------------------------------------ bad inputs
@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((-1.0, 50.0, 2.6, 2.8), "dose_gy = -1"),
        ((20.0, 0.0, 2.6, 2.8), "t_eff_h = 0"),
        ((20.0, 50.0, -2.6, 2.8), "alpha_beta_gy = -2.6"),
        ((20.0, 50.0, 2.6, 0.0), "t_repair_h = 0"),
        ((float("nan"), 50.0, 2.6, 2.8), "dose_gy"),
    ],
)
def test_bad_inputs_refused(args, match):
    with pytest.raises(InvalidInputError, match=match):
        bed_mono_exponential(*args)


def test_bad_inputs_refused_biexp_and_arrays():
    with pytest.raises(InvalidInputError, match="uptake half-time"):
        bed_biexponential(20.0, 60.0, 50.0, 2.6, 2.8)
    with pytest.raises(InvalidInputError, match="dose_gy = -3"):
        bed_mono_exponential(np.array([1.0, -3.0]), 50.0, 2.6, 2.8)
    with pytest.raises(InvalidInputError, match="bed_gy"):
        dose_for_bed(-1.0, 50.0, 2.6, 2.8)
    with pytest.raises(InvalidInputError):
        eqd2_gy(10.0, 0.0)


@pytest.mark.parametrize(
    ("model", "params"),
    [
        ("biexp", [40.0, 0.3, 60.0, 0.012]),
        ("triexp", [30.0, 0.1, 50.0, 0.011, 1.2]),
    ],
)
def test_bed_from_tac_multiexponential_models_match_quadrature(model, params):
    # the model's own evaluate() (kinetics.models) integrated by dblquad: checks the
    # parameter -> exponential-term mapping independently of the closed form
    from types import SimpleNamespace

    from dosimetry_core.kinetics.models import MODELS

    m = MODELS[model]
    p = np.array(params)

    def curve(t):
        return float(m.evaluate(p, np.array([t]))[0])

    k_min = min(params[i] for i in m.rate_indices)
    g_num, area = _g_by_double_quadrature(curve, 60 * LN2 / k_min, LN2 / 2.8)
    assert area == pytest.approx(m.tia(p), rel=1e-9)
    cand = SimpleNamespace(model=model, values=params)
    r = bed_from_tac(12.0, cand, 2.6, 2.8)
    assert r.model == f"fit:{model}"
    assert r.g_factor == pytest.approx(g_num, rel=1e-6)
    assert bed_from_tac(12.0, cand, 2.6, 2.8, method="numeric").g_factor == pytest.approx(
        g_num, rel=1e-6
    )


def test_dose_for_bed_from_g_factor_of_a_fitted_curve():
    from dosimetry_core.radiobiology.bed import dose_for_bed_from_g_factor

    t = np.array([4.0, 24.0, 96.0, 168.0])
    fit = fit_tac(t, [60.0, 100.0, 40.0, 18.0], model="trapezoid", mc_samples=0)
    r = bed_from_tac(18.0, fit, 2.6, 2.8)
    assert dose_for_bed_from_g_factor(r.bed_gy, r.g_factor, 2.6) == pytest.approx(18.0, rel=1e-12)
    # G = 1 (acute): BED 40 Gy at a/b 2.6 -> D = 80/(1 + sqrt(62.538462)) = 80/8.908126
    #   = 8.980564 Gy
    assert dose_for_bed_from_g_factor(40.0, 1.0, 2.6) == pytest.approx(
        80 / (1 + math.sqrt(1 + 160 / 2.6)), rel=1e-12
    )
    assert dose_for_bed_from_g_factor(40.0, 1.0, 2.6) == pytest.approx(8.980564, abs=1e-6)
