"""I-131 benign thyroid: uptake fit, Marinelli constant from ICRP-107, prescription, refusals.

Known answers
-------------
* K (electrons only) = ln2 * 100 * 1e-3 / (86400 * 1e6 * 0.19184787 MeV * 1.602176634e-13 J/MeV)
  = 0.0693147 / 2.655712e-3 = 26.100 MBq d/(Gy g), hand-worked from the ICRP-107 mean
  electron energy of I-131 (0.1918 MeV, PHYSICS.md section 4).
* K for a 20-30 g gland within 5 % of 24.7 MBq d/(Gy g), the value quoted with the EANM SOP
  (Hänscheid et al., Eur J Nucl Med Mol Imaging 2013;40:1126; PHYSICS.md section 5).
* D = 150 Gy, m = 25 g, U_max = 40 %, T_eff = 5 d, K = 24.7: A = 24.7 * 150 * 25 / (40 * 5)
  = 463.125 MBq.
* The dose of the full uptake-washout curve equals the MIRD dose with the time integral done
  by independent numerical quadrature.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate

from dosimetry_core.dose.sphere_model import SphereAbsorbedFractions, sphere_absorbed_fractions
from dosimetry_core.errors import InvalidInputError
from dosimetry_core.protocols import thyroid as th

LN2 = math.log(2.0)
E_ELECTRON_I131_MEV = 0.19184787  # ICRP-107 mean electron energy per decay of I-131
E_PHOTON_I131_MEV = 0.38275765  # ICRP-107 mean photon energy per decay of I-131
J_PER_MEV = 1.602176634e-13  # CODATA 2018 (exact, SI 2019)


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> SphereAbsorbedFractions:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MRTDOSE_KERNEL_CACHE", str(tmp_path_factory.mktemp("kernels")))
        return sphere_absorbed_fractions(
            "I-131", electron_histories=2000, photon_histories=100_000, use_cache=False
        )


def _curve(t_h: np.ndarray, u_max: float = 40.0, t_eff_d: float = 5.0, t_up_h: float = 6.0):
    lam_e, lam_u = LN2 / (t_eff_d * 24.0), LN2 / t_up_h
    return u_max * (np.exp(-lam_e * t_h) - np.exp(-lam_u * t_h))


# ------------------------------------------------------------------ Marinelli K
def test_k_electrons_only_hand_worked() -> None:
    e = th.absorbed_energy_per_decay("I-131")
    assert e.electron_mev == pytest.approx(E_ELECTRON_I131_MEV, rel=1e-6)
    assert e.photon_absorbed_fraction == 0.0
    k_hand = LN2 * 100 * 1e-3 / (86400 * 1e6 * E_ELECTRON_I131_MEV * J_PER_MEV)
    assert k_hand == pytest.approx(26.100, abs=0.001)
    assert th.marinelli_constant("I-131") == pytest.approx(k_hand, rel=1e-6)


@pytest.mark.parametrize("mass_g", [20.0, 25.0, 30.0])
def test_k_typical_gland_close_to_sop_value(table: SphereAbsorbedFractions, mass_g: float) -> None:
    e = th.absorbed_energy_per_decay("I-131", mass_g, absorbed_fractions=table)
    # a 20-30 g unit-density sphere absorbs a few percent of the I-131 photon energy
    assert 0.03 < e.photon_absorbed_fraction < 0.06
    k = th.marinelli_constant("I-131", mass_g, absorbed_fractions=table)
    k_hand = (
        LN2
        * 0.1
        / (
            86400e6
            * (E_ELECTRON_I131_MEV + E_PHOTON_I131_MEV * e.photon_absorbed_fraction)
            * J_PER_MEV
        )
    )
    assert k == pytest.approx(k_hand, rel=1e-6)
    assert abs(k / 24.7 - 1.0) < 0.05
    assert k < th.marinelli_constant("I-131")  # photons add energy: K falls


# ------------------------------------------------------------------ prescription
def test_activity_hand_worked_with_sop_k() -> None:
    a = th.thyroid_activity_mbq(150.0, 25.0, 40.0, 5.0, k=24.7)
    assert a == pytest.approx(463.125, rel=1e-12)
    assert th.thyroid_dose_gy(463.125, 25.0, 40.0, 5.0, k=24.7) == pytest.approx(150.0)


def test_activity_with_derived_k(table: SphereAbsorbedFractions) -> None:
    k = th.marinelli_constant("I-131", 25.0, absorbed_fractions=table)
    a = th.thyroid_activity_mbq(150.0, 25.0, 40.0, 5.0, absorbed_fractions=table)
    assert a == pytest.approx(k * 150.0 * 25.0 / (40.0 * 5.0), rel=1e-12)


def test_full_integral_dose_matches_numeric_mird(table: SphereAbsorbedFractions) -> None:
    """MIRD dose with the uptake phase, time integral by quadrature (independent)."""
    a0_mbq, m_g = 500.0, 25.0
    e = th.absorbed_energy_per_decay("I-131", m_g, absorbed_fractions=table)
    integral_h, _ = integrate.quad(lambda t: float(_curve(np.array(t))) / 100.0, 0, np.inf)
    dose_hand = a0_mbq * 1e6 * integral_h * 3600.0 * e.absorbed_mev * J_PER_MEV / (m_g * 1e-3)
    d = th.thyroid_dose_gy(
        a0_mbq, m_g, 40.0, 5.0, t_uptake_h=6.0, tia_method="fit", absorbed_fractions=table
    )
    assert d == pytest.approx(dose_hand, rel=1e-6)
    # SOP integral U_max T_eff/ln2 ignores the uptake phase: larger by 1/(1 - l_eff/l_up)
    d_sop = th.thyroid_dose_gy(a0_mbq, m_g, 40.0, 5.0, absorbed_fractions=table)
    assert d_sop / d == pytest.approx(1.0 / (1.0 - 6.0 / 120.0), rel=1e-9)


# ------------------------------------------------------------------ uptake fit
def test_fit_recovers_noise_free_uptake() -> None:
    t = np.array([4.0, 24.0, 48.0, 96.0, 120.0])
    f = th.fit_uptake(t, _curve(t))
    assert f.model == "biexp-uptake"
    assert f.u_max_percent == pytest.approx(40.0, rel=1e-3)
    assert f.t_eff_d == pytest.approx(5.0, rel=1e-3)
    assert f.t_uptake_h == pytest.approx(6.0, rel=1e-3)
    lam_e, lam_u = LN2 / 120.0, LN2 / 6.0
    assert f.tia_coefficient_h == pytest.approx(0.4 * (1 / lam_e - 1 / lam_u), rel=1e-3)
    assert f.tia_coefficient_sop_h == pytest.approx(0.4 / lam_e, rel=1e-3)
    # peak of the curve: t = ln(l_up/l_eff)/(l_up - l_eff)
    t_pk = math.log(lam_u / lam_e) / (lam_u - lam_e)
    assert f.t_peak_h == pytest.approx(t_pk, rel=1e-3)
    assert f.uptake_percent_at([48.0])[0] == pytest.approx(float(_curve(np.array(48.0))), 1e-3)


def test_two_readings_mono_exponential_exact() -> None:
    lam = LN2 / 120.0
    u = [40.0 * math.exp(-lam * 24.0), 40.0 * math.exp(-lam * 96.0)]
    f = th.fit_uptake([24.0, 96.0], u)
    assert f.model == "mono" and f.t_uptake_h is None
    assert f.u_max_percent == pytest.approx(40.0, rel=1e-9)
    assert f.t_eff_d == pytest.approx(5.0, rel=1e-9)


def test_one_reading_needs_assumed_teff() -> None:
    with pytest.raises(InvalidInputError, match="assumed_t_eff_d"):
        th.fit_uptake([24.0], [35.0])
    f = th.fit_uptake([24.0], [35.0], assumed_t_eff_d=5.0)
    assert f.u_max_percent == pytest.approx(35.0 * 2.0 ** (24.0 / 120.0), rel=1e-12)


def test_prescribe_uses_fit_and_reports_both() -> None:
    t = np.array([4.0, 24.0, 48.0, 96.0])
    fixed_af = SphereAbsorbedFractions(
        "I-131",
        "soft-tissue",
        1.0,
        np.array([1.0, 100.0]),
        np.ones(2),
        np.full(2, 0.045),
        E_ELECTRON_I131_MEV,
        E_PHOTON_I131_MEV,
    )
    p = th.prescribe(150.0, 25.0, t, _curve(t), absorbed_fractions=fixed_af)
    k = LN2 * 0.1 / (86400e6 * (E_ELECTRON_I131_MEV + E_PHOTON_I131_MEV * 0.045) * J_PER_MEV)
    assert p.marinelli_k == pytest.approx(k, rel=1e-6)
    assert p.activity_sop_mbq == pytest.approx(k * 150 * 25 / (40 * 5), rel=2e-3)
    assert p.activity_mbq / p.activity_sop_mbq == pytest.approx(1 / (1 - 6 / 120), rel=2e-3)


# ------------------------------------------------------------------ refusals
@pytest.mark.parametrize(
    ("times", "uptakes", "match"),
    [
        ([4.0, 24.0, 48.0], [20.0, 101.0, 30.0], "above 100"),
        ([4.0, 24.0, 48.0], [20.0, -1.0, 30.0], "negative"),
        ([4.0, 48.0, 24.0], [20.0, 30.0, 25.0], "strictly increasing"),
        ([4.0, 4.0, 24.0], [20.0, 30.0, 25.0], "strictly increasing"),
        ([4.0, 24.0], [20.0, 30.0], "still rising"),
        ([4.0, 24.0], [20.0], "uptake value"),
    ],
)
def test_fit_refusals(times: list[float], uptakes: list[float], match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        th.fit_uptake(times, uptakes)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((150.0, 0.0, 40.0, 5.0), "mass"),
        ((150.0, -25.0, 40.0, 5.0), "mass"),
        ((0.0, 25.0, 40.0, 5.0), "target"),
        ((150.0, 25.0, 120.0, 5.0), "above 100"),
        ((150.0, 25.0, -5.0, 5.0), "negative"),
        ((150.0, 25.0, 40.0, 9.0), "physical half-life"),
    ],
)
def test_prescription_refusals(args: tuple[float, float, float, float], match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        th.thyroid_activity_mbq(*args, k=24.7)
