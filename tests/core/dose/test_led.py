"""Local energy deposition: the Y-90 constant, density, anisotropic voxels."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dosimetry_core.dose.convolution import DEFAULT_MIN_DENSITY_G_CM3, convolve_dose
from dosimetry_core.dose.led import local_deposition_dose
from dosimetry_core.dose.units import J_PER_MEV
from dosimetry_core.errors import InvalidInputError
from dosimetry_core.physics.nuclides import energy_per_decay, half_life_h


def test_y90_one_gbq_fully_decayed_in_one_kg_gives_49_7_gy():
    """PHYSICS.md: 1 GBq of Y-90 decaying fully in 1 kg -> about 49.7 Gy."""
    lam_per_s = math.log(2) / (half_life_h("Y-90") * 3600.0)
    n_decays = 1e9 / lam_per_s
    energy = energy_per_decay("Y-90").electron_mev
    # one 10 x 10 x 10 cm voxel of water: 1000 cm^3 = 1 kg
    dose = local_deposition_dose(np.full((1, 1, 1), n_decays), (100.0, 100.0, 100.0), energy, 1.0)
    assert dose.dtype == np.float32
    assert float(dose[0, 0, 0]) == pytest.approx(n_decays * energy * J_PER_MEV / 1.0, rel=1e-6)
    assert float(dose[0, 0, 0]) == pytest.approx(49.7, abs=0.1)


def test_same_total_in_many_small_voxels():
    """1 kg split over 4 x 5 x 5 voxels of anisotropic size: each gets the same dose."""
    spacing = (20.0, 25.0, 50.0)  # x, y, z in mm: 25 cm^3 per voxel, 40 voxels = 1 kg
    n_total = 3.3e14
    decays = np.full((2, 4, 5), n_total / 40)
    dose = local_deposition_dose(decays, spacing, 0.9331, 1.0)
    expected = n_total * 0.9331 * J_PER_MEV / 1.0
    np.testing.assert_allclose(dose, expected, rtol=1e-6)


def test_density_map_and_air_floor():
    decays = np.full((1, 1, 5), 1e10)
    rho = np.array([1.0, 2.0, 0.25, 0.01, 0.0]).reshape(1, 1, 5)
    dose = local_deposition_dose(decays, (4.0, 4.0, 4.0), 0.5, rho)
    voxel_kg = 4.0**3 * 1e-3 * 1e-3
    water = 1e10 * 0.5 * J_PER_MEV / voxel_kg
    expected = water / np.maximum(rho, DEFAULT_MIN_DENSITY_G_CM3)
    np.testing.assert_allclose(dose, expected, rtol=1e-6)
    assert dose[0, 0, 1] == pytest.approx(water / 2, rel=1e-6)
    assert np.all(np.isfinite(dose))
    scalar = local_deposition_dose(decays, (4.0, 4.0, 4.0), 0.5, 2.0)
    np.testing.assert_allclose(scalar, water / 2, rtol=1e-6)


def test_led_equals_convolution_with_single_voxel_kernel():
    rng = np.random.default_rng(0)
    spacing = (4.8, 4.8, 3.0)
    decays = rng.uniform(0, 1e9, (6, 7, 8))
    energy = 0.1479
    kernel = np.array([[[energy * J_PER_MEV / (4.8 * 4.8 * 3.0 * 1e-6)]]])
    led = local_deposition_dose(decays, spacing, energy, 1.0)
    # float32 FFT: absolute error ~1e-7 of the maximum in every voxel
    np.testing.assert_allclose(led, convolve_dose(decays, kernel), rtol=1e-5, atol=1e-6 * led.max())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"energy_mev": -1.0},
        {"energy_mev": float("nan")},
        {"spacing_mm": (4.0, 0.0, 4.0)},
        {"spacing_mm": (4.0, 4.0)},
        {"density_g_cm3": np.ones((2, 2, 2))},
        {"density_g_cm3": -1.0},
        {"decays_bq_s": np.ones((3, 3))},
        {"decays_bq_s": np.full((3, 3, 3), np.inf)},
    ],
)
def test_invalid_input(kwargs):
    args = {
        "decays_bq_s": np.ones((3, 3, 3)),
        "spacing_mm": (4.0, 4.0, 4.0),
        "energy_mev": 1.0,
        "density_g_cm3": 1.0,
    }
    args.update(kwargs)
    with pytest.raises(InvalidInputError):
        local_deposition_dose(**args)
