"""Uncertainty of a mean absorbed dose and its budget, by the law of propagation of uncertainty.

Method
------
Gear JI, Cox MG, Gustafsson J, Gleisner KS, Murray I, Glatting G, Konijnenberg M,
Flux GD.  EANM practical guidance on uncertainty analysis for molecular
radiotherapy absorbed dose calculations.  Eur J Nucl Med Mol Imaging
2018;45:2456-2474 (doi:10.1007/s00259-018-4136-7), applying the first-order law
of propagation of uncertainty of the GUM (JCGM 100:2008, *Evaluation of
measurement data - Guide to the expression of uncertainty in measurement*,
section 5).

Measurement model (Gear et al. 2018, "the dosimetry chain")::

    A_i = C_i / (K * R(V))              activity at time point i (MBq)
    TIA = integral of the curve fitted to (t_i, A_i)   (MBq h)
    D   = TIA * d(V)                    d = dose per TIA (Gy / (MBq h)), ∝ m^b, m ∝ V

with ``C_i`` the count rate in the VOI, ``K`` the camera calibration factor,
``R`` the recovery coefficient (partial-volume correction) and ``V`` the VOI
volume.  The inputs are taken as independent *quantities*; the correlations of
the chain come from quantities that enter it several times:

* ``K`` scales every activity: it is fully correlated across the time points.
  Scaling all ``A_i`` by ``f`` scales the fitted amplitudes by ``f`` and leaves
  the rates unchanged, so ``d ln TIA / d ln K = -1`` exactly: its relative SD
  passes straight to the TIA and to the dose.
* ``R`` likewise when one recovery coefficient serves every time point:
  ``d ln D / d ln R = -1``.  ``recovery_rel_sd`` is the RC uncertainty *at a
  fixed volume* (phantom measurement, RC-curve fit); the part caused by the
  volume uncertainty is computed here from ``recovery_volume_slope`` and must
  not be included twice.
* ``V`` enters twice: through ``R(V)`` (``d ln A_i / d ln V = -s`` with
  ``s = d ln R / d ln V``) and through the mass of the dose factor
  (``d ln d / d ln V = b``; ``b = -1`` for non-penetrating self-dose,
  ``S ∝ 1/m``, MIRD Pamphlet 11, Snyder et al. 1975).  Both paths come from the
  same input, so they are added *linearly* before squaring (the covariance term
  of Gear et al. 2018 between activity and dose factor through the VOI volume):
  ``d ln D / d ln V = b - s``.  A larger true volume means a larger mass (lower
  dose) and, because the RC grows with the volume (``s > 0``), a smaller
  corrected activity (lower dose too): for ``s > 0`` the two effects have the
  same sign and *add*, ``u_rel(D) = (1 + s) u_rel(V)``; they partly cancel only
  for a negative effective slope, e.g. when the counts in a drawn VOI grow with
  its volume faster than the RC (Gear et al. 2018 treat the count rate as a
  function of the VOI volume, their Fig. 5; fold ``d ln C / d ln V`` into
  ``s`` with opposite sign).  Without RC correction ``s = 0`` and only the mass
  path remains.
* The time-point activities carry independent uncertainties (image noise,
  repeatability, VOI placement at each scan).  They propagate through the fit:
  ``u^2(TIA) = sum_i (dTIA/dA_i)^2 u^2(A_i)``, the sensitivities
  ``dTIA/dA_i`` by central finite differences of the weighted least-squares
  refit (warm-started at the fitted parameters; model fixed to the chosen one,
  weights ``1/u^2(A_i)`` held fixed).  For a well-conditioned fit away from its
  bounds this equals ``g Sigma g^T`` of the fit (``kinetics.fitting``).
* ``s_value_rel_sd``: any other uncertainty of the dose factor (S-value model,
  density, absorbed fractions), independent of the above.

Combined: ``u_rel^2(D) = sum_j (c_j u_rel(x_j))^2`` over independent inputs,
``c_j = d ln D / d ln x_j``; each contribution is reported with its share of the
variance (the shares sum to 1 because the inputs are independent; correlations
are inside each ``c_j``).  :func:`monte_carlo_check` samples every input,
refits, and returns the mean and SD of the dose as an independent check of the
first-order result (GUM Supplement 1, JCGM 101:2008).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import optimize

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.kinetics.fitting import (
    LAMBDA_FLOOR_PER_H,
    FitResult,
    fit_tac,
    validate_tac,
)
from dosimetry_core.kinetics.models import AMPLITUDE_MAX_FACTOR, MODELS, trapezoid_tia

Array = NDArray[np.float64]

METHOD = "GUM first order (Gear et al. 2018)"
"""Name of the propagation method reported with every result."""

ACTIVITY_SD_FLOOR_FRACTION = 0.01
"""``u(A_i) = r_i * max(A_i, 0.01 * max A)``: the floor of the relative error model
of :mod:`dosimetry_core.kinetics.fitting`, so a near-zero point gets no infinite weight."""

FD_STEP_FRACTION = 1e-4
"""Central-difference step of ``dTIA/dA_i`` as a fraction of ``u(A_i)``."""

MAX_REL_SD = 1.0
"""Largest relative SD accepted (100 %); larger values are taken as a percent typed as a
fraction and refused."""

NAMES = ("calibration", "recovery", "volume", "time-point activities (fit)", "S-value")
"""Contribution names, in budget order."""


# ------------------------------------------------------------------ inputs
def _rel_sd(name: str, value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{name} must be a number, got {value!r}") from exc
    if not math.isfinite(v) or v < 0:
        raise InvalidInputError(f"{name} must be a relative SD >= 0, got {value!r}")
    if v > MAX_REL_SD:
        raise InvalidInputError(
            f"{name} = {v:g} is above 1 (100 %): give a fraction, e.g. 0.05 for 5 %"
        )
    return v


def _finite(name: str, value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{name} must be a number, got {value!r}") from exc
    if not math.isfinite(v):
        raise InvalidInputError(f"{name} must be a finite number, got {value!r}")
    return v


def _positive(name: str, value: Any) -> float:
    v = _finite(name, value)
    if v <= 0:
        raise InvalidInputError(f"{name} must be positive, got {value!r}")
    return v


@dataclass(frozen=True)
class UncertaintyInputs:
    """Relative standard uncertainties (1 SD, fractions: 0.05 = 5 %) of the chain's inputs.

    Attributes
    ----------
    calibration_rel_sd
        Camera calibration factor ``K`` (counts -> MBq); common to all time points.
    recovery_rel_sd
        Recovery coefficient at a fixed volume (RC-curve / phantom uncertainty);
        common to all time points (one RC for the series).
    volume_rel_sd
        VOI volume; enters the RC (via ``recovery_volume_slope``) and the mass.
    activity_rel_sd
        Per time point (one value for all, or one per point in the order of the
        times given), independent between time points.  All zero or all positive.
    s_value_rel_sd
        Other uncertainty of the dose factor (S-value model, density, ...).
    recovery_volume_slope
        ``s = d ln(RC) / d ln(V)`` at the VOI volume, dimensionless; 0 when no
        RC correction is applied.  May be negative (see the module docstring).
    source
        Where the numbers come from (protocol, phantom report, publication).
    dose_factor_mass_exponent
        ``b = d ln(dose factor) / d ln(m)``; -1 for non-penetrating self-dose
        (``S ∝ 1/m``, MIRD Pamphlet 11, Snyder et al. 1975), -2/3 for the photon
        self-dose part (Petoussi-Henss et al., Radiat Prot Dosimetry 2007).
    """

    calibration_rel_sd: float = 0.0
    recovery_rel_sd: float = 0.0
    volume_rel_sd: float = 0.0
    activity_rel_sd: float | Sequence[float] = 0.0
    s_value_rel_sd: float = 0.0
    recovery_volume_slope: float = 0.0
    source: str = ""
    dose_factor_mass_exponent: float = -1.0

    def __post_init__(self) -> None:
        for name in ("calibration_rel_sd", "recovery_rel_sd", "volume_rel_sd", "s_value_rel_sd"):
            object.__setattr__(self, name, _rel_sd(name, getattr(self, name)))
        r = self.activity_rel_sd
        if isinstance(r, (str, bytes)):
            raise InvalidInputError(f"activity_rel_sd must be a number or numbers, got {r!r}")
        if isinstance(r, Sequence) or isinstance(r, np.ndarray):
            vals = tuple(_rel_sd(f"activity_rel_sd[{i}]", x) for i, x in enumerate(r))
            if not vals:
                raise InvalidInputError("activity_rel_sd is an empty list")
            object.__setattr__(self, "activity_rel_sd", vals)
        else:
            object.__setattr__(self, "activity_rel_sd", _rel_sd("activity_rel_sd", r))
        object.__setattr__(
            self,
            "recovery_volume_slope",
            _finite("recovery_volume_slope", self.recovery_volume_slope),
        )
        object.__setattr__(
            self,
            "dose_factor_mass_exponent",
            _finite("dose_factor_mass_exponent", self.dose_factor_mass_exponent),
        )
        if not isinstance(self.source, str):
            raise InvalidInputError(f"source must be text, got {type(self.source).__name__}")

    def activity_rel_sd_array(self, n_points: int) -> Array:
        """Per-point relative SDs as an array of length ``n_points`` (input order).

        Raises
        ------
        InvalidInputError
            Wrong number of values, or a mix of zero and positive values.
        """
        r = self.activity_rel_sd
        if isinstance(r, tuple):
            if len(r) != n_points:
                raise InvalidInputError(
                    f"{len(r)} activity relative SD(s) for {n_points} time points: "
                    "give one value, or one per time point"
                )
            arr = np.asarray(r, dtype=float)
        else:
            arr = np.full(n_points, float(r))  # type: ignore[arg-type]
        if np.any(arr == 0) and np.any(arr > 0):
            raise InvalidInputError(
                "activity_rel_sd: some time points have 0 and others a positive SD; "
                "give all zero (activities exact) or all positive"
            )
        return arr

    def volume_sensitivity(self) -> float:
        """``d ln D / d ln V = b - s`` (mass path plus recovery path, added linearly)."""
        return self.dose_factor_mass_exponent - self.recovery_volume_slope

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        r = self.activity_rel_sd
        d["activity_rel_sd"] = list(r) if isinstance(r, tuple) else r
        return d


# ------------------------------------------------------------------ results
@dataclass(frozen=True)
class Contribution:
    """One input's share of the dose (or TIA) uncertainty.

    Attributes
    ----------
    name
        One of :data:`NAMES`.
    rel_sd
        Relative 1 SD of the result from this input alone, ``|c| u_rel(x)``.
    variance_fraction
        ``rel_sd^2 / u_rel^2(result)``; the fractions sum to 1 (0 when the total is 0).
    input_rel_sd
        Relative SD of the input (None for the time-point activities, a vector).
    sensitivity
        ``c = d ln(result) / d ln(input)`` (None for the time-point activities).
    """

    name: str
    rel_sd: float
    variance_fraction: float
    input_rel_sd: float | None = None
    sensitivity: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DoseUncertainty:
    """Mean absorbed dose ± 1 SD with its uncertainty budget (Gear et al. 2018)."""

    dose_gy: float
    sd_gy: float
    rel_sd: float
    tia_mbq_h: float
    tia_sd_mbq_h: float
    contributions: tuple[Contribution, ...]
    method: str = METHOD
    model: str = ""
    dose_per_tia_gy_per_mbq_h: float = math.nan
    mass_g: float | None = None
    inputs: UncertaintyInputs | None = None
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (units in the keys)."""
        vol = self.inputs.volume_rel_sd if self.inputs is not None else None
        return {
            "dose_gy": self.dose_gy,
            "sd_gy": self.sd_gy,
            "rel_sd": self.rel_sd,
            "tia_mbq_h": self.tia_mbq_h,
            "tia_sd_mbq_h": self.tia_sd_mbq_h,
            "dose_per_tia_gy_per_mbq_h": self.dose_per_tia_gy_per_mbq_h,
            "mass_g": self.mass_g,
            "mass_sd_g": (None if self.mass_g is None or vol is None else float(self.mass_g * vol)),
            "model": self.model,
            "method": self.method,
            "contributions": [c.to_dict() for c in self.contributions],
            "correlations": [
                "calibration factor: one value scales every time point (fully correlated)",
                "recovery coefficient: one value for every time point (fully correlated)",
                "volume: enters the recovery coefficient and the mass; both paths added "
                "linearly, sensitivity d lnD/d lnV = b - s",
                "time-point activities: independent, propagated through the refit",
            ],
            "inputs": None if self.inputs is None else self.inputs.to_dict(),
            "warnings": list(self.warnings),
        }

    def budget_table(self) -> str:
        """Human-readable budget: one line per input, then the combined result."""
        lines = [
            f"Absorbed dose {self.dose_gy:.4g} Gy ± {self.sd_gy:.3g} Gy "
            f"(1 SD, {100 * self.rel_sd:.1f} %); {self.method}",
            f"{'input':<30}{'input SD':>10}{'d lnD/d lnx':>13}{'dose SD':>10}{'share':>9}",
        ]
        for c in self.contributions:
            u = "-" if c.input_rel_sd is None else f"{100 * c.input_rel_sd:.1f} %"
            s = "-" if c.sensitivity is None else f"{c.sensitivity:+.2f}"
            lines.append(
                f"{c.name:<30}{u:>10}{s:>13}{100 * c.rel_sd:>8.1f} %"
                f"{100 * c.variance_fraction:>7.1f} %"
            )
        total = sum(c.variance_fraction for c in self.contributions)
        lines.append(
            f"{'combined':<30}{'':>10}{'':>13}{100 * self.rel_sd:>8.1f} %{100 * total:>7.1f} %"
        )
        return "\n".join(lines)


