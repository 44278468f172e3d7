"""The three dose engines on uniform activity in a large water volume (issue 5).

Known answer: in the interior of a volume much larger than the photons' mean
free path (charged-particle and radiation equilibrium) the absorbed dose is
``N E / m``: decays per voxel times the total energy emitted per decay
(ICRP-107) over the voxel mass.  A 1.6 m water cube with Lu-177 (19 % of its
energy is photons of 55-208 keV, mean free path < 10 cm in water).
"""

from __future__ import annotations

import numpy as np
import pytest

from dosimetry_core.dose.convolution import convolve_dose
from dosimetry_core.dose.kernels import voxel_kernel
from dosimetry_core.dose.led import local_deposition_dose
from dosimetry_core.dose.monte_carlo import run_monte_carlo
from dosimetry_core.dose.units import J_PER_MEV
from dosimetry_core.physics.nuclides import energy_per_decay

N = 20
SPACING = (80.0, 80.0, 80.0)
DECAYS = 1e10  # Bq*s per voxel
INTERIOR = (slice(8, 12),) * 3


@pytest.fixture(autouse=True)
def _private_kernel_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MRTDOSE_KERNEL_CACHE", str(tmp_path / "kernels"))


def _expected_gy() -> float:
    mass_kg = float(np.prod(SPACING)) * 1e-3 * 1.0 * 1e-3  # water, 1.0 g/cm3
    return DECAYS * energy_per_decay("Lu-177").total_mev * J_PER_MEV / mass_kg


@pytest.mark.slow
def test_led_vsv_and_mc_agree_in_the_interior_with_n_e_over_m():
    decays = np.full((N, N, N), DECAYS)
    expected = _expected_gy()

    led = local_deposition_dose(decays, SPACING, energy_per_decay("Lu-177").total_mev, 1.0)
    kernel = voxel_kernel(
        "Lu-177", SPACING, "water", photon_radius_mm=720.0, photon_histories=400_000
    )
    vsv = convolve_dose(decays, kernel.values_gy_per_bq_s)
    mc = run_monte_carlo(
        decays,
        np.zeros((N, N, N), dtype=np.uint8),
        np.ones((N, N, N)),
        ["water"],
        SPACING,
        "Lu-177",
        histories=2_000_000,
        seed=5,
    )
    interior = {
        "led": float(led[INTERIOR].mean()),
        "vsv": float(vsv[INTERIOR].mean()),
        "mc": float(mc.dose_gy[INTERIOR].astype(float).mean()),
    }
    for name, value in interior.items():
        assert value == pytest.approx(expected, rel=0.02), name
    assert interior["vsv"] == pytest.approx(interior["mc"], rel=0.02)
    # and the kernel itself keeps (almost) all the emitted energy
    assert kernel.absorbed_energy_mev() == pytest.approx(kernel.emitted_energy_mev(), rel=0.01)
    # towards a face the photon share leaks out: the corner voxel gets less than the centre
    assert float(vsv[0, 0, 0]) < 0.95 * interior["vsv"]
    assert float(mc.dose_gy[0, 0, 0]) < 0.95 * interior["mc"]
