"""Blood-based red-marrow dosimetry (EANM Dosimetry Committee guidelines, Hindorf et al. 2010).

Sources
-------
* Hindorf C, Glatting G, Chiesa C, Lindén O, Flux G. EANM Dosimetry Committee
  guidelines for bone marrow and whole-body dosimetry. Eur J Nucl Med Mol
  Imaging 2010;37:1238-1250.
* Sgouros G. Bone marrow dosimetry for radioimmunotherapy: theoretical
  considerations. J Nucl Med 1993;34:689-694 (RMBLR = RMECFF / (1 - HCT)).
* Forrer F, et al. Bone marrow dosimetry in peptide receptor radionuclide
  therapy with [177Lu-DOTA0,Tyr3]octreotate. Eur J Nucl Med Mol Imaging
  2009;36:1138-1146 (RMBLR = 1 for small peptides).
* MIRD schema: Bolch WE, et al. MIRD Pamphlet No. 21. J Nucl Med 2009;50:477-484.

Parameters (RMBLR options, unit convention, mass scaling) are read from
``resources/protocols/marrow_parameters.json`` with their sources; reference
masses (ICRP Publication 89) from ``resources/organs/standard_organs.json``.

Method
------
Red-marrow TIA from the blood TIA concentration (Sgouros 1993; Hindorf 2010)::

    A~_RM [MBq h] = A~_blood [MBq h / mL] * RMBLR * m_RM [g] / rho_conv [g/mL]

(``rho_conv`` = 1 g/mL by the convention recorded in the parameter file).

Absorbed dose ``D_RM = D_self + D_cross``:

* ``D_self = A~_RM * E_np / m_RM``: the non-penetrating (electron) energy of
  marrow activity absorbed in the marrow (absorbed fraction 1).  This is
  ``S(RM <- RM)`` of the non-penetrating part, which scales as ``1/m_RM``
  (mass-scaled S-value), with ``m_RM`` the patient's red-marrow mass.
* Photons: the marrow is assumed to receive the mean photon dose of the body
  (total-body approximation, :func:`dosimetry_core.dose.organ_level.total_body_dose_gy`
  with electrons off): ``D_ph = A~ * E_ph * phi_ph(body) / m_body`` with
  ``phi_ph`` of a unit-density sphere of the patient's mass (see
  :mod:`dosimetry_core.protocols.mibg`).  Applied to the marrow's own activity
  (reported as ``self_photon_gy``) and to the remainder of the body
  (``cross_gy``).
* Not included: electrons from bone surfaces / trabecular bone and from
  organs next to marrow sites (no skeletal model here); the method is not for
  bone-seeking agents or agents binding to marrow cells.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from dosimetry_core.dose.organ_level import total_body_dose_gy
from dosimetry_core.dose.sphere_model import SphereAbsorbedFractions
from dosimetry_core.dose.units import BQ_S_PER_MBQ_H, J_PER_MEV, KG_PER_G
from dosimetry_core.errors import InvalidInputError
from dosimetry_core.physics.nuclides import EnergyPerDecay, energy_per_decay, normalize_nuclide
from dosimetry_core.protocols.mibg import G_PER_KG, whole_body_photon_absorbed_fraction
from dosimetry_core.resources import resource_path

MARROW_PARAMETERS_PATH = resource_path("protocols", "marrow_parameters.json")


@lru_cache(maxsize=4)
def _load(path: str) -> dict[str, Any]:
    from dosimetry_core.protocols.registry import read_json_table

    return read_json_table(path, "marrow parameters")


def marrow_parameters(path: str | Path | None = None) -> dict[str, Any]:
    """The marrow parameter file (RMBLR options with sources, conventions)."""
    return _load(str(path or MARROW_PARAMETERS_PATH))


def _positive(name: str, value: float | None) -> float:
    if value is None:
        raise InvalidInputError(f"{name} is missing")
    v = float(value)
    if not (math.isfinite(v) and v > 0):
        raise InvalidInputError(f"{name} must be a positive number, got {value!r}")
    return v


def _non_negative(name: str, value: float) -> float:
    v = float(value)
    if not (math.isfinite(v) and v >= 0):
        raise InvalidInputError(f"{name} must be >= 0, got {value!r}")
    return v


def rmblr_value(
    rmblr: str | float, hematocrit: float | None = None, *, path: str | Path | None = None
) -> tuple[float, str]:
    """RMBLR and its source: an option name of the parameter file or a number.

    ``"sgouros"``: ``RMECFF / (1 - HCT)`` with the patient's hematocrit (a
    fraction, 0 < HCT < 1); ``"one"``: 1.  A number is used as given (source
    ``"user"``).

    Raises
    ------
    InvalidInputError
        Unknown option, missing or impossible hematocrit, RMBLR <= 0.
    """
    if not isinstance(rmblr, str):
        return _positive("RMBLR", rmblr), "user-supplied value"
    options = marrow_parameters(path)["rmblr"]
    key = rmblr.strip().lower()
    if key not in options:
        raise InvalidInputError(f"unknown RMBLR option {rmblr!r} (choose {', '.join(options)})")
    opt = options[key]
    if opt.get("needs_hematocrit"):
        if hematocrit is None:
            raise InvalidInputError(f"RMBLR option {key!r} needs the patient's hematocrit")
        hct = float(hematocrit)
        if not (math.isfinite(hct) and 0.0 < hct < 1.0):
            raise InvalidInputError(
                f"hematocrit {hematocrit!r} must be a fraction between 0 and 1 (e.g. 0.42)"
            )
        return float(opt["rmecff"]) / (1.0 - hct), str(opt["source"])
    return float(opt["value"]), str(opt["source"])


def reference_masses_g(sex: str) -> tuple[float, float]:
    """ICRP 89 reference (red-marrow, whole-body) masses in g for ``sex`` "M"/"F"."""
    from dosimetry_core.segmentation.organs import match_organ

    rm, body = match_organ("RedMarrow"), match_organ("Body")
    if rm is None or body is None:
        raise InvalidInputError("standard organ list lacks RedMarrow or Body reference masses")
    m_rm, m_body = rm.reference_mass_g(sex), body.reference_mass_g(sex)
    if m_rm is None or m_body is None:
        raise InvalidInputError(f"no ICRP 89 reference mass for sex {sex!r}")
    return float(m_rm), float(m_body)


@dataclass(frozen=True)
class MarrowDose:
    """Blood-based red-marrow dose with its parts and the parameters used."""

    nuclide: str
    dose_gy: float
    self_gy: float
    self_photon_gy: float
    cross_gy: float
    marrow_tia_mbq_h: float
    blood_tia_mbq_h_per_ml: float
    remainder_tia_mbq_h: float
    rmblr: float
    rmblr_source: str
    hematocrit: float | None
    red_marrow_mass_g: float
    red_marrow_mass_source: str
    patient_mass_kg: float
    body_photon_absorbed_fraction: float
    method: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def marrow_dose_blood_based(
    blood_tia_mbq_h_per_ml: float,
    rmblr: str | float,
    patient_mass_kg: float,
    remainder_tia_mbq_h: float,
    nuclide: str,
    hematocrit: float | None = None,
    red_marrow_mass_g: float | None = None,
    sex: str = "M",
    *,
    body_photon_absorbed_fraction: float | None = None,
    absorbed_fractions: SphereAbsorbedFractions | None = None,
    parameters_path: str | Path | None = None,
) -> MarrowDose:
    """Red-marrow absorbed dose (Gy) by the blood-based method (module docstring).

    Parameters
    ----------
    blood_tia_mbq_h_per_ml
        Time-integrated blood activity concentration, MBq h / mL (integral of
        the fitted blood curve, e.g. from well-counter samples).
    rmblr
        ``"sgouros"``, ``"one"`` or a number (red-marrow-to-blood concentration ratio).
    patient_mass_kg
        Patient mass, kg.
    remainder_tia_mbq_h
        TIA of the remainder of the body (whole body minus red marrow), MBq h
        (:func:`dosimetry_core.dose.organ_level.remainder_tia`).
    nuclide
        ICRP-107 nuclide.
    hematocrit
        Patient hematocrit (fraction), needed by ``"sgouros"``.
    red_marrow_mass_g
        Patient red-marrow mass, g; default: ICRP 89 reference mass of ``sex``
        scaled by ``patient_mass_kg / reference body mass``.
    sex
        ``"M"`` or ``"F"`` for the reference masses.
    body_photon_absorbed_fraction
        Whole-body photon absorbed fraction to use; default the unit-density
        sphere of the patient's mass.
    absorbed_fractions
        Sphere table for the default above (tests pass a small one).
    """
    nuc = normalize_nuclide(nuclide)
    c_tia = _non_negative("blood TIA concentration (MBq h/mL)", blood_tia_mbq_h_per_ml)
    m_kg = _positive("patient mass (kg)", patient_mass_kg)
    rb_tia = _non_negative("remainder-of-body TIA (MBq h)", remainder_tia_mbq_h)
    ratio, ratio_source = rmblr_value(rmblr, hematocrit, path=parameters_path)
    params = marrow_parameters(parameters_path)
    if red_marrow_mass_g is not None:
        m_rm = _positive("red-marrow mass (g)", red_marrow_mass_g)
        m_source = "user-supplied"
    else:
        m_rm_ref, m_body_ref = reference_masses_g(sex)
        m_rm = m_rm_ref * m_kg * G_PER_KG / m_body_ref
        m_source = (
            f"ICRP 89 reference {m_rm_ref:g} g ({sex}) x {m_kg:g} kg / {m_body_ref / G_PER_KG:g} kg"
        )
    m_body_g = m_kg * G_PER_KG
    if m_rm >= m_body_g:
        raise InvalidInputError(
            f"red-marrow mass {m_rm:g} g is not less than the patient mass {m_body_g:g} g"
        )
    conv = float(params["marrow_mass_per_blood_volume_g_per_ml"]["value"])
    rm_tia = c_tia * ratio * m_rm / conv
    e = energy_per_decay(nuc)
    if body_photon_absorbed_fraction is None:
        phi = whole_body_photon_absorbed_fraction(m_kg, nuc, absorbed_fractions=absorbed_fractions)
    else:
        phi = float(body_photon_absorbed_fraction)
        if not (math.isfinite(phi) and 0.0 <= phi <= 1.0):
            raise InvalidInputError(
                f"body photon absorbed fraction must lie in [0, 1], got {phi!r}"
            )
    self_gy = rm_tia * BQ_S_PER_MBQ_H * e.non_penetrating_mev * J_PER_MEV / (m_rm * KG_PER_G)
    photons = EnergyPerDecay(0.0, e.photon_mev, 0.0, 0.0)

    def photon_dose(tia: float) -> float:
        return total_body_dose_gy(
            tia,
            m_body_g,
            photons,
            photon_absorbed_fraction=phi,
            electron_absorbed_fraction=0.0,
        )

    self_ph = photon_dose(rm_tia)
    cross = photon_dose(rb_tia)
    return MarrowDose(
        nuclide=nuc,
        dose_gy=self_gy + self_ph + cross,
        self_gy=self_gy,
        self_photon_gy=self_ph,
        cross_gy=cross,
        marrow_tia_mbq_h=rm_tia,
        blood_tia_mbq_h_per_ml=c_tia,
        remainder_tia_mbq_h=rb_tia,
        rmblr=ratio,
        rmblr_source=ratio_source,
        hematocrit=None if hematocrit is None else float(hematocrit),
        red_marrow_mass_g=m_rm,
        red_marrow_mass_source=m_source,
        patient_mass_kg=m_kg,
        body_photon_absorbed_fraction=phi,
        method=(
            "A~_RM = A~_blood/mL x RMBLR x m_RM; D_self = A~_RM E_np / m_RM; photons: mean "
            "body photon dose (unit-density sphere of the patient mass) from marrow and "
            "remainder (Hindorf et al. 2010; Sgouros 1993)"
        ),
    )
