"""Electron stopping powers, CSDA ranges and the condensed-history Monte Carlo.

Reference numbers: NIST ESTAR (M. J. Berger, J. S. Coursey, M. A. Zucker, J. Chang,
"ESTAR, PSTAR, and ASTAR: Computer Programs for Calculating Stopping-Power and Range
Tables for Electrons, Protons, and Helium Ions", NIST), material "Water, Liquid"
(I = 75.0 eV, ICRU Report 37).  The values below were read from a verbatim ESTAR table
for liquid water re-shared in a public repository (found with the code-search tool,
index file id 68334028990; the NIST web site itself was not reachable offline).
"""

from __future__ import annotations

import numpy as np
import pytest

from dosimetry_core.dose import electron_transport as et
from dosimetry_core.errors import InvalidInputError
from dosimetry_core.physics import nuclides

# ESTAR, Water, Liquid: kinetic energy MeV -> (collision, radiative) MeV cm2/g, CSDA g/cm2
ESTAR_WATER = {
    0.01: (22.56, 3.898e-3, 2.515e-4),
    0.05: (6.603, 4.031e-3, 4.320e-3),
    0.1: (4.115, 4.228e-3, 1.431e-2),
    0.5: (2.034, 7.257e-3, 0.1766),
    1.0: (1.849, 1.280e-2, 0.4367),
    2.0: (1.824, 2.678e-2, 0.9785),
    5.0: (1.892, 7.917e-2, 2.550),
}
ESTAR_WATER_RADIATION_YIELD_1MEV = 3.579e-3


@pytest.mark.parametrize("energy", sorted(ESTAR_WATER))
def test_collision_stopping_power_matches_estar_water(energy):
    s = et.collision_stopping_power_mev_cm2_g(energy, "water")
    assert float(s) == pytest.approx(ESTAR_WATER[energy][0], rel=0.02)


def test_collision_stopping_power_at_1_mev_is_1849():
    assert float(et.collision_stopping_power_mev_cm2_g(1.0, "water")) == pytest.approx(
        1.849, rel=0.005
    )


@pytest.mark.parametrize("energy", [0.1, 0.5, 1.0, 2.0])
def test_csda_range_matches_estar_water(energy):
    r = et.csda_range_g_cm2(energy, "water")
    assert float(r) == pytest.approx(ESTAR_WATER[energy][2], rel=0.02)


def test_radiative_stopping_power_is_an_approximation_within_20_percent():
    e = np.array(sorted(ESTAR_WATER))
    ref = np.array([ESTAR_WATER[k][1] for k in e])
    s = et.radiative_stopping_power_mev_cm2_g(e, "water")
    assert np.all(np.abs(s / ref - 1) < 0.20)


def test_media_order_of_stopping_powers():
    # bone has lower Z/A and higher I than soft tissue -> lower mass collision stopping power
    e = np.array([0.1, 1.0])
    bone = et.collision_stopping_power_mev_cm2_g(e, "bone")
    tissue = et.collision_stopping_power_mev_cm2_g(e, "soft-tissue")
    water = et.collision_stopping_power_mev_cm2_g(e, "water")
    assert np.all(bone < tissue) and np.all(bone < water)
    # ranges increase monotonically with energy
    r = et.csda_range_g_cm2(np.geomspace(0.001, 10, 50), "lung")
    assert np.all(np.diff(r) > 0)


def test_invalid_inputs_raise():
    with pytest.raises(InvalidInputError):
        et.collision_stopping_power_mev_cm2_g(0.0, "water")
    with pytest.raises(InvalidInputError):
        et.csda_range_g_cm2(1.0, "unobtainium")
    with pytest.raises(InvalidInputError):
        et.monoenergetic_electron_point_kernel(1.0, "water", density_g_cm3=-1.0)
    with pytest.raises(InvalidInputError):
        et.monoenergetic_electron_point_kernel(1.0, "water", histories=0)
    with pytest.raises(InvalidInputError):
        et.electron_point_kernel("Xx-999")


@pytest.fixture(scope="module")
def kernel_1mev_water():
    return et.monoenergetic_electron_point_kernel(1.0, "water", histories=40_000, seed=3)


