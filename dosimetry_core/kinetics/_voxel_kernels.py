"""Numba kernels of the voxel-wise time-activity fits (private).

Use :func:`dosimetry_core.kinetics.voxelwise.fit_tacs` (documented wrapper,
tested against a SciPy oracle) rather than calling these directly.

Every kernel works on one voxel's curve ``y[i]`` at times ``tau[i]`` (h since
injection).  Weights are relative: ``w_i = 1 / s_i**2`` with
``s_i = max(y_i, floor_frac * max(y))`` (see ``voxelwise`` module docstring).
The parallel driver loops (``prange``) over blocks of voxels so that the few
scratch arrays are allocated once per block, not once per voxel.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

# Column layout of the per-voxel parameter/statistics output (``out_par``).
P_MONO_A0 = 0
P_MONO_LAM = 1
P_MONO_R2 = 2
P_MONO_IC = 3
P_MONO_OK = 4
P_BI_A = 5
P_BI_L1 = 6
P_BI_L2 = 7
P_BI_R2 = 8
P_BI_IC = 9
P_BI_OK = 10
P_TRAP_TIA = 11
N_PAR = 12

CODE_OUTSIDE = 0
CODE_MONO = 1
CODE_BIEXP_UPTAKE = 2
CODE_TRAPEZOID = 3

_TINY = 1e-300


@njit(cache=True, fastmath=False)
def _weights(y, floor_frac, sw):
    """sqrt-weights 1/s_i with s_i = max(y_i, floor_frac*max(y)); returns max(y)."""
    n = y.shape[0]
    ymax = 0.0
    for i in range(n):
        ymax = max(ymax, y[i])
    floor = max(floor_frac * ymax, _TINY)
    for i in range(n):
        sw[i] = 1.0 / max(y[i], floor)
    return ymax


@njit(cache=True, fastmath=False)
def _wstats(y, sw):
    """Weighted total sum of squares about the weighted mean."""
    n = y.shape[0]
    sw2 = 0.0
    swy = 0.0
    for i in range(n):
        w = sw[i] * sw[i]
        sw2 += w
        swy += w * y[i]
    mean = swy / sw2
    tss = 0.0
    for i in range(n):
        d = (y[i] - mean) * sw[i]
        tss += d * d
    return tss


@njit(cache=True, fastmath=False)
def _info_criterion(wrss, n, k, corrected):
    """AIC = n ln(WRSS/n) + 2k, plus 2k(k+1)/(n-k-1) when ``corrected`` (AICc).

    WRSS is floored at 1e-12 n (relative residuals below 1e-6 count as zero)
    so that noise-free ties are decided by the parameter penalty.
    """
    w = max(wrss, 1e-12 * n)
    ic = n * math.log(w / n) + 2.0 * k
    if corrected:
        ic += 2.0 * k * (k + 1.0) / (n - k - 1.0)
    return ic


# ------------------------------------------------------------------ mono
@njit(cache=True, fastmath=False)
def _mono_cost(tau, y, sw, a, lam, e):
    n = y.shape[0]
    c = 0.0
    for i in range(n):
        e[i] = math.exp(-lam * tau[i])
        r = (y[i] - a * e[i]) * sw[i]
        c += r * r
    return c


@njit(cache=True, fastmath=False)
def _cost_from(y, sw, a, e1, e2, c2):
    """Weighted RSS of ``a (e1 - c2 e2)`` from precomputed exponentials."""
    n = y.shape[0]
    c = 0.0
    for i in range(n):
        r = (y[i] - a * (e1[i] - c2 * e2[i])) * sw[i]
        c += r * r
    return c


@njit(cache=True, fastmath=False)
def _mono_profile_a(y, sw, e):
    """Best amplitude for fixed rate (weighted linear least squares), >= 0."""
    n = y.shape[0]
    num = 0.0
    den = 0.0
    for i in range(n):
        w = sw[i] * sw[i]
        num += w * y[i] * e[i]
        den += w * e[i] * e[i]
    return max(num / max(den, _TINY), 0.0)


@njit(cache=True, fastmath=False)
def fit_mono(tau, y, sw, lam_lo, lam_hi, n_iter, e, e_try):
    """Weighted mono-exponential fit ``a exp(-lam tau)``, ``lam in [lam_lo, lam_hi]``.

    Start: unweighted log-linear least squares on the positive points (with
    relative errors, var(ln y) ~ const, so this is the closed-form
    approximation of the weighted fit); then Levenberg-Marquardt on the
    weighted linear residuals with projection onto the bounds, and a final
    exact amplitude for the final rate.  Returns (a, lam, wrss).
    """
    n = y.shape[0]
    s0 = 0.0
    sx = 0.0
    sy = 0.0
    sxx = 0.0
    sxy = 0.0
    for i in range(n):
        pos = 1.0 if y[i] > 0.0 else 0.0
        ly = math.log(max(y[i], _TINY)) * pos
        s0 += pos
        sx += pos * tau[i]
        sy += ly
        sxx += pos * tau[i] * tau[i]
        sxy += pos * tau[i] * ly
    den = s0 * sxx - sx * sx
    lam = lam_lo
    if s0 >= 2.0 and den > 0.0:
        lam = -(s0 * sxy - sx * sy) / den
    lam = min(max(lam, lam_lo), lam_hi)
    for i in range(n):
        e[i] = math.exp(-lam * tau[i])
    a = _mono_profile_a(y, sw, e)
    cost = _cost_from(y, sw, a, e, e, 0.0)
    mu = 1e-3
    for _it in range(n_iter):
        h00 = 0.0
        h01 = 0.0
        h11 = 0.0
        g0 = 0.0
        g1 = 0.0
        for i in range(n):
            w = sw[i] * sw[i]
            r = y[i] - a * e[i]
            j0 = e[i]
            j1 = -a * tau[i] * e[i]
            h00 += w * j0 * j0
            h01 += w * j0 * j1
            h11 += w * j1 * j1
            g0 += w * j0 * r
            g1 += w * j1 * r
        d00 = h00 * (1.0 + mu) + _TINY
        d11 = h11 * (1.0 + mu) + _TINY
        det = d00 * d11 - h01 * h01
        if not det > 0.0:
            break
        da = (g0 * d11 - h01 * g1) / det
        dl = (d00 * g1 - h01 * g0) / det
        a_new = max(a + da, 0.0)
        lam_new = min(max(lam + dl, lam_lo), lam_hi)
        c_new = _mono_cost(tau, y, sw, a_new, lam_new, e_try)
        if c_new < cost:
            dec = cost - c_new
            a = a_new
            lam = lam_new
            cost = c_new
            for i in range(n):
                e[i] = e_try[i]
            mu = max(mu * 0.1, 1e-12)
            if dec <= 1e-8 * cost or cost <= 1e-26 * n:
                break
        else:
            mu *= 10.0
            if mu > 1e12:
                break
    a = _mono_profile_a(y, sw, e)
    cost = _cost_from(y, sw, a, e, e, 0.0)
    return a, lam, cost


# ------------------------------------------------------ biexp-uptake
@njit(cache=True, fastmath=False)
def _bi_cost(tau, y, sw, a, l1, l2, e1, e2):
    n = y.shape[0]
    c = 0.0
    for i in range(n):
        e1[i] = math.exp(-l1 * tau[i])
        e2[i] = math.exp(-l2 * tau[i])
        r = (y[i] - a * (e1[i] - e2[i])) * sw[i]
        c += r * r
    return c


@njit(cache=True, fastmath=False)
def _bi_profile_a(y, sw, e1, e2):
    n = y.shape[0]
    num = 0.0
    den = 0.0
    for i in range(n):
        w = sw[i] * sw[i]
        g = e1[i] - e2[i]
        num += w * y[i] * g
        den += w * g * g
    return max(num / max(den, _TINY), 0.0)


@njit(cache=True, fastmath=False)
def biexp_start(tau, y, lam_lo, lam_hi, d_min, late):
    """Data-derived start (l1, d = l2 - l1) for the uptake model.

    l1: log-slope through the last two points, clipped to [lam_lo, lam_hi/4].
    Peak time t_pk: the sampled maximum, or half the first time when the
    maximum is the first sample; with ``late`` (second start) the first
    time itself, or the midpoint before the sampled maximum.  l2 solves t_pk = ln(l2/l1)/(l2-l1) by
    fixed-point iteration (clipped), so the start peaks where the data do.
    """
    n = y.shape[0]
    l1 = lam_lo
    if y[n - 1] > 0.0 and y[n - 2] > 0.0:
        l1 = math.log(y[n - 2] / y[n - 1]) / (tau[n - 1] - tau[n - 2])
    l1 = min(max(l1, lam_lo, 1e-6), 0.25 * lam_hi)
    imax = 0
    for i in range(1, n):
        if y[i] > y[imax]:
            imax = i
    t_pk = tau[imax]
    if imax == 0:
        t_pk = tau[0] if late else 0.5 * tau[0]
    elif late:
        t_pk = 0.5 * (tau[imax - 1] + tau[imax])
    t_pk = max(t_pk, 1e-3)
    l2 = l1 + 3.0 / t_pk
    for _k in range(5):
        l2 = l1 + math.log(max(l2 / l1, 1.0 + 1e-9)) / t_pk
    d = min(max(l2 - l1, 0.1 * l1, d_min), 0.5 * lam_hi)
    return l1, d


@njit(cache=True, fastmath=False)
def fit_biexp_uptake(tau, y, sw, lam_lo, lam_hi, d_min, n_iter, late, e1, e2, f1, f2):
    """Weighted fit of ``a (exp(-l1 tau) - exp(-l2 tau))`` with l2 = l1 + d.

    Parameters (a, l1, d) are bounded a >= 0, l1 in [lam_lo, lam_hi],
    d in [d_min, lam_hi - l1] (so lam_lo <= l1 < l2 <= lam_hi).
    Levenberg-Marquardt (Marquardt diagonal scaling) in (a, ln l1, ln d), so
    rate steps are relative (at most a factor e^2 per iteration), with
    projection onto the box, at most ``n_iter`` iterations, from :func:`biexp_start` with the
    amplitude from weighted linear least squares.  Returns (a, l1, l2, wrss).
    """
    n = y.shape[0]
    l1, d = biexp_start(tau, y, lam_lo, lam_hi, d_min, late)
    for i in range(n):
        e1[i] = math.exp(-l1 * tau[i])
        e2[i] = math.exp(-(l1 + d) * tau[i])
    a = _bi_profile_a(y, sw, e1, e2)
    cost = _cost_from(y, sw, a, e1, e2, 1.0)
    mu = 1e-3
    for _it in range(n_iter):
        h00 = 0.0
        h01 = 0.0
        h02 = 0.0
        h11 = 0.0
        h12 = 0.0
        h22 = 0.0
        g0 = 0.0
        g1 = 0.0
        g2 = 0.0
        for i in range(n):
            w = sw[i] * sw[i]
            r = y[i] - a * (e1[i] - e2[i])
            # columns: d/da, d/d(ln l1), d/d(ln d) -- relative steps for the rates
            j0 = e1[i] - e2[i]
            j1 = a * tau[i] * (e2[i] - e1[i]) * l1
            j2 = a * tau[i] * e2[i] * d
            h00 += w * j0 * j0
            h01 += w * j0 * j1
            h02 += w * j0 * j2
            h11 += w * j1 * j1
            h12 += w * j1 * j2
            h22 += w * j2 * j2
            g0 += w * j0 * r
            g1 += w * j1 * r
            g2 += w * j2 * r
        # Marquardt scaling plus a small absolute floor, so that a column that
        # has vanished (l2 so fast that exp(-l2 tau) ~ 0) does not make the
        # system singular; (a, l1) then keep converging.
        fl = 1e-10 * (h11 + h22) + _TINY
        m00 = h00 * (1.0 + mu) + _TINY
        m11 = h11 * (1.0 + mu) + fl
        m22 = h22 * (1.0 + mu) + fl
        # 3x3 symmetric solve by cofactors
        c00 = m11 * m22 - h12 * h12
        c01 = h02 * h12 - h01 * m22
        c02 = h01 * h12 - h02 * m11
        det = m00 * c00 + h01 * c01 + h02 * c02
        if not abs(det) > 0.0:
            break
        c11 = m00 * m22 - h02 * h02
        c12 = h01 * h02 - m00 * h12
        c22 = m00 * m11 - h01 * h01
        da = (c00 * g0 + c01 * g1 + c02 * g2) / det
        du1 = min(max((c01 * g0 + c11 * g1 + c12 * g2) / det, -2.0), 2.0)
        du2 = min(max((c02 * g0 + c12 * g1 + c22 * g2) / det, -2.0), 2.0)
        a_new = max(a + da, 0.0)
        l1_new = min(max(l1 * math.exp(du1), lam_lo), lam_hi - d_min)
        d_new = min(max(d * math.exp(du2), d_min), lam_hi - l1_new)
        c_new = _bi_cost(tau, y, sw, a_new, l1_new, l1_new + d_new, f1, f2)
        if c_new < cost:
            dec = cost - c_new
            a = a_new
            l1 = l1_new
            d = d_new
            cost = c_new
            for i in range(n):
                e1[i] = f1[i]
                e2[i] = f2[i]
            mu = max(mu * 0.1, 1e-12)
            if dec <= 1e-8 * cost or cost <= 1e-26 * n:
                break
        else:
            mu *= 10.0
            if mu > 1e12:
                break
    a = _bi_profile_a(y, sw, e1, e2)
    cost = _cost_from(y, sw, a, e1, e2, 1.0)
    return a, l1, l1 + d, cost


# ----------------------------------------------------------- trapezoid
@njit(cache=True, fastmath=False)
def trapezoid_tia(tau, y, lam_phys):
    """Trapezoid TIA: linear from 0 at injection to the first point, trapezoids
    between points, physical-decay tail ``y_last / lam_phys``; negative values
    count as 0 (same rule as ``models.trapezoid_tia`` start="linear",
    tail="physical")."""
    n = y.shape[0]
    prev = max(y[0], 0.0)
    s = 0.5 * prev * tau[0]
    for i in range(1, n):
        cur = max(y[i], 0.0)
        s += 0.5 * (prev + cur) * (tau[i] - tau[i - 1])
        prev = cur
    return s + prev / lam_phys


# -------------------------------------------------------------- driver
@njit(parallel=True, cache=True, fastmath=False)
def fit_block(
    tau,
    y_all,
    lam_phys,
    lam_lo,
    lam_hi,
    d_min,
    use_mono,
    use_biexp,
    min_r2,
    floor_frac,
    n_iter_mono,
    n_iter_biexp,
    block,
    out_tia,
    out_code,
    out_lam,
    out_par,
):
    """Fit every row of ``y_all`` (n_vox, n_times); see ``voxelwise.fit_tacs``."""
    nv = y_all.shape[0]
    n = y_all.shape[1]
    nb = (nv + block - 1) // block
    t_last = tau[n - 1]
    # AICc needs n - k - 1 > 0 for the 3-parameter model; below that, plain AIC
    corrected = n >= 5
    for b in prange(nb):
        sw = np.empty(n)
        e1 = np.empty(n)
        e2 = np.empty(n)
        f1 = np.empty(n)
        f2 = np.empty(n)
        start = b * block
        stop = min(start + block, nv)
        for v in range(start, stop):
            y = y_all[v]
            ymax = _weights(y, floor_frac, sw)
            tss = _wstats(y, sw)
            trap = trapezoid_tia(tau, y, lam_phys)
            out_par[v, P_TRAP_TIA] = trap

            # no washout observed (maximum at the last sample): no model is
            # trusted to extrapolate, the fallback's physical tail is used
            imax = 0
            for i in range(1, n):
                if y[i] > y[imax]:
                    imax = i
            washout = imax < n - 1
            m_ok = False
            m_tia = 0.0
            m_ic = np.inf
            b_ok = False
            b_tia = 0.0
            b_ic = np.inf
            m_lam = np.nan
            b_l1 = np.nan
            if ymax > 0.0 and use_mono:
                a, lam, wrss = fit_mono(tau, y, sw, lam_lo, lam_hi, n_iter_mono, e1, f1)
                r2 = 1.0 - wrss / max(tss, _TINY)
                m_tia = a / lam
                m_ic = _info_criterion(wrss, n, 2, corrected)
                m_lam = lam
                m_ok = (
                    washout
                    and math.isfinite(m_tia)
                    and a > 0.0
                    and lam >= lam_lo
                    and lam < lam_hi * (1.0 - 1e-9)
                    and r2 >= min_r2
                )
                out_par[v, P_MONO_A0] = a
                out_par[v, P_MONO_LAM] = lam
                out_par[v, P_MONO_R2] = r2
                out_par[v, P_MONO_IC] = m_ic
            else:
                out_par[v, P_MONO_A0] = np.nan
                out_par[v, P_MONO_LAM] = np.nan
                out_par[v, P_MONO_R2] = np.nan
                out_par[v, P_MONO_IC] = np.nan
            if ymax > 0.0 and use_biexp and n >= 4:
                # One start; the "late" start (peak at the first sample) when the
                # maximum is the first sample.  If the fit ends on the plateau
                # where exp(-l2 tau) ~ 0 at every sample (the model has become
                # mono) after the default start, an interior minimum may have
                # been missed: try the late start too and keep the better fit.
                late = imax == 0
                a, l1, l2, wrss = fit_biexp_uptake(
                    tau, y, sw, lam_lo, lam_hi, d_min, n_iter_biexp, late, e1, e2, f1, f2
                )
                if not late and l2 * tau[0] > 10.0:
                    a_b, l1_b, l2_b, wrss_b = fit_biexp_uptake(
                        tau, y, sw, lam_lo, lam_hi, d_min, n_iter_biexp, True, e1, e2, f1, f2
                    )
                    if wrss_b < wrss:
                        a = a_b
                        l1 = l1_b
                        l2 = l2_b
                        wrss = wrss_b
                r2 = 1.0 - wrss / max(tss, _TINY)
                b_tia = a * (1.0 / l1 - 1.0 / l2)
                b_ic = _info_criterion(wrss, n, 3, corrected)
                b_l1 = l1
                t_peak = math.log(l2 / l1) / (l2 - l1)
                b_ok = (
                    washout
                    and math.isfinite(b_tia)
                    and b_tia > 0.0
                    and a > 0.0
                    and l1 >= lam_lo
                    and l2 > l1
                    and l2 < lam_hi * (1.0 - 1e-9)
                    and t_peak <= t_last
                    and r2 >= min_r2
                )
                out_par[v, P_BI_A] = a
                out_par[v, P_BI_L1] = l1
                out_par[v, P_BI_L2] = l2
                out_par[v, P_BI_R2] = r2
                out_par[v, P_BI_IC] = b_ic
            else:
                out_par[v, P_BI_A] = np.nan
                out_par[v, P_BI_L1] = np.nan
                out_par[v, P_BI_L2] = np.nan
                out_par[v, P_BI_R2] = np.nan
                out_par[v, P_BI_IC] = np.nan
            out_par[v, P_MONO_OK] = 1.0 if m_ok else 0.0
            out_par[v, P_BI_OK] = 1.0 if b_ok else 0.0

            # selection: AICc (n >= 5) or AIC (n = 4); with n = 4 a visible
            # uptake phase (y0 < y1), which mono cannot follow, also selects it
            prefer_bi = b_ic < m_ic
            if not corrected:
                prefer_bi = prefer_bi or y[0] < y[1]
            if b_ok and (prefer_bi or not m_ok):
                out_tia[v] = b_tia
                out_code[v] = CODE_BIEXP_UPTAKE
                out_lam[v] = b_l1
            elif m_ok:
                out_tia[v] = m_tia
                out_code[v] = CODE_MONO
                out_lam[v] = m_lam
            else:
                out_tia[v] = trap
                out_code[v] = CODE_TRAPEZOID
                out_lam[v] = np.nan
