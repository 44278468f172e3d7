"""Weighted least-squares fits of time-activity curves, model selection by AICc, TIA ± SD.

Weights
-------
Each activity ``A_i`` (MBq, at scan time) has a standard deviation ``sigma_i``:

* default, *relative error model*: ``sigma_i = relative_sd * max(A_i, 0.01 * max(A))``
  (``relative_sd`` = 0.10 unless set; the floor at 1 % of the largest activity
  keeps near-zero points from getting infinite weight);
* or the user's absolute SDs ``activity_sd_mbq`` (MBq), one per point.

The fit minimises ``chi2 = sum(((f(tau_i) - A_i) / sigma_i)^2)`` with
:func:`scipy.optimize.least_squares` (trust-region reflective, analytic
Jacobian, box bounds), started from several data-derived initial guesses; the
lowest converged ``chi2`` wins.

Covariance
----------
``Sigma = s2 (J^T W J)^-1`` with ``W = diag(1/sigma_i^2)``.  ``s2 = chi2/(n - k)``
(the reduced chi-square) when the covariance is *scaled*, else ``s2 = 1``.  By
default it is scaled with the relative error model (its ``relative_sd`` is an
assumption, the data tell the actual scatter) and not scaled when the user gives
absolute SDs (they are taken as known); ``scale_covariance`` overrides.  With
``n == k`` there is no residual degree of freedom and no scaling is possible.

A fit is *well-conditioned* when ``J^T W J`` is invertible with a condition
number of the column-normalised weighted Jacobian below ``1e7`` and every
parameter has a relative SD <= 100 %; otherwise its covariance is reported as
``null`` and the reason is given in ``warnings``.

TIA uncertainty
---------------
``var(TIA) = g Sigma g^T`` with ``g = dTIA/dp`` analytic (first-order propagation,
EANM practical guidance on uncertainty analysis for molecular radiotherapy
absorbed dose calculations, Gear JI et al., Eur J Nucl Med Mol Imaging
2018;45:2456-2474).  Check: Monte Carlo with ``mc_samples`` parameter vectors
drawn from the multivariate normal ``N(p, Sigma)`` (seeded); draws outside the
bounds or with the rates in the wrong order are rejected and the fraction kept
is reported; ``tia_sd_mc_mbq_h`` is the sample SD of the TIAs of the kept draws.

Model selection (``model="auto"``)
----------------------------------
Corrected Akaike information criterion (Glatting G, Kletting P, Reske SN, Hohl K,
Ring C. Choosing the optimal fit function: comparison of the Akaike information
criterion and the F-test. Med Phys 2007;34:4285-4292; Kletting P, Schimmel S,
Kestler HA, et al. Molecular radiotherapy: the NUKFIT software for calculating the
time-integrated activity coefficient. Med Phys 2013;40:102504)::

    AICc = n ln(SSR/n) + 2k + 2k(k+1)/(n-k-1),   only when n - k - 1 > 0

with ``SSR`` the weighted sum of squared residuals (chi2, floored at ``n * 1e-8``
so that numerically exact fits of noise-free data tie and the penalty decides)
and ``k`` the number of fitted model parameters.  Counting convention: Burnham
& Anderson (Model Selection and Multimodel Inference, 2nd ed., Springer 2002,
section 2.2) add one to ``k`` for the error variance when it is estimated from
the residuals of an unweighted fit.  Here the variances are set by the error
model (``sigma_i`` above), so only the model parameters are counted; with
``k + 1`` no AICc would exist for a mono-exponential fit of 4 time points
(``n - k - 1 = 0``), the usual clinical sampling.  Rule:

1. Every parametric model with ``k <= n`` is fitted (mono k=2, biexp-uptake k=3,
   biexp k=4, triexp k=5); the trapezoid is always computed as a reference
   candidate but never chosen by this rule.
2. *Eligible*: converged, well-conditioned, rates in the model's order.
3. If some eligible model has ``n - k - 1 > 0``: the lowest AICc among those.
4. Otherwise (too few points for AICc): the eligible model with the fewest
   parameters that is *adequate*, i.e. ``P(chi2_{n-k} >= chi2) >= 0.05`` (a model
   with ``n == k`` interpolates the points and counts as adequate); if none is
   adequate, the eligible model with the lowest chi2, with a warning.
5. If no model is eligible: with ``fallback=True`` the trapezoid (recorded in
   ``fallback_used`` and ``warnings``); without it the simplest model that ran is
   reported with ``converged``/``well_conditioned`` false and the reasons.

The user can force any model (``model="mono"``, ...): only that model (and the
trapezoid reference) is then fitted, and ``fallback`` applies to it.  All
candidates' statistics are kept in ``candidates``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import optimize, special

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.kinetics.models import (
    AMPLITUDE_MAX_FACTOR,
    MODEL_NAMES,
    MODELS,
    START_RULES,
    TAIL_RULES,
    KineticModel,
    trapezoid_tia,
)
from dosimetry_core.physics.nuclides import decay_constant_per_h, normalize_nuclide

Array = NDArray[np.float64]

COND_MAX = 1e7
"""Largest condition number of the column-normalised weighted Jacobian accepted."""
CV_MAX = 1.0
"""Largest relative SD of a fitted parameter accepted for a well-conditioned fit."""
SSR_FLOOR_PER_POINT = 1e-8
ADEQUACY_P = 0.05
DEFAULT_SEED = 20261122
LAMBDA_FLOOR_PER_H = 1e-6
"""Lower bound of every rate with ``allow_slower_than_physical`` (T1/2 ~ 79 years)."""
MAX_TIME_H = 10_000.0
"""Latest scan or injection time accepted (h; about 14 months): a longer time is a
typing or unit error (s, min, a date) and would overflow the back-extrapolation."""
MAX_ACTIVITY_MBQ = 1.0e7
"""Largest activity accepted in a time-activity curve (MBq; 10 TBq, some 300 times the
largest therapy administration): a larger value is a unit error (Bq, counts) and would
overflow the fit (a local plausibility limit)."""
MC_SAMPLES_RANGE = (100, 100_000)
"""Accepted numbers of Monte Carlo samples besides 0 (no Monte Carlo check): fewer
give no usable SD, more only cost memory and time."""


def check_time_h(value: float, field_name: str = "time_h") -> float:
    """``value`` as a finite time in 0-:data:`MAX_TIME_H` h, else refused naming ``field_name``."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if not math.isfinite(v):
        raise InvalidInputError(f"{field_name} is not a number ({value!r})", field=field_name)
    if not 0.0 <= v <= MAX_TIME_H:
        raise InvalidInputError(
            f"{field_name} {value!r} h is outside 0-{MAX_TIME_H:g} h (hours after administration)",
            field=field_name,
        )
    return v


