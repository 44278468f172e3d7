"""Organ-level MIRD dosimetry: hand-computed examples and consistency checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dosimetry_core.dose.led import local_deposition_dose
from dosimetry_core.dose.organ_level import (
    mass_scaled_s_value,
    mird_dose_gy,
    remainder_s_value,
    remainder_tia,
    self_dose_gy,
    sphere_model_dose,
    sphere_model_dose_gy,
    sphere_radius_mm,
    total_body_dose_gy,
)
from dosimetry_core.dose.units import J_PER_MEV
from dosimetry_core.errors import InvalidInputError
from dosimetry_core.physics.nuclides import EnergyPerDecay, energy_per_decay, half_life_h

LU177 = EnergyPerDecay(electron_mev=0.1479, photon_mev=0.0351, alpha_mev=0.0, alpha_recoil_mev=0.0)


def test_self_dose_hand_computed_lu177():
    # 1000 MBq h = 3.6e12 decays; absorbed 0.1479 + 0.1 * 0.0351 = 0.15141 MeV per decay
    d = self_dose_gy(1000.0, 100.0, LU177, photon_absorbed_fraction=0.1)
    expected = 3.6e12 * 0.15141 * 1.602176634e-13 / 0.1
    assert d == pytest.approx(expected, rel=1e-12)
    assert d == pytest.approx(0.873308, rel=1e-5)
    # defaults: electrons fully absorbed, photons escape
    assert self_dose_gy(1000.0, 100.0, LU177) == pytest.approx(3.6e12 * 0.1479 * J_PER_MEV / 0.1)


def test_self_dose_y90_constant_and_agreement_with_led():
    lam_per_h = math.log(2) / half_life_h("Y-90")
    tia_mbq_h = 1000.0 / lam_per_h  # 1 GBq decaying fully
    d = self_dose_gy(tia_mbq_h, 1000.0, "Y-90")
    assert d == pytest.approx(49.7, abs=0.1)
    led = local_deposition_dose(
        np.full((1, 1, 1), tia_mbq_h * 3.6e9), (100.0, 100.0, 100.0), 0.933106270480592
    )
    assert float(led[0, 0, 0]) == pytest.approx(d, rel=1e-5)
    assert d == self_dose_gy(tia_mbq_h, 1000.0, energy_per_decay("Y-90"))


def test_alphas_and_recoils_use_the_electron_fraction():
    e = EnergyPerDecay(electron_mev=0.2, photon_mev=0.5, alpha_mev=5.0, alpha_recoil_mev=0.1)
    d = self_dose_gy(2.0, 10.0, e, photon_absorbed_fraction=0.2, electron_absorbed_fraction=0.5)
    absorbed = 0.5 * (0.2 + 5.0 + 0.1) + 0.2 * 0.5
    assert d == pytest.approx(2.0 * 3.6e9 * absorbed * J_PER_MEV / 0.01)


def test_self_dose_validation():
    with pytest.raises(InvalidInputError):
        self_dose_gy(1.0, 0.0, LU177)
    with pytest.raises(InvalidInputError):
        self_dose_gy(-1.0, 1.0, LU177)
    with pytest.raises(InvalidInputError):
        self_dose_gy(1.0, 1.0, LU177, photon_absorbed_fraction=1.2)
    with pytest.raises(InvalidInputError):
        self_dose_gy(1.0, 1.0, "Xx-999")


def test_mass_scaling():
    s = 1.0e-14
    assert mass_scaled_s_value(s, 300.0, 150.0) == pytest.approx(2.0e-14)
    assert mass_scaled_s_value(s, 300.0, 150.0, kind="photon") == pytest.approx(s * 2 ** (2 / 3))
    assert mass_scaled_s_value(s, 1000.0, 8000.0, kind="photon") == pytest.approx(s / 4)
    # a self S-value with absorbed fraction 1 is E/m: scaling by 1/m is exact
    s_ref = self_dose_gy(1.0 / 3.6e9, 300.0, LU177)  # Gy per decay
    s_pat = self_dose_gy(1.0 / 3.6e9, 210.0, LU177)
    assert mass_scaled_s_value(s_ref, 300.0, 210.0) == pytest.approx(s_pat)
    with pytest.raises(InvalidInputError):
        mass_scaled_s_value(s, 300.0, 150.0, kind="beta")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        mass_scaled_s_value(s, 300.0, 0.0)


def test_sphere_radius():
    assert sphere_radius_mm(4.0 * math.pi / 3.0) == pytest.approx(10.0)
    assert sphere_radius_mm(1000.0 * 4.0 * math.pi / 3.0) == pytest.approx(100.0)


def test_sphere_model_with_analytic_absorbed_fractions():
    volume_ml = 4.0 * math.pi / 3.0 * 8.0  # radius 20 mm, 33.51 g
    seen: list[float] = []

    def electron_af(r_mm: float) -> float:
        seen.append(r_mm)
        return 1.0 - 0.3 / r_mm  # stand-in: 0.985 at 20 mm

    def photon_af(r_mm: float) -> float:
        return 1.0 - math.exp(-0.01 * r_mm)  # stand-in: 0.1813 at 20 mm

    res = sphere_model_dose(500.0, volume_ml, LU177, electron_af=electron_af, photon_af=photon_af)
    assert seen[0] == pytest.approx(20.0)
    assert res.mass_g == pytest.approx(volume_ml)
    phi_e, phi_ph = 0.985, 1.0 - math.exp(-0.2)
    decays = 500.0 * 3.6e9
    assert res.non_penetrating_dose_gy == pytest.approx(
        decays * 0.1479 * phi_e * J_PER_MEV / (volume_ml * 1e-3)
    )
    assert res.photon_dose_gy == pytest.approx(
        decays * 0.0351 * phi_ph * J_PER_MEV / (volume_ml * 1e-3)
    )
    d = sphere_model_dose_gy(500.0, volume_ml, LU177, electron_af=electron_af, photon_af=photon_af)
    assert d == pytest.approx(res.dose_gy)
    assert d == pytest.approx(
        self_dose_gy(
            500.0,
            volume_ml,
            LU177,
            photon_absorbed_fraction=phi_ph,
            electron_absorbed_fraction=phi_e,
        )
    )
    # denser sphere: same radius, more mass, less dose
    dense = sphere_model_dose_gy(
        500.0, volume_ml, LU177, electron_af=electron_af, photon_af=photon_af, density_g_cm3=2.0
    )
    assert dense == pytest.approx(d / 2)
    with pytest.raises(InvalidInputError, match="absorbed fraction"):
        sphere_model_dose_gy(1.0, 1.0, LU177, electron_af=lambda r: 1.5, photon_af=lambda r: 0.0)


def test_remainder_tia():
    assert remainder_tia(1000.0, {"liver": 200.0, "kidneys": 300.0}) == pytest.approx(500.0)
    assert remainder_tia(500.0, {"liver": 200.0, "kidneys": 300.0}) == 0.0
    with pytest.raises(InvalidInputError, match="more than the whole body"):
        remainder_tia(400.0, {"liver": 200.0, "kidneys": 300.0})


def test_remainder_s_value_hand_computed():
    """m_TB 70 kg; liver 1800 g, kidneys 300 g -> m_RB 67 900 g.

    S(T<-RB) = (1e-15 * 70000 - 2e-15 * 1800 - 5e-15 * 300) / 67900
             = (7.0e-11 - 3.6e-12 - 1.5e-12) / 67900 = 6.49e-11 / 67900 = 9.55817e-16.
    """
    s = remainder_s_value(1e-15, 70000.0, {"liver": 2e-15, "kidneys": 5e-15},
                          {"liver": 1800.0, "kidneys": 300.0})  # fmt: skip
    assert s == pytest.approx(9.55817e-16, rel=1e-5)


def test_remainder_reproduces_uniform_total_body_activity():
    """Activity uniform by mass: sources + remainder must give the total-body dose."""
    rng = np.random.default_rng(0)
    m_tb = 73000.0
    masses = {"liver": 1800.0, "spleen": 150.0, "kidneys": 310.0}
    s_sources = {k: float(v) for k, v in zip(masses, rng.uniform(1e-16, 1e-14, 3), strict=True)}
    s_tb = 3e-16
    tia_tb = 5000.0
    tia_src = {k: tia_tb * m / m_tb for k, m in masses.items()}
    tia_rb = remainder_tia(tia_tb, tia_src)
    s_rb = remainder_s_value(s_tb, m_tb, s_sources, masses)
    dose = mird_dose_gy({**tia_src, "remainder": tia_rb}, {**s_sources, "remainder": s_rb})
    assert dose == pytest.approx(mird_dose_gy({"tb": tia_tb}, {"tb": s_tb}), rel=1e-12)


def test_remainder_validation():
    with pytest.raises(InvalidInputError):
        remainder_s_value(1e-15, 1000.0, {"a": 1e-15}, {"a": 1000.0})
    with pytest.raises(InvalidInputError):
        remainder_s_value(1e-15, 1000.0, {"a": 1e-15}, {"b": 10.0})


def test_mird_dose_and_total_body():
    d = mird_dose_gy({"liver": 100.0, "rest": 50.0}, {"liver": 2e-15, "rest": 1e-16})
    assert d == pytest.approx(3.6e9 * (100.0 * 2e-15 + 50.0 * 1e-16))
    with pytest.raises(InvalidInputError, match="no S-value"):
        mird_dose_gy({"liver": 1.0}, {"kidney": 1e-15})
    tb = total_body_dose_gy(10000.0, 70000.0, LU177, photon_absorbed_fraction=0.4)
    assert tb == pytest.approx(3.6e13 * (0.1479 + 0.4 * 0.0351) * J_PER_MEV / 70.0)
