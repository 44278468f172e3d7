"""Electron stopping powers, CSDA ranges and electron point kernels (our own Monte Carlo).

Stopping powers
---------------
* Collision stopping power: Bethe formula for electrons with the Moller
  term ``F^-(tau)`` and the density-effect correction ``delta``, as written in
  ICRU Report 37 (1984), "Stopping Powers for Electrons and Positrons"
  (chapter 2); ``2*pi*r_e^2*m c^2*N_A = 0.153537 MeV cm^2/mol`` (CODATA 2018
  constants).  ``delta`` from the general formula of Sternheimer & Peierls,
  Phys Rev B 3:3681 (1971) (``X0``, ``X1``, ``a``, ``m = 3`` from the plasma
  energy ``28.816 sqrt(rho Z/A) eV`` and ``I``), evaluated at the NIST density
  of the compound (what ESTAR does), not at the dose density.
* Mean excitation energies ``I``: ICRU Report 37 values as used by NIST ESTAR
  (``resources/dose/mean_excitation_energies.json``; water 75.0 eV).
  Compositions: :mod:`dosimetry_core.physics.materials` (NIST via xraylib).
* Radiative stopping power: the Bethe-Heitler form
  ``S_rad/rho = alpha r_e^2 N_A sum_i w_i Z_i(Z_i+1)/A_i (T + m c^2) B_r(T)``
  with the slowly varying scaled cross section ``B_r`` = 16/3 (T << m c^2),
  6 (1 MeV), 12 (10 MeV), 15 (100 MeV) interpolated in ``ln T`` (Attix,
  "Introduction to Radiological Physics and Radiation Dosimetry", Wiley 1986,
  section 8.III and fig. 8.9; ``Z(Z+1)`` instead of ``Z^2`` adds
  electron-electron bremsstrahlung approximately, as in ICRU 37).  Accuracy
  about 5-15 % against ESTAR; it only decides the small radiated fraction.
* CSDA range: ``integral dE / S_tot`` from 1 keV, plus the range below 1 keV
  from a local power law of the stopping power.

Measured against NIST ESTAR, liquid water: S_col within 1 % from 10 keV to
10 MeV, CSDA range within 1.5 % from 10 keV to 10 MeV (see the tests).

Monte Carlo of electrons (point kernels)
----------------------------------------
Class II condensed history in an infinite homogeneous medium, in mass
thickness (kernels scale with density as ``r_mm = r_g_cm2 * 10 / rho``):

* collisions transferring more than ``W_CUT_MEV`` = 10 keV are sampled one by
  one from the Moller cross section (C. Moller, Ann Phys 14:531, 1932); the
  delta rays are transported like primaries (free-electron kinematics).  This
  gives energy-loss straggling from hard collisions and the transport of
  energetic secondaries (the class II scheme of EGS4: Nelson, Hirayama &
  Rogers, SLAC-265, 1985).  Softer collisions and bremsstrahlung are a
  continuous loss with the restricted collision stopping power of ICRU 37
  (the restricted form with ``F^-(tau, Delta)`` for electrons); the soft-collision
  straggling is neglected;
* continuous-loss steps on a logarithmic energy grid ``E -> 0.96 E`` (the
  ETRAN scheme of M. J. Berger, "Monte Carlo calculation of the penetration
  and diffusion of fast charged particles", Methods in Computational Physics
  1:135, 1963), shortened at each hard collision;
* multiple elastic scattering: for each step the exact Goudsmit-Saunderson
  first moment ``<cos theta> = exp(-integral ds/lambda_1)`` (Goudsmit &
  Saunderson, Phys Rev 57:24, 1940) with the transport mean free path
  ``lambda_1`` of the screened Rutherford cross section with Moliere's
  screening parameter ``eta = (1/4)(alpha Z^(1/3)/(0.885 beta gamma))^2
  (1.13 + 3.76 (alpha Z/beta)^2)`` (G. Moliere, Z Naturforsch 2a:133, 1947;
  as used in EGS4, Nelson, Hirayama & Rogers, SLAC-265, 1985) and ``Z(Z+1)``
  for scattering on atomic electrons; the deflection is sampled from a
  Wentzel (screened Rutherford) shaped distribution whose screening
  parameter reproduces that first moment (the simple Wentzel model discussed
  by Fernandez-Varea, Mayol, Baro & Salvat, Nucl Instrum Meth B 73:447, 1993);
* random-hinge displacement (Fernandez-Varea et al. 1993; PENELOPE);
* the continuous collision loss of a step is scored at a random point of the
  step in fine radial shells (equal widths up to 1.1 x the CSDA range of the
  highest source energy); the radiative loss escapes (bremsstrahlung is not
  transported here; it belongs to the photon kernel) and is recorded in
  ``PointKernel.escaped_fraction``.  Electrons are followed down to 1 keV;
  the rest is absorbed where they stop.
* positrons (beta+) are transported as electrons (same stopping power and
  scattering; the difference is a few per cent); annihilation photons are
  photons and not part of this kernel.

Source of a nuclide: the ICRP-107 beta spectrum (density per MeV times the
beta yield) plus the discrete "IE" (internal conversion) and "auger" lines of
:func:`dosimetry_core.physics.nuclides.emission_lines`.  Energies are sampled
energy-weighted (probability proportional to ``E * yield``) and each history
scores the fraction of its own energy, so the kernel is the fraction of the
emitted electron energy per shell.  Alpha particles are not included.

Known limitations: no straggling from soft collisions (< 10 keV transfers), no
bremsstrahlung transport (the photon kernel's job), binding effects in hard
collisions neglected, Born-approximation elastic cross sections (screened
Rutherford; less accurate below ~50 keV, where ranges are far below clinical
voxel sizes), positrons treated as electrons.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dosimetry_core.dose import _electron_mc
from dosimetry_core.dose.point_kernels import PointKernel
from dosimetry_core.errors import InvalidInputError
from dosimetry_core.physics import nuclides
from dosimetry_core.physics.materials import material, normalize_medium
from dosimetry_core.progress import CancelCheck, ProgressCallback, check_cancel, report
from dosimetry_core.resources import resource_path

ELECTRON_MASS_MEV = 0.51099895000
"""Electron rest energy m c^2 in MeV (CODATA 2018)."""
_R_E_CM = 2.8179403262e-13
_N_A = 6.02214076e23
_ALPHA = 7.2973525693e-3
_K_BETHE = 2.0 * np.pi * _R_E_CM**2 * ELECTRON_MASS_MEV * _N_A
"""2 pi r_e^2 m c^2 N_A = 0.153537 MeV cm^2/mol."""

E_MIN_MEV = 1e-3
"""Lowest energy of the tables (Bethe theory is not valid much below 1 keV)."""
E_MAX_MEV = 100.0
"""Highest energy of the tables."""

W_CUT_MEV = 0.01
"""Energy transfer above which collisions are simulated one by one (delta rays)."""
_TABLE_POINTS = 3000
_STEP_RATIO = 0.96
_N_CHUNKS = 64
_DEFAULT_SHELLS = 400
_RANGE_MARGIN = 1.1

_IVALUE_FILE = resource_path("dose", "mean_excitation_energies.json")

# Attix (1986) fig. 8.9: scaled radiative cross section B_r versus kinetic energy.
_BR_T_MEV = np.array([1e-3, 0.1, 1.0, 10.0, 100.0])
_BR_VALUES = np.array([16.0 / 3.0, 16.0 / 3.0, 6.0, 12.0, 15.0])


@dataclass(frozen=True)
class _Medium:
    name: str
    i_ev: float
    z_over_a: float
    zz1_over_a: float
    nist_density_g_cm3: float
    nominal_density_g_cm3: float
    z: tuple[int, ...]
    w_over_a: tuple[float, ...]
    gas: bool


@lru_cache(maxsize=1)
def _ivalues() -> dict[str, float]:
    with open(_IVALUE_FILE, encoding="utf-8") as f:
        data = json.load(f)
    return {k: float(v["i_ev"]) for k, v in data["media"].items()}


@lru_cache(maxsize=16)
def _medium(name: str) -> _Medium:
    import xraylib

    key = normalize_medium(name)
    mat = material(key)
    ivals = _ivalues()
    if key not in ivals:
        raise InvalidInputError(f"no mean excitation energy for medium {key!r}")
    a = [xraylib.AtomicWeight(z) for z in mat.atomic_numbers]
    w_over_a = tuple(w / ai for w, ai in zip(mat.mass_fractions, a, strict=True))
    nist_density = float(xraylib.GetCompoundDataNISTByName(mat.nist_name)["density"])
    return _Medium(
        name=key,
        i_ev=ivals[key],
        z_over_a=float(sum(wa * z for wa, z in zip(w_over_a, mat.atomic_numbers, strict=True))),
        zz1_over_a=float(
            sum(wa * z * (z + 1) for wa, z in zip(w_over_a, mat.atomic_numbers, strict=True))
        ),
        nist_density_g_cm3=nist_density,
        nominal_density_g_cm3=mat.density_g_cm3,
        z=mat.atomic_numbers,
        w_over_a=w_over_a,
        gas=nist_density < 0.01,
    )


def _energies(energy_mev: ArrayLike) -> NDArray[np.float64]:
    e = np.asarray(energy_mev, dtype=float)
    if not np.all(np.isfinite(e)) or np.any(e < E_MIN_MEV) or np.any(e > E_MAX_MEV):
        raise InvalidInputError(
            f"electron kinetic energy must lie in [{E_MIN_MEV}, {E_MAX_MEV}] MeV"
        )
    return e


def _density_effect(m: _Medium, tau: NDArray[np.float64]) -> NDArray[np.float64]:
    """Sternheimer & Peierls (1971) general formula for delta."""
    hw_p_ev = 28.816 * np.sqrt(m.nist_density_g_cm3 * m.z_over_a)
    c_bar = 1.0 + 2.0 * np.log(m.i_ev / hw_p_ev)
    if m.gas:
        table = (
            (10.0, 1.6, 4.0),
            (10.5, 1.7, 4.0),
            (11.0, 1.8, 4.0),
            (11.5, 1.9, 4.0),
            (12.25, 2.0, 4.0),
            (13.804, 2.0, 5.0),
        )
        x0, x1 = 0.326 * c_bar - 2.5, 5.0
        for limit, t_x0, t_x1 in table:
            if c_bar < limit:
                x0, x1 = t_x0, t_x1
                break
    elif m.i_ev < 100.0:
        x1 = 2.0
        x0 = 0.2 if c_bar < 3.681 else 0.326 * c_bar - 1.0
    else:
        x1 = 3.0
        x0 = 0.2 if c_bar < 5.215 else 0.326 * c_bar - 1.5
    a = (c_bar - 4.606 * x0) / (x1 - x0) ** 3
    x = np.log10(np.sqrt(tau * (tau + 2.0)))
    delta = np.where(x >= x1, 4.606 * x - c_bar, 4.606 * x - c_bar + a * (x1 - x) ** 3)
    return np.where(x < x0, 0.0, delta)


def _s_col(m: _Medium, e: NDArray[np.float64]) -> NDArray[np.float64]:
    tau = e / ELECTRON_MASS_MEV
    beta2 = tau * (tau + 2.0) / (tau + 1.0) ** 2
    i_rel = m.i_ev * 1e-6 / ELECTRON_MASS_MEV
    f_minus = 1.0 - beta2 + (tau**2 / 8.0 - (2.0 * tau + 1.0) * np.log(2.0)) / (tau + 1.0) ** 2
    bracket = np.log(tau**2 * (tau + 2.0) / (2.0 * i_rel**2)) + f_minus
    bracket = bracket - _density_effect(m, tau)
    return _K_BETHE * m.z_over_a / beta2 * bracket


def _s_col_restricted(m: _Medium, e: NDArray[np.float64], w_cut_mev: float) -> NDArray[np.float64]:
    """Collision stopping power for energy transfers below ``w_cut_mev`` (ICRU 37, 1984).

    Equals :func:`_s_col` when ``w_cut_mev >= e/2`` (the largest transfer between two
    electrons, the faster one being called the primary).
    """
    tau = e / ELECTRON_MASS_MEV
    beta2 = tau * (tau + 2.0) / (tau + 1.0) ** 2
    i_rel = m.i_ev * 1e-6 / ELECTRON_MASS_MEV
    dlt = np.minimum(w_cut_mev / ELECTRON_MASS_MEV, tau / 2.0)
    f = (
        -1.0
        - beta2
        + np.log((tau - dlt) * dlt)
        + tau / (tau - dlt)
        + (dlt**2 / 2.0 + (2.0 * tau + 1.0) * np.log(1.0 - dlt / tau)) / (tau + 1.0) ** 2
    )
    bracket = np.log(2.0 * (tau + 2.0) / i_rel**2) + f - _density_effect(m, tau)
    return _K_BETHE * m.z_over_a / beta2 * bracket


def _moller_sigma_cm2_g(
    m: _Medium, e: NDArray[np.float64], w_cut_mev: float
) -> NDArray[np.float64]:
    """Macroscopic Moller cross section (cm^2/g) for energy transfers in [w_cut, e/2].

    Integral of the Moller (1932) cross section
    ``2 pi r_e^2 m c^2 / (beta^2 T) [1/eps^2 + 1/(1-eps)^2 + (tau/(tau+1))^2
    - (2 tau + 1)/(tau + 1)^2 / (eps (1 - eps))]`` over ``eps = W/T``.
    """
    tau = e / ELECTRON_MASS_MEV
    beta2 = tau * (tau + 2.0) / (tau + 1.0) ** 2
    eps_c = np.minimum(w_cut_mev / e, 0.5)
    c1 = (tau / (tau + 1.0)) ** 2
    c2 = (2.0 * tau + 1.0) / (tau + 1.0) ** 2
    integral = (
        1.0 / eps_c - 1.0 / (1.0 - eps_c) + c1 * (0.5 - eps_c) + c2 * np.log(eps_c / (1.0 - eps_c))
    )
    return np.maximum(_K_BETHE * m.z_over_a / (beta2 * e) * integral, 0.0)


def _s_rad(m: _Medium, e: NDArray[np.float64]) -> NDArray[np.float64]:
    b_r = np.interp(np.log(e), np.log(_BR_T_MEV), _BR_VALUES)
    return _ALPHA * _R_E_CM**2 * _N_A * m.zz1_over_a * (e + ELECTRON_MASS_MEV) * b_r


def collision_stopping_power_mev_cm2_g(energy_mev: ArrayLike, medium: str) -> NDArray[np.float64]:
    """Mass collision stopping power of electrons, MeV cm^2/g (ICRU 37 Bethe formula).

    Parameters
    ----------
    energy_mev : kinetic energy in MeV, 1 keV to 100 MeV (scalar or array).
    medium : a medium of :mod:`dosimetry_core.physics.materials` (e.g. ``"water"``).
    """
    return np.asarray(_s_col(_medium(medium), _energies(energy_mev)), dtype=float)


def radiative_stopping_power_mev_cm2_g(energy_mev: ArrayLike, medium: str) -> NDArray[np.float64]:
    """Mass radiative stopping power of electrons, MeV cm^2/g (Attix 1986 approximation)."""
    return np.asarray(_s_rad(_medium(medium), _energies(energy_mev)), dtype=float)


@dataclass(frozen=True)
class _Tables:
    """Cumulative quantities on a uniform ln(E) grid from E_MIN_MEV to E_MAX_MEV."""

    ln_e0: float
    d_ln_e: float
    energy_mev: NDArray[np.float64]
    range_g_cm2: NDArray[np.float64]
    t1: NDArray[np.float64]
    """integral of ds / lambda_1 from E_MIN to E (dimensionless)."""
    erad_mev: NDArray[np.float64]
    """Energy radiated while slowing down from E to E_MIN, MeV."""
    restricted_range_g_cm2: NDArray[np.float64]
    """As ``range_g_cm2``, ``t1`` and ``erad_mev`` but with the restricted stopping power
    (collisions below W_CUT_MEV) used by the class II Monte Carlo."""
    restricted_t1: NDArray[np.float64]
    restricted_erad_mev: NDArray[np.float64]
    sigma_hard_cm2_g: NDArray[np.float64]
    sigma_majorant_cm2_g: NDArray[np.float64]


def _inv_transport_mfp_cm2_g(m: _Medium, e: NDArray[np.float64]) -> NDArray[np.float64]:
    """1/lambda_1 (cm^2/g) of the screened Rutherford cross section, Moliere screening."""
    tau = e / ELECTRON_MASS_MEV
    beta2 = tau * (tau + 2.0) / (tau + 1.0) ** 2
    pv_mev = e * (e + 2.0 * ELECTRON_MASS_MEV) / (e + ELECTRON_MASS_MEV)
    bg = np.sqrt(tau * (tau + 2.0))
    total = np.zeros_like(e)
    for z, wa in zip(m.z, m.w_over_a, strict=True):
        eta = (
            0.25
            * (_ALPHA * z ** (1.0 / 3.0) / (0.885 * bg)) ** 2
            * (1.13 + 3.76 * (_ALPHA * z) ** 2 / beta2)
        )
        log_term = np.log1p(1.0 / eta) - 1.0 / (1.0 + eta)
        total += wa * z * (z + 1.0) * log_term
    return 2.0 * np.pi * _N_A * _R_E_CM**2 * (ELECTRON_MASS_MEV / pv_mev) ** 2 * total


@lru_cache(maxsize=16)
def _tables(medium: str) -> _Tables:
    m = _medium(medium)
    ln_e = np.linspace(np.log(E_MIN_MEV), np.log(E_MAX_MEV), _TABLE_POINTS)
    e = np.exp(ln_e)
    s_col = _s_col(m, e)
    s_rad = _s_rad(m, e)
    s_tot = s_col + s_rad
    d = ln_e[1] - ln_e[0]

    def cumulative(integrand_per_ln_e: NDArray[np.float64]) -> NDArray[np.float64]:
        out = np.zeros_like(integrand_per_ln_e)
        out[1:] = np.cumsum(0.5 * (integrand_per_ln_e[1:] + integrand_per_ln_e[:-1]) * d)
        return out

    # range below E_MIN from a local power law S ~ E^-p: R(E_MIN) = E_MIN / ((1 + p) S)
    p = -(np.log(s_tot[1]) - np.log(s_tot[0])) / d
    r0 = E_MIN_MEV / ((1.0 + p) * s_tot[0])
    rng = r0 + cumulative(e / s_tot)
    inv_l1 = _inv_transport_mfp_cm2_g(m, e)
    l_tot = _s_col_restricted(m, e, W_CUT_MEV) + s_rad
    sigma = _moller_sigma_cm2_g(m, e, W_CUT_MEV)
    # majorant over one energy step [STEP_RATIO * E, E], with a 2 % margin for interpolation
    window = int(np.ceil(-np.log(_STEP_RATIO) / d)) + 2
    padded = np.concatenate([np.zeros(window), sigma])
    majorant = 1.02 * np.max(
        np.lib.stride_tricks.sliding_window_view(padded, window + 1)[: sigma.size], axis=1
    )
    return _Tables(
        ln_e0=float(ln_e[0]),
        d_ln_e=float(d),
        energy_mev=e,
        range_g_cm2=rng,
        t1=cumulative(e / s_tot * inv_l1),
        erad_mev=cumulative(e * s_rad / s_tot),
        restricted_range_g_cm2=r0 + cumulative(e / l_tot),
        restricted_t1=cumulative(e / l_tot * inv_l1),
        restricted_erad_mev=cumulative(e * s_rad / l_tot),
        sigma_hard_cm2_g=sigma,
        sigma_majorant_cm2_g=majorant,
    )


def csda_range_g_cm2(energy_mev: ArrayLike, medium: str) -> NDArray[np.float64]:
    """CSDA range of electrons, g/cm^2: integral of dE / S_tot (ICRU 37 definition)."""
    e = _energies(energy_mev)
    t = _tables(medium)
    return np.asarray(np.interp(np.log(e), np.log(t.energy_mev), t.range_g_cm2), dtype=float)


@lru_cache(maxsize=1)
def _wentzel_inverse() -> tuple[float, float, NDArray[np.float64], float]:
    """Table of ln A versus ln <mu> for the Wentzel distribution p(mu) = A(1+A)/(mu+A)^2.

    ``<mu> = A((1+A) ln(1+1/A) - 1)`` increases from 0 to 1/2; returns
    (ln_mu0, d_ln_mu, ln_a_table, mu_max).
    """
    ln_a = np.linspace(np.log(1e-12), np.log(1e4), 40000)
    a = np.exp(ln_a)
    mu = a * ((1.0 + a) * np.log1p(1.0 / a) - 1.0)
    ln_mu = np.log(mu)
    grid = np.linspace(ln_mu[0], ln_mu[-1], 20000)
    ln_a_of_mu = np.interp(grid, ln_mu, ln_a)
    return float(grid[0]), float(grid[1] - grid[0]), ln_a_of_mu, float(mu[-1])


@dataclass(frozen=True)
class _Source:
    cdf: NDArray[np.float64]
    e_lo: NDArray[np.float64]
    e_hi: NDArray[np.float64]
    e_max_mev: float


def _mono_source(energy_mev: float) -> _Source:
    e = np.array([float(energy_mev)])
    return _Source(cdf=np.ones(1), e_lo=e, e_hi=e.copy(), e_max_mev=float(energy_mev))


ELECTRON_EMISSIONS = ("beta", "IE", "auger")
"""Electron emissions of ICRP-107 used by default: beta spectra, internal conversion, Auger."""


def _check_emissions(emissions: Sequence[str]) -> tuple[str, ...]:
    kinds = tuple(dict.fromkeys(emissions))
    bad = [k for k in kinds if k not in ELECTRON_EMISSIONS]
    if bad or not kinds:
        raise InvalidInputError(
            f"electron emissions must be among {', '.join(ELECTRON_EMISSIONS)}, got {emissions!r}"
        )
    return kinds


def electron_emission_energy_mev(
    nuclide: str, emissions: Sequence[str] = ELECTRON_EMISSIONS
) -> float:
    """Mean electron energy per decay (MeV) of the chosen ICRP-107 emissions."""
    kinds = _check_emissions(emissions)
    total = 0.0
    icrp = {"beta": ("beta-", "beta+"), "IE": ("IE",), "auger": ("auger",)}
    for k in kinds:
        for kind in icrp[k]:
            try:
                e, y = nuclides.emission_lines(nuclide, kind)
            except InvalidInputError:
                continue
            total += float(np.sum(e * y))
    return total


def _nuclide_source(nuclide: str, emissions: Sequence[str] = ELECTRON_EMISSIONS) -> _Source | None:
    """Energy-weighted sampling table of the electron emissions of ``nuclide``."""
    kinds = _check_emissions(emissions)
    weights: list[NDArray[np.float64]] = []
    lo: list[NDArray[np.float64]] = []
    hi: list[NDArray[np.float64]] = []
    e_spec, dens = nuclides.beta_spectrum(nuclide)
    beta_yield = 0.0
    for kind in ("beta-", "beta+") if "beta" in kinds else ():
        try:
            _, y = nuclides.emission_lines(nuclide, kind)
        except InvalidInputError:
            continue
        beta_yield += float(y.sum())
    if e_spec.size >= 2 and beta_yield > 0:
        ed = e_spec * dens
        weights.append(beta_yield * 0.5 * (ed[1:] + ed[:-1]) * np.diff(e_spec))
        lo.append(e_spec[:-1])
        hi.append(e_spec[1:])
    for kind in [k for k in ("IE", "auger") if k in kinds]:
        try:
            e_l, y_l = nuclides.emission_lines(nuclide, kind)
        except InvalidInputError:
            continue
        weights.append(e_l * y_l)
        lo.append(e_l)
        hi.append(e_l)
    if not weights:
        return None
    w = np.concatenate(weights)
    e_lo = np.concatenate(lo)
    e_hi = np.concatenate(hi)
    keep = w > 0
    if not np.any(keep):
        return None
    w, e_lo, e_hi = w[keep], e_lo[keep], e_hi[keep]
    cdf = np.cumsum(w) / w.sum()
    cdf[-1] = 1.0
    return _Source(cdf=cdf, e_lo=e_lo, e_hi=e_hi, e_max_mev=float(e_hi.max()))


def _check_run_args(histories: int, density_g_cm3: float | None, medium: str) -> float:
    if int(histories) < 1:
        raise InvalidInputError("histories must be a positive integer")
    m = _medium(medium)
    rho = m.nominal_density_g_cm3 if density_g_cm3 is None else float(density_g_cm3)
    if not np.isfinite(rho) or rho <= 0:
        raise InvalidInputError(f"density must be positive, got {density_g_cm3!r} g/cm^3")
    return rho


def _run(
    source: _Source,
    medium: str,
    density_g_cm3: float,
    histories: int,
    seed: int,
    n_shells: int,
    progress: ProgressCallback | None,
    cancel: CancelCheck | None,
) -> tuple[NDArray[np.float64], NDArray[np.float64], float, float]:
    """Run the MC; return (r_edges_mm, fraction, escaped, radiated)."""
    tab = _tables(medium)
    ln_mu0, d_ln_mu, ln_a_tab, mu_max = _wentzel_inverse()
    e_top = min(max(source.e_max_mev, E_MIN_MEV), E_MAX_MEV)
    r_max_g_cm2 = _RANGE_MARGIN * float(csda_range_g_cm2(e_top, medium))
    dr_g_cm2 = r_max_g_cm2 / n_shells
    n_batches = max(1, min(20, histories // 20000))
    per_batch = -(-histories // n_batches)
    shell = np.zeros(n_shells)
    escaped = 0.0
    radiated = 0.0
    done = 0
    seed_u = np.uint64(int(seed) & 0xFFFFFFFFFFFFFFFF)
    report(progress, 0.0, "electron transport")
    for _ in range(n_batches):
        check_cancel(cancel)
        n = min(per_batch, histories - done)
        if n <= 0:
            break
        s, esc, rad = _electron_mc.transport_chunks(
            seed_u,
            done,
            n,
            _N_CHUNKS,
            source.cdf,
            source.e_lo,
            source.e_hi,
            tab.ln_e0,
            tab.d_ln_e,
            tab.restricted_range_g_cm2,
            tab.restricted_t1,
            tab.restricted_erad_mev,
            tab.sigma_hard_cm2_g,
            tab.sigma_majorant_cm2_g,
            W_CUT_MEV,
            ELECTRON_MASS_MEV,
            ln_mu0,
            d_ln_mu,
            ln_a_tab,
            mu_max,
            E_MIN_MEV,
            _STEP_RATIO,
            dr_g_cm2,
            n_shells,
        )
        shell += s.sum(axis=0)
        escaped += float(esc.sum())
        radiated += float(rad.sum())
        done += n
        report(progress, done / histories, f"electron transport: {done}/{histories} histories")
    r_edges_mm = np.arange(n_shells + 1, dtype=np.float64) * (dr_g_cm2 * 10.0 / density_g_cm3)
    return r_edges_mm, shell / histories, escaped / histories, radiated / histories


def monoenergetic_electron_point_kernel(
    energy_mev: float,
    medium: str = "soft-tissue",
    *,
    density_g_cm3: float | None = None,
    histories: int = 100_000,
    seed: int = 0,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
    n_shells: int = _DEFAULT_SHELLS,
) -> PointKernel:
    """Point kernel of monoenergetic electrons from our condensed-history Monte Carlo.

    Parameters
    ----------
    energy_mev : initial kinetic energy, MeV (1 keV - 100 MeV).
    medium : reference medium name (:mod:`dosimetry_core.physics.materials`).
    density_g_cm3 : density used to convert mass thickness to mm (default: the
        medium's nominal density).  The kernel scales as ``r ~ 1/rho``.
    histories, seed : number of electrons and seed (same seed, same result).
    n_shells : number of equal-width shells up to 1.1 x the CSDA range.

    Returns
    -------
    PointKernel with ``energy_mev`` = the electron energy,
    ``escaped_fraction`` = radiated (bremsstrahlung) fraction plus any energy
    beyond the last shell; ``component="electron"``.
    """
    e = float(_energies(energy_mev))
    key = normalize_medium(medium)
    rho = _check_run_args(histories, density_g_cm3, key)
    t0 = time.perf_counter()
    edges, frac, esc, rad = _run(
        _mono_source(e), key, rho, int(histories), seed, int(n_shells), progress, cancel
    )
    return PointKernel(
        r_edges_mm=edges,
        fraction=frac,
        energy_mev=e,
        medium=key,
        density_g_cm3=rho,
        escaped_fraction=esc + rad,
        component="electron",
        description=(
            f"monoenergetic {e:g} MeV electrons, condensed-history MC, {histories} histories, "
            f"seed {seed}; radiated fraction {rad:.4g}, beyond last shell {esc:.3g}; "
            f"{time.perf_counter() - t0:.1f} s"
        ),
    )


def electron_point_kernel(
    nuclide: str,
    medium: str = "soft-tissue",
    *,
    density_g_cm3: float | None = None,
    histories: int = 200_000,
    seed: int = 0,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
    n_shells: int = _DEFAULT_SHELLS,
    emissions: Sequence[str] = ELECTRON_EMISSIONS,
) -> PointKernel:
    """Electron point kernel of a nuclide (ICRP-107 beta spectrum + IE + Auger lines).

    ``emissions`` selects among ``"beta"``, ``"IE"`` (internal conversion) and
    ``"auger"`` (all by default; fewer only to compare with a published kernel
    made from a smaller emission set).  ``energy_mev`` of the result is the mean
    electron energy emitted per decay by those emissions (ICRP-107), and
    ``fraction`` is the fraction of that energy absorbed per shell.  A nuclide
    without electron emissions gives an all-zero kernel with ``energy_mev = 0``.
    Other parameters as :func:`monoenergetic_electron_point_kernel`.
    """
    name = nuclides.normalize_nuclide(nuclide)
    key = normalize_medium(medium)
    rho = _check_run_args(histories, density_g_cm3, key)
    kinds = _check_emissions(emissions)
    energy = (
        nuclides.energy_per_decay(name).electron_mev
        if set(kinds) == set(ELECTRON_EMISSIONS)
        else electron_emission_energy_mev(name, kinds)
    )
    source = _nuclide_source(name, kinds)
    if source is None or energy <= 0:
        return PointKernel(
            r_edges_mm=np.array([0.0, 1e-3]),
            fraction=np.zeros(1),
            energy_mev=0.0,
            medium=key,
            density_g_cm3=rho,
            component="electron",
            description=f"{name}: no electron emissions in ICRP-107",
        )
    t0 = time.perf_counter()
    edges, frac, esc, rad = _run(
        source, key, rho, int(histories), seed, int(n_shells), progress, cancel
    )
    return PointKernel(
        r_edges_mm=edges,
        fraction=frac,
        energy_mev=float(energy),
        medium=key,
        density_g_cm3=rho,
        escaped_fraction=esc + rad,
        component="electron",
        description=(
            f"{name} electrons (ICRP-107: {', '.join(kinds)}), condensed-history "
            f"MC, {histories} histories, seed {seed}; radiated fraction {rad:.4g}, beyond last "
            f"shell {esc:.3g}; {time.perf_counter() - t0:.1f} s"
        ),
    )