def check_mc_samples(value: int) -> int:
    """``value`` as 0 (no Monte Carlo) or within :data:`MC_SAMPLES_RANGE`, else refused."""
    lo, hi = MC_SAMPLES_RANGE
    if isinstance(value, bool) or int(value) != value or not (value == 0 or lo <= value <= hi):
        raise InvalidInputError(
            f"mc_samples must be 0 (no Monte Carlo check) or {lo}-{hi}, got {value!r}",
            field="mc_samples",
        )
    return int(value)


def _finite(x: float | None) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return float(x)


@dataclass
class CandidateFit:
    """The fit of one model: parameters, covariance, goodness of fit, TIA ± SD."""

    model: str
    param_names: list[str]
    param_units: list[str]
    values: list[float]
    covariance: list[list[float]] | None
    tia_mbq_h: float | None
    tia_sd_mbq_h: float | None
    tia_sd_mc_mbq_h: float | None
    mc_accepted_fraction: float | None
    aicc: float | None
    chi2: float | None
    reduced_chi2: float | None
    r2: float | None
    n_points: int
    n_params: int
    residuals_mbq: list[float]
    converged: bool
    well_conditioned: bool
    half_lives_h: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def dof(self) -> int:
        return self.n_points - self.n_params

    def parameter_sd(self) -> list[float | None]:
        if self.covariance is None:
            return [None] * len(self.values)
        return [
            _finite(math.sqrt(max(self.covariance[i][i], 0.0))) for i in range(len(self.values))
        ]

    def to_dict(self) -> dict[str, Any]:
        sds = self.parameter_sd()
        out: dict[str, Any] = {
            "model": self.model,
            "parameters": {
                n: {"value": _finite(v), "unit": u, "sd": sd}
                for n, u, v, sd in zip(
                    self.param_names, self.param_units, self.values, sds, strict=True
                )
            },
            "covariance": self.covariance,
            "covariance_parameter_order": list(self.param_names),
            "aicc": _finite(self.aicc),
            "tia_mbq_h": _finite(self.tia_mbq_h),
            "tia_sd_mbq_h": _finite(self.tia_sd_mbq_h),
            "tia_sd_mc_mbq_h": _finite(self.tia_sd_mc_mbq_h),
            "mc_accepted_fraction": self.mc_accepted_fraction,
            "half_lives_h": {
                k: {"value": _finite(v), "unit": "h"} for k, v in self.half_lives_h.items()
            },
            "converged": self.converged,
            "well_conditioned": self.well_conditioned,
            "chi2": _finite(self.chi2),
            "reduced_chi2": _finite(self.reduced_chi2),
            "r2": _finite(self.r2),
            "n_points": self.n_points,
            "n_params": self.n_params,
            "residuals_mbq": [float(r) for r in self.residuals_mbq],
            "warnings": list(self.warnings),
        }
        out.update(self.extra)
        return out


