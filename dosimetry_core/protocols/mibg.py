"""I-131 mIBG therapy: whole-body dose from dose-rate readings, prescription, second administration.

Sources
-------
* Buckley SE, Chittenden SJ, Saran FH, Meller ST, Flux GD. Whole-body
  dosimetry for individualized treatment planning of 131I-MIBG radionuclide
  therapy for neuroblastoma. J Nucl Med 2009;50:1518-1524.
* Gear J, Chiesa C, Lassmann M, et al. EANM Dosimetry Committee series on
  standard operational procedures for internal dosimetry for 131I-mIBG
  treatment of neuroendocrine tumours. EJNMMI Phys 2020;7:15.
* MIRD schema: Bolch WE, et al. MIRD Pamphlet No. 21. J Nucl Med 2009;50:477-484.

Method
------
1. Whole-body activity from serial external dose-rate readings, the first one
   before voiding = 100 % of the administered activity
   (:func:`dosimetry_core.kinetics.measurements.whole_body_retention`).
2. Fit (:func:`dosimetry_core.kinetics.fitting.fit_tac`, AICc model selection
   by default) and integrate: whole-body TIA (MBq h).
3. ``D_WB = TIA * S(WB <- WB)`` with the whole-body S-value computed from
   ICRP-107 energies::

       S(WB <- WB) = (E_np + E_ph * phi_ph(WB)) / m_WB

   electrons (non-penetrating) absorbed locally; photons with the absorbed
   fraction ``phi_ph`` of a **unit-density sphere of the patient's mass** (our
   Monte Carlo sphere model, :mod:`dosimetry_core.dose.sphere_model`).

Approximation
-------------
A sphere is the most compact shape of a given mass, so it absorbs more photon
energy than a body of the same mass: ``phi_ph`` is an upper estimate (sphere
of 70 kg: ``phi_ph`` ~ 0.51 for I-131).  Photons carry two thirds of the I-131
energy per decay, so if an elongated body absorbed e.g. 0.35 instead, the
whole-body dose would be overestimated by about 20 % (an illustration, not a
measured figure).  S-values of anthropomorphic
phantoms (e.g. OLINDA/EXM) are not shipped with this workstation, so no
published whole-body S-value was compared here; do that before clinical use.
The 2 Gy whole-body limit of the protocol data file is a surrogate for marrow
toxicity (Buckley et al. 2009).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dosimetry_core.dose.sphere_model import SphereAbsorbedFractions, sphere_absorbed_fractions
from dosimetry_core.dose.units import BQ_S_PER_MBQ_H, J_PER_MEV
from dosimetry_core.errors import InvalidInputError
from dosimetry_core.kinetics.fitting import FitResult, fit_tac
from dosimetry_core.kinetics.measurements import MeasuredSeries, whole_body_retention
from dosimetry_core.physics.nuclides import energy_per_decay, normalize_nuclide

G_PER_KG = 1000.0
"""Grams per kilogram (definition)."""
UNIT_DENSITY_G_PER_ML = 1.0
"""Density of the unit-density sphere model (g/mL)."""
WHOLE_BODY_RADII_MM = np.geomspace(1.0, 500.0, 49)
"""Radii of the sphere table for bodies (a 500 mm sphere holds 524 kg)."""


def _positive(name: str, value: float | None) -> float:
    if value is None:
        raise InvalidInputError(f"{name} is missing")
    v = float(value)
    if not (math.isfinite(v) and v > 0):
        raise InvalidInputError(f"{name} must be a positive number, got {value!r}")
    return v


def whole_body_absorbed_fractions(nuclide: str = "I-131") -> SphereAbsorbedFractions:
    """Sphere absorbed-fraction table covering body-sized spheres (computed once, cached)."""
    return sphere_absorbed_fractions(normalize_nuclide(nuclide), radii_mm=WHOLE_BODY_RADII_MM)


def whole_body_photon_absorbed_fraction(
    body_mass_kg: float,
    nuclide: str = "I-131",
    *,
    absorbed_fractions: SphereAbsorbedFractions | None = None,
) -> float:
    """Photon absorbed fraction of a unit-density sphere of the body's mass (module docstring)."""
    m_g = _positive("body mass (kg)", body_mass_kg) * G_PER_KG
    radius_mm = 10.0 * (3.0 * m_g / UNIT_DENSITY_G_PER_ML / (4.0 * math.pi)) ** (1.0 / 3.0)
    table = (
        absorbed_fractions
        if absorbed_fractions is not None
        else (whole_body_absorbed_fractions(nuclide))
    )
    if radius_mm > float(table.radius_mm[-1]):
        raise InvalidInputError(
            f"body mass {body_mass_kg:g} kg is beyond the sphere table "
            f"(radius {radius_mm:.0f} mm > {float(table.radius_mm[-1]):.0f} mm)"
        )
    return table.photon(radius_mm)


