"""Biologically effective dose (BED) and EQD2 for radionuclide (protracted) dose delivery.

Model
-----
Linear-quadratic model with mono-exponential repair of sublethal damage (repair
rate ``mu = ln2 / T_repair``, 1/h) and the Lea-Catcheside dose-protraction factor
``G`` (Dale RG. The application of the linear-quadratic dose-effect equation to
fractionated and protracted radiotherapy. Br J Radiol 1985;58:515-528; Dale RG.
Dose-rate effects in targeted radiotherapy. Phys Med Biol 1996;41:1871-1884;
Dale R, Carabe-Fernandez A. The radiobiology of conventional radiotherapy and its
application to radionuclide therapy. Cancer Biother Radiopharm 2005;20:47-51)::

    BED = D (1 + G D / (alpha/beta)),    RE = BED / D (relative effectiveness)

    G D^2 = 2 int_0^inf R(t) int_0^t R(w) exp(-mu (t - w)) dw dt

with ``R(t)`` the absorbed-dose rate (Gy/h) and ``D = int R``.  ``G`` depends only
on the *shape* of ``R`` (not on its scale), so BED is a quadratic in D for every
time course; :func:`dose_for_bed` inverts it exactly.

Closed forms used here (derived for this module and checked in the tests against
direct numerical integration of the definition above):

* sum of exponentials ``R(t) = sum_i c_i exp(-k_i t)``::

      int int ... = sum_i sum_j c_i c_j / ((k_i + k_j)(k_i + mu))

  (inner integral ``(exp(-k_j t) - exp(-mu t)) / (mu - k_j)``, outer integral
  ``1/((k_i + k_j)(k_i + mu))``, no singularity at ``mu = k_j``);
* mono-exponential, instantaneous uptake, ``R = R0 exp(-lambda t)``::

      G = lambda / (lambda + mu)
      BED = D (1 + D lambda / ((mu + lambda) alpha/beta))

  (Dale 1985; for radionuclides Dale 1996 and Dale & Carabe-Fernandez 2005;
  used for kidney BED in PRRT by Barone R et al., J Nucl Med 2005;46:99S-106S and
  Wessels BW et al., MIRD Pamphlet No. 20, J Nucl Med 2008;49:1884-1899);
* uptake and washout, ``R ∝ exp(-lambda_e t) - exp(-lambda_u t)`` with
  ``lambda_u > lambda_e``::

      G = lambda_e lambda_u (lambda_e + lambda_u + mu)
          / ((lambda_e + lambda_u)(lambda_e + mu)(lambda_u + mu))

  which tends to the mono-exponential ``G`` as ``lambda_u -> inf``; this is the
  two-exponential case of the general multi-exponential BED (Baechler S, Hobbs RF,
  Prideaux AR, Wahl RL, Sgouros G. Extension of the biological effective dose to
  the MIRD schema and possible implications in radionuclide therapy dosimetry.
  Med Phys 2008;35:1123-1134).

EQD2, the dose in 2-Gy fractions with the same BED: ``EQD2 = BED / (1 + 2/(alpha/beta))``
(Withers HR, Thames HD, Peters LJ. A new isoeffect curve for change in dose per
fraction. Radiother Oncol 1983;1:187-191).

Several cycles: cycles of radionuclide therapy are weeks apart, much longer than
any repair half-time (hours), so sublethal damage of one cycle is fully repaired
before the next: the cycles do not interact and their BEDs add (Dale 1996;
Wessels 2008).  Repopulation between cycles is neglected (conservative for
normal organs).

Every array function works element-wise with NumPy broadcasting (per-voxel BED
maps) and returns a ``float`` for scalar inputs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dosimetry_core.errors import InvalidInputError

Array = NDArray[np.float64]
FloatOrArray = float | Array

_LN2 = math.log(2.0)

EQD2_REFERENCE_DOSE_PER_FRACTION_GY = 2.0
"""Dose per fraction of the EQD2 reference schedule (Gy), by definition of EQD2."""

TAIL_HALF_LIVES = 60.0
"""Numeric integrations of a decaying tail stop after this many of its half-lives
(remaining dose fraction 2^-60 ~ 1e-18): a numerical cut-off, not physics."""


# ----------------------------------------------------------------- validation
def _arr(name: str, unit: str, x: ArrayLike, *, positive: bool) -> Array:
    """``x`` as a float array, checked finite and > 0 (``positive``) or >= 0."""
    try:
        a = np.asarray(x, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{name}: not a number ({exc})") from exc
    if a.size == 0:
        raise InvalidInputError(f"{name}: no value given")
    bad = ~np.isfinite(a)
    if np.any(bad):
        raise InvalidInputError(f"{name} = {a[bad].flat[0]!r} is not a finite number")
    bad = a <= 0 if positive else a < 0
    if np.any(bad):
        rel = "> 0" if positive else ">= 0"
        raise InvalidInputError(f"{name} = {a[bad].flat[0]:g} {unit}: it must be {rel} {unit}")
    return a


def _out(a: Array) -> FloatOrArray:
    return float(a) if a.ndim == 0 else a


def _check_uptake(t_uptake: Array, t_eff: Array) -> None:
    bad = ~(t_uptake < t_eff)
    if np.any(bad):
        tu, te = np.broadcast_arrays(t_uptake, t_eff)
        i = np.flatnonzero(bad)[0]
        raise InvalidInputError(
            f"uptake half-time t_uptake_h = {tu.flat[i]:g} h is not shorter than the effective "
            f"(washout) half-life t_eff_h = {te.flat[i]:g} h: uptake must be the faster phase"
        )


# ------------------------------------------------------------- G factors
def g_factor_mono(t_eff_h: ArrayLike, t_repair_h: ArrayLike) -> FloatOrArray:
    """Lea-Catcheside factor of a mono-exponential dose rate (instantaneous uptake).

    ``G = lambda / (lambda + mu)``, ``lambda = ln2/T_eff``, ``mu = ln2/T_repair``
    (Dale RG, Br J Radiol 1985;58:515-528; Dale RG, Phys Med Biol 1996;41:1871-1884).
    Equivalently ``G = T_repair / (T_repair + T_eff)``.

    Parameters
    ----------
    t_eff_h : float or array
        Effective half-life of the dose rate (h), > 0.
    t_repair_h : float or array
        Repair half-time of sublethal damage (h), > 0.

    Returns
    -------
    float or array
        Dimensionless, in (0, 1).
    """
    te = _arr("t_eff_h", "h", t_eff_h, positive=True)
    tr = _arr("t_repair_h", "h", t_repair_h, positive=True)
    lam, mu = _LN2 / te, _LN2 / tr
    return _out(np.asarray(lam / (lam + mu), dtype=float))


def g_factor_biexponential(
    t_uptake_h: ArrayLike, t_eff_h: ArrayLike, t_repair_h: ArrayLike
) -> FloatOrArray:
    """Lea-Catcheside factor of ``R ∝ exp(-lambda_e t) - exp(-lambda_u t)``.

    ``G = lambda_e lambda_u (lambda_e + lambda_u + mu) /
    ((lambda_e + lambda_u)(lambda_e + mu)(lambda_u + mu))``, with
    ``lambda_e = ln2/T_eff`` (washout), ``lambda_u = ln2/T_uptake`` (uptake),
    ``mu = ln2/T_repair``.  Two-exponential case of the multi-exponential BED of
    Baechler et al. (Med Phys 2008;35:1123-1134); derived in the module docstring
    and checked against numerical integration in the tests.

    Parameters
    ----------
    t_uptake_h : float or array
        Uptake half-time (h), > 0 and < ``t_eff_h``.
    t_eff_h : float or array
        Effective washout half-life (h), > 0.
    t_repair_h : float or array
        Repair half-time (h), > 0.

    Returns
    -------
    float or array
        Dimensionless.
    """
    tu = _arr("t_uptake_h", "h", t_uptake_h, positive=True)
    te = _arr("t_eff_h", "h", t_eff_h, positive=True)
    tr = _arr("t_repair_h", "h", t_repair_h, positive=True)
    _check_uptake(tu, te)
    le, lu, mu = _LN2 / te, _LN2 / tu, _LN2 / tr
    g = le * lu * (le + lu + mu) / ((le + lu) * (le + mu) * (lu + mu))
    return _out(np.asarray(g, dtype=float))


def g_factor_sum_of_exponentials(
    coefficients: Sequence[float], rates_per_h: Sequence[float], t_repair_h: float
) -> float:
    """Lea-Catcheside factor of ``R(t) = sum_i c_i exp(-k_i t)`` (any number of terms).

    ``G = 2 sum_ij c_i c_j / ((k_i + k_j)(k_i + mu)) / (sum_i c_i / k_i)^2``
    (closed form derived in the module docstring; multi-exponential BED as in
    Baechler et al., Med Phys 2008;35:1123-1134).

    Parameters
    ----------
    coefficients : sequence of float
        Amplitudes ``c_i`` (any common unit; negative terms allowed for uptake).
    rates_per_h : sequence of float
        Rate constants ``k_i`` (1/h), > 0.
    t_repair_h : float
        Repair half-time (h), > 0.

    Returns
    -------
    float
        Dimensionless.

    Raises
    ------
    InvalidInputError
        Non-positive rates or repair half-time, or a curve whose integral is not
        positive.
    """
    c = np.asarray(coefficients, dtype=float).ravel()
    k = _arr("rate", "1/h", rates_per_h, positive=True).ravel()
    if c.size != k.size or c.size == 0:
        raise InvalidInputError("give one rate constant per amplitude")
    mu = _LN2 / float(_arr("t_repair_h", "h", t_repair_h, positive=True))
    area = float(np.sum(c / k))
    if not area > 0:
        raise InvalidInputError(
            f"the dose-rate curve integrates to {area:g} (not > 0): no dose is delivered"
        )
    ki, kj = k[:, None], k[None, :]
    double = float(np.sum(c[:, None] * c[None, :] / ((ki + kj) * (ki + mu))))
    return 2.0 * double / area**2


# ------------------------------------------------------------- BED / EQD2
def bed_from_g_factor(
    dose_gy: ArrayLike, g_factor: ArrayLike, alpha_beta_gy: ArrayLike
) -> FloatOrArray:
    """``BED = D (1 + G D / (alpha/beta))`` (Gy) for a known Lea-Catcheside factor G.

    Dale RG, Br J Radiol 1985;58:515-528.

    Parameters
    ----------
    dose_gy : float or array
        Absorbed dose (Gy), >= 0.
    g_factor : float or array
        Lea-Catcheside factor, >= 0 (1 for an acute dose).
    alpha_beta_gy : float or array
        alpha/beta of the tissue (Gy), > 0.
    """
    d = _arr("dose_gy", "Gy", dose_gy, positive=False)
    g = _arr("G factor", "", g_factor, positive=False)
    ab = _arr("alpha_beta_gy", "Gy", alpha_beta_gy, positive=True)
    return _out(np.asarray(d * (1.0 + g * d / ab), dtype=float))


def bed_mono_exponential(
    dose_gy: ArrayLike, t_eff_h: ArrayLike, alpha_beta_gy: ArrayLike, t_repair_h: ArrayLike
) -> FloatOrArray:
    """BED (Gy) for instantaneous uptake and mono-exponential clearance.

    ``BED = D (1 + D lambda / ((mu + lambda) alpha/beta))``, ``lambda = ln2/T_eff``,
    ``mu = ln2/T_repair`` (Dale RG, Br J Radiol 1985;58:515-528; for radionuclides
    Dale RG, Phys Med Biol 1996;41:1871-1884 and Dale & Carabe-Fernandez, Cancer
    Biother Radiopharm 2005;20:47-51).

    Parameters
    ----------
    dose_gy : float or array
        Absorbed dose delivered to complete decay (Gy), >= 0.
    t_eff_h : float or array
        Effective half-life of the dose rate (h), > 0.
    alpha_beta_gy : float or array
        alpha/beta of the tissue (Gy), > 0.
    t_repair_h : float or array
        Repair half-time (h), > 0.

    Returns
    -------
    float or array
        BED (Gy), element-wise (broadcast) for arrays.
    """
    g = g_factor_mono(t_eff_h, t_repair_h)
    return bed_from_g_factor(dose_gy, g, alpha_beta_gy)


def bed_biexponential(
    dose_gy: ArrayLike,
    t_uptake_h: ArrayLike,
    t_eff_h: ArrayLike,
    alpha_beta_gy: ArrayLike,
    t_repair_h: ArrayLike,
) -> FloatOrArray:
    """BED (Gy) for an uptake-washout dose rate ``∝ exp(-lambda_e t) - exp(-lambda_u t)``.

    ``BED = D (1 + G D / (alpha/beta))`` with ``G`` of :func:`g_factor_biexponential`
    (Baechler et al., Med Phys 2008;35:1123-1134; derivation in the module docstring).

    Parameters
    ----------
    dose_gy : float or array
        Absorbed dose to complete decay (Gy), >= 0.
    t_uptake_h : float or array
        Uptake half-time (h), > 0 and shorter than ``t_eff_h``.
    t_eff_h : float or array
        Effective washout half-life (h), > 0.
    alpha_beta_gy : float or array
        alpha/beta (Gy), > 0.
    t_repair_h : float or array
        Repair half-time (h), > 0.

    Returns
    -------
    float or array
        BED (Gy).
    """
    g = g_factor_biexponential(t_uptake_h, t_eff_h, t_repair_h)
    return bed_from_g_factor(dose_gy, g, alpha_beta_gy)


def eqd2_gy(bed_gy: ArrayLike, alpha_beta_gy: ArrayLike) -> FloatOrArray:
    """Equivalent dose in 2-Gy fractions (Gy): ``EQD2 = BED / (1 + 2/(alpha/beta))``.

    Withers HR, Thames HD, Peters LJ. Radiother Oncol 1983;1:187-191.

    Parameters
    ----------
    bed_gy : float or array
        BED (Gy), >= 0.
    alpha_beta_gy : float or array
        alpha/beta (Gy), > 0.
    """
    b = _arr("bed_gy", "Gy", bed_gy, positive=False)
    ab = _arr("alpha_beta_gy", "Gy", alpha_beta_gy, positive=True)
    return _out(np.asarray(b / (1.0 + EQD2_REFERENCE_DOSE_PER_FRACTION_GY / ab), dtype=float))


def dose_for_bed(
    bed_gy: ArrayLike,
    t_eff_h: ArrayLike,
    alpha_beta_gy: ArrayLike,
    t_repair_h: ArrayLike,
    t_uptake_h: ArrayLike | None = None,
) -> FloatOrArray:
    """Absorbed dose (Gy) that gives ``bed_gy`` with the given time course (inverse of BED).

    ``BED = D + (G/(alpha/beta)) D^2`` with ``G`` independent of ``D``, so the
    positive root of the quadratic is exact for mono- *and* bi-exponential
    delivery: ``D = 2 BED / (1 + sqrt(1 + 4 q BED))``, ``q = G/(alpha/beta)``
    (the rationalised form is stable for ``q -> 0``).  Used to propose the
    activity of the next cycle that keeps an organ under a BED limit.

    Parameters
    ----------
    bed_gy : float or array
        Target BED (Gy), >= 0.
    t_eff_h : float or array
        Effective (washout) half-life (h), > 0.
    alpha_beta_gy : float or array
        alpha/beta (Gy), > 0.
    t_repair_h : float or array
        Repair half-time (h), > 0.
    t_uptake_h : float or array, optional
        Uptake half-time (h); None = instantaneous uptake (mono-exponential).

    Returns
    -------
    float or array
        Absorbed dose (Gy).
    """
    b = _arr("bed_gy", "Gy", bed_gy, positive=False)
    ab = _arr("alpha_beta_gy", "Gy", alpha_beta_gy, positive=True)
    g = np.asarray(
        g_factor_mono(t_eff_h, t_repair_h)
        if t_uptake_h is None
        else g_factor_biexponential(t_uptake_h, t_eff_h, t_repair_h),
        dtype=float,
    )
    return dose_for_bed_from_g_factor(b, g, ab)


def dose_for_bed_from_g_factor(
    bed_gy: ArrayLike, g_factor: ArrayLike, alpha_beta_gy: ArrayLike
) -> FloatOrArray:
    """Absorbed dose (Gy) giving ``bed_gy`` for a known Lea-Catcheside factor ``G``.

    Positive root of ``BED = D + (G/(alpha/beta)) D^2`` (Dale RG, Br J Radiol
    1985;58:515-528), ``D = 2 BED / (1 + sqrt(1 + 4 q BED))``, ``q = G/(alpha/beta)``.
    Use it with ``BedResult.g_factor`` of a fitted curve (:func:`bed_from_tac`):
    ``G`` depends on the shape of the dose rate only, so a next cycle with the same
    kinetics has the same ``G``.

    Parameters
    ----------
    bed_gy : float or array
        Target BED (Gy), >= 0.
    g_factor : float or array
        Lea-Catcheside factor, >= 0.
    alpha_beta_gy : float or array
        alpha/beta (Gy), > 0.
    """
    b = _arr("bed_gy", "Gy", bed_gy, positive=False)
    g = _arr("G factor", "", g_factor, positive=False)
    ab = _arr("alpha_beta_gy", "Gy", alpha_beta_gy, positive=True)
    q = g / ab
    return _out(np.asarray(2.0 * b / (1.0 + np.sqrt(1.0 + 4.0 * q * b)), dtype=float))


# ------------------------------------------------------------- results
@dataclass(frozen=True)
class BedResult:
    """BED of one dose delivery with everything needed to reproduce it.

    Attributes are in Gy and h; ``t_eff_h`` and ``t_uptake_h`` are None when the
    time course is not described by them (numeric curves, multi-exponential fits).
    """

    dose_gy: float
    bed_gy: float
    eqd2_gy: float
    alpha_beta_gy: float
    t_repair_h: float
    t_eff_h: float | None
    t_uptake_h: float | None
    relative_effectiveness: float
    model: str
    g_factor: float = math.nan

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN written as None)."""
        out: dict[str, Any] = {}
        for k, v in self.__dict__.items():
            out[k] = None if isinstance(v, float) and not math.isfinite(v) else v
        return out


