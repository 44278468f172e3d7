"""Single-time-point (STP) estimates of the time-integrated activity.

Both methods take one activity ``A`` (MBq, at scan time, not decay corrected)
measured ``tau = t - t_inj`` hours after the injection and return the TIA
(MBq h) from injection to infinity, assuming mono-exponential clearance.

* Hänscheid H, Lapa C, Buck AK, Lassmann M, Werner RA. Dose mapping after
  endoradiotherapy with 177Lu-DOTATATE/DOTATOC by a single measurement after
  4 days. J Nucl Med 2018;59:75-81::

      TIA ~ A(tau) * 2 tau / ln 2

  This is the mono-exponential integral ``A exp(lambda tau) / lambda`` evaluated
  at ``lambda tau = ln 2`` (scan at one effective half-life), where it is exact;
  it is insensitive to the true half-life for scans near ``tau = T_eff``.
* Madsen MT, Menda Y, O'Dorisio TM, O'Dorisio MS. Technical Note: single time
  point dose estimate for exponential clearance. Med Phys 2018;45:2318-2324::

      TIA ~ A(tau) * exp(lambda_eff tau) / lambda_eff,  lambda_eff = ln 2 / T_eff

  with a population effective half-life ``T_eff``; exact for a mono-exponential
  curve with that half-life.

Uncertainty (first-order propagation; Gear et al. 2018, EANM):
``var(TIA) = (dTIA/dA sd_A)^2 + (dTIA/dT sd_T)^2`` with, for Madsen,
``dTIA/dT = -A exp(lambda tau) (lambda tau - 1) / (lambda T)``.  That derivative
vanishes at ``tau = T_eff / ln 2`` (the optimal scan time of the method), where
the first-order SD underestimates; a seeded Monte Carlo (T_eff ~ normal,
truncated at > 0) is therefore reported as well.  For Hänscheid's formula the
population SD of T_eff enters through the *method error*: the spread of the exact
mono-exponential TIA for T_eff ± SD around the formula's value (reported as
``tia_sd_mbq_h`` together with the activity SD when a T_eff and its SD are given).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.kinetics.fitting import (
    MAX_ACTIVITY_MBQ,
    MAX_TIME_H,
    check_mc_samples,
    check_time_h,
)

_LN2 = math.log(2.0)
STP_METHODS = ("haenscheid", "madsen")


@dataclass
class STPResult:
    """TIA (MBq h) from one time point, with its SD when computable."""

    method: str
    time_h: float
    activity_mbq: float
    tia_mbq_h: float
    tia_sd_mbq_h: float | None
    injection_time_h: float = 0.0
    t_eff_h: float | None = None
    t_eff_sd_h: float | None = None
    activity_sd_mbq: float | None = None
    tia_sd_mc_mbq_h: float | None = None
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "method": self.method,
            "tia_mbq_h": self.tia_mbq_h,
            "tia_sd_mbq_h": self.tia_sd_mbq_h,
            "tia_sd_mc_mbq_h": self.tia_sd_mc_mbq_h,
            "time_h": self.time_h,
            "injection_time_h": self.injection_time_h,
            "activity_mbq": self.activity_mbq,
            "activity_sd_mbq": self.activity_sd_mbq,
            "t_eff_h": self.t_eff_h,
            "t_eff_sd_h": self.t_eff_sd_h,
            "source": self.source,
            "units": {"time": "h after administration", "activity": "MBq at scan time"},
        }
        out.update(self.extra)
        return out


def _check(time_h: float, activity_mbq: float, injection_time_h: float) -> float:
    check_time_h(time_h, "time_h")
    check_time_h(injection_time_h, "injection_time_h")
    if not math.isfinite(activity_mbq):
        raise InvalidInputError("activity is not a number", field="activity_mbq")
    if activity_mbq < 0:
        raise InvalidInputError(f"negative activity {activity_mbq:g} MBq")
    tau = time_h - injection_time_h
    if tau <= 0:
        raise InvalidInputError(
            f"time {time_h:g} h is not after the injection ({injection_time_h:g} h)"
        )
    return tau


def _check_sd(name: str, sd: float | None, *, upper: float, unit: str) -> None:
    if sd is not None and not (math.isfinite(sd) and sd >= 0):
        raise InvalidInputError(f"{name} must be a non-negative number")
    if sd is not None and sd > upper:
        raise InvalidInputError(f"{name} {sd:g} {unit} is beyond {upper:g} {unit}")


def mono_tia(activity_mbq: float, tau_h: float, t_eff_h: float) -> float:
    """Exact mono-exponential TIA through one point: ``A exp(lambda tau) / lambda`` (MBq h)."""
    lam = _LN2 / t_eff_h
    if lam * tau_h > 700.0:
        raise InvalidInputError(
            f"scan at {tau_h:g} h is {tau_h / t_eff_h:.0f} effective half-lives after the "
            "injection: back-extrapolation is meaningless"
        )
    return activity_mbq * math.exp(lam * tau_h) / lam


def haenscheid(
    time_h: float,
    activity_mbq: float,
    *,
    injection_time_h: float = 0.0,
    activity_sd_mbq: float | None = None,
    t_eff_h: float | None = None,
    t_eff_sd_h: float | None = None,
) -> STPResult:
    """Hänscheid et al. 2018: ``TIA = A * 2 tau / ln 2`` (MBq h).

    Parameters
    ----------
    time_h : float
        Scan time, h after administration.
    activity_mbq : float
        Activity at scan time (MBq).
    injection_time_h : float
        Injection time on the same clock (h).
    activity_sd_mbq : float, optional
        SD of the activity (MBq); propagated as ``2 tau / ln2 * sd_A``.
    t_eff_h, t_eff_sd_h : float, optional
        Population effective half-life and its SD (h), only for the method-error
        estimate: ``|mono(T+sd) - mono(T-sd)| / 2`` added in quadrature, and the
        relative bias of the formula against the mono-exponential with ``T_eff``.
    """
    tau = _check(time_h, activity_mbq, injection_time_h)
    _check_sd("activity SD", activity_sd_mbq, upper=MAX_ACTIVITY_MBQ, unit="MBq")
    _check_sd("T_eff SD", t_eff_sd_h, upper=MAX_TIME_H, unit="h")
    if t_eff_h is not None and not (math.isfinite(t_eff_h) and t_eff_h > 0):
        raise InvalidInputError("effective half-life must be a positive number of hours")
    factor = 2.0 * tau / _LN2
    tia = activity_mbq * factor
    var: float | None = None
    if activity_sd_mbq is not None:
        var = (factor * activity_sd_mbq) ** 2
    extra: dict[str, Any] = {}
    if t_eff_h is not None:
        exact = mono_tia(activity_mbq, tau, t_eff_h)
        extra["relative_bias_vs_mono_t_eff"] = tia / exact - 1.0 if exact > 0 else None
        if t_eff_sd_h is not None and t_eff_sd_h > 0:
            lo_t = max(t_eff_h - t_eff_sd_h, 1e-6)
            spread = (
                abs(
                    mono_tia(activity_mbq, tau, t_eff_h + t_eff_sd_h)
                    - mono_tia(activity_mbq, tau, lo_t)
                )
                / 2.0
            )
            extra["method_sd_mbq_h"] = spread
            var = (var or 0.0) + spread**2
    return STPResult(
        method="haenscheid",
        time_h=float(time_h),
        activity_mbq=float(activity_mbq),
        tia_mbq_h=tia,
        tia_sd_mbq_h=None if var is None else math.sqrt(var),
        injection_time_h=float(injection_time_h),
        t_eff_h=t_eff_h,
        t_eff_sd_h=t_eff_sd_h,
        activity_sd_mbq=activity_sd_mbq,
        source="Hänscheid et al., J Nucl Med 2018;59:75-81",
        extra=extra,
    )


def madsen(
    time_h: float,
    activity_mbq: float,
    t_eff_h: float,
    *,
    t_eff_sd_h: float | None = None,
    injection_time_h: float = 0.0,
    activity_sd_mbq: float | None = None,
    mc_samples: int = 20000,
    seed: int = 20261122,
) -> STPResult:
    """Madsen et al. 2018: ``TIA = A exp(lambda tau) / lambda``, ``lambda = ln2 / T_eff``.

    Parameters
    ----------
    time_h, activity_mbq, injection_time_h
        As for :func:`haenscheid`.
    t_eff_h : float
        Population effective half-life (h).
    t_eff_sd_h : float, optional
        Population SD of ``T_eff`` (h).
    activity_sd_mbq : float, optional
        SD of the activity (MBq).
    mc_samples, seed
        Monte Carlo check of the SD (``T_eff`` normal truncated at > 0, ``A``
        normal); 0 disables it.
    """
    tau = _check(time_h, activity_mbq, injection_time_h)
    if not (math.isfinite(t_eff_h) and t_eff_h > 0):
        raise InvalidInputError("effective half-life must be a positive number of hours")
    _check_sd("activity SD", activity_sd_mbq, upper=MAX_ACTIVITY_MBQ, unit="MBq")
    _check_sd("T_eff SD", t_eff_sd_h, upper=MAX_TIME_H, unit="h")
    mc_samples = check_mc_samples(mc_samples)
    lam = _LN2 / t_eff_h
    tia = mono_tia(activity_mbq, tau, t_eff_h)
    var: float | None = None
    if activity_sd_mbq is not None:
        var = (tia / activity_mbq * activity_sd_mbq) ** 2 if activity_mbq > 0 else 0.0
    mc_sd = None
    if t_eff_sd_h is not None:
        d_dt = -activity_mbq * math.exp(lam * tau) * (lam * tau - 1.0) / (lam * t_eff_h)
        var = (var or 0.0) + (d_dt * t_eff_sd_h) ** 2
    if (t_eff_sd_h or activity_sd_mbq) and mc_samples >= 2:
        rng = np.random.default_rng(seed)
        t_s = t_eff_h + (t_eff_sd_h or 0.0) * rng.standard_normal(mc_samples)
        a_s = activity_mbq + (activity_sd_mbq or 0.0) * rng.standard_normal(mc_samples)
        ok = t_s > 0
        lam_s = _LN2 / t_s[ok]
        with np.errstate(over="ignore", invalid="ignore"):
            vals = a_s[ok] * np.exp(np.minimum(lam_s * tau, 700.0)) / lam_s
        vals = vals[np.isfinite(vals)]
        if vals.size >= 2:
            mc_sd = float(np.std(vals, ddof=1))
    return STPResult(
        method="madsen",
        time_h=float(time_h),
        activity_mbq=float(activity_mbq),
        tia_mbq_h=tia,
        tia_sd_mbq_h=None if var is None else math.sqrt(var),
        injection_time_h=float(injection_time_h),
        t_eff_h=float(t_eff_h),
        t_eff_sd_h=t_eff_sd_h,
        activity_sd_mbq=activity_sd_mbq,
        tia_sd_mc_mbq_h=mc_sd,
        source="Madsen et al., Med Phys 2018;45:2318-2324",
        extra={"optimal_time_h": injection_time_h + t_eff_h / _LN2},
    )


def stp_tia(
    method: str,
    time_h: float,
    activity_mbq: float,
    *,
    t_eff_h: float | None = None,
    t_eff_sd_h: float | None = None,
    injection_time_h: float = 0.0,
    activity_sd_mbq: float | None = None,
) -> STPResult:
    """Dispatch to :func:`haenscheid` or :func:`madsen` by name."""
    if method == "haenscheid":
        return haenscheid(
            time_h,
            activity_mbq,
            injection_time_h=injection_time_h,
            activity_sd_mbq=activity_sd_mbq,
            t_eff_h=t_eff_h,
            t_eff_sd_h=t_eff_sd_h,
        )
    if method == "madsen":
        if t_eff_h is None:
            raise InvalidInputError(
                "the Madsen method needs an effective half-life "
                "(--t-eff-h, or --organ with --radiopharmaceutical from the population table)"
            )
        return madsen(
            time_h,
            activity_mbq,
            t_eff_h,
            t_eff_sd_h=t_eff_sd_h,
            injection_time_h=injection_time_h,
            activity_sd_mbq=activity_sd_mbq,
        )
    raise InvalidInputError(f"unknown single-time-point method {method!r} (haenscheid, madsen)")


def compare_stp_with_multipoint(
    time_h: Any,
    activity_mbq: Any,
    reference_tia_mbq_h: float,
    *,
    method: str = "haenscheid",
    t_eff_h: float | None = None,
    injection_time_h: float = 0.0,
) -> list[dict[str, float]]:
    """STP TIA from each point in turn versus a multi-point TIA.

    Returns one row per time point: ``time_h``, ``tia_mbq_h`` and
    ``relative_difference = TIA_stp / reference - 1``.
    """
    t = np.asarray(time_h, dtype=float).ravel()
    a = np.asarray(activity_mbq, dtype=float).ravel()
    if t.size != a.size:
        raise InvalidInputError(f"{t.size} time(s) but {a.size} activities")
    if not (math.isfinite(reference_tia_mbq_h) and reference_tia_mbq_h > 0):
        raise InvalidInputError("the multi-point TIA must be a positive number")
    rows = []
    for ti, ai in zip(t, a, strict=True):
        r = stp_tia(
            method, float(ti), float(ai), t_eff_h=t_eff_h, injection_time_h=injection_time_h
        )
        rows.append(
            {
                "time_h": float(ti),
                "tia_mbq_h": r.tia_mbq_h,
                "relative_difference": r.tia_mbq_h / reference_tia_mbq_h - 1.0,
            }
        )
    return rows
