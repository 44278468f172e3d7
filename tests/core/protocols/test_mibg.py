"""I-131 mIBG whole-body dosimetry: S-value, dose from dose-rate readings, prescriptions.

Known answers
-------------
* S(WB <- WB) = (E_e + E_ph phi) * 1.602176634e-13 J/MeV * 3.6e9 Bq s/(MBq h) / m_kg with the
  ICRP-107 I-131 energies (0.19184787 MeV electrons, 0.38275765 MeV photons) and phi = 0.5:
  70 kg -> 3.157698e-6 Gy/(MBq h), hand-worked.
* Mono-exponential retention (T_eff 30 h, first reading at t = 0 = 100 %): TIA = A T_eff / ln2
  = 3700 * 30 / ln2 = 160 139.15 MBq h (analytic).
* Linear scaling (Buckley et al., J Nucl Med 2009;50:1518): A2 = (4 - 1.5) / 1.5 * 5000
  = 8333.33 MBq; 2 Gy in 2 administrations at 0.5 mGy/MBq: 2000 MBq each.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from dosimetry_core.dose.sphere_model import SphereAbsorbedFractions, sphere_absorbed_fractions
from dosimetry_core.errors import InvalidInputError
from dosimetry_core.protocols import mibg

E_E, E_PH = 0.19184787, 0.38275765  # ICRP-107 I-131 mean energies per decay (MeV)
J_PER_MEV = 1.602176634e-13


def _fixed_af(photon_af: float) -> SphereAbsorbedFractions:
    r = np.array([1.0, 1000.0])
    return SphereAbsorbedFractions(
        "I-131", "soft-tissue", 1.0, r, np.ones(2), np.full(2, photon_af), E_E, E_PH
    )


def test_whole_body_s_value_hand_worked() -> None:
    s = mibg.whole_body_s_value_gy_per_mbq_h(70.0, "I-131", absorbed_fractions=_fixed_af(0.5))
    hand = (0.19184787 + 0.38275765 * 0.5) * 1.602176634e-13 * 3.6e9 / 70.0
    assert hand == pytest.approx(3.157698e-6, rel=1e-6)
    assert s == pytest.approx(hand, rel=1e-6)


def test_body_sphere_photon_fraction_grows_with_mass(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MRTDOSE_KERNEL_CACHE", str(tmp_path))
    table = sphere_absorbed_fractions(
        "I-131",
        radii_mm=mibg.WHOLE_BODY_RADII_MM,
        electron_histories=1000,
        photon_histories=20_000,
        use_cache=False,
    )
    phis = [
        mibg.whole_body_photon_absorbed_fraction(m, absorbed_fractions=table)
        for m in (20.0, 70.0, 120.0)
    ]
    assert phis[0] < phis[1] < phis[2] < 1.0
    # a 70 kg sphere absorbs roughly half of the I-131 photon energy (not a published value)
    assert 0.35 < phis[1] < 0.65
    with pytest.raises(InvalidInputError, match="beyond the sphere table"):
        mibg.whole_body_photon_absorbed_fraction(1000.0, absorbed_fractions=table)


def test_whole_body_dose_mono_exponential_analytic() -> None:
    lam = math.log(2.0) / 30.0
    t = np.array([0.0, 4.0, 24.0, 48.0, 72.0, 96.0])
    r = mibg.mibg_whole_body_dose(
        t,
        12.0 * np.exp(-lam * t),
        administered_activity_mbq=3700.0,
        body_mass_kg=70.0,
        absorbed_fractions=_fixed_af(0.5),
    )
    assert r.tia_mbq_h == pytest.approx(160_139.15, rel=1e-6)
    assert r.dose_gy == pytest.approx(160_139.15 * 3.157698e-6, rel=1e-5)
    assert r.dose_per_activity_gy_per_mbq == pytest.approx(r.dose_gy / 3700.0)
    d = r.to_dict()
    assert d["whole_body_dose_gy"] == pytest.approx(r.dose_gy)


def test_first_reading_is_100_percent_after_decay() -> None:
    """First reading at 2 h: A(2 h) = A_adm exp(-lambda_phys 2 h), not A_adm."""
    lam_phys = math.log(2.0) / 192.4968
    lam = math.log(2.0) / 30.0
    t = np.array([2.0, 6.0, 24.0, 48.0, 96.0])
    r = mibg.mibg_whole_body_dose(
        t,
        np.exp(-lam * t),
        administered_activity_mbq=1000.0,
        body_mass_kg=70.0,
        absorbed_fractions=_fixed_af(0.5),
    )
    assert r.series.values[0] == pytest.approx(1000.0 * math.exp(-lam_phys * 2.0), rel=1e-9)
    a0 = 1000.0 * math.exp(-lam_phys * 2.0) * math.exp(lam * 2.0)
    assert r.tia_mbq_h == pytest.approx(a0 / lam, rel=1e-5)


def test_activity_for_target_and_second_administration() -> None:
    assert mibg.mibg_activity_for_target(2.0, 0.5e-3, n_administrations=2) == pytest.approx(2000.0)
    plan = mibg.plan_second_administration(5000.0, 1.5, 4.0)
    assert plan.activity_mbq == pytest.approx(8333.333333, rel=1e-9)
    assert plan.remaining_gy == pytest.approx(2.5)
    with pytest.raises(InvalidInputError, match="already gave"):
        mibg.plan_second_administration(5000.0, 4.5, 4.0)
    with pytest.raises(InvalidInputError, match="positive"):
        mibg.mibg_activity_for_target(-2.0, 0.5e-3)
    with pytest.raises(InvalidInputError, match="positive integer"):
        mibg.mibg_activity_for_target(2.0, 0.5e-3, n_administrations=0)


def test_whole_body_refusals() -> None:
    with pytest.raises(InvalidInputError, match="body mass"):
        mibg.mibg_whole_body_dose(
            [0.0, 24.0, 48.0],
            [10.0, 5.0, 2.0],
            administered_activity_mbq=1000.0,
            body_mass_kg=-70.0,
            absorbed_fractions=_fixed_af(0.5),
        )
    with pytest.raises(InvalidInputError, match="above background"):
        mibg.mibg_whole_body_dose(
            [0.0, 24.0, 48.0],
            [10.0, 5.0, 2.0],
            administered_activity_mbq=1000.0,
            body_mass_kg=70.0,
            background=3.0,
            absorbed_fractions=_fixed_af(0.5),
        )