# ------------------------------------------------------------ TIA of a data set
def _activity_sd(a: Array, r: Array) -> Array | None:
    """``u(A_i) = r_i max(A_i, 1 % of max A)`` (MBq), or None when every ``r_i`` is 0."""
    if not np.any(r > 0):
        return None
    return np.asarray(r * np.maximum(a, ACTIVITY_SD_FLOOR_FRACTION * float(np.max(a))))


def _fit_weights_sd(fit: FitResult) -> Array:
    """The SDs (MBq) the fit used as weights, in the order of ``fit.time_h``."""
    a = np.asarray(fit.activity_mbq, dtype=float)
    if fit.weights.get("model") == "absolute":
        return np.asarray(fit.weights["activity_sd_mbq"], dtype=float)
    rel = float(fit.weights.get("relative_sd", 0.1))
    return np.asarray(rel * np.maximum(a, ACTIVITY_SD_FLOOR_FRACTION * float(np.max(a))))


def _tia_function(fit: FitResult, sigma_mbq: Array) -> Callable[[Array], float]:
    """``TIA(A)`` for activities ``A`` at the fit's times: refit of the chosen model.

    The refit starts at the fitted parameters (so a small perturbation of the data
    follows the same minimum), holds the weights ``1/sigma^2`` fixed and uses the
    fit's bounds (rates >= the physical decay constant unless the fit has a rate
    below it, in which case it was run with ``allow_slower_than_physical``).
    Returns NaN when the refit fails.
    """
    tau = np.asarray(fit.time_h, dtype=float) - fit.injection_time_h
    lam_phys = math.log(2.0) / fit.physical_half_life_h
    name = fit.model
    if name == "trapezoid":
        info = fit.chosen.extra.get("trapezoid", {})
        start = str(info.get("start_rule", "linear"))
        tail = str(info.get("tail_rule", "physical"))

        def trap(a: Array) -> float:
            return float(
                trapezoid_tia(tau, a, lam_phys, start=start, tail=tail, lam_min=lam_phys)[0]
            )

        return trap
    if name not in MODELS:
        raise InvalidInputError(f"cannot propagate through unknown model {name!r}")
    model = MODELS[name]
    p0 = np.asarray(fit.chosen.values, dtype=float)
    if not np.all(np.isfinite(p0)):
        raise InvalidInputError(f"the {name} fit has no parameters: nothing to propagate")
    rates = p0[list(model.rate_indices)]
    lam_min = LAMBDA_FLOOR_PER_H if np.any(rates < lam_phys * (1 - 1e-9)) else lam_phys
    sigma = np.asarray(sigma_mbq, dtype=float)

    def tia(a: Array) -> float:
        amp_max = AMPLITUDE_MAX_FACTOR * float(np.max(a))
        lo, hi = model.bounds(lam_min, amp_max)
        start = np.clip(p0, lo, hi)

        def resid(p: Array) -> Array:
            return np.asarray((model.evaluate(p, tau) - a) / sigma)

        def jac(p: Array) -> Array:
            return np.asarray(model.jacobian(p, tau) / sigma[:, None])

        try:
            with np.errstate(all="ignore"):
                res = optimize.least_squares(
                    resid,
                    start,
                    jac=jac,
                    bounds=(lo, hi),
                    method="trf",
                    x_scale="jac",
                    ftol=1e-12,
                    xtol=1e-12,
                    gtol=1e-12,
                    max_nfev=1000,
                )
        except (ValueError, np.linalg.LinAlgError):
            return math.nan
        p = np.asarray(res.x, dtype=float)
        if res.status <= 0 or not np.all(np.isfinite(p)) or model.order_violation(p):
            return math.nan
        return float(model.tia(p))

    return tia


