"""Time-activity-curve models with analytic Jacobians and analytic time integrals.

Conventions
-----------
* The model time variable is ``tau = t - t_inj`` in hours, i.e. the time since
  the start of the administration.  The fitting layer subtracts the injection
  time; all models are evaluated for ``tau >= 0``.
* Activities are in MBq **at scan time** (not decay corrected), so every
  exponential rate is an *effective* rate (physical + biological), in 1/h.
* Every model returns the time-integrated activity (TIA, MBq h) from the
  injection (``tau = 0``) to infinity, analytically, and its gradient with
  respect to the parameters (for ``var(TIA) = g Sigma g^T``, EANM practical
  guidance on uncertainty analysis, Gear et al., Eur J Nucl Med Mol Imaging
  2018;45:2456-2474).

Models (parameter order is the order of ``param_names``)
--------------------------------------------------------
``mono``          ``A0 exp(-lambda tau)``; TIA = A0 / lambda.
``biexp-uptake``  ``A (exp(-lambda1 tau) - exp(-lambda2 tau))``, lambda1 = washout,
                  lambda2 = uptake (lambda2 > lambda1); TIA = A (1/lambda1 - 1/lambda2).
``biexp``         ``A1 exp(-lambda1 tau) + A2 exp(-lambda2 tau)`` (component 1 is the
                  fast one); TIA = A1/lambda1 + A2/lambda2.
``triexp``        uptake followed by a two-phase washout (the "uptake + 2 washout"
                  variant of a sum of three exponentials, chosen so that the curve
                  starts at zero at injection):
                  ``A1 exp(-lambda1 tau) + A2 exp(-lambda2 tau) - (A1 + A2) exp(-lambda3 tau)``
                  with lambda3 (uptake) the fastest rate;
                  TIA = A1/lambda1 + A2/lambda2 - (A1 + A2)/lambda3.

Bounds: amplitudes >= 0; every rate >= the physical decay constant of the
nuclide (clearance can not be slower than physical decay) unless the caller
passes a smaller ``lam_min`` (``allow_slower_than_physical``); every rate <=
``LAMBDA_MAX_PER_H`` (a half-life of about 50 s, i.e. "instantaneous"); the
fitting layer caps amplitudes at ``AMPLITUDE_MAX_FACTOR`` times the largest
measured activity (a fit that reaches the cap is degenerate and flagged).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]

LAMBDA_MAX_PER_H = 50.0
"""Upper bound of every rate constant (1/h); T1/2 = ln2/50 h ~ 50 s."""

AMPLITUDE_MAX_FACTOR = 1e6
"""Amplitudes are bounded by this factor times the largest measured activity."""

_LN2 = math.log(2.0)


class KineticModel(ABC):
    """A parametric TAC model ``f(tau; p)`` with analytic derivatives and integral."""

    name: str = ""
    param_names: tuple[str, ...] = ()
    param_units: tuple[str, ...] = ()
    #: indices of the rate constants (1/h) among the parameters
    rate_indices: tuple[int, ...] = ()

    @property
    def n_params(self) -> int:
        return len(self.param_names)

    @abstractmethod
    def evaluate(self, p: Array, tau: Array) -> Array:
        """Activity (MBq) at times ``tau`` (h after injection)."""

    @abstractmethod
    def jacobian(self, p: Array, tau: Array) -> Array:
        """``d f(tau_i) / d p_j``, shape (n_times, n_params)."""

    @abstractmethod
    def tia(self, p: Array) -> float:
        """Integral of ``f`` from injection to infinity (MBq h)."""

    @abstractmethod
    def tia_gradient(self, p: Array) -> Array:
        """``d TIA / d p``, shape (n_params,)."""

    @abstractmethod
    def initial_guesses(self, tau: Array, a: Array, lam_min: float) -> list[Array]:
        """Several starting points derived from the data (multi-start fitting)."""

    def bounds(self, lam_min: float, amp_max: float = np.inf) -> tuple[Array, Array]:
        """Lower and upper bounds: amplitudes in [0, amp_max], rates in [lam_min, LAMBDA_MAX]."""
        lo = np.zeros(self.n_params)
        hi = np.full(self.n_params, float(amp_max))
        for i in self.rate_indices:
            lo[i] = lam_min
            hi[i] = LAMBDA_MAX_PER_H
        return lo, hi

    def order_violation(self, p: Array) -> str | None:
        """A one-line reason when the rates are in the wrong order, else None."""
        return None

    def half_lives_h(self, p: Array) -> dict[str, float]:
        """Half-lives ln2/lambda (h) of every rate, keyed ``T_half_<rate name>``."""
        return {
            "T_half_" + self.param_names[i]: (_LN2 / float(p[i]) if p[i] > 0 else math.inf)
            for i in self.rate_indices
        }

    def clip_into_bounds(self, p0: Array, lam_min: float, amp_max: float = np.inf) -> Array:
        lo, hi = self.bounds(lam_min, amp_max)
        span = np.where(np.isfinite(hi), hi - lo, np.abs(lo) + 1.0)
        return np.clip(p0, lo + 1e-6 * span, np.where(np.isfinite(hi), hi - 1e-6 * span, np.inf))


# ---------------------------------------------------------------- helpers
def _loglin_slope(tau: Array, a: Array) -> tuple[float, float]:
    """Least-squares line through (tau, ln a) of the positive points: (ln intercept, rate)."""
    ok = a > 0
    if ok.sum() < 2:
        return (math.log(max(float(a.max()), 1e-12)), 0.0)
    slope, icpt = np.polyfit(tau[ok], np.log(a[ok]), 1)
    return float(icpt), float(-slope)


def _tail_fit(tau: Array, a: Array, lam_min: float, n_last: int = 2) -> tuple[float, float]:
    """Amplitude and rate of a mono-exponential through the last ``n_last`` points."""
    icpt, lam = _loglin_slope(tau[-n_last:], a[-n_last:])
    lam = max(lam, lam_min, 1e-4)
    return math.exp(min(icpt, 700.0)), lam


# ---------------------------------------------------------------- models
class MonoExp(KineticModel):
    name = "mono"
    param_names = ("A0", "lambda")
    param_units = ("MBq", "1/h")
    rate_indices = (1,)

    def evaluate(self, p: Array, tau: Array) -> Array:
        return np.asarray(p[0] * np.exp(-p[1] * tau), dtype=float)

    def jacobian(self, p: Array, tau: Array) -> Array:
        e = np.exp(-p[1] * tau)
        return np.column_stack([e, -p[0] * tau * e])

    def tia(self, p: Array) -> float:
        return float(p[0] / p[1])

    def tia_gradient(self, p: Array) -> Array:
        return np.array([1.0 / p[1], -p[0] / p[1] ** 2])

    def initial_guesses(self, tau: Array, a: Array, lam_min: float) -> list[Array]:
        icpt, lam = _loglin_slope(tau, a)
        g1 = np.array([math.exp(min(icpt, 700.0)), max(lam, lam_min, 1e-4)])
        a_t, l_t = _tail_fit(tau, a, lam_min)
        g2 = np.array([a_t, l_t])
        g3 = np.array([float(a.max()) * 1.2, max(lam_min, 1e-3) * 2.0])
        return [g1, g2, g3]

    def half_lives_h(self, p: Array) -> dict[str, float]:
        return {"T_half_eff": _LN2 / float(p[1])}


class BiExpUptake(KineticModel):
    name = "biexp-uptake"
    param_names = ("A", "lambda1", "lambda2")
    param_units = ("MBq", "1/h", "1/h")
    rate_indices = (1, 2)

    def evaluate(self, p: Array, tau: Array) -> Array:
        return np.asarray(p[0] * (np.exp(-p[1] * tau) - np.exp(-p[2] * tau)), dtype=float)

    def jacobian(self, p: Array, tau: Array) -> Array:
        e1 = np.exp(-p[1] * tau)
        e2 = np.exp(-p[2] * tau)
        return np.column_stack([e1 - e2, -p[0] * tau * e1, p[0] * tau * e2])

    def tia(self, p: Array) -> float:
        return float(p[0] * (1.0 / p[1] - 1.0 / p[2]))

    def tia_gradient(self, p: Array) -> Array:
        return np.array([1.0 / p[1] - 1.0 / p[2], -p[0] / p[1] ** 2, p[0] / p[2] ** 2])

    def order_violation(self, p: Array) -> str | None:
        if not p[2] > p[1]:
            return "uptake rate lambda2 is not faster than washout rate lambda1"
        return None

    def initial_guesses(self, tau: Array, a: Array, lam_min: float) -> list[Array]:
        a_t, l_t = _tail_fit(tau, a, lam_min)
        t_peak = float(tau[int(np.argmax(a))])
        out = []
        for k in (3.0, 10.0, 50.0):
            # uptake rate: k times the washout, or set by the time of the maximum
            l2 = min(max(l_t * k, 3.0 / max(t_peak, 0.1)), LAMBDA_MAX_PER_H * 0.5)
            if l2 <= l_t:
                l2 = l_t * 2.0
            out.append(np.array([a_t, l_t, l2]))
        return out

    def half_lives_h(self, p: Array) -> dict[str, float]:
        return {
            "T_half_washout": _LN2 / float(p[1]),
            "T_half_uptake": _LN2 / float(p[2]),
        }


class BiExp(KineticModel):
    name = "biexp"
    param_names = ("A1", "lambda1", "A2", "lambda2")
    param_units = ("MBq", "1/h", "MBq", "1/h")
    rate_indices = (1, 3)

    def evaluate(self, p: Array, tau: Array) -> Array:
        return np.asarray(p[0] * np.exp(-p[1] * tau) + p[2] * np.exp(-p[3] * tau), dtype=float)

    def jacobian(self, p: Array, tau: Array) -> Array:
        e1 = np.exp(-p[1] * tau)
        e2 = np.exp(-p[3] * tau)
        return np.column_stack([e1, -p[0] * tau * e1, e2, -p[2] * tau * e2])

    def tia(self, p: Array) -> float:
        return float(p[0] / p[1] + p[2] / p[3])

    def tia_gradient(self, p: Array) -> Array:
        return np.array([1.0 / p[1], -p[0] / p[1] ** 2, 1.0 / p[3], -p[2] / p[3] ** 2])

    def order_violation(self, p: Array) -> str | None:
        if not p[1] > p[3]:
            return "component 1 is not faster than component 2 (lambda1 <= lambda2)"
        return None

    def initial_guesses(self, tau: Array, a: Array, lam_min: float) -> list[Array]:
        a_t, l_t = _tail_fit(tau, a, lam_min)
        resid = a - a_t * np.exp(-l_t * tau)
        n_early = max(2, len(tau) // 2)
        if np.sum(resid[:n_early] > 0) >= 2:
            ok = resid[:n_early] > 0
            icpt, l_f = _loglin_slope(tau[:n_early][ok], resid[:n_early][ok])
            a_f = math.exp(min(icpt, 700.0))
        else:
            a_f, l_f = 0.3 * float(a.max()), 5.0 * l_t
        l_f = min(max(l_f, 1.5 * l_t, lam_min), LAMBDA_MAX_PER_H * 0.5)
        out = [np.array([a_f, l_f, a_t, l_t])]
        for k in (5.0, 20.0):
            out.append(
                np.array([0.5 * float(a.max()), min(k * l_t, 0.5 * LAMBDA_MAX_PER_H), a_t, l_t])
            )
        return out

    def half_lives_h(self, p: Array) -> dict[str, float]:
        return {"T_half_1": _LN2 / float(p[1]), "T_half_2": _LN2 / float(p[3])}


class TriExpUptake(KineticModel):
    name = "triexp"
    param_names = ("A1", "lambda1", "A2", "lambda2", "lambda3")
    param_units = ("MBq", "1/h", "MBq", "1/h", "1/h")
    rate_indices = (1, 3, 4)

    def evaluate(self, p: Array, tau: Array) -> Array:
        a1, l1, a2, l2, l3 = p
        return np.asarray(
            a1 * np.exp(-l1 * tau) + a2 * np.exp(-l2 * tau) - (a1 + a2) * np.exp(-l3 * tau),
            dtype=float,
        )

    def jacobian(self, p: Array, tau: Array) -> Array:
        a1, l1, a2, l2, l3 = p
        e1, e2, e3 = np.exp(-l1 * tau), np.exp(-l2 * tau), np.exp(-l3 * tau)
        return np.column_stack(
            [e1 - e3, -a1 * tau * e1, e2 - e3, -a2 * tau * e2, (a1 + a2) * tau * e3]
        )

    def tia(self, p: Array) -> float:
        a1, l1, a2, l2, l3 = p
        return float(a1 / l1 + a2 / l2 - (a1 + a2) / l3)

    def tia_gradient(self, p: Array) -> Array:
        a1, l1, a2, l2, l3 = p
        return np.array(
            [1 / l1 - 1 / l3, -a1 / l1**2, 1 / l2 - 1 / l3, -a2 / l2**2, (a1 + a2) / l3**2]
        )

    def order_violation(self, p: Array) -> str | None:
        if not (p[4] > p[1] and p[4] > p[3]):
            return "uptake rate lambda3 is not the fastest rate"
        if not p[1] > p[3]:
            return "washout component 1 is not faster than component 2 (lambda1 <= lambda2)"
        return None

    def initial_guesses(self, tau: Array, a: Array, lam_min: float) -> list[Array]:
        out = []
        for g in BiExp().initial_guesses(tau, a, lam_min):
            a1, l1, a2, l2 = g
            for k in (3.0, 10.0):
                l3 = min(max(k * l1, 2.0 * l1), LAMBDA_MAX_PER_H * 0.5)
                out.append(np.array([a1, l1, a2, l2, l3]))
        return out

    def half_lives_h(self, p: Array) -> dict[str, float]:
        return {
            "T_half_1": _LN2 / float(p[1]),
            "T_half_2": _LN2 / float(p[3]),
            "T_half_uptake": _LN2 / float(p[4]),
        }


MODELS: dict[str, KineticModel] = {
    m.name: m for m in (MonoExp(), BiExpUptake(), BiExp(), TriExpUptake())
}
"""The parametric models by name, simplest first."""

MODEL_NAMES: tuple[str, ...] = (*MODELS, "trapezoid")
"""Every model name accepted by ``fit_tac`` (``auto`` in addition)."""


# ------------------------------------------------------------- trapezoid
START_RULES = ("linear", "constant", "mono")
TAIL_RULES = ("physical", "fit")


def trapezoid_tia(
    tau: Array,
    a: Array,
    lam_phys: float,
    *,
    start: str = "linear",
    tail: str = "physical",
    lam_min: float | None = None,
) -> tuple[float, dict[str, float]]:
    """Trapezoidal TIA (MBq h) from injection to infinity, with its three parts.

    Parameters
    ----------
    tau : array
        Times since injection (h), strictly increasing, ``tau[0] >= 0``.
    a : array
        Activities at scan time (MBq).
    lam_phys : float
        Physical decay constant (1/h).
    start : {"linear", "constant", "mono"}
        Segment from injection to the first point:

        * ``linear`` (default): a straight line from 0 MBq at injection to the
          first point, area ``a0 tau0 / 2`` (uptake assumed linear);
        * ``constant``: constant back-extrapolation of the first point,
          area ``a0 tau0`` (instantaneous uptake, no early clearance);
        * ``mono``: mono-exponential back-extrapolation through the first two
          points, area ``a0 (exp(lam tau0) - 1) / lam`` (``lam tau0`` capped at
          50); falls back to ``constant`` when the first two points do not
          decrease.
    tail : {"physical", "fit"}
        After the last point: ``physical`` (default) ``a_last / lam_phys``
        (no biological clearance assumed, conservative); ``fit``: the
        effective rate through the last two points, ``a_last / lam_fit``, with
        ``lam_fit`` not smaller than ``lam_min`` (default ``lam_phys``).
    lam_min : float, optional
        Slowest rate allowed for the fitted tail (1/h).

    Returns
    -------
    tia : float
        MBq h.
    parts : dict
        ``start``, ``middle``, ``tail`` (MBq h) and ``tail_rate_per_h``.
    """
    if start not in START_RULES:
        raise ValueError(f"unknown start rule {start!r}")
    if tail not in TAIL_RULES:
        raise ValueError(f"unknown tail rule {tail!r}")
    tau = np.asarray(tau, dtype=float)
    a = np.asarray(a, dtype=float)
    t0, a0 = float(tau[0]), float(a[0])
    if start == "linear":
        s = 0.5 * a0 * t0
    elif start == "constant" or len(tau) < 2 or not (0 < a[1] < a0):
        s = a0 * t0
    else:
        lam_s = math.log(a0 / float(a[1])) / float(tau[1] - tau[0])
        # a steep early drop would extrapolate to absurd values: cap at e^50
        s = a0 * math.expm1(min(lam_s * t0, 50.0)) / lam_s
    middle = float(np.sum(0.5 * (a[1:] + a[:-1]) * np.diff(tau))) if len(tau) > 1 else 0.0
    lam_tail = lam_phys
    if tail == "fit" and len(tau) >= 2 and a[-1] > 0 and a[-2] > 0:
        lam_fit = math.log(float(a[-2]) / float(a[-1])) / float(tau[-1] - tau[-2])
        lam_tail = max(lam_fit, lam_phys if lam_min is None else lam_min)
    if lam_tail <= 0:
        lam_tail = lam_phys
    t_end = float(a[-1]) / lam_tail
    return s + middle + t_end, {
        "start": s,
        "middle": middle,
        "tail": t_end,
        "tail_rate_per_h": lam_tail,
    }
