"""Models: analytic Jacobians, integrals and TIA gradients against numerical ones."""

import math

import numpy as np
import pytest
from scipy import integrate

from dosimetry_core.kinetics.models import MODELS, trapezoid_tia

LAM_LU = math.log(2) / 159.528
PARAMS = {
    "mono": np.array([120.0, 0.02]),
    "biexp-uptake": np.array([150.0, 0.015, 0.4]),
    "biexp": np.array([60.0, 0.1, 40.0, 0.01]),
    "triexp": np.array([50.0, 0.08, 70.0, 0.012, 0.9]),
}
TAU = np.array([0.5, 2.0, 4.0, 24.0, 48.0, 96.0, 168.0])


@pytest.mark.parametrize("name", list(MODELS))
def test_jacobian_matches_finite_differences(name):
    m, p = MODELS[name], PARAMS[name]
    jac = m.jacobian(p, TAU)
    num = np.empty_like(jac)
    for j in range(p.size):
        h = 1e-6 * abs(p[j])
        up, dn = p.copy(), p.copy()
        up[j] += h
        dn[j] -= h
        num[:, j] = (m.evaluate(up, TAU) - m.evaluate(dn, TAU)) / (2 * h)
    np.testing.assert_allclose(jac, num, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", list(MODELS))
def test_tia_equals_numerical_integral_and_gradient(name):
    m, p = MODELS[name], PARAMS[name]
    num, _ = integrate.quad(lambda t: float(m.evaluate(p, np.array([t]))[0]), 0, np.inf, limit=200)
    assert m.tia(p) == pytest.approx(num, rel=1e-8)
    g = m.tia_gradient(p)
    for j in range(p.size):
        h = 1e-6 * abs(p[j])
        up, dn = p.copy(), p.copy()
        up[j] += h
        dn[j] -= h
        assert g[j] == pytest.approx((m.tia(up) - m.tia(dn)) / (2 * h), rel=1e-5)


@pytest.mark.parametrize("name", list(MODELS))
def test_bounds_put_rates_at_or_above_physical_decay(name):
    m = MODELS[name]
    lo, hi = m.bounds(LAM_LU)
    for i in m.rate_indices:
        assert lo[i] == LAM_LU
    amps = [i for i in range(m.n_params) if i not in m.rate_indices]
    assert all(lo[i] == 0 for i in amps)


def test_uptake_models_start_at_zero():
    for name in ("biexp-uptake", "triexp"):
        assert MODELS[name].evaluate(PARAMS[name], np.array([0.0]))[0] == pytest.approx(0.0)


def test_trapezoid_on_physical_decay_equals_a0_over_lambda_plus_known_error():
    a0, lam = 100.0, LAM_LU
    tau = np.array([4.0, 24.0, 96.0, 168.0])
    a = a0 * np.exp(-lam * tau)
    # known overestimate of each trapezoid on an exponential segment
    h = np.diff(tau)
    err = np.sum(a[:-1] * (h * (1 + np.exp(-lam * h)) / 2 - (1 - np.exp(-lam * h)) / lam))
    assert err > 0
    tia, parts = trapezoid_tia(tau, a, lam, start="mono", tail="physical")
    # mono back-extrapolation start and physical tail are exact for this curve
    assert parts["start"] == pytest.approx(a0 / lam * (1 - math.exp(-lam * 4.0)), rel=1e-10)
    assert parts["tail"] == pytest.approx(a[-1] / lam, rel=1e-12)
    assert tia == pytest.approx(a0 / lam + err, rel=1e-10)
    assert abs(tia / (a0 / lam) - 1) < 0.01


def test_trapezoid_start_rules_and_fitted_tail():
    tau = np.array([4.0, 24.0])
    a = np.array([100.0, 80.0])
    lin, p_lin = trapezoid_tia(tau, a, LAM_LU, start="linear")
    const, p_const = trapezoid_tia(tau, a, LAM_LU, start="constant")
    assert p_lin["start"] == pytest.approx(200.0)
    assert p_const["start"] == pytest.approx(400.0)
    assert p_lin["middle"] == pytest.approx(1800.0)
    assert p_lin["tail"] == pytest.approx(80.0 / LAM_LU)
    _, p_fit = trapezoid_tia(tau, a, LAM_LU, tail="fit")
    assert p_fit["tail_rate_per_h"] == pytest.approx(math.log(100 / 80) / 20)
    # a fitted tail slower than physical decay is not allowed by default
    _, p_slow = trapezoid_tia(tau, np.array([100.0, 99.9]), LAM_LU, tail="fit")
    assert p_slow["tail_rate_per_h"] == LAM_LU