def _fit_sd_by_refit(fit: FitResult, u_a_mbq: Array, weights_sd_mbq: Array) -> float:
    """``sqrt(sum_i (dTIA/dA_i)^2 u^2(A_i))`` (MBq h) by central differences of the refit."""
    a = np.asarray(fit.activity_mbq, dtype=float)
    tia_of = _tia_function(fit, weights_sd_mbq)
    var = 0.0
    for i in range(a.size):
        h = FD_STEP_FRACTION * float(u_a_mbq[i])
        up, dn = a.copy(), a.copy()
        up[i] += h
        dn[i] = max(dn[i] - h, 0.0)
        g = (tia_of(up) - tia_of(dn)) / (up[i] - dn[i])
        if not math.isfinite(g):
            raise InvalidInputError(
                f"the {fit.model} refit failed when the activity at {fit.time_h[i]:g} h was "
                "perturbed: the time-point uncertainty cannot be propagated (try another model)"
            )
        var += (g * float(u_a_mbq[i])) ** 2
    return math.sqrt(var)


def _fit(
    time_h: Any,
    activity_mbq: Any,
    *,
    nuclide: str,
    model: str,
    inputs: UncertaintyInputs,
    injection_time_h: float,
) -> tuple[FitResult, Array | None]:
    """Fit the TAC with weights ``1/u^2(A_i)`` (or the default relative model when all
    ``r_i = 0``); return the fit and ``u(A_i)`` in the fit's (time-sorted) order."""
    if not isinstance(inputs, UncertaintyInputs):
        raise InvalidInputError("inputs must be an UncertaintyInputs")
    validate_tac(time_h, activity_mbq, injection_time_h=injection_time_h)
    t = np.asarray(time_h, dtype=float).ravel()
    a = np.asarray(activity_mbq, dtype=float).ravel()
    r = inputs.activity_rel_sd_array(a.size)
    sd = _activity_sd(a, r)
    fit = fit_tac(
        t,
        a,
        model=model,
        nuclide=nuclide,
        injection_time_h=injection_time_h,
        activity_sd_mbq=sd,
        scale_covariance=False if sd is not None else None,
        mc_samples=0,
    )
    if not math.isfinite(fit.tia_mbq_h) or fit.tia_mbq_h <= 0:
        raise InvalidInputError(
            f"the {fit.model} fit gave no finite positive TIA: " + "; ".join(fit.warnings)
        )
    if sd is None:
        return fit, None
    order = np.argsort(t, kind="stable")
    return fit, np.asarray(sd[order])