def _result(
    dose_gy: float,
    g: float,
    alpha_beta_gy: float,
    t_repair_h: float,
    t_eff_h: float | None,
    t_uptake_h: float | None,
    model: str,
) -> BedResult:
    bed = float(bed_from_g_factor(dose_gy, g, alpha_beta_gy))
    return BedResult(
        dose_gy=float(dose_gy),
        bed_gy=bed,
        eqd2_gy=float(eqd2_gy(bed, alpha_beta_gy)),
        alpha_beta_gy=float(alpha_beta_gy),
        t_repair_h=float(t_repair_h),
        t_eff_h=None if t_eff_h is None else float(t_eff_h),
        t_uptake_h=None if t_uptake_h is None else float(t_uptake_h),
        relative_effectiveness=bed / dose_gy if dose_gy > 0 else 1.0,
        model=model,
        g_factor=float(g),
    )


def _scalar(name: str, unit: str, x: float, *, positive: bool) -> float:
    a = _arr(name, unit, x, positive=positive)
    if a.size != 1:
        raise InvalidInputError(f"{name}: one value expected, got {a.size}")
    return float(a.ravel()[0])


def compute_bed(
    dose_gy: float,
    t_eff_h: float,
    alpha_beta_gy: float,
    t_repair_h: float,
    t_uptake_h: float | None = None,
) -> BedResult:
    """BED, EQD2 and relative effectiveness of one VOI (scalar inputs).

    Mono-exponential (:func:`bed_mono_exponential`) when ``t_uptake_h`` is None,
    otherwise uptake-washout (:func:`bed_biexponential`).
    """
    d = _scalar("dose_gy", "Gy", dose_gy, positive=False)
    te = _scalar("t_eff_h", "h", t_eff_h, positive=True)
    ab = _scalar("alpha_beta_gy", "Gy", alpha_beta_gy, positive=True)
    tr = _scalar("t_repair_h", "h", t_repair_h, positive=True)
    if t_uptake_h is None:
        return _result(d, float(g_factor_mono(te, tr)), ab, tr, te, None, "mono-exponential")
    tu = _scalar("t_uptake_h", "h", t_uptake_h, positive=True)
    g = float(g_factor_biexponential(tu, te, tr))
    return _result(d, g, ab, tr, te, tu, "bi-exponential (uptake and washout)")