@dataclass
class FitResult:
    """Chosen fit, every candidate, and how the choice was made."""

    chosen: CandidateFit
    candidates: list[CandidateFit]
    selection: str
    fallback_used: bool
    nuclide: str
    physical_half_life_h: float
    injection_time_h: float
    weights: dict[str, Any]
    time_h: list[float]
    activity_mbq: list[float]
    administered_activity_mbq: float | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def model(self) -> str:
        return self.chosen.model

    @property
    def tia_mbq_h(self) -> float:
        return float(self.chosen.tia_mbq_h) if self.chosen.tia_mbq_h is not None else math.nan

    @property
    def tia_sd_mbq_h(self) -> float | None:
        return self.chosen.tia_sd_mbq_h

    @property
    def converged(self) -> bool:
        return self.chosen.converged and self.chosen.well_conditioned

    def to_dict(self) -> dict[str, Any]:
        """The public JSON object of ``mrtdose fit --json`` (see issue 4)."""
        c = self.chosen.to_dict()
        out: dict[str, Any] = {
            "model": c["model"],
            "parameters": c["parameters"],
            "covariance": c["covariance"],
            "covariance_parameter_order": c["covariance_parameter_order"],
            "aicc": c["aicc"],
            "tia_mbq_h": c["tia_mbq_h"],
            "tia_sd_mbq_h": c["tia_sd_mbq_h"],
            "tia_sd_mc_mbq_h": c["tia_sd_mc_mbq_h"],
            "candidates": [k.to_dict() for k in self.candidates],
            "half_lives_h": c["half_lives_h"],
            "converged": self.converged,
            "warnings": list(self.warnings),
            "chi2": c["chi2"],
            "reduced_chi2": c["reduced_chi2"],
            "r2": c["r2"],
            "residuals_mbq": c["residuals_mbq"],
            "selection": self.selection,
            "fallback_used": self.fallback_used,
            "weights": self.weights,
            "nuclide": self.nuclide,
            "physical_half_life_h": self.physical_half_life_h,
            "injection_time_h": self.injection_time_h,
            "time_h": self.time_h,
            "activity_mbq": self.activity_mbq,
            "units": {"time": "h after administration", "activity": "MBq at scan time"},
        }
        if "trapezoid" in c:
            out["trapezoid"] = c["trapezoid"]
        if self.administered_activity_mbq is not None:
            a = self.administered_activity_mbq
            out["administered_activity_mbq"] = a
            out["tiac_h"] = _finite(self.tia_mbq_h / a)
            sd = self.tia_sd_mbq_h
            out["tiac_sd_h"] = None if sd is None else _finite(sd / a)
        return out


# ------------------------------------------------------------------ input
def _as_1d(name: str, x: Any) -> Array:
    try:
        arr = np.asarray(x, dtype=float).ravel()
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{name}: not a list of numbers ({exc})") from exc
    return arr