def _combine(
    terms: list[tuple[str, float, float | None, float | None]],
) -> tuple[float, tuple[Contribution, ...]]:
    """Terms ``(name, rel_sd, input_rel_sd, sensitivity)`` -> (total rel SD, contributions)."""
    total_var = sum(t[1] ** 2 for t in terms)
    contribs = tuple(
        Contribution(
            name=name,
            rel_sd=float(rel),
            variance_fraction=float(rel**2 / total_var) if total_var > 0 else 0.0,
            input_rel_sd=u,
            sensitivity=c,
        )
        for name, rel, u, c in terms
    )
    return math.sqrt(total_var), contribs


def _tia_terms(
    inputs: UncertaintyInputs, fit_rel_sd: float
) -> list[tuple[str, float, float | None, float | None]]:
    s = inputs.recovery_volume_slope
    return [
        ("calibration", inputs.calibration_rel_sd, inputs.calibration_rel_sd, -1.0),
        ("recovery", inputs.recovery_rel_sd, inputs.recovery_rel_sd, -1.0),
        ("volume", abs(s) * inputs.volume_rel_sd, inputs.volume_rel_sd, -s),
        ("time-point activities (fit)", fit_rel_sd, None, None),
    ]


def _dose_terms(
    inputs: UncertaintyInputs, fit_rel_sd: float
) -> list[tuple[str, float, float | None, float | None]]:
    c_v = inputs.volume_sensitivity()
    terms = _tia_terms(inputs, fit_rel_sd)
    terms[2] = ("volume", abs(c_v) * inputs.volume_rel_sd, inputs.volume_rel_sd, c_v)
    terms.append(("S-value", inputs.s_value_rel_sd, inputs.s_value_rel_sd, 1.0))
    return terms