# ------------------------------------------------------------- numeric
def _lc_integrate(
    rate: Callable[[float], float],
    edges: Sequence[float],
    mu: float,
    state: tuple[float, float, float] = (0.0, 0.0, 0.0),
    rtol: float = 1e-10,
    atol: float = 1e-14,
) -> tuple[float, float, float]:
    """Integrate ``D' = R, y' = R - mu y, I' = R y`` over consecutive intervals.

    ``y(t) = int_0^t R(w) exp(-mu (t-w)) dw`` is the unrepaired dose; ``I`` is the
    Lea-Catcheside double integral.  Intervals end at kinks of ``R`` so the
    integrator never steps across a discontinuity of its derivative.
    """
    # SciPy's integrators are imported here: the closed-form BED (``mrtdose bed``)
    # must not pay for loading them (issue 14, command-line start-up).
    from scipy import integrate

    def rhs(t: float, z: Array) -> Array:
        r = float(rate(t))
        return np.array([r, r - mu * z[1], r * z[1]])

    z = np.array(state, dtype=float)
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        if b <= a:
            continue
        sol = integrate.solve_ivp(rhs, (a, b), z, method="LSODA", rtol=rtol, atol=atol)
        if not sol.success:
            raise InvalidInputError(f"numerical BED integration failed: {sol.message}")
        z = sol.y[:, -1]
    return float(z[0]), float(z[1]), float(z[2])


