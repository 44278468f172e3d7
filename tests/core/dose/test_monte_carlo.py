"""Photon Monte Carlo: analytic and conservation checks, statistics, controls, CT materials."""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest

from dosimetry_core.dose.ct_materials import MEDIA_BY_INDEX, ct_to_materials
from dosimetry_core.dose.monte_carlo import (
    MonteCarloResult,
    photon_lines,
    photon_point_kernel,
    run_monte_carlo,
    run_monte_carlo_ct,
)
from dosimetry_core.dose.photon_data import material_cross_sections
from dosimetry_core.dose.units import J_PER_MEV
from dosimetry_core.errors import Cancelled, InvalidInputError
from dosimetry_core.physics.density import HuDensityCalibration
from dosimetry_core.physics.nuclides import energy_per_decay

WATER = ["water"]


def _uniform(n: int, density: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((n, n, n), dtype=np.uint8), np.full((n, n, n), density, dtype=np.float32)


def _mass_kg(density, spacing_mm) -> np.ndarray:
    return np.asarray(density, dtype=float) * np.prod(spacing_mm) * 1e-3 * 1e-3


# ---------------------------------------------------------------- CT materials
def test_ct_to_materials_bins_and_density():
    hu = np.array([-1000, -951, -950, -500, -121, -120, -50, -23, -22, 0, 60, 119, 120, 1000])
    index, density, mats = ct_to_materials(hu)
    names = [MEDIA_BY_INDEX[i] for i in index]
    assert names == [
        "air",
        "air",
        "lung",
        "lung",
        "lung",
        "adipose",
        "adipose",
        "adipose",
        "soft-tissue",
        "soft-tissue",
        "soft-tissue",
        "soft-tissue",
        "bone",
        "bone",
    ]
    assert [m.name for m in mats] == list(MEDIA_BY_INDEX)
    assert index.dtype == np.uint8 and density.dtype == np.float32
    cal = HuDensityCalibration.load()
    assert np.allclose(density, cal.density_g_cm3(hu), rtol=1e-6)
    assert density[9] == pytest.approx(1.0)
    with pytest.raises(InvalidInputError):
        ct_to_materials(np.array([0.0, np.nan]))
    with pytest.raises(InvalidInputError):
        ct_to_materials(hu, hu_lower_bounds=(0.0, -100.0, 10.0, 20.0))


# ------------------------------------------------------------- known answers
def test_point_kernel_small_sphere_first_collision_1mev_water():
    """AF of a 2 mm sphere around a 1 MeV point source ~ (1 - exp(-mu R)) mu_en/mu."""
    kern = photon_point_kernel(
        (np.array([1.0]), np.array([1.0])),
        "water",
        r_edges_mm=np.array([0.0, 2.0, 10.0, 50.0, 200.0, 1000.0]),
        histories=400_000,
        seed=1,
    )
    water = material_cross_sections("water")
    mu = float(water.at("total_cm2_g", 1.0))
    mu_en = float(water.at("mu_en_cm2_g", 1.0))
    first = (1 - math.exp(-mu * 0.2)) * mu_en / mu
    assert first == pytest.approx(0.0311 * 0.2, rel=0.02)  # ~ mu_en R at small R
    assert 0.95 * first < kern.fraction[0] < 1.08 * first
    # 1 cm: first collisions plus a small build-up of scattered photons
    first_1cm = (1 - math.exp(-mu * 1.0)) * mu_en / mu
    af_1cm = kern.fraction[:2].sum()
    assert 0.97 * first_1cm < af_1cm < 1.15 * first_1cm
    assert kern.fraction.sum() + kern.escaped_fraction == pytest.approx(1.0, abs=1e-12)
    assert kern.escaped_fraction < 0.01  # 1 m of water: 7 mean free paths
    assert kern.component == "photon" and kern.energy_mev == pytest.approx(1.0)


def test_point_kernel_nuclide_lines_and_errors():
    kern = photon_point_kernel(
        "Lu-177", "soft-tissue", r_edges_mm=np.array([0.0, 5.0, 50.0]), histories=20_000
    )
    assert kern.energy_mev == pytest.approx(energy_per_decay("Lu-177").photon_mev, rel=1e-6)
    assert kern.density_g_cm3 == pytest.approx(1.04)
    with pytest.raises(InvalidInputError):
        photon_point_kernel("Lu-177", r_edges_mm=[1.0, 2.0], histories=10)
    with pytest.raises(InvalidInputError):
        photon_point_kernel("Lu-177", "steel", r_edges_mm=[0.0, 2.0], histories=10)


def test_inverse_square_kerma_in_near_vacuum():
    """Uncollided kerma K = N E mu_en/rho / (4 pi r^2) with no attenuation (rho -> 0)."""
    n, sp = 41, (5.0, 5.0, 5.0)
    mat, rho = _uniform(n, density=1e-7)
    dec = np.zeros((n, n, n))
    dec[20, 20, 20] = 1e12
    res = run_monte_carlo(
        dec,
        mat,
        rho,
        WATER,
        sp,
        "Lu-177",
        histories=2_000_000,
        batches=10,
        seed=4,
        deposit_local=False,
    )
    e, y, _ = photon_lines("Lu-177")
    water = material_cross_sections("water")
    kerma_mev_g_cm2 = float(np.sum(y * e * water.at("mu_en_cm2_g", e)))
    # all voxels whose centres lie 5-9 cm from the source voxel centre
    zz, yy, xx = np.indices((n, n, n))
    r_cm = np.sqrt((zz - 20.0) ** 2 + (yy - 20.0) ** 2 + (xx - 20.0) ** 2) * 0.5
    shell = (r_cm >= 5.0) & (r_cm <= 9.0)
    expected_gy = 1e12 * kerma_mev_g_cm2 / (4 * math.pi * r_cm[shell] ** 2) * J_PER_MEV * 1e3
    got = res.photon_dose_gy[shell].astype(float)
    assert got.sum() == pytest.approx(expected_gy.sum(), rel=0.01)
    # and radially: inner and outer halves of the shell keep the 1/r^2 ratio
    inner = r_cm[shell] < 7.0
    assert got[inner].mean() / got[~inner].mean() == pytest.approx(
        expected_gy[inner].mean() / expected_gy[~inner].mean(), rel=0.02
    )
    # nothing interacts: all photon energy leaves the grid
    assert res.escaped_photon_energy_mev == pytest.approx(res.emitted_photon_energy_mev, rel=1e-4)


@pytest.mark.parametrize("estimator", ["track-length", "analog"])
def test_energy_conservation_deposited_plus_escaped_equals_emitted(estimator):
    n, sp = 32, (6.0, 6.0, 6.0)
    mat, rho = _uniform(n)
    dec = np.zeros((n, n, n))
    dec[10:22, 10:22, 10:22] = 1e9
    res = run_monte_carlo(
        dec,
        mat,
        rho,
        WATER,
        sp,
        "Lu-177",
        histories=400_000,
        batches=4,
        estimator=estimator,
        deposit_local=False,
    )
    deposited_mev = float(np.sum(res.photon_dose_gy.astype(float) * _mass_kg(rho, sp))) / J_PER_MEV
    balance = (deposited_mev + res.escaped_photon_energy_mev) / res.emitted_photon_energy_mev
    # analog: exact; track-length: expectation equal, statistics ~0.2 %
    assert balance == pytest.approx(1.0, abs=1e-9 if estimator == "analog" else 5e-3)
    e, y, _ = photon_lines("Lu-177")
    assert res.emitted_photon_energy_mev == pytest.approx(dec.sum() * np.sum(e * y), rel=0.01)


def test_equilibrium_dose_at_centre_of_large_water_volume():
    """Uniform Lu-177 in a 1.6 m water cube: centre dose = N E_total / m within 2 %."""
    n, sp = 20, (80.0, 80.0, 80.0)
    mat, rho = _uniform(n)
    dec = np.full((n, n, n), 1e10)
    res = run_monte_carlo(dec, mat, rho, WATER, sp, "Lu-177", histories=2_000_000, seed=2)
    centre = res.dose_gy[8:12, 8:12, 8:12].astype(float).mean()
    e_total = energy_per_decay("Lu-177").total_mev
    expected = 1e10 * e_total * J_PER_MEV / _mass_kg(1.0, sp)
    assert centre == pytest.approx(expected, rel=0.02)
    photon_centre = res.photon_dose_gy[8:12, 8:12, 8:12].astype(float).mean()
    e, y, _ = photon_lines("Lu-177")
    assert photon_centre == pytest.approx(
        1e10 * np.sum(e * y) * J_PER_MEV / _mass_kg(1.0, sp), rel=0.02
    )


def test_local_part_is_analytic():
    n, sp = 8, (4.0, 4.0, 4.0)
    mat, rho = _uniform(n, density=1.04)
    dec = np.zeros((n, n, n))
    dec[4, 4, 4] = 3e9
    res = run_monte_carlo(dec, mat, rho, ["soft-tissue"], sp, "Lu-177", histories=2000)
    _, _, below = photon_lines("Lu-177")
    e_local = energy_per_decay("Lu-177").non_penetrating_mev + below
    assert res.local_dose_gy is not None
    assert float(res.local_dose_gy[4, 4, 4]) == pytest.approx(
        3e9 * e_local * J_PER_MEV / _mass_kg(1.04, sp), rel=1e-6
    )
    assert res.local_dose_gy.sum() == res.local_dose_gy[4, 4, 4]
    assert np.allclose(res.dose_gy, res.photon_dose_gy + res.local_dose_gy, rtol=1e-6)
    off = run_monte_carlo(
        dec, mat, rho, ["soft-tissue"], sp, "Lu-177", histories=2000, deposit_local=False
    )
    assert off.local_dose_gy is None
    assert np.array_equal(off.dose_gy, off.photon_dose_gy)


def test_pure_beta_emitter_without_photons_gives_local_dose_only():
    mat, rho = _uniform(4)
    dec = np.zeros((4, 4, 4))
    dec[1, 1, 1] = 1e9
    res = run_monte_carlo(dec, mat, rho, WATER, (2, 2, 2), "P-32", histories=100)
    assert res.stopped_because == "no photons" and res.histories == 0
    assert res.dose_gy[1, 1, 1] > 0 and res.photon_dose_gy.sum() == 0


# ------------------------------------------------------------------ statistics
def _small_problem() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = 24
    mat, rho = _uniform(n)
    mat[:, :, :6] = 1  # a bone slab
    rho[:, :, :6] = 1.9
    dec = np.zeros((n, n, n))
    dec[8:16, 8:16, 8:16] = 1e9
    return dec, mat, rho


def test_reproducible_for_equal_seeds_and_thread_counts():
    dec, mat, rho = _small_problem()
    kw = dict(histories=100_000, batches=5)
    a = run_monte_carlo(dec, mat, rho, ["water", "bone"], (4, 4, 4), "Lu-177", seed=7, **kw)
    b = run_monte_carlo(dec, mat, rho, ["water", "bone"], (4, 4, 4), "Lu-177", seed=7, **kw)
    c = run_monte_carlo(dec, mat, rho, ["water", "bone"], (4, 4, 4), "Lu-177", seed=8, **kw)
    assert np.array_equal(a.dose_gy, b.dose_gy)
    assert np.array_equal(a.rel_uncertainty, b.rel_uncertainty)
    assert not np.array_equal(a.photon_dose_gy, c.photon_dose_gy)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = run_monte_carlo(dec, mat, rho, ["water", "bone"], (4, 4, 4), "Lu-177", seed=7, **kw)
    finally:
        numba.set_num_threads(before)
    assert np.allclose(one.photon_dose_gy, a.photon_dose_gy, rtol=1e-6, atol=0)
    assert isinstance(a, MonteCarloResult) and a.histories == 100_000 and a.seed == 7


def test_batch_uncertainty_matches_spread_of_independent_runs():
    dec, mat, rho = _small_problem()
    runs = [
        run_monte_carlo(
            dec,
            mat,
            rho,
            ["water", "bone"],
            (4, 4, 4),
            "Lu-177",
            histories=40_000,
            batches=8,
            seed=100 + i,
            deposit_local=False,
        )
        for i in range(10)
    ]
    doses = np.stack([r.photon_dose_gy.astype(float) for r in runs])
    predicted = np.stack([r.rel_uncertainty.astype(float) * r.dose_gy for r in runs]).mean(0)
    observed = doses.std(axis=0, ddof=1)
    sel = doses.mean(0) > np.percentile(doses.mean(0), 50)
    ratio = math.sqrt(np.mean(observed[sel] ** 2) / np.mean(predicted[sel] ** 2))
    assert 0.85 < ratio < 1.15


def test_stops_at_target_uncertainty_and_at_max_histories():
    dec, mat, rho = _small_problem()
    mask = dec > 0
    res = run_monte_carlo(
        dec,
        mat,
        rho,
        ["water", "bone"],
        (4, 4, 4),
        "Lu-177",
        histories=20_000,
        batches=4,
        target_uncertainty=0.02,
        target_mask=mask,
        deposit_local=False,
    )
    assert res.stopped_because == "target uncertainty"
    assert res.target_uncertainty_reached is not None and res.target_uncertainty_reached <= 0.02
    # the stop figure is the photon component's SD of the VOI mean; the summed
    # voxel SDs of earlier versions are still reported
    assert res.target_component == "photon"
    assert res.target_uncertainty_reached == res.target_photon_uncertainty
    assert res.target_total_uncertainty == pytest.approx(res.target_photon_uncertainty)
    sd = res.rel_uncertainty[mask].astype(float) * res.dose_gy[mask]
    assert sd.sum() / res.dose_gy[mask].sum() == pytest.approx(
        res.target_mean_voxel_uncertainty, rel=1e-4
    )
    assert res.batches >= 4 and res.histories == res.batches * 5_000
    capped = run_monte_carlo(
        dec,
        mat,
        rho,
        ["water", "bone"],
        (4, 4, 4),
        "Lu-177",
        histories=4_000,
        batches=4,
        target_uncertainty=1e-4,
        max_histories=12_000,
        deposit_local=False,
    )
    assert capped.stopped_because == "max histories" and capped.histories == 12_000
    assert capped.target_uncertainty_reached is not None
    assert capped.target_uncertainty_reached > 1e-4


def test_progress_and_cancel():
    dec, mat, rho = _small_problem()
    seen: list[float] = []
    run_monte_carlo(
        dec,
        mat,
        rho,
        ["water", "bone"],
        (4, 4, 4),
        "Lu-177",
        histories=4_000,
        batches=4,
        progress=lambda f, m: seen.append(f),
    )
    assert seen[-1] == 1.0 and seen == sorted(seen) and len(seen) >= 5
    calls = {"n": 0}

    def cancel() -> bool:
        calls["n"] += 1
        return calls["n"] > 2

    with pytest.raises(Cancelled):
        run_monte_carlo(
            dec,
            mat,
            rho,
            ["water", "bone"],
            (4, 4, 4),
            "Lu-177",
            histories=4_000,
            batches=4,
            cancel=cancel,
        )


def test_invalid_inputs_raise_clear_errors():
    dec, mat, rho = _small_problem()
    m = ["water", "bone"]
    with pytest.raises(InvalidInputError, match="same shape"):
        run_monte_carlo(dec, mat[:-1], rho, m, (4, 4, 4), "Lu-177")
    with pytest.raises(InvalidInputError, match="zero everywhere"):
        run_monte_carlo(np.zeros_like(dec), mat, rho, m, (4, 4, 4), "Lu-177")
    with pytest.raises(InvalidInputError, match=">= 0"):
        run_monte_carlo(-dec, mat, rho, m, (4, 4, 4), "Lu-177")
    with pytest.raises(InvalidInputError, match="materials given"):
        run_monte_carlo(dec, mat, rho, ["water"], (4, 4, 4), "Lu-177")
    with pytest.raises(InvalidInputError, match="spacing"):
        run_monte_carlo(dec, mat, rho, m, (4, 0, 4), "Lu-177")
    with pytest.raises(InvalidInputError):
        run_monte_carlo(dec, mat, rho, m, (4, 4, 4), "Xx-999")
    with pytest.raises(InvalidInputError, match="batches"):
        run_monte_carlo(dec, mat, rho, m, (4, 4, 4), "Lu-177", batches=1)
    with pytest.raises(InvalidInputError, match="target_uncertainty"):
        run_monte_carlo(dec, mat, rho, m, (4, 4, 4), "Lu-177", target_uncertainty=2.0)


def test_ct_entry_point_runs_on_hu():
    n = 16
    hu = np.zeros((n, n, n))
    hu[:, :, :3] = -1000.0
    dec = np.zeros((n, n, n))
    dec[6:10, 6:10, 6:10] = 1e9
    res = run_monte_carlo_ct(dec, hu, (4, 4, 4), "Lu-177", histories=20_000, batches=4)
    assert res.dose_gy[8, 8, 8] > res.dose_gy[8, 8, 1] > 0


def test_voxel_engine_agrees_with_point_kernel_in_water():
    """Two code paths: track-length kerma on voxels vs analog spherical shells (Lu-177)."""
    # 20 cm cube; the finite grid misses some backscatter from > 10 cm (~1-2 % low)
    n, sp = 101, (2.0, 2.0, 2.0)
    mat, rho = _uniform(n)
    dec = np.zeros((n, n, n))
    dec[50, 50, 50] = 1e9
    res = run_monte_carlo(
        dec,
        mat,
        rho,
        WATER,
        sp,
        "Lu-177",
        histories=400_000,
        batches=4,
        seed=5,
        deposit_local=False,
    )
    kern = photon_point_kernel(
        "Lu-177", "water", r_edges_mm=np.array([0.0, 20.0, 40.0]), histories=400_000, seed=6
    )
    zz, yy, xx = np.indices((n, n, n))
    r_mm = np.sqrt((zz - 50.0) ** 2 + (yy - 50.0) ** 2 + (xx - 50.0) ** 2) * 2.0
    energy_mev = res.photon_dose_gy.astype(float) * _mass_kg(rho, sp) / J_PER_MEV
    emitted = res.emitted_photon_energy_mev
    for radius, cumulative in ((20.0, kern.fraction[0]), (40.0, kern.fraction.sum())):
        voxel_fraction = energy_mev[r_mm < radius].sum() / emitted
        assert voxel_fraction == pytest.approx(cumulative, rel=0.03), radius


def test_alias_sampling_reproduces_decay_weights():
    from scipy import stats

    from dosimetry_core.dose import _mc_photon

    weights = np.array([5.0, 0.0, 1.0, 3.0, 0.5, 10.0, 0.5])
    prob, alias = _mc_photon.build_alias(weights)
    s = _mc_photon.seed_state(9, 0, 0)
    n = 200_000
    draws = np.array([_mc_photon.sample_alias(prob, alias, _mc_photon.rand(s)) for _ in range(n)])
    counts = np.bincount(draws, minlength=weights.size)
    assert counts[1] == 0
    keep = weights > 0
    expected = weights[keep] / weights.sum() * n
    assert stats.chisquare(counts[keep], expected).pvalue > 1e-3


def test_kerma_ratio_bone_to_water_follows_mu_en_in_near_vacuum():
    """Same uncollided fluence on both sides: K_bone / K_water = <E mu_en/rho> ratio."""
    n = 31
    mat = np.zeros((n, n, n), dtype=np.uint8)
    mat[:, :, 16:] = 1  # x > centre: bone
    rho = np.full((n, n, n), 1e-7, dtype=np.float32)
    dec = np.zeros((n, n, n))
    dec[15, 15, 15] = 1e12
    res = run_monte_carlo(
        dec,
        mat,
        rho,
        ["water", "bone"],
        (5.0, 5.0, 5.0),
        "Lu-177",
        histories=1_000_000,
        batches=4,
        seed=12,
        deposit_local=False,
    )
    e, y, _ = photon_lines("Lu-177")
    k_w = np.sum(y * e * material_cross_sections("water").at("mu_en_cm2_g", e))
    k_b = np.sum(y * e * material_cross_sections("bone").at("mu_en_cm2_g", e))
    left = res.photon_dose_gy[:, :, 3:13].astype(float).sum()  # water, 2-12 voxels away
    right = res.photon_dose_gy[:, :, 18:28].astype(float).sum()  # bone, mirror image
    assert right / left == pytest.approx(k_b / k_w, rel=0.03)
    assert k_b / k_w > 1.5  # the photoelectric effect in Ca and P makes a clear difference