# ------------------------------------------------------------------ public API
def tia_uncertainty(
    time_h: Sequence[float],
    activity_mbq: Sequence[float],
    *,
    nuclide: str,
    model: str = "auto",
    inputs: UncertaintyInputs,
    injection_time_h: float = 0.0,
) -> tuple[float, float, tuple[Contribution, ...]]:
    """TIA (MBq h), its SD (MBq h) and the TIA budget (Gear et al. 2018, GUM first order).

    Contributions: calibration (``c = -1``), recovery (``c = -1``), volume through
    the RC only (``c = -s``) and the time-point activities through the fit.

    Parameters
    ----------
    time_h, activity_mbq
        Scan times (h, same clock as ``injection_time_h``) and activities at scan
        time (MBq, not decay corrected).
    nuclide
        Sets the physical decay constant (lower bound of the fitted rates).
    model
        ``auto`` or a model of :func:`dosimetry_core.kinetics.fitting.fit_tac`.
    inputs
        Relative SDs of the inputs.
    injection_time_h
        Start of the administration (h).
    """
    fit, u_a = _fit(
        time_h,
        activity_mbq,
        nuclide=nuclide,
        model=model,
        inputs=inputs,
        injection_time_h=injection_time_h,
    )
    tia = fit.tia_mbq_h
    fit_sd = 0.0 if u_a is None else _fit_sd_by_refit(fit, u_a, u_a)
    rel, contribs = _combine(_tia_terms(inputs, fit_sd / tia))
    return tia, rel * tia, contribs