def whole_body_s_value_gy_per_mbq_h(
    body_mass_kg: float,
    nuclide: str = "I-131",
    *,
    absorbed_fractions: SphereAbsorbedFractions | None = None,
) -> float:
    """``S(WB <- WB)`` in Gy per MBq h, mass-specific (module docstring).

    ``S = (E_np + E_ph phi_ph) * J_PER_MEV * 3.6e9 [Bq s / MBq h] / (m_kg)``;
    the electron term scales as ``1/m`` and the photon term as ``phi_ph(m)/m``
    (MIRD Pamphlet 21, Bolch et al. 2009).
    """
    e = energy_per_decay(normalize_nuclide(nuclide))
    phi = whole_body_photon_absorbed_fraction(
        body_mass_kg, nuclide, absorbed_fractions=absorbed_fractions
    )
    m_kg = float(body_mass_kg)
    return (e.non_penetrating_mev + e.photon_mev * phi) * J_PER_MEV * BQ_S_PER_MBQ_H / m_kg


@dataclass(frozen=True)
class WholeBodyDose:
    """Whole-body dosimetry of one administration."""

    nuclide: str
    administered_activity_mbq: float
    body_mass_kg: float
    series: MeasuredSeries
    fit: FitResult
    tia_mbq_h: float
    photon_absorbed_fraction: float
    s_value_gy_per_mbq_h: float
    dose_gy: float

    @property
    def dose_per_activity_gy_per_mbq(self) -> float:
        return self.dose_gy / self.administered_activity_mbq

    def to_dict(self) -> dict[str, Any]:
        return {
            "nuclide": self.nuclide,
            "administered_activity_mbq": self.administered_activity_mbq,
            "body_mass_kg": self.body_mass_kg,
            "model": self.fit.model,
            "tia_mbq_h": self.tia_mbq_h,
            "tiac_h": self.tia_mbq_h / self.administered_activity_mbq,
            "photon_absorbed_fraction": self.photon_absorbed_fraction,
            "s_value_gy_per_mbq_h": self.s_value_gy_per_mbq_h,
            "whole_body_dose_gy": self.dose_gy,
            "dose_per_activity_gy_per_mbq": self.dose_per_activity_gy_per_mbq,
            "time_h": list(self.series.time_h),
            "activity_mbq": list(self.series.values),
            "retention_fraction": list(self.series.fraction),
            "half_lives_h": {k: v for k, v in self.fit.chosen.half_lives_h.items()},
            "s_value_method": "electrons local + photons with the absorbed fraction of a "
            "unit-density sphere of the body mass (upper estimate)",
        }


