"""Demo kinetics: analytic TIAs, mass balance, impossible parameters refused."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import quad

from dosimetry_core.phantoms._kinetics import (
    DemoKinetics,
    ExpSum,
    RemainderKinetics,
    UptakeWashout,
    default_uptake_table,
)
from dosimetry_core.physics.nuclides import half_life_h

A0 = 7400.0


@pytest.fixture(scope="module")
def kin() -> DemoKinetics:
    return DemoKinetics(A0, half_life_h("Lu-177"), default_uptake_table(), RemainderKinetics(), 1.0)


def test_exp_sum_integral_and_value():
    f = ExpSum((3.0, -1.0), (0.5, 2.0))
    assert f.integral() == pytest.approx(3.0 / 0.5 - 1.0 / 2.0)
    assert float(f(0.0)) == pytest.approx(2.0)
    assert float(f(-1.0)) == 0.0


@pytest.mark.parametrize(
    "name", [u.compartment for u in default_uptake_table()] + ["remainder", "bladder_content"]
)
def test_tia_formula_matches_numerical_integration(kin, name):
    tau = kin.void_interval_h

    def f(t):
        return float(kin.activity_mbq(name, t))

    pieces = [(0.0, tau), (tau, 48.0), (48.0, 500.0), (500.0, np.inf)]
    numeric = sum(quad(f, a, b, limit=400, epsabs=1e-9, epsrel=1e-10)[0] for a, b in pieces)
    assert kin.tia_mbq_h(name) == pytest.approx(numeric, rel=1e-3)


def test_compartments_add_up_to_injected_decayed_minus_excreted(kin):
    t = np.array([0.0, 0.3, 1.0, 2.5, 4.0, 24.0, 96.0, 168.0, 1000.0])
    total = sum(kin.activity_mbq(c, t) for c in kin.compartments)
    lam = math.log(2) / half_life_h("Lu-177")
    np.testing.assert_allclose(
        total, A0 * np.exp(-lam * t) - kin.excreted_activity_mbq(t), rtol=1e-12
    )
    np.testing.assert_allclose(total, kin.body_activity_mbq(t), rtol=1e-12)
    assert kin.excreted_activity_mbq(0.5) == 0.0  # nothing voided before the first void


def test_total_tia_is_fully_decayed_injected_minus_excreted(kin):
    lam = math.log(2) / half_life_h("Lu-177")
    total = sum(kin.tia_mbq_h(c) for c in kin.compartments)
    excreted = quad(lambda t: float(kin.excreted_activity_mbq(t)), 0, np.inf, limit=400)[0]
    assert total == pytest.approx(A0 / lam - excreted, rel=1e-4)


def test_curves_are_realistic_for_lu177_dotatate(kin):
    # a large fraction in urine within a day; organ effective half-lives as configured
    assert 0.5 < float(kin.urinary_fraction(24.0)) < 0.8
    k = kin.tacs["kidney_left"]
    late = np.log(k(96.0) / k(168.0)) / 72.0
    assert math.log(2) / late == pytest.approx(50.0, rel=0.01)
    for name in ("kidney_left", "liver", "spleen", "tumour_1"):
        assert np.all(kin.activity_mbq(name, np.linspace(0.01, 500, 200)) > 0)


def test_impossible_kinetics_are_refused():
    hl = half_life_h("Lu-177")
    with pytest.raises(ValueError, match="shorter than the physical"):
        DemoKinetics(A0, hl, (UptakeWashout("x", 0.01, 1.0, 200.0),), RemainderKinetics())
    with pytest.raises(ValueError, match="increase"):
        DemoKinetics(A0, hl, (UptakeWashout("x", 0.9, 0.2, 100.0),), RemainderKinetics())
    with pytest.raises(ValueError, match="sum to 1"):
        DemoKinetics(A0, hl, (), RemainderKinetics((0.5, 0.2), (1.0, 10.0)))
