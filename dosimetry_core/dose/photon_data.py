"""Photon interaction data for the Monte Carlo: tabulated once per material, cached.

Everything the transport kernels in :mod:`._mc_photon` need is tabulated here on a
fixed grid, so that no ``xraylib`` call happens inside numba code:

* mass attenuation coefficients (cm^2/g) of the photoelectric effect, incoherent
  (Compton) and coherent (Rayleigh) scattering and their sum (pair production is
  **not** included, see below),
* the mass energy-absorption coefficient mu_en/rho (cm^2/g), used by the
  track-length estimator of collision kerma,
* the cumulative squared atomic form factor used to sample Rayleigh angles.

Sources and models
------------------
* Below ``XRAYLIB_MAX_MEV`` (0.8 MeV) the attenuation coefficients come from
  ``xraylib`` (Schoonjans et al., Spectrochim Acta B 66:776-784, 2011): ``CS_Photo``,
  ``CS_Compt`` (which includes the incoherent scattering function) and
  ``CS_Rayl``, per element and mixed by mass fraction (the Bragg additivity rule).
  xraylib 4.3 refuses ``CS_Compt``/``CS_Rayl`` above about 0.8 MeV.
* Above 0.8 MeV: Compton scattering by the free-electron Klein-Nishina cross
  section (Klein & Nishina, Z Phys 52:853, 1929) times the electrons per gram
  (binding is negligible at these energies); photoelectric and Rayleigh are
  extrapolated log-log from two xraylib points (together below 0.35 % of the
  total at 0.8 MeV in cortical bone, 0.12 % in soft tissue, less above).
* mu_en/rho is built from the same model the transport uses, at all energies:
  ``mu_en/rho = tau/rho + sigma_C/rho * <T>/E`` with the photoelectric
  coefficient ``tau/rho`` (all energy local, fluorescence included) and the
  Klein-Nishina mean energy-transfer fraction ``<T>/E`` (Evans' closed form,
  R.D. Evans, *The Atomic Nucleus*, McGraw-Hill 1955, ch. 23; F.H. Attix,
  *Introduction to Radiological Physics and Radiation Dosimetry*, Wiley 1986,
  eq. 7.13); the radiative yield g is neglected (< 0.5 % in soft tissue below
  3 MeV).  Against Hubbell & Seltzer (NISTIR 5632, 1995; NIST tables) for water
  this is within 1.3 % from 10 keV to 1 MeV (1 MeV: 0.03106 vs 0.03103 cm^2/g;
  60 keV: 0.0315 vs 0.0319).  xraylib's own ``CS_Energy`` is **not** used: in
  xraylib 4.3 it is 30-37 % low for water at 20-30 keV and rises again above
  0.8 MeV.  Because analog and track-length scoring share this model, they give
  the same expected dose.
* Pair production is neglected: in water it is ~0.3 % of mu at 1.5 MeV and ~3 %
  at 3 MeV (our mu/rho at 3 MeV: 0.0385 vs NIST XCOM 0.0397 cm^2/g), so
  results for nuclides with strong lines above ~2 MeV are slightly too
  penetrating.  The grid ends at ``ENERGY_MAX_MEV``.
* Rayleigh angles: the sampling of PENELOPE (Baro et al., Radiat Phys Chem
  44:531, 1994; Salvat, PENELOPE-2014 manual, NEA/MBDAV/R(2015)3, sect. 2.1):
  ``x^2`` is drawn from the squared molecular form factor
  ``F^2(x) = sum_i w_i / A_i F_i(x)^2`` (xraylib ``FF_Rayl``, momentum transfer
  ``x = sin(theta/2)/lambda`` in 1/Angstrom) by inverting its tabulated integral,
  and accepted with probability ``(1 + cos^2 theta) / 2`` (Thomson factor).

Energy grid: ``N_ENERGIES`` points equally spaced in ln E from ``ENERGY_MIN_MEV``
to ``ENERGY_MAX_MEV``; the kernels interpolate linearly between grid points.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.physics.materials import Material, material

ENERGY_MIN_MEV = 1e-3
"""Lowest tabulated energy (1 keV)."""
ENERGY_MAX_MEV = 10.0
"""Highest tabulated energy; photon lines above it are refused."""
N_ENERGIES = 1201
"""Grid points, equally spaced in ln E (300 per decade)."""
XRAYLIB_MAX_MEV = 0.8
"""Above this energy the module's own models replace xraylib (module docstring)."""