def bed_numeric(
    dose_rate_gy_per_h: Callable[[float], float],
    t_end_h: float,
    alpha_beta_gy: float,
    t_repair_h: float,
    *,
    breakpoints_h: Sequence[float] = (),
    rtol: float = 1e-10,
    atol: float = 1e-14,
) -> BedResult:
    """BED of an arbitrary dose-rate curve by numerical integration (Lea-Catcheside).

    Solves ``D' = R``, ``y' = R - mu y``, ``I' = R y`` from 0 to ``t_end_h``
    (LSODA), then ``BED = D + 2 I / (alpha/beta)``, which is the definition
    ``BED = D (1 + G D/(alpha/beta))``, ``G D^2 = 2 int R(t) int_0^t R(w)
    e^{-mu(t-w)} dw dt`` (Dale RG, Br J Radiol 1985;58:515-528).  The dose and the
    BED are those delivered up to ``t_end_h``: choose it long enough.

    Parameters
    ----------
    dose_rate_gy_per_h : callable
        ``R(t)`` in Gy/h, ``t`` in h since the start of irradiation; must be >= 0.
    t_end_h : float
        End of the integration (h), > 0.
    alpha_beta_gy, t_repair_h : float
        alpha/beta (Gy) and repair half-time (h), > 0.
    breakpoints_h : sequence of float
        Times where ``R`` has a kink or a jump (integration restarts there).
    rtol, atol : float
        Tolerances of the ODE solver.

    Returns
    -------
    BedResult
        ``model`` = ``"numeric"``; ``t_eff_h`` and ``t_uptake_h`` None.
    """
    t_end = _scalar("t_end_h", "h", t_end_h, positive=True)
    ab = _scalar("alpha_beta_gy", "Gy", alpha_beta_gy, positive=True)
    tr = _scalar("t_repair_h", "h", t_repair_h, positive=True)
    mu = _LN2 / tr
    edges = sorted({0.0, t_end, *(float(b) for b in breakpoints_h if 0.0 < b < t_end)})
    dose, _, dbl = _lc_integrate(dose_rate_gy_per_h, edges, mu, rtol=rtol, atol=atol)
    if not dose > 0:
        raise InvalidInputError(f"the dose rate integrates to {dose:g} Gy (not > 0)")
    return _result(dose, 2.0 * dbl / dose**2, ab, tr, None, None, "numeric")


