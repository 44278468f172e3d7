"""Compartment kinetics of the synthetic demo patient (known-answer time-activity curves).

The model is phenomenological and chosen so that every number has a closed form:

* **Organs and tumours** take up activity from the blood and wash it out with a
  bi-exponential curve (PHYSICS.md section 3; e.g. Glatting et al., Med. Phys. 34
  (2007) 4187, "NUKFIT")::

      A(t) = A0 f (exp(-l_w t) - exp(-l_u t)),
      l_w = ln2 / T_eff,               (effective washout, physical decay included)
      l_u = ln2 / T_uptake + l_phys,   (biological uptake half-time, decay included)

  ``f`` is the decay-corrected uptake amplitude as a fraction of the injected
  activity ``A0``.  Activities are decay-INCLUDED (what a camera sees at scan time).
* **Remainder of body** (blood and soft tissue) starts with all the activity and
  clears as a sum of exponentials, ``A0 exp(-l_phys t) sum_k g_k exp(-mu_k t)`` with
  ``sum_k g_k = 1``; the fast component (biological half-time ~1.5 h) is the renal
  excretion of the peptide that is not bound.
* **Urine.**  The decay-corrected fraction still in tissue is
  ``D(t) = sum_k g_k exp(-mu_k t) + sum_organs f (exp(-b t) - exp(-u t))``
  (``b``, ``u`` biological washout and uptake rates).  Everything that leaves the
  tissue goes to the urinary bladder: the cumulative decay-corrected urinary
  fraction is ``U(t) = 1 - D(t)``.  The patient voids every ``tau`` hours and the
  scans happen ``tau`` after a void, so the bladder content at time ``t`` is the
  urine produced during ``[t - tau, t]``::

      B(t) = A0 exp(-l_phys t) (U(t) - U(t - tau)),   U(s) = 0 for s <= 0,

  and the activity voided (excreted from the body) by time ``t`` is
  ``E(t) = A0 exp(-l_phys t) U(t - tau)``.  Hence the body content
  (tissue + bladder) is ``A0 exp(-l_phys t) - E(t)``: injected activity decayed
  minus excreted, exactly.  The bladder curve is treated as holding for all ``t``
  (a sliding window, i.e. as if every instant were ``tau`` after a void), which
  gives the closed-form integral
  ``TIA_B = A0 (1 - exp(-l_phys tau)) [1/l_phys - sum_j c_j / (k_j + l_phys)]``
  where ``D(t) = sum_j c_j exp(-k_j t)``.

Time-integrated activities are integrals from 0 to infinity, analytic for sums of
exponentials (``sum_k a_k / l_k``).  Units: hours, MBq, MBq*h.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

LN2 = float(np.log(2.0))


@dataclass(frozen=True)
class ExpSum:
    """``A(t) = sum_k a_k exp(-l_k t)`` for ``t >= 0`` (0 before), ``t`` in hours.

    Parameters
    ----------
    amplitudes
        ``a_k`` (MBq for activity curves, dimensionless for fractions).
    rates_per_h
        ``l_k`` in 1/h, all positive.
    """

    amplitudes: tuple[float, ...]
    rates_per_h: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.amplitudes) != len(self.rates_per_h):
            raise ValueError("ExpSum needs as many amplitudes as rates")
        if any(r <= 0 for r in self.rates_per_h):
            raise ValueError(f"ExpSum rates must be positive, got {self.rates_per_h}")

    def __call__(self, t_h: ArrayLike) -> NDArray[np.float64]:
        t = np.asarray(t_h, dtype=float)
        tc = np.maximum(t, 0.0)
        out = np.zeros_like(tc)
        for a, r in zip(self.amplitudes, self.rates_per_h, strict=True):
            out = out + a * np.exp(-r * tc)
        return np.where(t >= 0.0, out, 0.0)

    def integral(self) -> float:
        """Integral from 0 to infinity, ``sum_k a_k / l_k`` (units of A times h)."""
        return float(sum(a / r for a, r in zip(self.amplitudes, self.rates_per_h, strict=True)))

    def scaled(self, factor: float, extra_rate_per_h: float = 0.0) -> ExpSum:
        """``factor * A(t) * exp(-extra_rate t)``."""
        return ExpSum(
            tuple(factor * a for a in self.amplitudes),
            tuple(r + extra_rate_per_h for r in self.rates_per_h),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "terms": [
                {"amplitude": float(a), "rate_per_h": float(r), "half_life_h": LN2 / float(r)}
                for a, r in zip(self.amplitudes, self.rates_per_h, strict=True)
            ]
        }


@dataclass(frozen=True)
class UptakeWashout:
    """Bi-exponential uptake/washout of one organ or tumour compartment.

    Parameters
    ----------
    compartment
        Compartment key (see :mod:`dosimetry_core.phantoms.stylised`).
    uptake_fraction
        ``f``: decay-corrected amplitude as a fraction of the injected activity.
    uptake_half_time_h
        Biological uptake half-time (h).
    effective_half_life_h
        Effective washout half-life (h), physical decay included; must be shorter
        than the physical half-life.
    source
        Where the values come from (free text).
    """

    compartment: str
    uptake_fraction: float
    uptake_half_time_h: float
    effective_half_life_h: float
    source: str = ""


@dataclass(frozen=True)
class RemainderKinetics:
    """Decay-corrected clearance of the remainder of body: ``sum_k g_k exp(-ln2 t / T_k)``.

    ``fractions`` must sum to 1 (all activity is in the blood at injection).
    """

    fractions: tuple[float, ...] = (0.50, 0.35, 0.15)
    biological_half_lives_h: tuple[float, ...] = (1.5, 12.0, 100.0)
    source: str = ""


def default_uptake_table() -> tuple[UptakeWashout, ...]:
    """Demo kinetics of Lu-177 DOTATATE, chosen inside the ranges of PHYSICS.md section 9.

    Effective half-lives: kidneys 50 h (literature ~40-60 h), tumours 80-105 h
    (~70-110 h), spleen 65 h, liver 70 h, red marrow 36 h.  Uptake fractions are
    set so that a simple self-dose estimate gives kidneys ~0.6 Gy/GBq, spleen
    ~0.7 Gy/GBq, liver ~0.3 Gy/GBq and red marrow ~0.03 Gy/GBq (EANM 2022
    recommendations, Sjogreen Gleisner et al., EJNMMI 49 (2022) 1778, and the
    studies it cites).  Typical values, not reference values.
    """
    s = "demo value inside the PHYSICS.md section 9 ranges"
    return (
        UptakeWashout("kidney_left", 0.016, 1.5, 50.0, s),
        UptakeWashout("kidney_right", 0.015, 1.5, 50.0, s),
        UptakeWashout("liver", 0.070, 1.0, 70.0, s),
        UptakeWashout("spleen", 0.013, 1.0, 65.0, s),
        UptakeWashout("red_marrow", 0.008, 0.5, 36.0, s),
        UptakeWashout("spine_bone", 0.004, 0.5, 36.0, s),
        UptakeWashout("lung_left", 0.006, 0.1, 20.0, s),
        UptakeWashout("lung_right", 0.006, 0.1, 20.0, s),
        UptakeWashout("parotid_left", 0.0006, 1.0, 45.0, s),
        UptakeWashout("parotid_right", 0.0006, 1.0, 45.0, s),
        # tumours: amplitude ~3.0, 2.5 and 2.0 MBq/mL for 12, 2 and 50 mL
        UptakeWashout("tumour_1", 0.00486, 3.0, 95.0, s),
        UptakeWashout("tumour_2", 0.00068, 2.0, 80.0, s),
        UptakeWashout("tumour_3", 0.01351, 4.0, 105.0, s),
    )


class DemoKinetics:
    """Time-activity curves of every compartment of the demo patient.

    Parameters
    ----------
    injected_activity_mbq
        ``A0`` at ``t = 0`` (injection), MBq.
    physical_half_life_h
        Physical half-life of the nuclide (h).
    uptake
        Organ and tumour compartments.
    remainder
        Remainder-of-body clearance.
    void_interval_h
        ``tau``: time between the last void and each scan (h).
    remainder_name, bladder_name
        Compartment keys of the remainder of body and of the bladder content.

    Raises
    ------
    ValueError
        If a parameter is impossible or the decay-corrected tissue content ever
        increases (organs cannot take up more than the blood gives).
    """

    def __init__(
        self,
        injected_activity_mbq: float,
        physical_half_life_h: float,
        uptake: tuple[UptakeWashout, ...],
        remainder: RemainderKinetics,
        void_interval_h: float = 1.0,
        remainder_name: str = "remainder",
        bladder_name: str = "bladder_content",
    ) -> None:
        if injected_activity_mbq <= 0:
            raise ValueError("injected activity must be positive")
        if void_interval_h <= 0:
            raise ValueError("void interval must be positive")
        if abs(sum(remainder.fractions) - 1.0) > 1e-9:
            raise ValueError(f"remainder fractions must sum to 1, got {sum(remainder.fractions)}")
        self.injected_activity_mbq = float(injected_activity_mbq)
        self.physical_half_life_h = float(physical_half_life_h)
        self.decay_constant_per_h = LN2 / self.physical_half_life_h
        self.void_interval_h = float(void_interval_h)
        self.uptake = tuple(uptake)
        self.remainder = remainder
        self.remainder_name = remainder_name
        self.bladder_name = bladder_name
        lp = self.decay_constant_per_h
        a0 = self.injected_activity_mbq

        # decay-corrected tissue retention D(t) = sum_j c_j exp(-k_j t) (biological)
        coef: list[float] = []
        rates: list[float] = []
        self.tacs: dict[str, ExpSum] = {}
        for g, t in zip(remainder.fractions, remainder.biological_half_lives_h, strict=True):
            coef.append(g)
            rates.append(LN2 / t)
        self.tacs[remainder_name] = ExpSum(
            tuple(a0 * c for c in coef), tuple(r + lp for r in rates)
        )
        for u in self.uptake:
            lw = LN2 / u.effective_half_life_h
            if lw <= lp:
                raise ValueError(
                    f"{u.compartment}: effective half-life {u.effective_half_life_h} h must be "
                    f"shorter than the physical half-life {self.physical_half_life_h:.1f} h"
                )
            lu_bio = LN2 / u.uptake_half_time_h
            if lu_bio <= lw - lp:
                raise ValueError(f"{u.compartment}: uptake must be faster than biological washout")
            if u.compartment in self.tacs:
                raise ValueError(f"compartment {u.compartment} given twice")
            coef += [u.uptake_fraction, -u.uptake_fraction]
            rates += [lw - lp, lu_bio]
            self.tacs[u.compartment] = ExpSum(
                (a0 * u.uptake_fraction, -a0 * u.uptake_fraction), (lw, lu_bio + lp)
            )
        self.retention = ExpSum(tuple(coef), tuple(rates))
        self._check_retention()

    # ------------------------------------------------------------------ checks
    def _check_retention(self) -> None:
        t = np.concatenate([np.linspace(0.0, 48.0, 4801), np.linspace(48.0, 5000.0, 5001)])
        d = self.retention(t)
        if np.any(np.diff(d) > 1e-12) or np.any(d < -1e-12) or abs(d[0] - 1.0) > 1e-9:
            raise ValueError(
                "the kinetic parameters make the decay-corrected body content increase: "
                "organ uptake exceeds what the blood clears"
            )
        for name, tac in self.tacs.items():
            if np.any(tac(t) < -1e-9):
                raise ValueError(f"compartment {name} gets a negative activity")

    # ------------------------------------------------------------- quantities
    @property
    def compartments(self) -> list[str]:
        """Every compartment key: organs/tumours, remainder, bladder content."""
        return [*self.tacs.keys(), self.bladder_name]

    def urinary_fraction(self, t_h: ArrayLike) -> NDArray[np.float64]:
        """``U(t)``: decay-corrected cumulative fraction of ``A0`` gone to urine (0 for t <= 0)."""
        t = np.asarray(t_h, dtype=float)
        return np.where(t > 0.0, 1.0 - self.retention(t), 0.0)

    def injected_decayed_mbq(self, t_h: ArrayLike) -> NDArray[np.float64]:
        """``A0 exp(-l_phys t)`` (MBq)."""
        return self.injected_activity_mbq * np.exp(
            -self.decay_constant_per_h * np.asarray(t_h, float)
        )

    def bladder_activity_mbq(self, t_h: ArrayLike) -> NDArray[np.float64]:
        """Bladder content ``A0 exp(-l_phys t) (U(t) - U(t - tau))`` (MBq)."""
        t = np.asarray(t_h, dtype=float)
        u = self.urinary_fraction(t) - self.urinary_fraction(t - self.void_interval_h)
        return np.where(t >= 0.0, self.injected_decayed_mbq(t) * u, 0.0)

    def excreted_activity_mbq(self, t_h: ArrayLike) -> NDArray[np.float64]:
        """Activity voided by time ``t``, decay-included: ``A0 exp(-l_phys t) U(t - tau)`` (MBq)."""
        t = np.asarray(t_h, dtype=float)
        return self.injected_decayed_mbq(t) * self.urinary_fraction(t - self.void_interval_h)

    def body_activity_mbq(self, t_h: ArrayLike) -> NDArray[np.float64]:
        """Activity in the body (tissue + bladder) = injected decayed - excreted (MBq)."""
        return self.injected_decayed_mbq(t_h) - self.excreted_activity_mbq(t_h)

    def activity_mbq(self, compartment: str, t_h: ArrayLike) -> NDArray[np.float64]:
        """Decay-included activity of one compartment at ``t_h`` hours after injection (MBq)."""
        if compartment == self.bladder_name:
            return self.bladder_activity_mbq(t_h)
        return self.tacs[compartment](t_h)

    def tia_mbq_h(self, compartment: str) -> float:
        """Time-integrated activity from 0 to infinity (MBq*h), analytic."""
        if compartment == self.bladder_name:
            lp = self.decay_constant_per_h
            i_u = 1.0 / lp - sum(
                c / (k + lp)
                for c, k in zip(self.retention.amplitudes, self.retention.rates_per_h, strict=True)
            )
            return float(
                self.injected_activity_mbq * (1.0 - np.exp(-lp * self.void_interval_h)) * i_u
            )
        return self.tacs[compartment].integral()

    def to_dict(self) -> dict[str, Any]:
        """Parameters of the model (JSON-serialisable)."""
        comps: dict[str, Any] = {}
        for u in self.uptake:
            comps[u.compartment] = {
                "model": (
                    "A(t) = A0*f*(exp(-lambda_washout*t) - exp(-lambda_uptake*t)), decay included"
                ),
                "uptake_fraction": u.uptake_fraction,
                "uptake_half_time_bio_h": u.uptake_half_time_h,
                "effective_half_life_h": u.effective_half_life_h,
                "lambda_washout_per_h": LN2 / u.effective_half_life_h,
                "lambda_uptake_per_h": LN2 / u.uptake_half_time_h + self.decay_constant_per_h,
                "amplitude_mbq": self.injected_activity_mbq * u.uptake_fraction,
                "source": u.source,
                "curve_mbq": self.tacs[u.compartment].to_dict(),
            }
        comps[self.remainder_name] = {
            "model": "A(t) = A0*exp(-lambda_phys*t)*sum_k g_k*exp(-ln2*t/T_k)",
            "fractions": list(self.remainder.fractions),
            "biological_half_lives_h": list(self.remainder.biological_half_lives_h),
            "source": self.remainder.source,
            "curve_mbq": self.tacs[self.remainder_name].to_dict(),
        }
        comps[self.bladder_name] = {
            "model": (
                "B(t) = A0*exp(-lambda_phys*t)*(U(t) - U(t - tau)), U(t) = 1 - D(t) for t > 0 "
                "(0 otherwise), D = decay-corrected tissue retention; urine produced since the "
                "last void, tau before the scan"
            ),
            "void_interval_h": self.void_interval_h,
        }
        return {
            "injected_activity_mbq": self.injected_activity_mbq,
            "physical_half_life_h": self.physical_half_life_h,
            "lambda_phys_per_h": self.decay_constant_per_h,
            "activity_convention": (
                "decay-included activity at scan time (MBq), t in h after injection"
            ),
            "tissue_retention_decay_corrected": self.retention.to_dict(),
            "compartments": comps,
        }