def mibg_whole_body_dose(
    time_h: Sequence[float],
    dose_rate: Sequence[float],
    *,
    administered_activity_mbq: float,
    body_mass_kg: float,
    nuclide: str = "I-131",
    background: float | Sequence[float] = 0.0,
    model: str = "auto",
    absorbed_fractions: SphereAbsorbedFractions | None = None,
) -> WholeBodyDose:
    """Whole-body dose (Gy) from serial dose-rate readings (first reading = 100 %).

    Parameters
    ----------
    time_h
        Reading times, h after administration; the first before any voiding.
    dose_rate
        Readings in one unit and geometry (e.g. uSv/h at 1 m).
    administered_activity_mbq
        Net administered activity (MBq).
    body_mass_kg
        Patient mass (kg).
    background
        Background reading(s) in the unit of ``dose_rate``.
    model
        Fit model of :func:`dosimetry_core.kinetics.fitting.fit_tac` (default AICc).
    """
    nuc = normalize_nuclide(nuclide)
    a_adm = _positive("administered activity (MBq)", administered_activity_mbq)
    m = _positive("body mass (kg)", body_mass_kg)
    series = whole_body_retention(
        time_h, dose_rate, administered_activity_mbq=a_adm, nuclide=nuc, background=background
    )
    fit = fit_tac(
        series.time_h,
        series.values,
        model=model,
        nuclide=nuc,
        administered_activity_mbq=a_adm,
        mc_samples=0,
    )
    if not fit.converged or not math.isfinite(fit.tia_mbq_h):
        raise InvalidInputError(
            f"the whole-body retention fit ({fit.model}) did not converge: "
            + ("; ".join(fit.warnings or fit.chosen.warnings) or "check the readings")
        )
    phi = whole_body_photon_absorbed_fraction(m, nuc, absorbed_fractions=absorbed_fractions)
    s = whole_body_s_value_gy_per_mbq_h(m, nuc, absorbed_fractions=absorbed_fractions)
    return WholeBodyDose(nuc, a_adm, m, series, fit, fit.tia_mbq_h, phi, s, fit.tia_mbq_h * s)


def mibg_activity_for_target(
    target_gy: float,
    dose_per_activity_gy_per_mbq: float,
    *,
    n_administrations: int = 1,
) -> float:
    """Activity per administration (MBq) for a whole-body dose target.

    ``A = D_target / (n * D/A)``, with ``D/A`` (Gy/MBq) from a tracer or a first
    therapy (:attr:`WholeBodyDose.dose_per_activity_gy_per_mbq`); assumes the
    same kinetics for every administration (Buckley et al. 2009).  E.g. 2 Gy in
    two administrations: ``n_administrations=2``.
    """
    d = _positive("whole-body dose target (Gy)", target_gy)
    dpa = _positive("whole-body dose per activity (Gy/MBq)", dose_per_activity_gy_per_mbq)
    if int(n_administrations) != n_administrations or n_administrations < 1:
        raise InvalidInputError(
            f"number of administrations must be a positive integer, got {n_administrations!r}",
            field="n_administrations",
        )
    return d / (int(n_administrations) * dpa)


@dataclass(frozen=True)
class SecondAdministrationPlan:
    """Activity of the second administration to reach a cumulative whole-body dose."""

    activity_mbq: float
    remaining_gy: float
    dose_per_activity_gy_per_mbq: float
    assumption: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "second_activity_mbq": self.activity_mbq,
            "remaining_gy": self.remaining_gy,
            "dose_per_activity_gy_per_mbq": self.dose_per_activity_gy_per_mbq,
            "assumption": self.assumption,
        }


def plan_second_administration(
    first_activity_mbq: float, first_wb_dose_gy: float, target_total_gy: float
) -> SecondAdministrationPlan:
    """Second activity ``A2 = (D_target - D1) A1 / D1`` (linear scaling; Buckley et al. 2009).

    Assumes the second administration has the same whole-body kinetics per MBq
    as the first (same TIAC); state it in the record.  Refuses a first dose
    that already reaches the target.
    """
    a1 = _positive("first administered activity (MBq)", first_activity_mbq)
    d1 = _positive("first whole-body dose (Gy)", first_wb_dose_gy)
    dt = _positive("cumulative whole-body dose target (Gy)", target_total_gy)
    if d1 >= dt:
        raise InvalidInputError(
            f"the first administration already gave {d1:g} Gy, not below the target {dt:g} Gy"
        )
    dpa = d1 / a1
    return SecondAdministrationPlan(
        activity_mbq=(dt - d1) / dpa,
        remaining_gy=dt - d1,
        dose_per_activity_gy_per_mbq=dpa,
        assumption="same whole-body kinetics (Gy per MBq) as the first administration",
    )


__all__ = [
    "SecondAdministrationPlan",
    "WholeBodyDose",
    "mibg_activity_for_target",
    "mibg_whole_body_dose",
    "plan_second_administration",
    "whole_body_absorbed_fractions",
    "whole_body_photon_absorbed_fraction",
    "whole_body_s_value_gy_per_mbq_h",
]