# ------------------------------------------------------------- fitted TACs
def exponential_terms(model: str, params: Sequence[float]) -> list[tuple[float, float]]:
    """``[(c_i, k_i)]`` with ``f(tau) = sum c_i exp(-k_i tau)`` for a fitted TAC model.

    Parameter orders are those of :mod:`dosimetry_core.kinetics.models`
    (``mono`` A0, lambda; ``biexp-uptake`` A, lambda1, lambda2; ``biexp`` A1,
    lambda1, A2, lambda2; ``triexp`` A1, lambda1, A2, lambda2, lambda3).
    """
    p = [float(x) for x in params]
    if model == "mono":
        return [(p[0], p[1])]
    if model == "biexp-uptake":
        return [(p[0], p[1]), (-p[0], p[2])]
    if model == "biexp":
        return [(p[0], p[1]), (p[2], p[3])]
    if model == "triexp":
        return [(p[0], p[1]), (p[2], p[3]), (-(p[0] + p[2]), p[4])]
    raise InvalidInputError(
        f"model {model!r} is not a sum of exponentials (mono, biexp-uptake, biexp, triexp)"
    )


@dataclass(frozen=True)
class _Piecewise:
    """Trapezoid curve: piecewise linear (or exponential start) then an exponential tail."""

    tau: Array
    a: Array
    start: str
    lam_start: float
    tail_rate: float

    def __call__(self, t: float) -> float:
        t0 = float(self.tau[0])
        if t < t0:
            a0 = float(self.a[0])
            if self.start == "linear":
                return a0 * t / t0
            if self.start == "mono":
                return a0 * math.exp(self.lam_start * (t0 - t))
            return a0
        if t <= float(self.tau[-1]):
            return float(np.interp(t, self.tau, self.a))
        return float(self.a[-1]) * math.exp(-self.tail_rate * (t - float(self.tau[-1])))


