"""Dose statistics and DVHs on distributions with known answers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dosimetry_core.dose.dvh import (
    dose_at_volume_percent,
    dose_statistics,
    dose_volume_histogram,
)
from dosimetry_core.errors import InvalidInputError

SPACING = (2.0, 2.0, 2.0)  # 8 mm^3 = 0.008 mL per voxel


def ramp_case(n: int = 100, seed: int = 0):
    """Doses 1, 2, ..., n Gy in n random voxels of a larger grid; elsewhere 500 Gy."""
    rng = np.random.default_rng(seed)
    dose = np.full((10, 10, 12), 500.0)
    mask = np.zeros(dose.shape, bool)
    idx = rng.choice(dose.size, n, replace=False)
    mask.reshape(-1)[idx] = True
    dose.reshape(-1)[idx] = rng.permutation(np.arange(1, n + 1, dtype=float))
    return dose, mask


def test_linear_ramp_known_answers():
    dose, mask = ramp_case()
    s = dose_statistics(dose, mask, SPACING, thresholds_gy=(50.0, 100.0, 100.5, 0.0))
    assert s.n_voxels == 100
    assert s.volume_ml == pytest.approx(0.8)
    assert s.mass_g is None
    assert s.mean_gy == pytest.approx(50.5)
    assert s.median_gy == pytest.approx(50.5)
    assert s.sd_gy == pytest.approx(np.sqrt((100**2 - 1) / 12))
    assert (s.min_gy, s.max_gy) == (1.0, 100.0)
    # hottest 2 voxels: 100, 99 -> D2 = 99; hottest 50: 51..100; hottest 98: 3..100
    assert (s.d2_gy, s.d50_gy, s.d98_gy) == (99.0, 51.0, 3.0)
    assert s.v_gy == {50.0: 0.51, 100.0: 0.01, 100.5: 0.0, 0.0: 1.0}
    assert s.v_ml[50.0] == pytest.approx(51 * 0.008)
    assert s.v_ml[100.5] == 0.0


def test_dx_follows_its_definition_on_random_data():
    """D_x = max{d : V(d) >= x/100}, checked by brute force for many x."""
    rng = np.random.default_rng(1)
    dose = rng.gamma(2.0, 10.0, (7, 8, 9))
    mask = rng.random(dose.shape) < 0.6
    vals = dose[mask]
    percents = [0, 0.1, 1, 2, 10, 33.3, 50, 75, 98, 99.9, 100]
    got = dose_at_volume_percent(dose, mask, SPACING, percents)
    for p, dx in zip(percents, got, strict=True):
        candidates = [d for d in vals if np.mean(vals >= d) >= p / 100 - 1e-12]
        assert dx == max(candidates), p
    assert got[0] == vals.max() and got[-1] == vals.min()


def test_mass_weighted_statistics():
    dose = np.array([10.0, 20.0, 30.0, 40.0]).reshape(1, 1, 4)
    rho = np.array([3.0, 1.0, 0.0, 4.0]).reshape(1, 1, 4)
    mask = np.ones(dose.shape, bool)
    s = dose_statistics(
        dose, mask, SPACING, thresholds_gy=(15.0, 35.0), density_g_cm3=rho, mass_weighted=True
    )
    assert s.mass_g == pytest.approx(8.0 * 0.008)
    mean = (3 * 10 + 1 * 20 + 0 * 30 + 4 * 40) / 8
    assert s.mean_gy == pytest.approx(mean)
    var = (3 * (10 - mean) ** 2 + (20 - mean) ** 2 + 4 * (40 - mean) ** 2) / 8
    assert s.sd_gy == pytest.approx(np.sqrt(var))
    # mass fractions from the hottest: 40 Gy 0.5, 30 Gy 0 (cum 0.5), 20 Gy 0.125, 10 Gy 0.375
    assert s.d2_gy == 40.0
    assert s.d50_gy == 40.0  # the hottest half of the mass receives >= 40 Gy
    assert s.median_gy == 40.0
    assert s.d98_gy == 10.0
    assert s.v_gy[15.0] == pytest.approx(5 / 8)
    assert s.v_gy[35.0] == pytest.approx(0.5)
    assert s.v_ml[15.0] == pytest.approx(3 * 0.008)  # geometric volume
    # unweighted statistics of the same voxels differ
    u = dose_statistics(dose, mask, SPACING, density_g_cm3=rho)
    assert u.mean_gy == pytest.approx(25.0)
    assert u.mass_g == pytest.approx(s.mass_g)
    assert dose_at_volume_percent(
        dose, mask, SPACING, [62.5, 62.6], density_g_cm3=rho, mass_weighted=True
    ) == [20.0, 10.0]


def test_uniform_density_weighting_changes_nothing():
    dose, mask = ramp_case()
    a = dose_statistics(dose, mask, SPACING, thresholds_gy=(30.0,))
    b = dose_statistics(
        dose, mask, SPACING, thresholds_gy=(30.0,), density_g_cm3=1.05, mass_weighted=True
    )
    for name in ("mean_gy", "sd_gy", "d2_gy", "d50_gy", "d98_gy"):
        assert getattr(a, name) == pytest.approx(getattr(b, name))
    assert b.v_gy[30.0] == pytest.approx(a.v_gy[30.0])
    assert b.mass_g == pytest.approx(1.05 * 0.8)


def test_errors():
    dose, mask = ramp_case()
    with pytest.raises(InvalidInputError, match="empty"):
        dose_statistics(dose, np.zeros(dose.shape, bool), SPACING)
    with pytest.raises(InvalidInputError, match="empty"):
        dose_volume_histogram(dose, np.zeros(dose.shape, bool), SPACING)
    with pytest.raises(InvalidInputError, match="density"):
        dose_statistics(dose, mask, SPACING, mass_weighted=True)
    with pytest.raises(InvalidInputError, match="shape"):
        dose_statistics(dose, mask[:-1], SPACING)
    bad = dose.copy()
    bad[mask] = np.nan
    with pytest.raises(InvalidInputError, match="NaN"):
        dose_statistics(bad, mask, SPACING)
    with pytest.raises(InvalidInputError):
        dose_at_volume_percent(dose, mask, SPACING, [101])


def test_to_dict_is_json_ready():
    dose, mask = ramp_case()
    d = dose_statistics(dose, mask, SPACING, thresholds_gy=(20.0, 2.5)).to_dict()
    text = json.dumps(d)
    back = json.loads(text)
    assert back["d50_gy"] == 51.0
    assert back["v_fraction"] == {"V20Gy": 0.81, "V2.5Gy": 0.98}
    assert back["v_ml"]["V20Gy"] == pytest.approx(81 * 0.008)
    assert json.loads(json.dumps(dose_volume_histogram(dose, mask, SPACING).to_dict()))


def test_dvh_ramp_with_bin_width():
    dose, mask = ramp_case()
    h = dose_volume_histogram(dose, mask, SPACING, bin_width_gy=10.0)
    np.testing.assert_allclose(h.bin_edges_gy, np.arange(0, 111, 10.0))
    # bins [0,10) holds 1..9, [10,20) 10..19, ..., [100,110) holds 100
    np.testing.assert_allclose(h.differential_ml, np.array([9] + [10] * 9 + [1]) * 0.008)
    assert h.differential_fraction.sum() == pytest.approx(1.0)
    assert h.cumulative_fraction[0] == pytest.approx(1.0)
    assert h.cumulative_fraction[-1] == 0.0
    assert h.cumulative_fraction[5] == pytest.approx(0.51)  # V(50 Gy)
    assert h.volume_ml == pytest.approx(0.8)
    np.testing.assert_allclose(h.bin_centres_gy, np.arange(5, 110, 10.0))


def test_dvh_cumulative_equals_v_at_every_edge():
    rng = np.random.default_rng(3)
    dose = rng.gamma(3.0, 5.0, (9, 9, 9))
    mask = rng.random(dose.shape) < 0.7
    rho = rng.uniform(0.8, 1.9, dose.shape)
    vals, w = dose[mask], rho[mask]
    for weighted in (False, True):
        h = dose_volume_histogram(
            dose, mask, SPACING, n_bins=37, density_g_cm3=rho, mass_weighted=weighted
        )
        assert h.bin_edges_gy.size == 38
        assert h.bin_edges_gy[-1] > vals.max()
        for edge, cum in zip(h.bin_edges_gy, h.cumulative_fraction, strict=True):
            ww = w if weighted else np.ones_like(vals)
            assert cum == pytest.approx(ww[vals >= edge].sum() / ww.sum(), abs=1e-12)
        assert h.differential_ml.sum() == pytest.approx(mask.sum() * 0.008)
        assert h.mass_g == pytest.approx(w.sum() * 0.008)


def test_dvh_all_zero_dose():
    dose = np.zeros((3, 3, 3))
    h = dose_volume_histogram(dose, np.ones(dose.shape, bool), SPACING, n_bins=4)
    assert h.cumulative_fraction[0] == 1.0
    assert h.cumulative_fraction[1] == 0.0
    assert h.differential_fraction[0] == 1.0
