"""Sphere model: absorbed fractions of unit-density spheres from our own transport.

Expected behaviour (Stabin & Konijnenberg, J Nucl Med 2000;41:149-160, fig. 1-3;
Bardies & Chatal, Phys Med Biol 1994;39:961): electron AFs rise to 1 once the
radius is several electron ranges; photon AFs are small and grow with size,
roughly in proportion to the radius while the sphere is much smaller than the
photons' mean free path.
"""

from __future__ import annotations

import numpy as np
import pytest

from dosimetry_core.dose.organ_level import sphere_model_dose_gy
from dosimetry_core.dose.sphere_model import sphere_absorbed_fractions
from dosimetry_core.errors import InvalidInputError


@pytest.fixture(autouse=True)
def _private_kernel_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MRTDOSE_KERNEL_CACHE", str(tmp_path / "kernels"))


@pytest.fixture(scope="module")
def y90():
    return sphere_absorbed_fractions(
        "Y-90", electron_histories=40_000, photon_histories=20_000, use_cache=False
    )


@pytest.fixture(scope="module")
def lu177():
    return sphere_absorbed_fractions(
        "Lu-177", electron_histories=40_000, photon_histories=300_000, use_cache=False
    )


def test_electron_af_tends_to_one_for_large_spheres(y90, lu177):
    # Y-90: CSDA range of the 2.28 MeV end point ~11 mm, mean beta ~4 mm.  For
    # R >> range the escaping share falls as surface/volume ~ 1/R (3 r / 4 R for
    # straight tracks), on top of ~1 % radiated as bremsstrahlung.
    assert y90.electron(100.0) > 0.97
    assert y90.electron(20.0) > 0.85
    escape_ratio = (1 - y90.electron(100.0)) / (1 - y90.electron(25.0))
    assert 0.2 < escape_ratio < 0.45  # 1/R alone would give 0.25
    assert 0.1 < y90.electron(1.0) < 0.5
    assert np.all(np.diff(y90.electron_af) >= -1e-3)
    # Lu-177: ranges below 2 mm: 1 cm spheres already absorb nearly everything
    assert lu177.electron(10.0) > 0.95
    assert lu177.electron(1.0) > y90.electron(1.0)


def test_photon_af_grows_with_sphere_size(lu177):
    af = lu177.photon_af
    assert np.all(np.diff(af) > -0.01)
    assert lu177.photon(5.0) < lu177.photon(20.0) < lu177.photon(80.0) < 1.0
    # small spheres: AF roughly proportional to the radius (AF ~ 3/4 mu_en R for R << 1/mu)
    ratio = lu177.photon(4.0) / lu177.photon(2.0)
    assert 1.5 < ratio < 2.5
    assert lu177.photon(0.5) == pytest.approx(lu177.photon(1.0) / 2, rel=1e-9)


def test_sphere_dose_of_a_large_lesion_approaches_local_deposition(y90):
    """Y-90, R = 80 mm, 1 GBq fully decayed: dose = N E_beta AF / m, AF > 0.97."""
    e_af, p_af = y90.callables()
    radius_mm = 80.0
    volume_ml = 4 / 3 * np.pi * (radius_mm / 10) ** 3
    tia_mbq_h = 1000.0 * 64.05 / np.log(2)  # 1 GBq, T1/2 64.05 h, fully decayed
    d = sphere_model_dose_gy(tia_mbq_h, volume_ml, "Y-90", electron_af=e_af, photon_af=p_af)
    decays = tia_mbq_h * 3.6e9
    local = decays * y90.electron_mev * 1.602176634e-13 / (volume_ml * 1e-3)
    assert d == pytest.approx(local * y90.electron(radius_mm), rel=1e-3)
    assert d == pytest.approx(local, rel=0.03)


def test_bad_radii_are_refused(y90):
    with pytest.raises(InvalidInputError, match="radii"):
        sphere_absorbed_fractions("Y-90", radii_mm=np.array([2.0, 1.0]), use_cache=False)
    with pytest.raises(InvalidInputError, match="positive"):
        y90.electron(0.0)