def test_energy_conservation_and_radiative_yield(kernel_1mev_water):
    pk = kernel_1mev_water
    assert pk.fraction.sum() + pk.escaped_fraction == pytest.approx(1.0, abs=1e-12)
    assert np.all(pk.fraction >= 0)
    # shells reach 1.1 r0; straggling lets only a tiny fraction go beyond
    r0_mm = float(et.csda_range_g_cm2(1.0, "water")) * 10.0
    assert pk.r_edges_mm[-1] == pytest.approx(1.1 * r0_mm, rel=1e-9)
    tail = pk.fraction[pk.r_edges_mm[:-1] >= r0_mm].sum()
    assert tail < 0.005
    # escaped energy is the radiated fraction: close to ESTAR's radiation yield
    assert pk.escaped_fraction == pytest.approx(ESTAR_WATER_RADIATION_YIELD_1MEV, rel=0.2)


def test_r90_of_1_mev_electron_in_water(kernel_1mev_water):
    """Radius holding 90 % of the absorbed energy, relative to the CSDA range r0.

    No published X90 value for 1 MeV electrons in water could be found with the
    search tools (Berger 1971, MIRD Pamphlet 7, was not reachable), so this test
    checks physical bounds only: multiple scattering folds the track so that
    r90 is clearly below r0, and the path is not diffusive enough to halve it.
    Measured: r90/r0 = 0.78 (see the task report).
    """
    pk = kernel_1mev_water
    r0_mm = float(et.csda_range_g_cm2(1.0, "water")) * 10.0
    cum = np.cumsum(pk.fraction) / pk.fraction.sum()
    r90 = np.interp(0.9, cum, pk.r_edges_mm[1:])
    r50 = np.interp(0.5, cum, pk.r_edges_mm[1:])
    assert 0.65 < r90 / r0_mm < 0.95
    assert 0.35 < r50 / r0_mm < r90 / r0_mm


def test_same_seed_same_kernel_and_density_scaling():
    a = et.monoenergetic_electron_point_kernel(0.3, "water", histories=5000, seed=11)
    b = et.monoenergetic_electron_point_kernel(0.3, "water", histories=5000, seed=11)
    c = et.monoenergetic_electron_point_kernel(
        0.3, "water", histories=5000, seed=11, density_g_cm3=2.0
    )
    d = et.monoenergetic_electron_point_kernel(0.3, "water", histories=5000, seed=12)
    np.testing.assert_array_equal(a.fraction, b.fraction)
    np.testing.assert_array_equal(a.fraction, c.fraction)
    np.testing.assert_allclose(c.r_edges_mm, a.r_edges_mm / 2.0)
    assert not np.array_equal(a.fraction, d.fraction)
    # two seeds agree statistically in the energy within half the range
    half = a.r_edges_mm[1:] <= a.r_edges_mm[-1] / 2
    assert a.fraction[half].sum() == pytest.approx(d.fraction[half].sum(), rel=0.03)


def test_progress_and_cancel():
    from dosimetry_core.errors import Cancelled

    seen = []
    et.monoenergetic_electron_point_kernel(
        0.2, "water", histories=40_000, progress=lambda f, m: seen.append(f)
    )
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)
    with pytest.raises(Cancelled):
        et.monoenergetic_electron_point_kernel(0.2, "water", histories=1000, cancel=lambda: True)


def test_lu177_electron_kernel_energy_and_range():
    pk = et.electron_point_kernel("Lu-177", "soft-tissue", histories=20_000, seed=1)
    assert pk.energy_mev == pytest.approx(nuclides.energy_per_decay("Lu-177").electron_mev)
    assert pk.energy_mev == pytest.approx(0.1479, abs=1e-4)
    assert pk.density_g_cm3 == pytest.approx(1.04)
    assert pk.component == "electron"
    assert pk.fraction.sum() + pk.escaped_fraction == pytest.approx(1.0, abs=1e-12)
    # outer edge: 1.02 x CSDA range of the 0.498 MeV beta end point in soft tissue
    e_max = nuclides.beta_spectrum("Lu-177")[0].max()
    r0 = float(et.csda_range_g_cm2(e_max, "soft-tissue")) * 10 / 1.04
    assert pk.r_edges_mm[-1] == pytest.approx(1.1 * r0, rel=0.02)
    # mean beta energy 0.133 MeV: half of the energy within ~0.25 mm
    cum = np.cumsum(pk.fraction) / pk.fraction.sum()
    assert 0.1 < np.interp(0.5, cum, pk.r_edges_mm[1:]) < 0.4


