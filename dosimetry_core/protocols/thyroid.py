"""I-131 therapy of benign thyroid disease: uptake fit, Marinelli prescription, verification.

Sources
-------
* Hänscheid H, Canzi C, Eschner W, et al. EANM Dosimetry Committee series on
  standard operational procedures for pre-therapeutic dosimetry II. Dosimetry
  prior to radioiodine therapy of benign thyroid diseases. Eur J Nucl Med Mol
  Imaging 2013;40:1126-1134 ("the SOP").
* Stokkel MPM, Handkiewicz Junak D, Lassmann M, Dietlein M, Luster M. EANM
  procedure guidelines for therapy of benign thyroid disease. Eur J Nucl Med
  Mol Imaging 2010;37:2218-2228.
* MIRD schema: Bolch WE, Eckerman KF, Sgouros G, Thomas SR. MIRD Pamphlet
  No. 21. J Nucl Med 2009;50:477-484.

Uptake data
-----------
Uptake ``U(t)`` is the thyroid activity at the reading time ``t`` in percent of
the administered activity, **not decay corrected** (what a probe reading against
a standard of the administered activity decayed in step gives; see
:func:`dosimetry_core.kinetics.measurements.probe_uptake`, whose ``fraction`` x
100 is this quantity).  The fitted rates are therefore *effective* rates
(physical + biological).

Uptake model and fallback rule (:func:`fit_uptake`)
---------------------------------------------------
* 3 or more readings: ``U(t) = U_max (exp(-lambda_eff t) - exp(-lambda_up t))``
  (uptake-washout, the two-compartment form of the SOP), fitted by weighted
  least squares with :func:`dosimetry_core.kinetics.fitting.fit_tac`
  (``model="biexp-uptake"``).  ``U_max`` is the amplitude, i.e. the uptake the
  washout phase extrapolates to at ``t = 0`` (the SOP's "maximum uptake" in the
  Marinelli formula); the actual peak of ``U(t)`` is lower and reported as
  ``u_peak_percent``.  If this fit is not converged and well conditioned, the
  mono-exponential fallback below is used on the readings from the highest one
  onwards, with a warning.
* 2 readings (or the fallback): ``U(t) = U_max exp(-lambda_eff t)`` through the
  points (instantaneous uptake; ``t_uptake_h`` is ``None``).
* 1 reading: the kinetics cannot be measured; the caller must supply an
  assumed effective half-life ``assumed_t_eff_d`` (e.g. a population value,
  with its source) and ``U_max = U(t1) exp(lambda_eff t1)``.
* Refused: uptake > 100 % or < 0, times not strictly increasing, an effective
  half-life longer than the physical one (uptake still rising at the last
  reading: measure later).

Marinelli formula
-----------------
With instantaneous uptake and mono-exponential washout, the thyroid
time-integrated activity is ``A~ = A0 (U_max/100) T_eff / ln2`` and the
absorbed dose (MIRD, all absorbed energy per decay ``E_abs`` deposited in the
thyroid of mass ``m``)::

    D [Gy] = A0[MBq] 1e6 [Bq/MBq] (U_max[%]/100) T_eff[d] 86400[s/d] / ln2
             * E_abs[J] / (m[g] 1e-3 [kg/g])

Solving for ``A0``::

    A0 [MBq] = K D[Gy] m[g] / (U_max[%] T_eff[d])
    K = ln2 * 100 * 1e-3 / (86400 * 1e6 * E_abs[J])      [MBq d / (Gy g)]

``E_abs = E_e + E_ph * phi_ph(m)``: the electron (non-penetrating) energy per
decay is absorbed locally and the photon energy per decay with the photon
absorbed fraction of a unit-density sphere of the thyroid's mass
(:mod:`dosimetry_core.dose.sphere_model`, our own Monte Carlo absorbed
fractions); without a mass, electrons only.  Energies: ICRP Publication 107 via
:func:`dosimetry_core.physics.nuclides.energy_per_decay`.  For I-131
(``E_e = 0.1918 MeV``) the electron-only value is 26.1 and a 20-30 g gland
gives about 24.0, within 3 % of the 24.7 quoted with the SOP.

Which time integral
-------------------
The SOP (Marinelli) formula assumes ``A~/A0 = (U_max/100) T_eff/ln2`` (``tia_method
="sop"``).  With the uptake phase the integral is ``(U_max/100)(1/lambda_eff -
1/lambda_up)`` (``tia_method="fit"``), smaller by the uptake time; both are
offered and reported.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from dosimetry_core.dose.sphere_model import SphereAbsorbedFractions, sphere_absorbed_fractions
from dosimetry_core.dose.units import J_PER_MEV, KG_PER_G
from dosimetry_core.errors import InvalidInputError
from dosimetry_core.physics.nuclides import energy_per_decay, half_life_h, normalize_nuclide

S_PER_D = 86400.0
"""Seconds per day (definition)."""
H_PER_D = 24.0
"""Hours per day (definition)."""
S_PER_H = 3600.0
"""Seconds per hour (definition)."""
BQ_PER_MBQ = 1e6
"""Becquerel per megabecquerel (definition)."""
PERCENT = 100.0
"""Percent per unit fraction (definition)."""
UNIT_DENSITY_G_PER_ML = 1.0
"""Density of the unit-density sphere model (g/mL)."""

TiaMethod = Literal["sop", "fit"]


def _positive(name: str, value: float | None) -> float:
    if value is None:
        raise InvalidInputError(f"{name} is missing")
    v = float(value)
    if not (math.isfinite(v) and v > 0):
        raise InvalidInputError(f"{name} must be a positive number, got {value!r}")
    return v


THYROID_MASS_RANGE_G = (1.0, 500.0)
"""Thyroid masses accepted for a prescription (g).  An adult gland is typically
10-25 g and a large goitre a few hundred grams; a value outside 1-500 g is taken as
a typing or unit error (kg, mg) rather than prescribed for."""


def _thyroid_mass_g(mass_g: float | None) -> float:
    if mass_g is None:
        raise InvalidInputError("thyroid mass (mass_g) is missing", field="mass_g")
    m = float(mass_g)
    lo, hi = THYROID_MASS_RANGE_G
    if not (math.isfinite(m) and lo <= m <= hi):
        raise InvalidInputError(
            f"thyroid mass (mass_g) {mass_g!r} g is outside the plausible {lo:g}-{hi:g} g "
            "(check the unit: grams)",
            field="mass_g",
        )
    return m


def _uptake_percent(name: str, value: float) -> float:
    v = float(value)
    if not math.isfinite(v):
        raise InvalidInputError(f"{name} must be a number, got {value!r}")
    if v > PERCENT:
        raise InvalidInputError(f"{name} {v:g} % is above 100 % of the administered activity")
    if v < 0:
        raise InvalidInputError(f"{name} {v:g} % is negative")
    return v


# ======================================================================= fit
@dataclass(frozen=True)
class UptakeFit:
    """Fitted thyroid uptake curve (percent of administered activity, not decay corrected).

    Attributes
    ----------
    model
        ``"biexp-uptake"``, ``"mono"`` (2 readings or fallback) or
        ``"mono-assumed-teff"`` (1 reading with an assumed effective half-life).
    u_max_percent
        Amplitude ``U_max`` (%), the SOP's maximum uptake.
    t_eff_d
        Effective half-life of the washout (d).
    t_uptake_h
        Uptake half-time ``ln2/lambda_up`` (h); ``None`` for instantaneous uptake.
    tia_coefficient_h
        ``integral_0^inf U(t)/100 dt`` of the fitted curve (h): thyroid TIA per
        unit administered activity.
    tia_coefficient_sop_h
        ``(U_max/100) T_eff / ln2`` (h): the integral the Marinelli formula assumes.
    u_peak_percent, t_peak_h
        Maximum of the fitted curve and its time.
    time_h, uptake_percent
        The readings used.
    rule
        One line: why this model.
    """

    model: str
    nuclide: str
    u_max_percent: float
    t_eff_d: float
    t_uptake_h: float | None
    tia_coefficient_h: float
    tia_coefficient_sop_h: float
    u_peak_percent: float
    t_peak_h: float
    time_h: tuple[float, ...]
    uptake_percent: tuple[float, ...]
    rule: str
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def lambda_eff_per_h(self) -> float:
        return math.log(2.0) / (self.t_eff_d * H_PER_D)

    @property
    def lambda_uptake_per_h(self) -> float | None:
        return None if self.t_uptake_h is None else math.log(2.0) / self.t_uptake_h

    def uptake_percent_at(self, time_h: float | Sequence[float]) -> NDArray[np.float64]:
        """The fitted curve ``U(t)`` (%, not decay corrected) at ``time_h`` (h)."""
        t = np.asarray(time_h, dtype=float)
        u = self.u_max_percent * np.exp(-self.lambda_eff_per_h * t)
        lam_up = self.lambda_uptake_per_h
        if lam_up is not None:
            u = u - self.u_max_percent * np.exp(-lam_up * t)
        return np.asarray(u, dtype=float)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "nuclide": self.nuclide,
            "u_max_percent": self.u_max_percent,
            "t_eff_d": self.t_eff_d,
            "t_uptake_h": self.t_uptake_h,
            "tia_coefficient_h": self.tia_coefficient_h,
            "tia_coefficient_sop_h": self.tia_coefficient_sop_h,
            "u_peak_percent": self.u_peak_percent,
            "t_peak_h": self.t_peak_h,
            "time_h": list(self.time_h),
            "uptake_percent": list(self.uptake_percent),
            "rule": self.rule,
            "warnings": list(self.warnings),
        }


def _check_series(
    time_h: Sequence[float], uptake_percent: Sequence[float]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    t = np.asarray(time_h, dtype=float).ravel()
    u = np.asarray(uptake_percent, dtype=float).ravel()
    if t.size != u.size:
        raise InvalidInputError(f"{t.size} uptake time(s) but {u.size} uptake value(s)")
    if t.size == 0:
        raise InvalidInputError("no uptake readings")
    if not np.all(np.isfinite(t)):
        raise InvalidInputError("uptake times must be finite numbers of hours")
    if np.any(t <= 0):
        raise InvalidInputError(
            f"uptake reading at {float(t[t <= 0][0]):g} h: times must be after the administration"
        )
    if np.any(np.diff(t) <= 0):
        i = int(np.argmax(np.diff(t) <= 0))
        raise InvalidInputError(
            f"uptake times must be strictly increasing ({t[i]:g} h then {t[i + 1]:g} h)"
        )
    for i, v in enumerate(u):
        _uptake_percent(f"uptake at {t[i]:g} h", float(v))
    if not np.any(u > 0):
        raise InvalidInputError("every uptake reading is zero: no thyroid uptake to integrate")
    return t, u


def _mono_fit(
    nuc: str,
    t: NDArray[np.float64],
    u: NDArray[np.float64],
    rule: str,
    warnings: list[str],
    t_all: NDArray[np.float64],
    u_all: NDArray[np.float64],
) -> UptakeFit:
    """Log-linear least squares through ``(t, u)`` (exact for 2 points)."""
    if np.any(u <= 0):
        raise InvalidInputError("a zero uptake reading cannot be fitted mono-exponentially")
    slope, icpt = np.polyfit(t, np.log(u), 1)
    lam = -float(slope)
    lam_phys = math.log(2.0) / half_life_h(nuc)
    if not lam > lam_phys * (1.0 - 1e-9):
        raise InvalidInputError(
            f"the uptake does not fall faster than {nuc} decays (effective half-life "
            f"{'infinite' if lam <= 0 else f'{math.log(2.0) / lam / H_PER_D:.3g} d'} > physical "
            f"{half_life_h(nuc) / H_PER_D:.3g} d): still rising at the last reading; "
            "add a later one"
        )
    u_max = math.exp(float(icpt))
    _uptake_percent("extrapolated maximum uptake U_max", u_max)
    t_eff_d = math.log(2.0) / lam / H_PER_D
    tiac = u_max / PERCENT / lam
    return UptakeFit(
        model="mono",
        nuclide=nuc,
        u_max_percent=u_max,
        t_eff_d=t_eff_d,
        t_uptake_h=None,
        tia_coefficient_h=tiac,
        tia_coefficient_sop_h=tiac,
        u_peak_percent=u_max,
        t_peak_h=0.0,
        time_h=tuple(float(x) for x in t_all),
        uptake_percent=tuple(float(x) for x in u_all),
        rule=rule,
        warnings=tuple(warnings),
    )


def fit_uptake(
    time_h: Sequence[float],
    uptake_percent: Sequence[float],
    nuclide: str = "I-131",
    *,
    assumed_t_eff_d: float | None = None,
    relative_sd: float = 0.05,
) -> UptakeFit:
    """Fit the thyroid uptake curve (module docstring: model and fallback rule).

    Parameters
    ----------
    time_h
        Reading times, h after administration, strictly increasing.
    uptake_percent
        Thyroid uptake at each time, % of the administered activity, not decay corrected.
    nuclide
        Sets the physical half-life (effective half-lives may not exceed it).
    assumed_t_eff_d
        Effective half-life (d) to assume when only one reading is given.
    relative_sd
        Relative SD of each reading for the weighted fit (default 5 %).

    Raises
    ------
    InvalidInputError
        Uptake > 100 % or < 0, times not increasing, a single reading without
        ``assumed_t_eff_d``, an effective half-life longer than the physical one.
    """
    nuc = normalize_nuclide(nuclide)
    t, u = _check_series(time_h, uptake_percent)
    if t.size == 1:
        if assumed_t_eff_d is None:
            raise InvalidInputError(
                "one uptake reading cannot give the effective half-life: give assumed_t_eff_d "
                "(e.g. a population value with its source) or more readings"
            )
        t_eff_d = _positive("assumed effective half-life (d)", assumed_t_eff_d)
        if t_eff_d * H_PER_D > half_life_h(nuc):
            raise InvalidInputError(
                f"assumed effective half-life {t_eff_d:g} d exceeds the physical half-life of {nuc}"
            )
        lam = math.log(2.0) / (t_eff_d * H_PER_D)
        u_max = float(u[0]) * math.exp(lam * float(t[0]))
        _uptake_percent("extrapolated maximum uptake U_max", u_max)
        tiac = u_max / PERCENT / lam
        return UptakeFit(
            model="mono-assumed-teff",
            nuclide=nuc,
            u_max_percent=u_max,
            t_eff_d=t_eff_d,
            t_uptake_h=None,
            tia_coefficient_h=tiac,
            tia_coefficient_sop_h=tiac,
            u_peak_percent=u_max,
            t_peak_h=0.0,
            time_h=(float(t[0]),),
            uptake_percent=(float(u[0]),),
            rule="1 reading: mono-exponential with the assumed effective half-life",
        )
    if t.size == 2:
        return _mono_fit(
            nuc, t, u, "2 readings: mono-exponential through both (instantaneous uptake)", [], t, u
        )
    from dosimetry_core.kinetics.fitting import fit_tac

    res = fit_tac(t, u, model="biexp-uptake", nuclide=nuc, relative_sd=relative_sd, mc_samples=0)
    c = res.chosen
    if c.model == "biexp-uptake" and c.converged and c.well_conditioned:
        a, lam_e, lam_u = (float(x) for x in c.values)
        if lam_u > lam_e > 0:
            t_peak = math.log(lam_u / lam_e) / (lam_u - lam_e)
            u_peak = a * (math.exp(-lam_e * t_peak) - math.exp(-lam_u * t_peak))
            warn: list[str] = []
            if a > PERCENT:
                raise InvalidInputError(
                    f"fitted maximum uptake U_max {a:.4g} % is above 100 %: check the readings"
                )
            return UptakeFit(
                model="biexp-uptake",
                nuclide=nuc,
                u_max_percent=a,
                t_eff_d=math.log(2.0) / lam_e / H_PER_D,
                t_uptake_h=math.log(2.0) / lam_u,
                tia_coefficient_h=a / PERCENT * (1.0 / lam_e - 1.0 / lam_u),
                tia_coefficient_sop_h=a / PERCENT / lam_e,
                u_peak_percent=u_peak,
                t_peak_h=t_peak,
                time_h=tuple(float(x) for x in t),
                uptake_percent=tuple(float(x) for x in u),
                rule=f"{t.size} readings: uptake-washout U_max(exp(-l_eff t) - exp(-l_up t))",
                warnings=tuple(warn),
            )
    i_max = int(np.argmax(u))
    if t.size - i_max < 2:
        raise InvalidInputError(
            "the uptake-washout fit failed and the highest uptake is the last reading: "
            "no washout measured; add a later reading"
        )
    reasons = "; ".join(c.warnings) or "not converged or ill-conditioned"
    return _mono_fit(
        nuc,
        t[i_max:],
        u[i_max:],
        f"fallback: uptake-washout fit failed ({reasons}); mono-exponential from the "
        f"highest reading ({t[i_max]:g} h) on",
        [f"uptake-washout fit failed: {reasons}"],
        t,
        u,
    )


# ================================================================ Marinelli
@dataclass(frozen=True)
class AbsorbedEnergy:
    """Energy absorbed in the thyroid per decay (MeV) and how it was obtained."""

    nuclide: str
    electron_mev: float
    photon_mev: float
    photon_absorbed_fraction: float
    mass_g: float | None

    @property
    def absorbed_mev(self) -> float:
        return self.electron_mev + self.photon_mev * self.photon_absorbed_fraction


def _sphere_radius_mm(mass_g: float) -> float:
    volume_ml = mass_g / UNIT_DENSITY_G_PER_ML
    return 10.0 * (3.0 * volume_ml / (4.0 * math.pi)) ** (1.0 / 3.0)


def absorbed_energy_per_decay(
    nuclide: str = "I-131",
    mass_g: float | None = None,
    *,
    absorbed_fractions: SphereAbsorbedFractions | None = None,
) -> AbsorbedEnergy:
    """``E_abs = E_e + E_ph phi_ph(sphere of mass_g)`` (module docstring).

    Parameters
    ----------
    nuclide
        ICRP-107 nuclide (parent emissions).
    mass_g
        Thyroid mass (g); ``None``: electrons only (``phi_ph = 0``).
    absorbed_fractions
        Sphere absorbed-fraction table of the nuclide (default: computed once
        and cached by :func:`dosimetry_core.dose.sphere_model.sphere_absorbed_fractions`).
    """
    nuc = normalize_nuclide(nuclide)
    e = energy_per_decay(nuc)
    phi = 0.0
    if mass_g is not None:
        m = _positive("thyroid mass (g)", mass_g)
        table = (
            absorbed_fractions
            if absorbed_fractions is not None
            else (sphere_absorbed_fractions(nuc))
        )
        phi = table.photon(_sphere_radius_mm(m))
    return AbsorbedEnergy(nuc, e.non_penetrating_mev, e.photon_mev, phi, mass_g)


def marinelli_constant(
    nuclide: str = "I-131",
    mass_g: float | None = None,
    *,
    absorbed_fractions: SphereAbsorbedFractions | None = None,
) -> float:
    """Marinelli constant ``K`` (MBq d / (Gy g), uptake in %), derived from ICRP-107.

    ``K = ln2 * 100 * 1e-3 / (86400 * 1e6 * E_abs[J])``: see the module docstring
    for the algebra (Hänscheid et al. 2013, EANM SOP; MIRD Pamphlet 21).
    ``E_abs`` from :func:`absorbed_energy_per_decay`.
    """
    e = absorbed_energy_per_decay(nuclide, mass_g, absorbed_fractions=absorbed_fractions)
    return k_from_energy(e.absorbed_mev)


def k_from_energy(absorbed_mev: float) -> float:
    """``K = ln2 * 100 * 1e-3 / (86400 * 1e6 * E_abs[MeV] * J_PER_MEV)`` (MBq d / (Gy g))."""
    e_j = _positive("absorbed energy per decay (MeV)", absorbed_mev) * J_PER_MEV
    return math.log(2.0) * PERCENT * KG_PER_G / (S_PER_D * BQ_PER_MBQ * e_j)


def _tia_factor(method: TiaMethod, t_eff_d: float, t_uptake_h: float | None) -> float:
    """Ratio of the chosen time integral to the SOP integral ``U_max T_eff / ln2``."""
    if method == "sop" or t_uptake_h is None:
        if method not in ("sop", "fit"):
            raise InvalidInputError(f"tia_method must be 'sop' or 'fit', got {method!r}")
        return 1.0
    if method != "fit":
        raise InvalidInputError(f"tia_method must be 'sop' or 'fit', got {method!r}")
    lam_e = math.log(2.0) / (t_eff_d * H_PER_D)
    lam_u = math.log(2.0) / _positive("uptake half-time (h)", t_uptake_h)
    if not lam_u > lam_e:
        raise InvalidInputError(
            f"uptake half-time {t_uptake_h:g} h is not shorter than the effective half-life"
        )
    return 1.0 - lam_e / lam_u


def _k(
    k: float | None,
    nuclide: str,
    mass_g: float,
    absorbed_fractions: SphereAbsorbedFractions | None,
) -> float:
    if k is not None:
        return _positive("Marinelli constant K", k)
    return marinelli_constant(nuclide, mass_g, absorbed_fractions=absorbed_fractions)


def thyroid_activity_mbq(
    target_gy: float,
    mass_g: float,
    u_max_percent: float,
    t_eff_d: float,
    *,
    nuclide: str = "I-131",
    t_uptake_h: float | None = None,
    tia_method: TiaMethod = "sop",
    k: float | None = None,
    absorbed_fractions: SphereAbsorbedFractions | None = None,
) -> float:
    """Activity to administer (MBq) for a thyroid target dose (Marinelli, EANM SOP).

    ``A = K D m / (U_max T_eff)`` (Hänscheid et al. 2013), divided by
    ``1 - lambda_eff/lambda_up`` with ``tia_method="fit"`` and an uptake half-time
    (the uptake phase shortens the integral).

    Parameters
    ----------
    target_gy
        Thyroid (or nodule) target absorbed dose, Gy.
    mass_g
        Thyroid mass, g.
    u_max_percent
        Maximum uptake (%), 0 < U <= 100.
    t_eff_d
        Effective half-life, d (not longer than the physical half-life).
    t_uptake_h, tia_method
        Uptake half-time (h) and ``"sop"`` (ignore it) or ``"fit"``.
    k
        Marinelli constant to use (MBq d/(Gy g)); default derived from ICRP-107
        for this mass (:func:`marinelli_constant`).
    """
    d = _positive("target dose (Gy)", target_gy)
    m = _thyroid_mass_g(mass_g)
    u = _uptake_percent("maximum uptake U_max", u_max_percent)
    if u == 0:
        raise InvalidInputError("maximum uptake U_max is 0 %: no thyroid dose possible")
    te = _check_teff(t_eff_d, nuclide)
    f = _tia_factor(tia_method, te, t_uptake_h)
    return _k(k, nuclide, m, absorbed_fractions) * d * m / (u * te * f)


def _check_teff(t_eff_d: float, nuclide: str) -> float:
    te = _positive("effective half-life (d)", t_eff_d)
    phys_d = half_life_h(normalize_nuclide(nuclide)) / H_PER_D
    if te > phys_d * (1.0 + 1e-9):
        raise InvalidInputError(
            f"effective half-life {te:g} d exceeds the physical half-life {phys_d:.4g} d"
        )
    return te


def thyroid_dose_gy(
    activity_mbq: float,
    mass_g: float,
    u_max_percent: float,
    t_eff_d: float,
    *,
    nuclide: str = "I-131",
    t_uptake_h: float | None = None,
    tia_method: TiaMethod = "sop",
    k: float | None = None,
    absorbed_fractions: SphereAbsorbedFractions | None = None,
) -> float:
    """Thyroid absorbed dose (Gy) of an administered activity (verification after therapy).

    The inverse of :func:`thyroid_activity_mbq`: ``D = A U_max T_eff f / (K m)``
    with ``f = 1`` (SOP integral) or ``1 - lambda_eff/lambda_up`` (``"fit"``).
    """
    a = _positive("administered activity (MBq)", activity_mbq)
    m = _thyroid_mass_g(mass_g)
    u = _uptake_percent("maximum uptake U_max", u_max_percent)
    te = _check_teff(t_eff_d, nuclide)
    f = _tia_factor(tia_method, te, t_uptake_h)
    return a * u * te * f / (_k(k, nuclide, m, absorbed_fractions) * m)


def _fit_args(fit: UptakeFit, tia_method: TiaMethod) -> tuple[float, float, float | None]:
    return fit.u_max_percent, fit.t_eff_d, fit.t_uptake_h if tia_method == "fit" else None


def thyroid_activity_from_fit(
    target_gy: float,
    mass_g: float,
    fit: UptakeFit,
    *,
    tia_method: TiaMethod = "fit",
    k: float | None = None,
    absorbed_fractions: SphereAbsorbedFractions | None = None,
) -> float:
    """Activity (MBq) for ``target_gy`` from an uptake fit (``"fit"``: full integral)."""
    u, te, tu = _fit_args(fit, tia_method)
    return thyroid_activity_mbq(
        target_gy,
        mass_g,
        u,
        te,
        nuclide=fit.nuclide,
        t_uptake_h=tu,
        tia_method=tia_method,
        k=k,
        absorbed_fractions=absorbed_fractions,
    )


def thyroid_dose_from_fit(
    activity_mbq: float,
    mass_g: float,
    fit: UptakeFit,
    *,
    tia_method: TiaMethod = "fit",
    k: float | None = None,
    absorbed_fractions: SphereAbsorbedFractions | None = None,
) -> float:
    """Thyroid dose (Gy) of ``activity_mbq`` from an uptake fit (``"fit"``: full integral)."""
    u, te, tu = _fit_args(fit, tia_method)
    return thyroid_dose_gy(
        activity_mbq,
        mass_g,
        u,
        te,
        nuclide=fit.nuclide,
        t_uptake_h=tu,
        tia_method=tia_method,
        k=k,
        absorbed_fractions=absorbed_fractions,
    )


@dataclass(frozen=True)
class ThyroidPrescription:
    """Prescription from an uptake series: the fit, K, and the activity (both integrals)."""

    fit: UptakeFit
    target_gy: float
    mass_g: float
    marinelli_k: float
    photon_absorbed_fraction: float
    activity_mbq: float
    activity_sop_mbq: float
    tia_method: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "u_max_percent": self.fit.u_max_percent,
            "t_eff_d": self.fit.t_eff_d,
            "activity_mbq": self.activity_mbq,
            "marinelli_k": self.marinelli_k,
            "model": self.fit.model,
            "t_uptake_h": self.fit.t_uptake_h,
            "activity_sop_mbq": self.activity_sop_mbq,
            "tia_method": self.tia_method,
            "target_gy": self.target_gy,
            "mass_g": self.mass_g,
            "nuclide": self.fit.nuclide,
            "photon_absorbed_fraction": self.photon_absorbed_fraction,
            "tia_coefficient_h": self.fit.tia_coefficient_h,
            "tia_coefficient_sop_h": self.fit.tia_coefficient_sop_h,
            "u_peak_percent": self.fit.u_peak_percent,
            "t_peak_h": self.fit.t_peak_h,
            "fit": self.fit.to_dict(),
        }


def prescribe(
    target_gy: float,
    mass_g: float,
    time_h: Sequence[float],
    uptake_percent: Sequence[float],
    *,
    nuclide: str = "I-131",
    tia_method: TiaMethod = "fit",
    assumed_t_eff_d: float | None = None,
    absorbed_fractions: SphereAbsorbedFractions | None = None,
) -> ThyroidPrescription:
    """Fit the uptake series and prescribe the activity for ``target_gy`` (``mrtdose thyroid``).

    ``activity_mbq`` uses ``tia_method`` (default the full fitted integral);
    ``activity_sop_mbq`` always the SOP integral ``U_max T_eff / ln2``.
    """
    d = _positive("target dose (Gy)", target_gy)
    m = _thyroid_mass_g(mass_g)
    fit = fit_uptake(time_h, uptake_percent, nuclide, assumed_t_eff_d=assumed_t_eff_d)
    e = absorbed_energy_per_decay(fit.nuclide, m, absorbed_fractions=absorbed_fractions)
    k = k_from_energy(e.absorbed_mev)
    return ThyroidPrescription(
        fit=fit,
        target_gy=d,
        mass_g=m,
        marinelli_k=k,
        photon_absorbed_fraction=e.photon_absorbed_fraction,
        activity_mbq=thyroid_activity_from_fit(d, m, fit, tia_method=tia_method, k=k),
        activity_sop_mbq=thyroid_activity_from_fit(d, m, fit, tia_method="sop", k=k),
        tia_method=tia_method,
    )