def _result(
    fit: FitResult,
    fit_sd_mbq_h: float,
    dose_per_tia_gy_per_mbq_h: float,
    inputs: UncertaintyInputs,
    mass_g: float | None,
) -> DoseUncertainty:
    dpt = _positive("dose_per_tia_gy_per_mbq_h", dose_per_tia_gy_per_mbq_h)
    m = None if mass_g is None else _positive("mass_g", mass_g)
    tia = fit.tia_mbq_h
    fit_rel = fit_sd_mbq_h / tia
    rel, contribs = _combine(_dose_terms(inputs, fit_rel))
    tia_rel, _ = _combine(_tia_terms(inputs, fit_rel))
    dose = tia * dpt
    return DoseUncertainty(
        dose_gy=dose,
        sd_gy=rel * dose,
        rel_sd=rel,
        tia_mbq_h=tia,
        tia_sd_mbq_h=tia_rel * tia,
        contributions=contribs,
        method=METHOD,
        model=fit.model,
        dose_per_tia_gy_per_mbq_h=dpt,
        mass_g=m,
        inputs=inputs,
        warnings=tuple(fit.warnings),
    )


def dose_uncertainty(
    time_h: Sequence[float],
    activity_mbq: Sequence[float],
    *,
    nuclide: str,
    dose_per_tia_gy_per_mbq_h: float,
    inputs: UncertaintyInputs,
    mass_g: float | None = None,
    model: str = "auto",
    injection_time_h: float = 0.0,
) -> DoseUncertainty:
    """Mean absorbed dose ``D = TIA * dose_per_tia`` ± 1 SD with its budget (Gear et al. 2018).

    Parameters
    ----------
    time_h, activity_mbq, nuclide, model, injection_time_h
        As :func:`tia_uncertainty`.
    dose_per_tia_gy_per_mbq_h
        Dose per TIA, Gy / (MBq h), already including ``1/mass`` (e.g.
        ``self_dose_gy(1.0, mass_g, nuclide)``); it scales as ``m^b`` with
        ``m ∝ V`` (see the module docstring).
    inputs
        Relative SDs of the inputs.
    mass_g
        Mass behind the dose factor (g), reported with its SD ``m * u_rel(V)``;
        optional, it does not change the result.

    Returns
    -------
    DoseUncertainty

    Raises
    ------
    InvalidInputError
        Bad TAC (see :func:`~dosimetry_core.kinetics.fitting.validate_tac`), wrong
        number of activity SDs, non-positive dose factor or mass, a failed fit.
    """
    fit, u_a = _fit(
        time_h,
        activity_mbq,
        nuclide=nuclide,
        model=model,
        inputs=inputs,
        injection_time_h=injection_time_h,
    )
    fit_sd = 0.0 if u_a is None else _fit_sd_by_refit(fit, u_a, u_a)
    return _result(fit, fit_sd, dose_per_tia_gy_per_mbq_h, inputs, mass_g)