ELECTRON_REST_MEV = 0.51099895000
"""m_e c^2 in MeV (CODATA 2018)."""
CLASSICAL_ELECTRON_RADIUS_CM = 2.8179403262e-13
"""r_e in cm (CODATA 2018)."""
AVOGADRO_PER_MOL = 6.02214076e23
"""N_A (exact, 2019 SI)."""
HC_KEV_ANGSTROM = 12.398419843320026
"""h*c in keV*Angstrom (CODATA 2018): lambda[A] = HC / E[keV]."""

_RAYLEIGH_N_X = 512
_RAYLEIGH_X_MAX = 200.0  # 1/Angstrom; F(x) ~ 0 far before this for Z <= 20


def energy_grid_mev() -> NDArray[np.float64]:
    """The tabulation grid (MeV), ``N_ENERGIES`` points log-spaced."""
    return np.exp(np.linspace(math.log(ENERGY_MIN_MEV), math.log(ENERGY_MAX_MEV), N_ENERGIES))


# ----------------------------------------------------------- Klein-Nishina
def klein_nishina_cross_section_cm2(energy_mev: ArrayLike) -> NDArray[np.float64]:
    """Klein-Nishina total cross section per free electron (cm^2).

    Klein & Nishina, Z Phys 52:853-868 (1929); form of Evans (1955), eq. 23.2:
    ``2 pi r_e^2 {(1+k)/k^2 [2(1+k)/(1+2k) - ln(1+2k)/k] + ln(1+2k)/(2k)
    - (1+3k)/(1+2k)^2}`` with ``k = E / m_e c^2``.
    """
    k = np.asarray(energy_mev, dtype=float) / ELECTRON_REST_MEV
    lg = np.log1p(2 * k)
    s = (1 + k) / k**2 * (2 * (1 + k) / (1 + 2 * k) - lg / k) + lg / (2 * k)
    s = s - (1 + 3 * k) / (1 + 2 * k) ** 2
    return np.asarray(2 * math.pi * CLASSICAL_ELECTRON_RADIUS_CM**2 * s, dtype=float)


def klein_nishina_transfer_cross_section_cm2(energy_mev: ArrayLike) -> NDArray[np.float64]:
    """Klein-Nishina energy-transfer cross section per electron (cm^2).

    ``sigma_tr = sigma * <T>/E``: closed form of Evans (1955), ch. 23, eq. 4.12, as
    printed in Attix (1986), eq. 7.13::

        2 pi r_e^2 [ 2(1+k)^2 / (k^2 (1+2k)) - (1+3k)/(1+2k)^2
                     - (1+k)(2k^2-2k-1) / (k^2 (1+2k)^2) - 4k^2 / (3 (1+2k)^3)
                     - ((1+k)/k^3 - 1/(2k) + 1/(2k^3)) ln(1+2k) ]
    """
    k = np.asarray(energy_mev, dtype=float) / ELECTRON_REST_MEV
    a = 1 + 2 * k
    s = (
        2 * (1 + k) ** 2 / (k**2 * a)
        - (1 + 3 * k) / a**2
        - (1 + k) * (2 * k**2 - 2 * k - 1) / (k**2 * a**2)
        - 4 * k**2 / (3 * a**3)
        - ((1 + k) / k**3 - 1 / (2 * k) + 1 / (2 * k**3)) * np.log(a)
    )
    return np.asarray(2 * math.pi * CLASSICAL_ELECTRON_RADIUS_CM**2 * s, dtype=float)