def validate_tac(
    time_h: Any,
    activity_mbq: Any,
    *,
    injection_time_h: float = 0.0,
    activity_sd_mbq: Any = None,
    min_points: int = 2,
) -> tuple[Array, Array, Array | None]:
    """Check a TAC and return (tau = t - t_inj sorted, activities, SDs or None).

    Raises
    ------
    InvalidInputError
        Mismatched lengths, too few points, NaN/inf, negative activities, times
        before the injection, duplicate times, non-positive SDs, all-zero curve.
    """
    t = _as_1d("time_h", time_h)
    a = _as_1d("activity_mbq", activity_mbq)
    if t.size != a.size:
        raise InvalidInputError(
            f"{t.size} time(s) but {a.size} activit{'y' if a.size == 1 else 'ies'}: "
            "give one activity per time point"
        )
    if t.size < min_points:
        raise InvalidInputError(
            f"{t.size} time point(s): a fit needs at least {min_points}"
            + (" (use --stp for a single time point)" if t.size == 1 else "")
        )
    if not np.all(np.isfinite(t)):
        raise InvalidInputError("time_h contains NaN or infinite values", field="time_h")
    for x in t:
        check_time_h(float(x), "time_h")
    if not np.all(np.isfinite(a)):
        raise InvalidInputError("activity_mbq contains NaN or infinite values")
    if np.any(a < 0):
        raise InvalidInputError(f"negative activity {float(a[a < 0][0]):g} MBq")
    if np.any(a > MAX_ACTIVITY_MBQ):
        raise InvalidInputError(
            f"activity {float(a.max()):g} MBq is beyond {MAX_ACTIVITY_MBQ:g} MBq "
            "(a unit error: Bq or counts?)",
            field="activity_mbq",
        )
    check_time_h(injection_time_h, "injection_time_h")
    if np.any(t < injection_time_h):
        raise InvalidInputError(
            f"time {float(t[t < injection_time_h][0]):g} h is before the injection "
            f"({injection_time_h:g} h)"
        )
    order = np.argsort(t, kind="stable")
    t, a = t[order], a[order]
    if np.any(np.diff(t) == 0):
        dup = float(t[1:][np.diff(t) == 0][0])
        raise InvalidInputError(f"duplicate time {dup:g} h: merge or remove repeated points")
    if not np.any(a > 0):
        raise InvalidInputError("every activity is zero: nothing to integrate")
    sd = None
    if activity_sd_mbq is not None:
        sd = _as_1d("activity_sd_mbq", activity_sd_mbq)
        if sd.size != a.size:
            raise InvalidInputError(
                f"{sd.size} activity SD(s) for {a.size} activities: give one per time point"
            )
        sd = sd[order]
        if not np.all(np.isfinite(sd)) or np.any(sd <= 0):
            raise InvalidInputError("every activity SD must be a positive number (MBq)")
    return t - injection_time_h, a, sd


# -------------------------------------------------------------- one model
def _well_conditioned(
    jw: Array, p: Array, names: tuple[str, ...], n: int
) -> tuple[Array | None, list[str]]:
    """Unscaled covariance (J^T W J)^-1, or None with the reason."""
    k = jw.shape[1]
    norms = np.linalg.norm(jw, axis=0)
    if np.any(norms == 0) or not np.all(np.isfinite(jw)):
        return None, [f"covariance singular: parameters not identifiable from {n} points"]
    sv = np.linalg.svd(jw / norms, compute_uv=False)
    cond = float(sv[0] / sv[-1]) if sv[-1] > 0 else math.inf
    if k > n or not cond < COND_MAX:
        return None, [
            f"covariance singular: parameters not identifiable from {n} points "
            f"(condition number {cond:.3g})"
        ]
    jn = jw / norms
    with np.errstate(all="ignore"):
        cov = np.linalg.inv(jn.T @ jn) / np.outer(norms, norms)
    if not np.all(np.isfinite(cov)):
        return None, [f"covariance singular: parameters not identifiable from {n} points"]
    return cov, []