def dose_uncertainty_from_fit(
    fit: FitResult,
    *,
    dose_per_tia_gy_per_mbq_h: float,
    inputs: UncertaintyInputs,
    mass_g: float | None = None,
) -> DoseUncertainty:
    """Dose uncertainty from an existing :class:`FitResult` (``mrtdose fit``).

    The time-point contribution is, when ``inputs.activity_rel_sd`` is 0, the fit's
    own TIA SD (``fit.tia_sd_mbq_h``: the activity SDs the fit was given, or its
    relative error model scaled by the reduced chi-square); otherwise the TIA
    sensitivities of the refit (chosen model, the fit's weights) times
    ``u(A_i) = r_i max(A_i, 1 % of max A)``, with ``activity_rel_sd`` in the order
    of ``fit.time_h`` (sorted times).  The other inputs as in
    :func:`dose_uncertainty`.

    Raises
    ------
    InvalidInputError
        The fit has no finite TIA, or no TIA SD while ``activity_rel_sd`` is 0.
    """
    if not isinstance(fit, FitResult):
        raise InvalidInputError("fit must be a FitResult of kinetics.fitting.fit_tac")
    if not isinstance(inputs, UncertaintyInputs):
        raise InvalidInputError("inputs must be an UncertaintyInputs")
    if not (math.isfinite(fit.tia_mbq_h) and fit.tia_mbq_h > 0):
        raise InvalidInputError(f"the {fit.model} fit has no finite positive TIA")
    a = np.asarray(fit.activity_mbq, dtype=float)
    r = inputs.activity_rel_sd_array(a.size)
    u_a = _activity_sd(a, r)
    if u_a is None:
        sd = fit.tia_sd_mbq_h
        if sd is None or not math.isfinite(sd):
            raise InvalidInputError(
                f"the {fit.model} fit has no TIA SD (ill-conditioned): give activity_rel_sd"
            )
        fit_sd = float(sd)
    else:
        fit_sd = _fit_sd_by_refit(fit, u_a, _fit_weights_sd(fit))
    return _result(fit, fit_sd, dose_per_tia_gy_per_mbq_h, inputs, mass_g)