def klein_nishina_mean_transfer_fraction(energy_mev: ArrayLike) -> NDArray[np.float64]:
    """Mean fraction of the photon energy given to the electron, ``sigma_tr / sigma``."""
    e = np.asarray(energy_mev, dtype=float)
    return klein_nishina_transfer_cross_section_cm2(e) / klein_nishina_cross_section_cm2(e)


def klein_nishina_dcs_cm2_sr(energy_mev: float, cos_theta: ArrayLike) -> NDArray[np.float64]:
    """Klein-Nishina differential cross section d(sigma)/d(Omega) per electron (cm^2/sr).

    ``r_e^2/2 P^2 (P + 1/P - sin^2 theta)`` with ``P = E'/E = 1/(1 + k(1 - cos theta))``
    (Klein & Nishina 1929; Evans 1955 eq. 23.1).
    """
    c = np.asarray(cos_theta, dtype=float)
    p = 1.0 / (1.0 + energy_mev / ELECTRON_REST_MEV * (1.0 - c))
    return np.asarray(
        0.5 * CLASSICAL_ELECTRON_RADIUS_CM**2 * p**2 * (p + 1.0 / p - (1.0 - c**2)), dtype=float
    )


# ------------------------------------------------------------- per material
@dataclass(frozen=True)
class MaterialCrossSections:
    """Tabulated coefficients of one material on :func:`energy_grid_mev` (cm^2/g)."""

    name: str
    energy_mev: NDArray[np.float64]
    photoelectric_cm2_g: NDArray[np.float64]
    compton_cm2_g: NDArray[np.float64]
    rayleigh_cm2_g: NDArray[np.float64]
    mu_en_cm2_g: NDArray[np.float64]
    rayleigh_x2: NDArray[np.float64]
    """Squared momentum transfer grid (1/Angstrom^2) of the form-factor integral."""
    rayleigh_cumulative: NDArray[np.float64]
    """``integral_0^{x^2} F^2 d(x^2)`` (arbitrary units), increasing."""

    @property
    def total_cm2_g(self) -> NDArray[np.float64]:
        """Total mass attenuation coefficient without pair production (cm^2/g)."""
        return self.photoelectric_cm2_g + self.compton_cm2_g + self.rayleigh_cm2_g

    def at(self, quantity: str, energy_mev: ArrayLike) -> NDArray[np.float64]:
        """Interpolate ``quantity`` (an attribute name ending in ``_cm2_g``) as the kernels do."""
        table = np.asarray(getattr(self, quantity), dtype=float)
        return np.asarray(np.interp(np.log(energy_mev), np.log(self.energy_mev), table))


def _mix(func_name: str, zs: Sequence[int], ws: Sequence[float], e_kev: float) -> float:
    import xraylib

    func = getattr(xraylib, func_name)
    return float(sum(w * func(int(z), float(e_kev)) for z, w in zip(zs, ws, strict=True)))