def fit_model(
    model: KineticModel,
    tau: Array,
    a: Array,
    sigma: Array,
    *,
    lam_min: float,
    scale_covariance: bool,
    mc_samples: int = 2000,
    seed: int = DEFAULT_SEED,
) -> CandidateFit:
    """Fit one parametric model by weighted least squares (see the module docstring)."""
    n, k = tau.size, model.n_params
    amp_max = AMPLITUDE_MAX_FACTOR * float(np.max(a))
    lo, hi = model.bounds(lam_min, amp_max)

    def resid(p: Array) -> Array:
        return (model.evaluate(p, tau) - a) / sigma

    def jac(p: Array) -> Array:
        return model.jacobian(p, tau) / sigma[:, None]

    best: Any = None
    any_success = False
    for p0 in model.initial_guesses(tau, a, lam_min):
        p0 = model.clip_into_bounds(np.asarray(p0, dtype=float), lam_min, amp_max)
        if not np.all(np.isfinite(p0)):
            continue
        try:
            with np.errstate(all="ignore"):
                res = optimize.least_squares(
                    resid,
                    p0,
                    jac=jac,
                    bounds=(lo, hi),
                    method="trf",
                    x_scale="jac",
                    ftol=1e-10,
                    xtol=1e-10,
                    gtol=1e-10,
                    max_nfev=1000,
                )
        except (ValueError, np.linalg.LinAlgError):
            continue
        ok = (
            bool(res.status > 0)
            and bool(np.all(np.isfinite(res.x)))
            and bool(np.isfinite(res.cost))
        )
        if ok and (best is None or not any_success or res.cost < best.cost):
            best, any_success = res, True
        elif best is None:
            best = res
    warnings: list[str] = []
    if best is None:
        return CandidateFit(
            model=model.name,
            param_names=list(model.param_names),
            param_units=list(model.param_units),
            values=[math.nan] * k,
            covariance=None,
            tia_mbq_h=None,
            tia_sd_mbq_h=None,
            tia_sd_mc_mbq_h=None,
            mc_accepted_fraction=None,
            aicc=None,
            chi2=None,
            reduced_chi2=None,
            r2=None,
            n_points=n,
            n_params=k,
            residuals_mbq=[],
            converged=False,
            well_conditioned=False,
            warnings=["the optimiser failed from every starting point"],
        )
    p = np.asarray(best.x, dtype=float)
    converged = any_success
    if not converged:
        warnings.append(f"fit did not converge ({best.message})")
    fitted = model.evaluate(p, tau)
    res_mbq = fitted - a
    chi2 = float(np.sum((res_mbq / sigma) ** 2))
    dof = n - k
    red = chi2 / dof if dof > 0 else None
    ss_tot = float(np.sum((a - a.mean()) ** 2))
    r2 = 1.0 - float(np.sum(res_mbq**2)) / ss_tot if ss_tot > 0 else None
    aicc = None
    if n - k - 1 > 0:
        ssr = max(chi2, SSR_FLOOR_PER_POINT * n)
        aicc = n * math.log(ssr / n) + 2 * k + 2 * k * (k + 1) / (n - k - 1)

    order_msg = model.order_violation(p)
    if order_msg:
        warnings.append(order_msg)
    at_bound = [
        model.param_names[i]
        for i in range(k)
        if (i in model.rate_indices and p[i] <= lo[i] * (1 + 1e-6) + 1e-12)
        or p[i] >= hi[i] * (1 - 1e-6)
    ]
    for name in at_bound:
        warnings.append(f"{name} is at its bound (covariance is approximate)")

    cov_unscaled, cw = _well_conditioned(jac(p), p, model.param_names, n)
    warnings.extend(cw)
    cov = None
    if cov_unscaled is not None:
        s2 = chi2 / dof if (scale_covariance and dof > 0) else 1.0
        cov = cov_unscaled * s2
        if scale_covariance and dof == 0:
            warnings.append("no residual degree of freedom: covariance from the assumed SDs")
        sd = np.sqrt(np.clip(np.diag(cov), 0, None))
        with np.errstate(divide="ignore", invalid="ignore"):
            cv = np.where(p != 0, sd / np.abs(p), np.inf)
        bad = [model.param_names[i] for i in range(k) if not cv[i] <= CV_MAX]
        if bad:
            warnings.append(
                f"parameters not identifiable from {n} points: relative SD > "
                f"{CV_MAX:.0%} for {', '.join(bad)}"
            )
            cov = None
    well = cov is not None

    tia = model.tia(p) if np.all(p[list(model.rate_indices)] > 0) else math.inf
    tia_sd = mc_sd = mc_frac = None
    if cov is not None:
        with np.errstate(all="ignore"):
            g = model.tia_gradient(p)
            var = float(g @ cov @ g)
            mc_sd, mc_frac = _mc_tia_sd(model, p, cov, lo, hi, mc_samples, seed)
        tia_sd = math.sqrt(max(var, 0.0)) if math.isfinite(var) else None
        if mc_sd is not None and not math.isfinite(mc_sd):
            mc_sd = None
        if mc_frac is not None and mc_frac < 0.5:
            warnings.append(
                f"Monte Carlo check: only {mc_frac:.0%} of parameter draws are physical; "
                "the Gaussian approximation is poor"
            )
    return CandidateFit(
        model=model.name,
        param_names=list(model.param_names),
        param_units=list(model.param_units),
        values=[float(v) for v in p],
        covariance=None if cov is None else [[float(x) for x in row] for row in cov],
        tia_mbq_h=float(tia),
        tia_sd_mbq_h=tia_sd,
        tia_sd_mc_mbq_h=mc_sd,
        mc_accepted_fraction=mc_frac,
        aicc=aicc,
        chi2=chi2,
        reduced_chi2=red,
        r2=r2,
        n_points=n,
        n_params=k,
        residuals_mbq=[float(r) for r in res_mbq],
        converged=converged,
        well_conditioned=well and order_msg is None,
        half_lives_h=model.half_lives_h(p),
        warnings=warnings,
    )