def _trapezoid_curve(fit: Any) -> _Piecewise:
    trap = fit.chosen.extra.get("trapezoid", {})
    tau = np.asarray(fit.time_h, dtype=float) - float(fit.injection_time_h)
    a = np.asarray(fit.activity_mbq, dtype=float)
    start = str(trap.get("start_rule", "linear"))
    lam_s = 0.0
    if start == "mono":
        if len(tau) >= 2 and 0 < a[1] < a[0]:
            lam_s = math.log(float(a[0] / a[1])) / float(tau[1] - tau[0])
        else:
            start = "constant"  # the rule of kinetics.models.trapezoid_tia
    tail_rate = float(trap.get("tail_rate_per_h", _LN2 / float(fit.physical_half_life_h)))
    return _Piecewise(tau, a, start, lam_s, tail_rate)


def bed_from_tac(
    dose_gy: float,
    fit: Any,
    alpha_beta_gy: float,
    t_repair_h: float,
    *,
    method: str = "analytic",
) -> BedResult:
    """BED of a VOI whose dose rate follows its fitted time-activity curve.

    The dose rate is taken proportional to the fitted activity (self-dose, local
    deposition), ``R(t) = D f(t) / int f``, from the injection on.  Exponential
    models (``mono``, ``biexp-uptake``, ``biexp``, ``triexp``) use the closed form
    :func:`g_factor_sum_of_exponentials` (``method="analytic"``) or the numerical
    integration of :func:`bed_numeric` (``method="numeric"``, for checking).  The
    ``trapezoid`` curve (start segment by the fit's start rule, straight lines
    between the points, exponential tail at the fit's tail rate) is integrated
    numerically up to the last point and analytically over the tail
    (``int R y = R_T y_T/(k+mu) + R_T^2/(2k(k+mu))`` after the last point ``T``).

    Parameters
    ----------
    dose_gy : float
        Absorbed dose of the VOI (Gy), >= 0.
    fit : FitResult or CandidateFit
        From :func:`dosimetry_core.kinetics.fitting.fit_tac`; a trapezoid needs the
        ``FitResult`` (it carries the time points).
    alpha_beta_gy, t_repair_h : float
        alpha/beta (Gy) and repair half-time (h).
    method : {"analytic", "numeric"}

    Returns
    -------
    BedResult
        ``model`` = ``"fit:<model>"``; ``t_eff_h`` (and ``t_uptake_h`` for
        biexp-uptake) set from the fitted rates for mono and biexp-uptake.
    """
    if method not in ("analytic", "numeric"):
        raise InvalidInputError(f"unknown BED method {method!r} (analytic or numeric)")
    d = _scalar("dose_gy", "Gy", dose_gy, positive=False)
    ab = _scalar("alpha_beta_gy", "Gy", alpha_beta_gy, positive=True)
    tr = _scalar("t_repair_h", "h", t_repair_h, positive=True)
    mu = _LN2 / tr
    cand = getattr(fit, "chosen", fit)
    model = str(getattr(cand, "model", ""))
    if model == "trapezoid":
        if not hasattr(fit, "time_h"):
            raise InvalidInputError("a trapezoid BED needs the whole fit result (time points)")
        curve = _trapezoid_curve(fit)
        edges = [0.0, *(float(t) for t in curve.tau)]
        area, y_t, dbl = _lc_integrate(curve, edges, mu)
        k, r_t = curve.tail_rate, float(curve.a[-1])
        area += r_t / k
        dbl += r_t * y_t / (k + mu) + r_t**2 / (2.0 * k * (k + mu))
        if not area > 0:
            raise InvalidInputError("the fitted curve has no area: no dose to weight")
        return _result(d, 2.0 * dbl / area**2, ab, tr, None, None, "fit:trapezoid")
    values = list(getattr(cand, "values", []))
    if not values or any(not math.isfinite(v) for v in values):
        raise InvalidInputError(f"the {model or 'fitted'} curve has no usable parameters")
    terms = exponential_terms(model, values)
    t_eff = t_up = None
    if model == "mono":
        t_eff = _LN2 / values[1]
    elif model == "biexp-uptake":
        t_eff, t_up = _LN2 / values[1], _LN2 / values[2]
    if method == "analytic":
        g = g_factor_sum_of_exponentials([c for c, _ in terms], [k for _, k in terms], tr)
        return _result(d, g, ab, tr, t_eff, t_up, f"fit:{model}")
    k_min = min(k for _, k in terms)
    t_end = TAIL_HALF_LIVES * _LN2 / k_min

    def shape(t: float) -> float:
        return sum(c * math.exp(-k * t) for c, k in terms)

    area, _, dbl = _lc_integrate(shape, [0.0, t_end], mu)
    return _result(d, 2.0 * dbl / area**2, ab, tr, t_eff, t_up, f"fit:{model}")


