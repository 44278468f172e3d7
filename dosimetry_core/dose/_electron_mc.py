"""Numba kernels of the condensed-history electron Monte Carlo (private).

The physics and the tables are prepared in :mod:`.electron_transport`; this
module only walks histories.  Everything is in mass-thickness units (g/cm^2),
so one run serves every density of the same composition.

Algorithm per history (class II condensed history; Berger 1963 for the
energy grid, the class II scheme as in EGS4, Nelson, Hirayama & Rogers, SLAC-265, 1985):

* the initial energy ``E0`` is sampled from a piecewise-uniform energy-weighted
  source distribution (``cdf``, ``e_lo``, ``e_hi``) and the electron starts at
  the origin along +z (the medium is infinite and homogeneous, so the radial
  kernel does not depend on the initial direction);
* each step lowers the kinetic energy by the fixed ratio ``step_ratio``
  (logarithmic energy grid of ETRAN, Berger 1963); its path length, its
  radiative energy loss and its scattering strength ``integral ds / lambda_1``
  come from cumulative tables on a uniform ``ln E`` grid;
* the angular deflection of a step is drawn from a screened-Rutherford
  (Wentzel) shaped distribution whose parameter is chosen so that the mean
  ``<1 - cos theta>`` equals the Goudsmit-Saunderson value
  ``1 - exp(-integral ds / lambda_1)``;
* spatial displacement uses the random hinge (the deflection happens at a
  uniformly random point of the step);
* collisions transferring more than ``w_cut_mev`` are simulated one by one
  from the Moller cross section (distance to the next one by delta scattering
  against a majorant); the delta ray is put on a stack and transported like
  the primary, and both directions follow free-electron kinematics; softer
  collisions are continuous (restricted stopping power);
* the continuous collision loss of a step is deposited at a uniformly random
  point of the step's two-segment path and scored in radial shells of width
  ``dr_g_cm2``; the radiative loss is counted as escaped.

Random numbers: xorshift64* (Marsaglia 2003; Vigna 2016) seeded per history
with splitmix64 of ``(seed, history index)``, so results do not depend on the
number of threads.  Histories are grouped in ``n_chunks`` fixed chunks, each
with its own score row, and rows are summed in order afterwards.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_XS_MULT = np.uint64(0x2545F4914F6CDD1D)
_U30 = np.uint64(30)
_U27 = np.uint64(27)
_U31 = np.uint64(31)
_U12 = np.uint64(12)
_U25 = np.uint64(25)
_U11 = np.uint64(11)
_INV53 = 1.0 / 9007199254740992.0


@njit(cache=True)
def _splitmix64(x: np.uint64) -> np.uint64:
    z = x + _GOLDEN
    z = (z ^ (z >> _U30)) * _MIX1
    z = (z ^ (z >> _U27)) * _MIX2
    return z ^ (z >> _U31)


@njit(cache=True)
def _next(state: np.uint64) -> tuple[np.uint64, float]:
    """One xorshift64* step: returns (new state, uniform in [0, 1))."""
    x = state
    x ^= x >> _U12
    x ^= x << _U25
    x ^= x >> _U27
    out = x * _XS_MULT
    return x, float(out >> _U11) * _INV53


@njit(cache=True)
def _interp_uniform(x: float, x0: float, dx: float, table: np.ndarray) -> float:
    """Linear interpolation of ``table`` sampled at ``x0 + i*dx`` (clamped)."""
    t = (x - x0) / dx
    n = table.shape[0]
    if t <= 0.0:
        return table[0]
    if t >= n - 1:
        return table[n - 1]
    i = int(t)
    f = t - i
    return table[i] * (1.0 - f) + table[i + 1] * f


@njit(cache=True)
def _sample_source(state: np.uint64, cdf: np.ndarray, e_lo: np.ndarray, e_hi: np.ndarray):
    state, u = _next(state)
    lo = 0
    hi = cdf.shape[0] - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if cdf[mid] < u:
            lo = mid + 1
        else:
            hi = mid
    state, v = _next(state)
    return state, e_lo[lo] + (e_hi[lo] - e_lo[lo]) * v


@njit(cache=True)
def _deflect(ux: float, uy: float, uz: float, cos_t: float, phi: float):
    """Rotate direction (ux, uy, uz) by polar angle acos(cos_t) and azimuth phi."""
    sin_t = np.sqrt(max(0.0, 1.0 - cos_t * cos_t))
    cp = np.cos(phi)
    sp = np.sin(phi)
    rho2 = ux * ux + uy * uy
    if rho2 < 1e-20:
        sgn = 1.0 if uz >= 0.0 else -1.0
        return sin_t * cp, sin_t * sp, sgn * cos_t
    rho = np.sqrt(rho2)
    nx = ux * cos_t + sin_t * (ux * uz * cp - uy * sp) / rho
    ny = uy * cos_t + sin_t * (uy * uz * cp + ux * sp) / rho
    nz = uz * cos_t - sin_t * rho * cp
    norm = np.sqrt(nx * nx + ny * ny + nz * nz)
    return nx / norm, ny / norm, nz / norm


@njit(cache=True)
def _energy_at_range(r: float, ln_e0: float, d_ln_e: float, range_tab: np.ndarray) -> float:
    """Inverse of the (monotone) range table: kinetic energy whose range is ``r``."""
    n = range_tab.shape[0]
    if r <= range_tab[0]:
        return np.exp(ln_e0)
    lo = 0
    hi = n - 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if range_tab[mid] <= r:
            lo = mid
        else:
            hi = mid
    f = (r - range_tab[lo]) / (range_tab[hi] - range_tab[lo])
    return np.exp(ln_e0 + (lo + f) * d_ln_e)


@njit(cache=True)
def _sample_moller(state: np.uint64, e: float, w_cut: float, mc2: float):
    """Energy fraction eps in [w_cut/e, 1/2] of the Moller cross section (Moller 1932).

    Sampled from 1/eps^2 and accepted with eps^2 * (Moller bracket) / 2.25.
    """
    eps_c = w_cut / e
    tau = e / mc2
    c1 = (tau / (tau + 1.0)) ** 2
    c2 = (2.0 * tau + 1.0) / (tau + 1.0) ** 2
    while True:
        state, u = _next(state)
        eps = 1.0 / (1.0 / eps_c - u * (1.0 / eps_c - 2.0))
        r = eps / (1.0 - eps)
        g = 1.0 + r * r + c1 * eps * eps - c2 * r
        state, v = _next(state)
        if 2.25 * v <= g:
            return state, eps


@njit(cache=True, parallel=True)
def transport_chunks(
    seed: np.uint64,
    history_start: int,
    n_histories: int,
    n_chunks: int,
    cdf: np.ndarray,
    e_lo: np.ndarray,
    e_hi: np.ndarray,
    ln_e0: float,
    d_ln_e: float,
    range_tab: np.ndarray,
    t1_tab: np.ndarray,
    erad_tab: np.ndarray,
    sigma_tab: np.ndarray,
    sigma_maj_tab: np.ndarray,
    w_cut_mev: float,
    mc2_mev: float,
    ln_mu0: float,
    d_ln_mu: float,
    ln_a_tab: np.ndarray,
    mu_max: float,
    e_cut_mev: float,
    step_ratio: float,
    dr_g_cm2: float,
    n_bins: int,
):
    """Transport ``n_histories`` electrons (with their delta rays); return per-chunk scores.

    ``range_tab``, ``t1_tab`` and ``erad_tab`` are cumulative functions of the
    restricted stopping power (soft collisions below ``w_cut_mev`` plus radiative);
    ``sigma_tab`` is the macroscopic Moller cross section (cm^2/g) for energy
    transfers above ``w_cut_mev`` and ``sigma_maj_tab`` a majorant of it over one
    step (used with delta-scattering rejection).

    Returns
    -------
    shell : (n_chunks, n_bins) array
        Sum over histories of (collision energy deposited in the shell) / E0.
    escaped : (n_chunks,) array
        Sum over histories of the energy fraction beyond the last shell.
    radiated : (n_chunks,) array
        Sum over histories of the energy fraction lost to bremsstrahlung.
    """
    shell = np.zeros((n_chunks, n_bins))
    escaped = np.zeros(n_chunks)
    radiated = np.zeros(n_chunks)
    per_chunk = (n_histories + n_chunks - 1) // n_chunks
    two_pi = 2.0 * np.pi
    max_stack = 512
    for c in prange(n_chunks):
        stack = np.empty((max_stack, 7))
        h0 = c * per_chunk
        h1 = min(n_histories, h0 + per_chunk)
        for h in range(h0, h1):
            state = _splitmix64(seed ^ _splitmix64(np.uint64(history_start + h)))
            if state == np.uint64(0):
                state = _GOLDEN
            state, e0 = _sample_source(state, cdf, e_lo, e_hi)
            inv_e0 = 1.0 / e0
            stack[0, 0] = 0.0
            stack[0, 1] = 0.0
            stack[0, 2] = 0.0
            stack[0, 3] = 0.0
            stack[0, 4] = 0.0
            stack[0, 5] = 1.0
            stack[0, 6] = e0
            sp = 1
            while sp > 0:
                sp -= 1
                x = stack[sp, 0]
                y = stack[sp, 1]
                z = stack[sp, 2]
                ux = stack[sp, 3]
                uy = stack[sp, 4]
                uz = stack[sp, 5]
                e = stack[sp, 6]
                if e > e_cut_mev:
                    ln_e = np.log(e)
                    r_a = _interp_uniform(ln_e, ln_e0, d_ln_e, range_tab)
                    t_a = _interp_uniform(ln_e, ln_e0, d_ln_e, t1_tab)
                    q_a = _interp_uniform(ln_e, ln_e0, d_ln_e, erad_tab)
                    while True:
                        e_b = e * step_ratio
                        final = e_b <= e_cut_mev
                        if final:
                            e_b = e_cut_mev
                        ln_b = np.log(e_b)
                        r_b = _interp_uniform(ln_b, ln_e0, d_ln_e, range_tab)
                        s_full = max(r_a - r_b, 0.0)
                        s_maj = _interp_uniform(ln_e, ln_e0, d_ln_e, sigma_maj_tab)
                        hard = False
                        if s_maj > 0.0:
                            state, u = _next(state)
                            d_hard = -np.log(1.0 - u) / s_maj
                            if d_hard < s_full:
                                hard = True
                                final = False
                                r_b = r_a - d_hard
                                e_b = _energy_at_range(r_b, ln_e0, d_ln_e, range_tab)
                                ln_b = np.log(e_b)
                        s = max(r_a - r_b, 0.0)
                        t_b = _interp_uniform(ln_b, ln_e0, d_ln_e, t1_tab)
                        q_b = _interp_uniform(ln_b, ln_e0, d_ln_e, erad_tab)
                        e_rad = max(q_a - q_b, 0.0)
                        e_col = max((e - e_b) - e_rad, 0.0)
                        mu_mean = 0.5 * (1.0 - np.exp(-max(t_a - t_b, 0.0)))
                        state, xi = _next(state)
                        s1 = xi * s
                        state, w = _next(state)
                        if mu_mean >= mu_max:
                            cos_t = 1.0 - 2.0 * w
                        elif mu_mean <= 0.0:
                            cos_t = 1.0
                        else:
                            a = np.exp(_interp_uniform(np.log(mu_mean), ln_mu0, d_ln_mu, ln_a_tab))
                            cos_t = 1.0 - 2.0 * (a * w / (1.0 + a - w))
                        state, v = _next(state)
                        nx, ny, nz = _deflect(ux, uy, uz, cos_t, two_pi * v)
                        hx = x + s1 * ux
                        hy = y + s1 * uy
                        hz = z + s1 * uz
                        state, g = _next(state)
                        p = g * s
                        if p < s1:
                            dx = x + p * ux
                            dy = y + p * uy
                            dz = z + p * uz
                        else:
                            dx = hx + (p - s1) * nx
                            dy = hy + (p - s1) * ny
                            dz = hz + (p - s1) * nz
                        x = hx + (s - s1) * nx
                        y = hy + (s - s1) * ny
                        z = hz + (s - s1) * nz
                        ux = nx
                        uy = ny
                        uz = nz
                        k = int(np.sqrt(dx * dx + dy * dy + dz * dz) / dr_g_cm2)
                        if k < n_bins:
                            shell[c, k] += e_col * inv_e0
                        else:
                            escaped[c] += e_col * inv_e0
                        radiated[c] += e_rad * inv_e0
                        e = e_b
                        ln_e = ln_b
                        r_a = r_b
                        t_a = t_b
                        q_a = q_b
                        if hard:
                            state, u = _next(state)
                            sig = _interp_uniform(ln_e, ln_e0, d_ln_e, sigma_tab)
                            if u * s_maj < sig and e > 2.0 * w_cut_mev:
                                state, eps = _sample_moller(state, e, w_cut_mev, mc2_mev)
                                w_d = eps * e
                                e_p = e - w_d
                                cos_d = np.sqrt(
                                    min(
                                        1.0, w_d * (e + 2.0 * mc2_mev) / (e * (w_d + 2.0 * mc2_mev))
                                    )
                                )
                                cos_p = np.sqrt(
                                    min(
                                        1.0, e_p * (e + 2.0 * mc2_mev) / (e * (e_p + 2.0 * mc2_mev))
                                    )
                                )
                                state, v = _next(state)
                                phi = two_pi * v
                                bx, by, bz = _deflect(ux, uy, uz, cos_d, phi + np.pi)
                                if sp < max_stack:
                                    stack[sp, 0] = x
                                    stack[sp, 1] = y
                                    stack[sp, 2] = z
                                    stack[sp, 3] = bx
                                    stack[sp, 4] = by
                                    stack[sp, 5] = bz
                                    stack[sp, 6] = w_d
                                    sp += 1
                                else:  # stack full (never expected): absorb locally
                                    k = int(np.sqrt(x * x + y * y + z * z) / dr_g_cm2)
                                    if k < n_bins:
                                        shell[c, k] += w_d * inv_e0
                                    else:
                                        escaped[c] += w_d * inv_e0
                                ux, uy, uz = _deflect(ux, uy, uz, cos_p, phi)
                                e = e_p
                                ln_e = np.log(e)
                                r_a = _interp_uniform(ln_e, ln_e0, d_ln_e, range_tab)
                                t_a = _interp_uniform(ln_e, ln_e0, d_ln_e, t1_tab)
                                q_a = _interp_uniform(ln_e, ln_e0, d_ln_e, erad_tab)
                                if e <= e_cut_mev:
                                    final = True
                        if final:
                            break
                # residual energy below the cut-off: absorbed where the electron stops
                k = int(np.sqrt(x * x + y * y + z * z) / dr_g_cm2)
                if k < n_bins:
                    shell[c, k] += e * inv_e0
                else:
                    escaped[c] += e * inv_e0
    return shell, escaped, radiated