def test_nuclide_without_electrons_gives_empty_kernel(monkeypatch):
    monkeypatch.setattr(et, "_nuclide_source", lambda name, kinds=None: None)
    pk = et.electron_point_kernel("Lu-177", histories=10)
    assert pk.energy_mev == 0.0
    assert pk.fraction.sum() == 0.0


def test_restricted_stopping_power_plus_moller_losses_is_bethe():
    """Soft (restricted) + hard (Moller, W > 10 keV) collision losses = unrestricted Bethe."""
    from scipy.integrate import quad

    m = et._medium("water")
    w_cut = et.W_CUT_MEV
    for e in (0.05, 0.3, 1.0, 3.0):
        tau = e / et.ELECTRON_MASS_MEV
        b2 = tau * (tau + 2) / (tau + 1) ** 2
        c1, c2 = (tau / (tau + 1)) ** 2, (2 * tau + 1) / (tau + 1) ** 2

        def moller(eps, e=e, b2=b2, c1=c1, c2=c2):
            bracket = 1 / eps**2 + 1 / (1 - eps) ** 2 + c1 - c2 / (eps * (1 - eps))
            return et._K_BETHE * m.z_over_a / (b2 * e) * bracket

        hard_loss = quad(lambda x, f=moller, e=e: x * e * f(x), w_cut / e, 0.5)[0]
        soft = et._s_col_restricted(m, np.array([e]), w_cut)[0]
        full = et._s_col(m, np.array([e]))[0]
        assert soft + hard_loss == pytest.approx(full, rel=1e-9)
        sigma = et._moller_sigma_cm2_g(m, np.array([e]), w_cut)[0]
        assert sigma == pytest.approx(quad(moller, w_cut / e, 0.5)[0], rel=1e-9)


def test_numba_helpers_against_numpy():
    from dosimetry_core.dose import _electron_mc as mc

    # uniform generator: mean and variance of 1/2 and 1/12
    # (numba returns the uint64 state as a Python int: re-wrap it as the kernel keeps it)
    state = np.uint64(mc._splitmix64(np.uint64(7)))
    u = np.empty(50_000)
    for i in range(u.size):
        state, u[i] = mc._next(state)
        state = np.uint64(state)
    assert u.mean() == pytest.approx(0.5, abs=0.005)
    assert u.var() == pytest.approx(1 / 12, rel=0.02)
    # inverse range table against np.interp
    t = et._tables("water")
    for e in (0.002, 0.1, 1.7):
        r = float(np.interp(np.log(e), np.log(t.energy_mev), t.range_g_cm2))
        assert mc._energy_at_range(r, t.ln_e0, t.d_ln_e, t.range_g_cm2) == pytest.approx(
            e, rel=1e-6
        )
    # Moller sampling: mean energy fraction equals the cross-section-weighted mean
    from scipy.integrate import quad

    e, w_cut = 1.0, 0.01
    tau = e / et.ELECTRON_MASS_MEV
    c1, c2 = (tau / (tau + 1)) ** 2, (2 * tau + 1) / (tau + 1) ** 2

    def pdf(x):
        return 1 / x**2 + 1 / (1 - x) ** 2 + c1 - c2 / (x * (1 - x))

    norm = quad(pdf, w_cut / e, 0.5)[0]
    mean_ref = quad(lambda x: x * pdf(x), w_cut / e, 0.5)[0] / norm
    eps = np.empty(100_000)
    for i in range(eps.size):
        state, eps[i] = mc._sample_moller(state, e, w_cut, et.ELECTRON_MASS_MEV)
        state = np.uint64(state)
    assert eps.min() >= w_cut / e and eps.max() <= 0.5
    assert eps.mean() == pytest.approx(mean_ref, rel=0.02)