def monte_carlo_check(
    time_h: Sequence[float],
    activity_mbq: Sequence[float],
    *,
    nuclide: str,
    dose_per_tia_gy_per_mbq_h: float,
    inputs: UncertaintyInputs,
    model: str = "auto",
    injection_time_h: float = 0.0,
    n: int = 5000,
    seed: int = 0,
) -> tuple[float, float]:
    """Mean and SD (Gy) of the dose over ``n`` Monte Carlo draws of every input.

    Propagation of distributions (GUM Supplement 1, JCGM 101:2008) as an
    independent check of the first-order result.  Each draw takes Gaussian
    relative errors ``z`` (seeded) and forms

    * ``A_i* = max(A_i + u(A_i) z_i, 0) / ((1 + u_K z_K) (1 + u_R z_R) (V*/V)^s)``,
    * ``V*/V = 1 + u_V z_V``, dose factor ``d* = d (1 + u_S z_S) (V*/V)^b``,

    refits the model chosen for the nominal data (model selection is not
    resampled; weights fixed) and returns the mean and sample SD of
    ``D* = TIA* d*``.  Draws with a non-positive factor or a failed refit are
    dropped.  With ``dose_per_tia_gy_per_mbq_h = 1`` the numbers are the TIA (MBq h).

    Raises
    ------
    InvalidInputError
        As :func:`dose_uncertainty`; ``n < 2``; fewer than half the draws usable.
    """
    if int(n) != n or n < 2:
        raise InvalidInputError(f"Monte Carlo needs n >= 2 draws, got {n!r}")
    n = int(n)
    dpt = _positive("dose_per_tia_gy_per_mbq_h", dose_per_tia_gy_per_mbq_h)
    fit, u_a = _fit(
        time_h,
        activity_mbq,
        nuclide=nuclide,
        model=model,
        inputs=inputs,
        injection_time_h=injection_time_h,
    )
    a = np.asarray(fit.activity_mbq, dtype=float)
    weights = u_a if u_a is not None else _fit_weights_sd(fit)
    tia_of = _tia_function(fit, weights)
    rng = np.random.default_rng(seed)
    z_a = rng.standard_normal((n, a.size))
    z_k, z_r, z_v, z_s = rng.standard_normal((4, n))
    f_k = 1.0 + inputs.calibration_rel_sd * z_k
    f_r = 1.0 + inputs.recovery_rel_sd * z_r
    f_v = 1.0 + inputs.volume_rel_sd * z_v
    f_s = 1.0 + inputs.s_value_rel_sd * z_s
    s, b = inputs.recovery_volume_slope, inputs.dose_factor_mass_exponent
    doses: list[float] = []
    for j in range(n):
        if min(f_k[j], f_r[j], f_v[j], f_s[j]) <= 0:
            continue
        noisy = a if u_a is None else np.maximum(a + u_a * z_a[j], 0.0)
        if not np.any(noisy > 0):
            continue
        scaled = noisy / (f_k[j] * f_r[j] * f_v[j] ** s)
        tia = tia_of(scaled)
        if not math.isfinite(tia):
            continue
        doses.append(tia * dpt * f_s[j] * f_v[j] ** b)
    if len(doses) < max(2, n // 2):
        raise InvalidInputError(
            f"Monte Carlo check: only {len(doses)} of {n} draws gave a usable fit; "
            "the uncertainties are too large for this model"
        )
    arr = np.asarray(doses)
    return float(arr.mean()), float(arr.std(ddof=1))