# ------------------------------------------------------------- cycles
@dataclass(frozen=True)
class CycleSum:
    """BED and EQD2 summed over cycles (complete repair between cycles)."""

    bed_per_cycle_gy: list[float]
    dose_per_cycle_gy: list[float] | None
    bed_total_gy: float
    eqd2_total_gy: float
    dose_total_gy: float | None
    alpha_beta_gy: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def sum_over_cycles(
    cycles: Sequence[BedResult] | Sequence[float] | Sequence[Array],
    alpha_beta_gy: float | None = None,
) -> CycleSum | tuple[Array, Array]:
    """Cumulative BED and EQD2 of several therapy cycles.

    Cycles are weeks apart, far longer than any repair half-time, so damage of
    one cycle is fully repaired before the next: the cycles do not interact and
    ``BED_total = sum_c BED_c``, ``EQD2_total = BED_total / (1 + 2/(alpha/beta))``
    (Dale RG, Phys Med Biol 1996;41:1871-1884; Wessels BW et al., J Nucl Med
    2008;49:1884-1899).  Repopulation between cycles is neglected.

    Parameters
    ----------
    cycles : sequence of BedResult, of float (BED in Gy) or of arrays (BED maps, Gy)
        One entry per cycle.  With ``BedResult`` entries ``alpha_beta_gy`` may be
        omitted; it must then be the same for every cycle.
    alpha_beta_gy : float, optional
        alpha/beta (Gy) of the tissue; required for plain numbers or arrays.

    Returns
    -------
    CycleSum
        For BedResult or float cycles.
    (bed_total, eqd2_total) : tuple of arrays
        For array (per-voxel) cycles, element-wise.
    """
    if len(cycles) == 0:
        raise InvalidInputError("no cycle given")
    if all(isinstance(c, BedResult) for c in cycles):
        results = [c for c in cycles if isinstance(c, BedResult)]
        abs_ = {r.alpha_beta_gy for r in results}
        if alpha_beta_gy is not None:
            abs_.add(float(alpha_beta_gy))
        if len(abs_) != 1:
            raise InvalidInputError(
                f"cycles use different alpha/beta values {sorted(abs_)} Gy: BEDs of different "
                "tissues can not be added"
            )
        ab = abs_.pop()
        beds = [r.bed_gy for r in results]
        doses: list[float] | None = [r.dose_gy for r in results]
    else:
        if any(isinstance(c, BedResult) for c in cycles):
            raise InvalidInputError("give either BED results or BED values, not both")
        if alpha_beta_gy is None:
            raise InvalidInputError("alpha/beta (Gy) is needed to sum BED values over cycles")
        ab = _scalar("alpha_beta_gy", "Gy", alpha_beta_gy, positive=True)
        values = cast(Sequence[ArrayLike], cycles)
        arrays = [
            _arr(f"BED of cycle {i + 1}", "Gy", c, positive=False) for i, c in enumerate(values)
        ]
        if any(a.ndim > 0 for a in arrays):
            total = np.sum(np.broadcast_arrays(*arrays), axis=0)
            return total, np.asarray(eqd2_gy(total, ab), dtype=float)
        beds = [float(a) for a in arrays]
        doses = None
    total_bed = float(sum(beds))
    return CycleSum(
        bed_per_cycle_gy=beds,
        dose_per_cycle_gy=doses,
        bed_total_gy=total_bed,
        eqd2_total_gy=float(eqd2_gy(total_bed, ab)),
        dose_total_gy=None if doses is None else float(sum(doses)),
        alpha_beta_gy=ab,
    )
