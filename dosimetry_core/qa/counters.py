"""Well-counter and uptake-probe calibration; dead time from a decaying-source series.

Calibration with a reference source of known activity ``A_ref`` at ``t_ref``,
counted at ``t_c`` for ``T`` seconds with ``N`` gross counts and background
``N_b`` counts in ``T_b`` seconds::

    epsilon [cps/Bq] = (N / T - N_b / T_b) / (A_ref exp(-lambda (t_c - t_ref)))

(counting efficiency x emission probability in the window, the quantity that
:class:`dosimetry_core.kinetics.measurements.WellCounterCalibration` carries).
SD from Poisson statistics of ``N`` and ``N_b`` and, when entered, the standard
uncertainty of the reference activity.  For a well counter with a sample volume
``V`` the factor also reads ``epsilon V`` cps per (Bq/mL).

Dead time (Knoll GF, Radiation Detection and Measurement, 4th ed., Wiley 2010,
ch. 4 section VII): with the true rate of a decaying source
``n(t) = n0 exp(-lambda t) + b`` (``b`` the background rate), the observed rate is

* non-paralysable: ``m = n / (1 + n tau)``
* paralysable:     ``m = n exp(-n tau)``

``n0`` and ``tau`` are fitted by weighted least squares (Poisson weights of the
observed counts); ``"auto"`` fits both and keeps the smaller chi-square.  The
linearity limit is the true rate at which the fractional loss ``1 - m/n`` reaches
the tolerance: ``L / ((1 - L) tau)`` (non-paralysable), ``-ln(1 - L) / tau``
(paralysable).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import optimize

from dosimetry_core.errors import InvalidInputError

DEAD_TIME_MODELS = ("non-paralysable", "paralysable")
DEFAULT_LOSS_LIMIT_PERCENT = 1.0
"""Count-loss tolerance of the linearity check (department setting, editable)."""


def _pos(value: float, what: str) -> float:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise InvalidInputError(f"{what} must be a positive number, got {value!r}")
    return float(value)


@dataclass
class CounterCalibration:
    """Calibration of a well counter or uptake probe for one nuclide and geometry."""

    kind: str
    """``"well-counter"`` or ``"probe"``."""
    device: str
    nuclide: str
    cps_per_bq: float
    cps_per_bq_sd: float
    measured_at: datetime
    reference_activity_bq: float
    reference_time: datetime
    activity_at_counting_bq: float
    net_cps: float
    background_cps: float
    sample_volume_ml: float | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def cps_per_mbq(self) -> float:
        return self.cps_per_bq * 1e6

    def to_well_counter_calibration(self) -> Any:
        """The kinetics-side calibration object used for blood samples."""
        from dosimetry_core.kinetics.measurements import WellCounterCalibration

        return WellCounterCalibration(
            cps_per_bq=self.cps_per_bq,
            background_cps=self.background_cps,
            source=f"{self.device} {self.nuclide} calibration {self.measured_at.isoformat()}",
        )

    def to_payload(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "device": self.device,
            "nuclide": self.nuclide,
            "cps_per_bq": self.cps_per_bq,
            "cps_per_bq_sd": self.cps_per_bq_sd,
            "cps_per_mbq": self.cps_per_mbq,
            "cps_per_mbq_sd": self.cps_per_bq_sd * 1e6,
            "cps_per_bq_per_ml": (
                self.cps_per_bq * self.sample_volume_ml if self.sample_volume_ml else None
            ),
            "measured_at": self.measured_at.isoformat(),
            "reference_activity_bq": self.reference_activity_bq,
            "reference_time": self.reference_time.isoformat(),
            "activity_at_counting_bq": self.activity_at_counting_bq,
            "net_cps": self.net_cps,
            "background_cps": self.background_cps,
            "sample_volume_ml": self.sample_volume_ml,
            "warnings": list(self.warnings),
        }


def calibrate_counter(
    gross_counts: float,
    counting_time_s: float,
    reference_activity_bq: float,
    reference_time: datetime,
    counted_at: datetime,
    nuclide: str,
    *,
    background_counts: float = 0.0,
    background_time_s: float | None = None,
    reference_sd_percent: float | None = None,
    sample_volume_ml: float | None = None,
    kind: str = "well-counter",
    device: str = "",
) -> CounterCalibration:
    """Counting efficiency (cps/Bq) from a reference source (module docstring).

    Raises
    ------
    InvalidInputError
        Non-positive time or activity, negative counts, counting before the
        reference time is allowed (decay back) but a net rate <= 0 is not.
    """
    from dosimetry_core.physics.decay import decay_factor, hours_between
    from dosimetry_core.physics.nuclides import normalize_nuclide

    if kind not in ("well-counter", "probe"):
        raise InvalidInputError(f"counter kind must be well-counter or probe, got {kind!r}")
    nuc = normalize_nuclide(nuclide)
    t = _pos(counting_time_s, "the counting time (s)")
    a_ref = _pos(reference_activity_bq, "the reference activity (Bq)")
    if not (math.isfinite(gross_counts) and gross_counts >= 0):
        raise InvalidInputError(f"counts must be >= 0, got {gross_counts!r}")
    if not (math.isfinite(background_counts) and background_counts >= 0):
        raise InvalidInputError(f"background counts must be >= 0, got {background_counts!r}")
    tb = _pos(background_time_s if background_time_s is not None else t, "background time (s)")
    if sample_volume_ml is not None:
        _pos(sample_volume_ml, "the sample volume (mL)")
    a_c = a_ref * decay_factor(nuc, hours_between(reference_time, counted_at))
    bg_cps = background_counts / tb
    net = gross_counts / t - bg_cps
    if not (net > 0):
        raise InvalidInputError(
            f"net count rate {net:.4g} cps is not positive (gross {gross_counts / t:.4g} cps, "
            f"background {bg_cps:.4g} cps)"
        )
    eps = net / a_c
    var_net = gross_counts / t**2 + background_counts / tb**2
    rel2 = var_net / net**2 + ((reference_sd_percent or 0.0) / 100.0) ** 2
    return CounterCalibration(
        kind=kind,
        device=device or kind,
        nuclide=nuc,
        cps_per_bq=eps,
        cps_per_bq_sd=eps * math.sqrt(rel2),
        measured_at=counted_at,
        reference_activity_bq=a_ref,
        reference_time=reference_time,
        activity_at_counting_bq=a_c,
        net_cps=net,
        background_cps=bg_cps,
        sample_volume_ml=sample_volume_ml,
    )


# ------------------------------------------------------------------ dead time
def observed_rate_cps(true_cps: Any, tau_s: float, model: str) -> NDArray[np.float64]:
    """Observed count rate for a true rate (Knoll 2010, ch. 4): see the module docstring."""
    n = np.asarray(true_cps, dtype=float)
    if model == "non-paralysable":
        out: NDArray[np.float64] = n / (1.0 + n * tau_s)
    elif model == "paralysable":
        out = n * np.exp(-n * tau_s)
    else:
        raise InvalidInputError(f"dead-time model must be one of {DEAD_TIME_MODELS}")
    return out


@dataclass
class DeadTimeFit:
    """Dead time of a counter from a decaying-source series."""

    model: str
    tau_s: float
    tau_sd_s: float
    n0_cps: float
    n0_sd_cps: float
    chi2: float
    dof: int
    max_true_cps_at_loss_limit: float
    loss_limit_percent: float
    max_observed_loss_percent: float
    alternatives: dict[str, dict[str, float]] = field(default_factory=dict)

    def true_rate_cps(self, observed_cps: float) -> float:
        """Invert the model: true rate for an observed rate (cps)."""
        m, tau = float(observed_cps), self.tau_s
        if tau == 0:
            return m
        if self.model == "non-paralysable":
            if m * tau >= 1:
                raise InvalidInputError(
                    f"observed rate {m:g} cps is at or above 1/tau = {1 / tau:g} cps"
                )
            return m / (1.0 - m * tau)
        if m * tau > math.exp(-1):
            raise InvalidInputError(
                f"observed rate {m:g} cps is above the maximum {math.exp(-1) / tau:g} cps of a "
                "paralysable counter"
            )
        # lower branch of m = n exp(-n tau)
        return float(optimize.brentq(lambda n: n * math.exp(-n * tau) - m, 0.0, 1.0 / tau))

    def to_payload(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "dead_time_s": self.tau_s,
            "dead_time_sd_s": self.tau_sd_s,
            "n0_cps": self.n0_cps,
            "n0_sd_cps": self.n0_sd_cps,
            "chi2": self.chi2,
            "dof": self.dof,
            "max_true_cps_at_loss_limit": self.max_true_cps_at_loss_limit,
            "loss_limit_percent": self.loss_limit_percent,
            "max_observed_loss_percent": self.max_observed_loss_percent,
            "alternatives": self.alternatives,
        }


def fit_dead_time(
    times_h: Sequence[float],
    observed_cps: Sequence[float],
    nuclide: str,
    *,
    counting_time_s: float | Sequence[float] | None = None,
    background_cps: float = 0.0,
    model: str = "auto",
    loss_limit_percent: float = DEFAULT_LOSS_LIMIT_PERCENT,
) -> DeadTimeFit:
    """Fit the dead time of a counter to a decaying-source series (module docstring).

    Parameters
    ----------
    times_h
        Measurement times (h from the first).
    observed_cps
        Observed (gross) count rates (cps).
    nuclide
        Source nuclide (its half-life gives lambda).
    counting_time_s
        Counting time(s) (s) for Poisson weights; None: equal relative weights.
    background_cps
        Background rate (cps), part of the true rate.
    model
        ``"non-paralysable"``, ``"paralysable"`` or ``"auto"``.
    loss_limit_percent
        Count-loss tolerance of the linearity check (%).
    """
    from dosimetry_core.physics.nuclides import decay_constant_per_h, normalize_nuclide

    t = np.asarray(times_h, dtype=float)
    m = np.asarray(observed_cps, dtype=float)
    if t.shape != m.shape or t.size < 3:
        raise InvalidInputError("a dead-time fit needs at least 3 (time, count rate) pairs")
    if not np.all(np.isfinite(m)) or np.any(m <= 0):
        raise InvalidInputError("observed count rates must be positive numbers")
    if not (0 < loss_limit_percent < 100):
        raise InvalidInputError(f"loss limit must be in (0, 100) %, got {loss_limit_percent!r}")
    lam = decay_constant_per_h(normalize_nuclide(nuclide))
    order = np.argsort(t)
    t, m = t[order] - t.min(), m[order]
    if counting_time_s is None:
        sd = 0.01 * m
        absolute = False
    else:
        tc = np.broadcast_to(np.asarray(counting_time_s, dtype=float), m.shape)[order]
        if np.any(tc <= 0):
            raise InvalidInputError("counting times must be positive (s)")
        sd = np.sqrt(m / tc)
        absolute = True
    models = DEAD_TIME_MODELS if model == "auto" else (model,)
    if any(mo not in DEAD_TIME_MODELS for mo in models):
        raise InvalidInputError(f"dead-time model must be auto or one of {DEAD_TIME_MODELS}")
    fits: dict[str, tuple[NDArray[np.float64], NDArray[np.float64], float]] = {}
    # tau estimated in microseconds and n0 in units of the first observed rate (conditioning)
    scale_n, scale_tau = float(m[0]), 1e-6
    for mo in models:

        def f(x: Any, n0: float, tau_us: float, mo: str = mo) -> Any:
            n = n0 * scale_n * np.exp(-lam * x) + background_cps
            return observed_rate_cps(n, tau_us * scale_tau, mo)

        try:
            popt, pcov = optimize.curve_fit(
                f,
                t,
                m,
                p0=[1.0, 0.0],
                sigma=sd,
                absolute_sigma=absolute,
                bounds=([1e-6, 0.0], [1e3, 0.5 / (scale_n * scale_tau)]),
            )
        except (RuntimeError, ValueError) as exc:
            raise InvalidInputError(f"dead-time fit ({mo}) failed: {exc}") from exc
        chi2 = float(np.sum(((m - f(t, *popt)) / sd) ** 2))
        fits[mo] = (popt, pcov, chi2)
    best = min(fits, key=lambda k: fits[k][2])
    popt, pcov, chi2 = fits[best]
    tau = float(popt[1]) * scale_tau
    tau_sd = math.sqrt(max(float(pcov[1, 1]), 0.0)) * scale_tau
    n0 = float(popt[0]) * scale_n
    n0_sd = math.sqrt(max(float(pcov[0, 0]), 0.0)) * scale_n
    loss = loss_limit_percent / 100.0
    if tau > 0:
        limit = loss / ((1 - loss) * tau) if best == "non-paralysable" else -math.log1p(-loss) / tau
    else:
        limit = math.inf
    n_max = n0 + background_cps
    max_loss = 100.0 * (1.0 - float(observed_rate_cps([n_max], tau, best)[0]) / n_max)
    return DeadTimeFit(
        model=best,
        tau_s=tau,
        tau_sd_s=tau_sd,
        n0_cps=n0,
        n0_sd_cps=n0_sd,
        chi2=chi2,
        dof=int(t.size - 2),
        max_true_cps_at_loss_limit=limit,
        loss_limit_percent=loss_limit_percent,
        max_observed_loss_percent=max_loss,
        alternatives={
            k: {"dead_time_s": float(v[0][1]) * scale_tau, "chi2": v[2]} for k, v in fits.items()
        },
    )