def _mc_tia_sd(
    model: KineticModel,
    p: Array,
    cov: Array,
    lo: Array,
    hi: Array,
    n_samples: int,
    seed: int,
) -> tuple[float | None, float | None]:
    if n_samples < 2:
        return None, None
    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        draws = rng.multivariate_normal(p, 0.5 * (cov + cov.T), size=n_samples, method="svd")
    keep = np.all((draws >= lo) & (draws <= hi), axis=1)
    tias = []
    for d in draws[keep]:
        if model.order_violation(d) is None:
            tias.append(model.tia(d))
    frac = len(tias) / n_samples
    if len(tias) < 2:
        return None, frac
    return float(np.std(tias, ddof=1)), frac


# -------------------------------------------------------------- trapezoid
def trapezoid_candidate(
    tau: Array,
    a: Array,
    sigma: Array,
    lam_phys: float,
    *,
    lam_min: float,
    start: str = "linear",
    tail: str = "physical",
    mc_samples: int = 2000,
    seed: int = DEFAULT_SEED,
) -> CandidateFit:
    """Trapezoid + tail as a candidate; SD by propagation of the activity SDs.

    The TIA is (for the ``linear``/``constant`` start and physical tail exactly)
    linear in the activities, ``TIA = sum w_i A_i``; the gradient is taken by
    central differences in general, ``var = sum (dTIA/dA_i)^2 sigma_i^2``, and
    checked by resampling the activities (Gaussian, ``sigma_i``, seeded).
    """
    tia, parts = trapezoid_tia(tau, a, lam_phys, start=start, tail=tail, lam_min=lam_min)
    grad = np.empty(a.size)
    for i in range(a.size):
        h = max(1e-6 * abs(float(a[i])), 1e-9)
        up, dn = a.copy(), a.copy()
        up[i] += h
        dn[i] = max(dn[i] - h, 0.0)
        grad[i] = (
            trapezoid_tia(tau, up, lam_phys, start=start, tail=tail, lam_min=lam_min)[0]
            - trapezoid_tia(tau, dn, lam_phys, start=start, tail=tail, lam_min=lam_min)[0]
        ) / (up[i] - dn[i])
    sd = float(math.sqrt(np.sum((grad * sigma) ** 2)))
    mc_sd = None
    if mc_samples >= 2:
        rng = np.random.default_rng(seed)
        draws = np.clip(a + rng.standard_normal((mc_samples, a.size)) * sigma, 0, None)
        vals = [
            trapezoid_tia(tau, d, lam_phys, start=start, tail=tail, lam_min=lam_min)[0]
            for d in draws
        ]
        mc_sd = float(np.std(vals, ddof=1))
    return CandidateFit(
        model="trapezoid",
        param_names=[],
        param_units=[],
        values=[],
        covariance=None,
        tia_mbq_h=tia,
        tia_sd_mbq_h=sd,
        tia_sd_mc_mbq_h=mc_sd,
        mc_accepted_fraction=None,
        aicc=None,
        chi2=None,
        reduced_chi2=None,
        r2=None,
        n_points=int(a.size),
        n_params=0,
        residuals_mbq=[0.0] * int(a.size),
        converged=True,
        well_conditioned=True,
        half_lives_h={"T_half_tail": math.log(2.0) / parts["tail_rate_per_h"]},
        extra={
            "trapezoid": {
                "start_rule": start,
                "tail_rule": tail,
                "start_mbq_h": parts["start"],
                "middle_mbq_h": parts["middle"],
                "tail_mbq_h": parts["tail"],
                "tail_rate_per_h": parts["tail_rate_per_h"],
            }
        },
    )


# ------------------------------------------------------------------ main
def _eligible(c: CandidateFit) -> bool:
    return c.converged and c.well_conditioned and c.tia_mbq_h is not None


def _adequate(c: CandidateFit) -> bool:
    if c.dof == 0:
        return True
    assert c.chi2 is not None
    # chi-square survival function P(X >= chi2 | dof) (Cephes chdtrc, the function
    # behind scipy.stats.chi2.sf), without importing scipy.stats (~1 s per process)
    return float(special.chdtrc(c.dof, c.chi2)) >= ADEQUACY_P


