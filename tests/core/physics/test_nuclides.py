"""Nuclear data against ICRP Publication 107 values quoted in PHYSICS.md section 4."""

from datetime import datetime

import numpy as np
import pytest

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.model import Administration
from dosimetry_core.physics import decay, nuclides


@pytest.mark.parametrize(
    ("nuclide", "electron", "photon"),
    [("Lu-177", 0.1479, 0.0351), ("Y-90", 0.9331, 0.0), ("I-131", 0.1918, 0.3828)],
)
def test_mean_energy_per_decay_matches_icrp107(nuclide, electron, photon):
    e = nuclides.energy_per_decay(nuclide)
    assert e.electron_mev == pytest.approx(electron, abs=5e-5)
    assert e.photon_mev == pytest.approx(photon, abs=5e-5)
    assert e.alpha_mev == 0.0


def test_alpha_emitter_has_alpha_energy():
    e = nuclides.energy_per_decay("Ac-225")
    assert e.alpha_mev == pytest.approx(5.787, abs=0.01)  # ICRP-107 Ac-225 alphas
    assert e.non_penetrating_mev > e.alpha_mev


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("Lu-177", "Lu-177"),
        ("lu177", "Lu-177"),
        ("177Lu", "Lu-177"),
        ("^177^Lutetium", "Lu-177"),
        ("Tc99m", "Tc-99m"),
        ("99mTc", "Tc-99m"),
        ("Iodine-131", "I-131"),
        ("Y90", "Y-90"),
    ],
)
def test_nuclide_names_are_normalised(text, canonical):
    assert nuclides.normalize_nuclide(text) == canonical


@pytest.mark.parametrize("bad", ["Lu-999", "banana", "", "Xx-12"])
def test_unknown_nuclide_is_refused_clearly(bad):
    with pytest.raises(InvalidInputError):
        nuclides.normalize_nuclide(bad)


def test_half_lives_and_decay():
    assert nuclides.half_life_h("Lu-177") == pytest.approx(6.647 * 24, rel=1e-3)
    assert nuclides.half_life_h("Y-90") == pytest.approx(64.05, rel=2e-3)
    assert decay.decay_factor("Lu-177", nuclides.half_life_h("Lu-177")) == pytest.approx(0.5)
    t0, t1 = datetime(2026, 1, 1, 8), datetime(2026, 1, 7, 23, 32, 0)
    a = decay.decay_activity_mbq(1000.0, "Lu-177", t0, t1)
    assert decay.decay_activity_mbq(a, "Lu-177", t1, t0) == pytest.approx(1000.0)


def test_beta_spectrum_is_normalised_and_gives_mean_energy():
    e, p = nuclides.beta_spectrum("Y-90")
    assert np.trapezoid(p, e) == pytest.approx(1.0, abs=2e-3)
    assert np.trapezoid(p * e, e) == pytest.approx(0.9331, rel=3e-3)  # Y-90: 100 % beta


def test_net_administered_activity_subtracts_decayed_residual():
    t = datetime(2026, 3, 2, 9, 30)
    hl = nuclides.half_life_h("Lu-177")
    adm = Administration(
        "Lu-177",
        7400.0,
        t,
        residual_activity_mbq=50.0,
        residual_time=datetime(2026, 3, 2, 9, 30)
        + (datetime(2026, 3, 3) - datetime(2026, 3, 2)) * (hl / 24),
    )
    assert decay.net_administered_activity_mbq(adm) == pytest.approx(7300.0)


def test_progeny_of_ac225_chain():
    kids = nuclides.progeny("Ac-225")
    assert [k.nuclide for k in kids] == ["Fr-221"]
    assert kids[0].branching_fraction == pytest.approx(1.0)


def test_decay_chains_of_alpha_emitters_and_excluded_long_lived_daughters():
    from dosimetry_core.physics.nuclides import (
        chain_energy_per_decay,
        chain_photon_lines,
        decay_chain,
        energy_per_decay,
        excluded_progeny,
    )

    pb = {m.nuclide: m.decays_per_parent_decay for m in decay_chain("Pb-212")}
    # Bi-212 branches to Po-212 (64.06 %) and Tl-208 (35.94 %) (ICRP-107)
    assert pb == pytest.approx({"Pb-212": 1, "Bi-212": 1, "Po-212": 0.6406, "Tl-208": 0.3594})
    ac = decay_chain("Ac-225")
    assert [m.nuclide for m in ac[:3]] == ["Ac-225", "Fr-221", "At-217"]
    # chain energy = sum of members weighted by decays per parent decay
    e = chain_energy_per_decay("Ac-225")
    expect = sum(m.decays_per_parent_decay * energy_per_decay(m.nuclide).alpha_mev for m in ac)
    assert e.alpha_mev == pytest.approx(expect, rel=1e-12)
    assert 27.0 < e.alpha_mev < 28.0  # four alphas of 5.8-8.4 MeV
    assert chain_energy_per_decay("Ac-225", include_progeny=False).alpha_mev == pytest.approx(
        energy_per_decay("Ac-225").alpha_mev
    )
    # I-131: Xe-131m (11.9 d) outlives the parent and is left out, with a note
    assert [m.nuclide for m in decay_chain("I-131")] == ["I-131"]
    assert excluded_progeny("I-131") == ["Xe-131m"]
    en, y = chain_photon_lines("Pb-212")
    # Tl-208 2.614 MeV gamma, 99.8 % per Tl-208 decay, 35.9 % per Pb-212 decay
    i = int(np.argmin(np.abs(en - 2.6145)))
    assert y[i] == pytest.approx(0.3594 * 0.998, rel=0.01)