@lru_cache(maxsize=64)
def material_cross_sections(medium: Material | str) -> MaterialCrossSections:
    """Tabulate the coefficients of ``medium`` (a :class:`Material` or a medium name).

    Mixture rule: mass-fraction-weighted sums of elemental xraylib values (the same
    rule as ``xraylib.CS_*_CP``).  Cached per material.
    """
    import xraylib

    mat = material(medium) if isinstance(medium, str) else medium
    zs, ws = mat.atomic_numbers, mat.mass_fractions
    if not zs or abs(sum(ws) - 1.0) > 0.02:
        raise InvalidInputError(f"material {mat.name!r}: mass fractions must add up to 1")
    e = energy_grid_mev()
    low = e <= XRAYLIB_MAX_MEV
    photo = np.zeros_like(e)
    compt = np.zeros_like(e)
    rayl = np.zeros_like(e)
    for i in np.flatnonzero(low):
        kev = e[i] * 1e3
        photo[i] = _mix("CS_Photo", zs, ws, kev)
        compt[i] = _mix("CS_Compt", zs, ws, kev)
        rayl[i] = _mix("CS_Rayl", zs, ws, kev)
    high = ~low
    if np.any(high):
        e1, e2 = 0.7 * XRAYLIB_MAX_MEV, XRAYLIB_MAX_MEV
        for arr, name in ((photo, "CS_Photo"), (rayl, "CS_Rayl")):
            v1, v2 = _mix(name, zs, ws, e1 * 1e3), _mix(name, zs, ws, e2 * 1e3)
            slope = math.log(v2 / v1) / math.log(e2 / e1)
            arr[high] = v2 * (e[high] / e2) ** slope
        electrons_per_g = AVOGADRO_PER_MOL * sum(
            w * z / xraylib.AtomicWeight(int(z)) for z, w in zip(zs, ws, strict=True)
        )
        compt[high] = electrons_per_g * klein_nishina_cross_section_cm2(e[high])
    mu_en = photo + compt * klein_nishina_mean_transfer_fraction(e)
    x = np.concatenate(([0.0], np.geomspace(1e-3, _RAYLEIGH_X_MAX, _RAYLEIGH_N_X - 1)))
    f2 = np.zeros_like(x)
    for z, w in zip(zs, ws, strict=True):
        ff = np.array([xraylib.FF_Rayl(int(z), float(v)) for v in x])
        f2 += w / xraylib.AtomicWeight(int(z)) * ff**2
    x2 = x**2
    cum = np.concatenate(([0.0], np.cumsum(0.5 * (f2[1:] + f2[:-1]) * np.diff(x2))))
    return MaterialCrossSections(
        name=mat.name,
        energy_mev=e,
        photoelectric_cm2_g=photo,
        compton_cm2_g=compt,
        rayleigh_cm2_g=rayl,
        mu_en_cm2_g=mu_en,
        rayleigh_x2=x2,
        rayleigh_cumulative=cum,
    )


# ------------------------------------------------------- kernel-ready stack
@dataclass(frozen=True)
class PhotonTables:
    """Coefficients of several materials stacked for the kernels: arrays ``[material, energy]``."""

    material_names: tuple[str, ...]
    log_energy_min: float
    """ln of the first grid energy (MeV)."""
    inv_dlog_energy: float
    """1 / (ln-energy step of the grid)."""
    photoelectric_cm2_g: NDArray[np.float64]
    compton_cm2_g: NDArray[np.float64]
    rayleigh_cm2_g: NDArray[np.float64]
    total_cm2_g: NDArray[np.float64]
    mu_en_cm2_g: NDArray[np.float64]
    rayleigh_x2: NDArray[np.float64]
    """Shared grid of squared momentum transfer (1/Angstrom^2)."""
    rayleigh_cumulative: NDArray[np.float64]
    """``[material, x2]`` integral of the squared form factor."""


@lru_cache(maxsize=16)
def photon_tables(materials: tuple[Material | str, ...]) -> PhotonTables:
    """Stack :func:`material_cross_sections` of ``materials`` (index = material index)."""
    if not materials:
        raise InvalidInputError("at least one material is needed for photon transport")
    per = [material_cross_sections(m) for m in materials]
    e = per[0].energy_mev
    return PhotonTables(
        material_names=tuple(p.name for p in per),
        log_energy_min=float(math.log(e[0])),
        inv_dlog_energy=float((e.size - 1) / (math.log(e[-1]) - math.log(e[0]))),
        photoelectric_cm2_g=np.stack([p.photoelectric_cm2_g for p in per]),
        compton_cm2_g=np.stack([p.compton_cm2_g for p in per]),
        rayleigh_cm2_g=np.stack([p.rayleigh_cm2_g for p in per]),
        total_cm2_g=np.stack([p.total_cm2_g for p in per]),
        mu_en_cm2_g=np.stack([p.mu_en_cm2_g for p in per]),
        rayleigh_x2=per[0].rayleigh_x2.copy(),
        rayleigh_cumulative=np.stack([p.rayleigh_cumulative for p in per]),
    )