def select_model(candidates: list[CandidateFit]) -> tuple[CandidateFit | None, str]:
    """Apply the selection rule of the module docstring to parametric candidates."""
    elig = [c for c in candidates if c.model != "trapezoid" and _eligible(c)]
    with_aicc = [c for c in elig if c.aicc is not None]
    if with_aicc:
        best = min(with_aicc, key=lambda c: (c.aicc, c.n_params))
        others = ", ".join(f"{c.model} {c.aicc:.2f}" for c in with_aicc if c is not best)
        return best, (
            f"lowest AICc among eligible models with n-k-1>0: {best.model} "
            f"{best.aicc:.2f}" + (f" (others: {others})" if others else "")
        )
    if elig:
        adequate = [c for c in elig if _adequate(c)]
        if adequate:
            best = min(adequate, key=lambda c: c.n_params)
            return best, (
                "too few points for AICc: simplest eligible model that is adequate "
                f"(chi-square p >= {ADEQUACY_P}): {best.model}"
            )
        best = min(elig, key=lambda c: c.chi2 if c.chi2 is not None else math.inf)
        return best, (
            f"too few points for AICc and no model adequate: lowest chi-square {best.model}"
        )
    return None, "no model converged to a well-conditioned fit"


def fit_tac(
    time_h: Any,
    activity_mbq: Any,
    *,
    model: str = "auto",
    nuclide: str = "Lu-177",
    injection_time_h: float = 0.0,
    activity_sd_mbq: Any = None,
    relative_sd: float = 0.1,
    scale_covariance: bool | None = None,
    allow_slower_than_physical: bool = False,
    fallback: bool = False,
    trapezoid_start: str = "linear",
    trapezoid_tail: str = "physical",
    administered_activity_mbq: float | None = None,
    mc_samples: int = 2000,
    seed: int = DEFAULT_SEED,
) -> FitResult:
    """Fit a time-activity curve and integrate it from injection to infinity.

    Parameters
    ----------
    time_h : sequence of float
        Scan times, h after administration (same clock as ``injection_time_h``).
    activity_mbq : sequence of float
        Activities at scan time (MBq, NOT decay corrected), >= 0.
    model : str
        ``auto`` (AICc selection, see module docstring), ``mono``,
        ``biexp-uptake``, ``biexp``, ``triexp`` or ``trapezoid``.
    nuclide : str
        Sets the physical decay constant (lower bound of every rate and the
        trapezoid tail).
    injection_time_h : float
        Start of the administration on the same clock (h); TIA is from here.
    activity_sd_mbq : sequence of float, optional
        Absolute SD of each activity (MBq).  Default: relative error model.
    relative_sd : float
        Relative SD of the relative error model (0.10 = 10 %).
    scale_covariance : bool, optional
        Scale the covariance by the reduced chi-square.  Default: True for the
        relative error model, False with ``activity_sd_mbq``.
    allow_slower_than_physical : bool
        Lower bound of the rates ``LAMBDA_FLOOR_PER_H`` (1e-6 1/h) instead of the
        physical decay constant.
    fallback : bool
        Use the trapezoid when the chosen model fails (recorded in the result).
    trapezoid_start, trapezoid_tail : str
        Rules of :func:`dosimetry_core.kinetics.models.trapezoid_tia`.
    administered_activity_mbq : float, optional
        For TIAC = TIA / A_adm (h).
    mc_samples, seed : int
        Monte Carlo check of the TIA SD.

    Returns
    -------
    FitResult

    Raises
    ------
    InvalidInputError
        Bad input (see :func:`validate_tac`), unknown model or nuclide, a forced
        model with more parameters than points.
    """
    if model != "auto" and model not in MODEL_NAMES:
        raise InvalidInputError(f"unknown model {model!r} (choose auto, {', '.join(MODEL_NAMES)})")
    if trapezoid_start not in START_RULES:
        raise InvalidInputError(f"unknown trapezoid start rule {trapezoid_start!r}")
    if trapezoid_tail not in TAIL_RULES:
        raise InvalidInputError(f"unknown trapezoid tail rule {trapezoid_tail!r}")
    if not (relative_sd > 0 and math.isfinite(relative_sd)):
        raise InvalidInputError("relative SD must be a positive number (e.g. 0.1 for 10 %)")
    mc_samples = check_mc_samples(mc_samples)
    if administered_activity_mbq is not None and not administered_activity_mbq > 0:
        raise InvalidInputError("administered activity must be positive (MBq)")
    nuc = normalize_nuclide(nuclide)
    lam_phys = decay_constant_per_h(nuc)
    tau, a, sd = validate_tac(
        time_h, activity_mbq, injection_time_h=injection_time_h, activity_sd_mbq=activity_sd_mbq
    )
    n = tau.size
    if sd is None:
        sigma = relative_sd * np.maximum(a, 0.01 * float(a.max()))
        weights: dict[str, Any] = {
            "model": "relative",
            "relative_sd": relative_sd,
            "description": (
                f"sigma_i = {relative_sd:g} * max(A_i, 1% of max A); weights 1/sigma_i^2"
            ),
        }
        scale = True if scale_covariance is None else scale_covariance
    else:
        sigma = sd
        weights = {
            "model": "absolute",
            "activity_sd_mbq": [float(s) for s in sd],
            "description": "user-given SD per point (MBq); weights 1/sigma_i^2",
        }
        scale = False if scale_covariance is None else scale_covariance
    weights["covariance_scaled_by_reduced_chi2"] = scale
    lam_min = LAMBDA_FLOOR_PER_H if allow_slower_than_physical else lam_phys

    if model in MODELS and MODELS[model].n_params > n:
        raise InvalidInputError(
            f"model {model} has {MODELS[model].n_params} parameters; "
            f"it needs at least {MODELS[model].n_params} time points, got {n}"
        )
    candidates: list[CandidateFit] = [
        fit_model(
            m,
            tau,
            a,
            sigma,
            lam_min=lam_min,
            scale_covariance=scale,
            mc_samples=mc_samples,
            seed=seed,
        )
        for m in MODELS.values()
        if m.n_params <= n and model in ("auto", m.name)
    ]
    trap = trapezoid_candidate(
        tau,
        a,
        sigma,
        lam_phys,
        lam_min=lam_min,
        start=trapezoid_start,
        tail=trapezoid_tail,
        mc_samples=mc_samples,
        seed=seed,
    )
    candidates.append(trap)
    warnings: list[str] = []
    fallback_used = False
    chosen: CandidateFit | None
    if model == "trapezoid":
        chosen, selection = trap, "forced by the user: trapezoid"
    elif model != "auto":
        chosen = next(c for c in candidates if c.model == model)
        selection = f"forced by the user: {model}"
    else:
        chosen, selection = select_model(candidates)
        if chosen is None:
            chosen = next(
                (c for c in candidates if c.converged and c.model != "trapezoid"), candidates[0]
            )
            selection += f"; reporting the simplest fit that ran: {chosen.model}"
    if chosen.model != "trapezoid" and chosen.tia_mbq_h is not None and not _eligible(chosen):
        reason = "; ".join(chosen.warnings) or "fit failed"
        if fallback:
            warnings.append(f"{chosen.model} fit unusable ({reason}): fell back to trapezoid")
            chosen, fallback_used = trap, True
            selection += "; fallback to trapezoid (allowed by the user)"
        else:
            warnings.append(
                f"{chosen.model} fit is not reliable ({reason}); "
                "no fallback (allow it with --fallback)"
            )
    elif chosen.model != "trapezoid" and chosen.tia_mbq_h is None:
        if fallback:
            warnings.append(f"{chosen.model} fit failed: fell back to trapezoid")
            chosen, fallback_used = trap, True
        else:
            warnings.append(f"{chosen.model} fit failed; no fallback (allow it with --fallback)")
    if chosen.model != "trapezoid" and chosen.chi2 is not None and not _adequate(chosen):
        warnings.append(
            f"{chosen.model}: chi-square {chosen.chi2:.3g} for {chosen.dof} degree(s) of "
            f"freedom is improbable (p < {ADEQUACY_P}) under the stated weights"
        )
    for w in chosen.warnings:
        if not any(w in x for x in warnings):
            warnings.append(w)
    return FitResult(
        chosen=chosen,
        candidates=candidates,
        selection=selection,
        fallback_used=fallback_used,
        nuclide=nuc,
        physical_half_life_h=math.log(2.0) / lam_phys,
        injection_time_h=float(injection_time_h),
        weights=weights,
        time_h=[float(x) for x in tau + injection_time_h],
        activity_mbq=[float(x) for x in a],
        administered_activity_mbq=administered_activity_mbq,
        warnings=warnings,
    )
