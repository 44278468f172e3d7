"""Y-90 microsphere radioembolisation (SIRT): planning and verification dosimetry.

Sources
-------
* Chiesa C, Sjögreen-Gleisner K, Walrand S, et al. EANM dosimetry committee
  series on standard operational procedures: a unified methodology for
  99mTc-MAA pre- and 90Y peri-therapy dosimetry in liver radioembolization with
  90Y microspheres. EJNMMI Physics 2021;8:77 (the "EANM SOP"): permanent
  trapping of the microspheres, local energy deposition, patient-relative
  calibration, planning on the mean dose to the non-tumoural liver.
* Ho S, Lau WY, Leung TWT, et al. Partition model for estimating radiation
  doses from yttrium-90 microspheres in treating hepatic tumours. Eur J Nucl
  Med 1996;23:947-952 (partition model); Ho S, et al. Eur J Nucl Med
  1997;24:293-298 (lung limits 30 Gy per treatment, 50 Gy cumulative).
* Gulec SA, Mesoloras G, Stabin M. Dosimetric techniques in 90Y-microsphere
  therapy of liver cancer: the MIRD equations for dose calculations. J Nucl
  Med 2006;47:1209-1211 (MIRD compartmental form, ``D = K A / m``).
* Device instructions for use: TheraSphere (glass, single compartment,
  ``A = D m / 50``) and SIR-Spheres (resin, body-surface-area method), with
  Mosteller RD, N Engl J Med 1987;317:1098 and Du Bois D, Du Bois EF, Arch
  Intern Med 1916;17:863-871 for the body surface area.

Limits, default lung mass and device constants are read from
``resources/protocols/sirt_parameters.json`` (each value with its source and
how it was verified).  The dose constant ``K`` (Gy kg / GBq) is derived here
from ICRP-107 (:func:`y90_dose_constant_gy_kg_per_gbq`), not typed in.

Masses
------
``liver_mass_kg`` of the partition model is the **non-tumoural (normal) perfused
liver mass** ``m_N`` of the EANM SOP, *excluding* the tumour.  If you have the
whole perfused liver mass (tumour included), pass
``liver_mass_includes_tumour=True`` (CLI: ``--whole-liver-mass``) and ``m_N =
m_liver - m_T`` is used.

All activities are the activity implanted in the patient at the administration
time, in GBq, before the lung shunt; ``residual_fraction`` (measured in the vial,
tubing and catheter) is subtracted from it.  The microspheres are permanent
implants: the time-integrated activity is ``A / lambda`` (physical decay only).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dosimetry_core.dose.convolution import _as_spacing
from dosimetry_core.dose.led import local_deposition_dose
from dosimetry_core.dose.units import CM3_PER_MM3, J_PER_MEV
from dosimetry_core.errors import InvalidInputError
from dosimetry_core.physics.nuclides import energy_per_decay, half_life_h
from dosimetry_core.resources import resource_path

SIRT_PARAMETERS_PATH = resource_path("protocols", "sirt_parameters.json")

NUCLIDE = "Y-90"
BQ_PER_GBQ = 1e9
S_PER_H = 3600.0
ML_PER_CM3 = 1.0
TARGETS = ("tumour", "normal-liver")
_LIMIT_RTOL = 1e-9
"""Relative round-off allowed before a dose counts as over a limit (planned to the limit)."""


# ------------------------------------------------------------------ parameters
@lru_cache(maxsize=4)
def _load(path: str) -> dict[str, Any]:
    from dosimetry_core.protocols.registry import read_json_table

    return read_json_table(path, "SIRT parameters")


def sirt_parameters(path: str | Path | None = None) -> dict[str, Any]:
    """The SIRT parameter file (limits, default lung mass, device constants, with sources)."""
    return _load(str(path or SIRT_PARAMETERS_PATH))


def lung_limit_per_treatment_gy() -> float:
    """Mean lung dose limit per treatment, Gy (Ho et al. 1997; EANM SOP 2021)."""
    return float(sirt_parameters()["limits"]["lung_per_treatment_gy"]["value"])


def lung_limit_cumulative_gy() -> float:
    """Cumulative mean lung dose limit over all treatments, Gy (Ho et al. 1997; EANM SOP 2021)."""
    return float(sirt_parameters()["limits"]["lung_cumulative_gy"]["value"])


def default_lung_mass_kg() -> float:
    """Lung mass assumed when no CT-based value is given, kg (Ho et al. 1996)."""
    return float(sirt_parameters()["default_lung_mass_kg"]["value"])


def device_parameters(device: str) -> dict[str, Any]:
    """Constants of a microsphere device: ``"glass"`` or ``"resin"`` (with sources)."""
    devices: dict[str, Any] = sirt_parameters()["devices"]
    key = device.strip().lower()
    if key not in devices:
        raise InvalidInputError(f"unknown microsphere device {device!r} (choose glass or resin)")
    out: dict[str, Any] = devices[key]
    return out


# ------------------------------------------------------------------ validation
def _finite(name: str, value: float) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{name} must be a number, got {value!r}") from exc
    if not math.isfinite(v):
        raise InvalidInputError(f"{name} must be finite, got {value!r}")
    return v


def _positive(name: str, value: float) -> float:
    v = _finite(name, value)
    if v <= 0:
        raise InvalidInputError(f"{name} must be > 0, got {value!r}")
    return v


def _non_negative(name: str, value: float) -> float:
    v = _finite(name, value)
    if v < 0:
        raise InvalidInputError(f"{name} must be >= 0, got {value!r}")
    return v


def _fraction_below_one(name: str, value: float) -> float:
    v = _finite(name, value)
    if not 0.0 <= v < 1.0:
        raise InvalidInputError(f"{name} must be >= 0 and < 1 (a fraction, not %), got {value!r}")
    return v


LIVER_MASS_RANGE_KG = (0.05, 5.0)
"""Perfused liver masses accepted by the partition model (kg).  A whole adult liver
is 1-2.5 kg and hepatomegaly rarely exceeds 5 kg; a segmental (radiation
segmentectomy) perfused territory can be well under 0.3 kg, hence 0.05 kg.  A value
outside is taken as a typing or unit error (g instead of kg)."""


def check_liver_mass_kg(value: float) -> float:
    """``value`` if a plausible patient's perfused liver mass (kg), else refused.

    For the forms and the CLI (``--liver-mass-kg``): :func:`partition_model`
    itself accepts any positive mass so that small phantoms can be computed.
    """
    lo, hi = LIVER_MASS_RANGE_KG
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if not (math.isfinite(v) and lo <= v <= hi):
        raise InvalidInputError(
            f"liver mass (liver_mass_kg) {value!r} kg is outside the plausible "
            f"{lo:g}-{hi:g} kg (check the unit: kilograms)",
            field="liver_mass_kg",
        )
    return v


def _check_lsf(lsf: float) -> float:
    return _fraction_below_one("lung shunt fraction", lsf)


# ------------------------------------------------------------------ dose constant
def y90_dose_constant_gy_kg_per_gbq() -> float:
    """Mean absorbed dose (Gy) of 1 GBq of Y-90 decaying completely in 1 kg, Gy kg / GBq.

    Derived from ICRP Publication 107 (Eckerman & Endo, Ann ICRP 2008;38(3)):
    mean electron energy per decay ``E = 0.9331 MeV`` (beta and Auger/IC
    electrons; the photon part, 1.2e-6 MeV, is not absorbed locally) and
    ``T_1/2 = 64.1 h``, with all energy absorbed (MIRD schema, Gulec et al.
    2006; EANM SOP, Chiesa et al. 2021)::

        N   = A / lambda = 1e9 Bq * 64.1 h * 3600 s/h / ln 2 = 3.3292e14 decays
        E_J = 0.93311 MeV * 1.602176634e-13 J/MeV           = 1.4950e-13 J
        K   = N * E_J / 1 kg                                 = 49.77 Gy kg/GBq

    The EANM SOP quotes 49.67 Gy kg/GBq and the device IFUs round to 50; the
    spread reflects older nuclear data, not a different model.
    """
    e_mev = energy_per_decay(NUCLIDE).non_penetrating_mev
    decays_per_gbq = BQ_PER_GBQ * half_life_h(NUCLIDE) * S_PER_H / math.log(2.0)
    return decays_per_gbq * e_mev * J_PER_MEV


def _y90_decay_constant_per_s() -> float:
    return math.log(2.0) / (half_life_h(NUCLIDE) * S_PER_H)


# ------------------------------------------------------------------ lung shunt
def lung_shunt_fraction_planar(
    lung_ant: float, lung_post: float, liver_ant: float, liver_post: float
) -> float:
    """Lung shunt fraction from anterior/posterior planar Tc-99m MAA counts.

    ``LSF = GM_lung / (GM_lung + GM_liver)``, ``GM = sqrt(ant * post)`` (geometric
    mean of conjugate views; EANM SOP, Chiesa et al. 2021; device IFUs).  Counts
    are background-corrected ROI counts (the caller subtracts background).

    Raises
    ------
    InvalidInputError
        Negative counts, or no liver counts (LSF would be 1).
    """
    la = _non_negative("lung anterior counts", lung_ant)
    lp = _non_negative("lung posterior counts", lung_post)
    ha = _non_negative("liver anterior counts", liver_ant)
    hp = _non_negative("liver posterior counts", liver_post)
    return _lsf(math.sqrt(la * lp), math.sqrt(ha * hp))


def lung_shunt_fraction_spect(lung_counts: float, liver_counts: float) -> float:
    """Lung shunt fraction from Tc-99m MAA SPECT/CT VOI counts: ``C_lung / (C_lung + C_liver)``.

    EANM SOP (Chiesa et al. 2021): counts (or activities) summed in the lung and
    the liver VOIs of an attenuation- and scatter-corrected SPECT/CT.

    Raises
    ------
    InvalidInputError
        Negative counts, or no liver counts (LSF would be 1).
    """
    return _lsf(
        _non_negative("lung counts", lung_counts), _non_negative("liver counts", liver_counts)
    )


def _lsf(lung: float, liver: float) -> float:
    if liver <= 0:
        raise InvalidInputError(
            f"liver counts are {liver:g}: the lung shunt fraction would be 1 (or undefined)"
        )
    return lung / (lung + liver)


# ------------------------------------------------------------------ partition model
@dataclass(frozen=True)
class PartitionResult:
    """Mean absorbed doses of the partition model (Ho et al. 1996), Gy, and their inputs."""

    tumour_dose_gy: float
    normal_liver_dose_gy: float
    lung_dose_gy: float
    cumulative_lung_dose_gy: float
    activity_gbq: float
    lsf: float
    tnr: float
    normal_liver_mass_kg: float
    tumour_mass_kg: float
    lung_mass_kg: float
    residual_fraction: float
    previous_lung_dose_gy: float
    dose_constant_gy_kg_per_gbq: float
    whole_liver_mass_kg: float | None = None
    warnings: list[str] = field(default_factory=list)

    def inputs(self) -> dict[str, Any]:
        d = asdict(self)
        for k in (
            "tumour_dose_gy",
            "normal_liver_dose_gy",
            "lung_dose_gy",
            "cumulative_lung_dose_gy",
            "warnings",
        ):
            d.pop(k)
        return d

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "partition",
            "tumour_dose_gy": self.tumour_dose_gy,
            "normal_liver_dose_gy": self.normal_liver_dose_gy,
            "lung_dose_gy": self.lung_dose_gy,
            "cumulative_lung_dose_gy": self.cumulative_lung_dose_gy,
            "inputs": self.inputs(),
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class _Compartments:
    lsf: float
    tnr: float
    m_n: float
    m_t: float
    m_lung: float
    residual: float
    previous_lung_gy: float
    whole_liver_kg: float | None
    k: float

    @property
    def m_eff(self) -> float:
        """``m_N + TNR m_T``: the liver mass 'seen' by the non-tumoural concentration, kg."""
        return self.m_n + self.tnr * self.m_t

    def normal_gy_per_gbq(self) -> float:
        return self.k * (1.0 - self.lsf) * (1.0 - self.residual) / self.m_eff

    def lung_gy_per_gbq(self) -> float:
        return self.k * self.lsf * (1.0 - self.residual) / self.m_lung


def _compartments(
    lsf: float,
    tnr: float,
    liver_mass_kg: float,
    tumour_mass_kg: float,
    lung_mass_kg: float | None,
    residual_fraction: float,
    previous_lung_dose_gy: float,
    liver_mass_includes_tumour: bool,
) -> _Compartments:
    f = _check_lsf(lsf)
    r = _positive("tumour-to-normal-liver ratio (TNR)", tnr)
    m_liver = _positive("liver mass (kg)", liver_mass_kg)
    m_t = _non_negative("tumour mass (kg)", tumour_mass_kg)
    m_lung = _positive(
        "lung mass (kg)", default_lung_mass_kg() if lung_mass_kg is None else lung_mass_kg
    )
    res = _fraction_below_one("residual fraction", residual_fraction)
    prev = _non_negative("previous lung dose (Gy)", previous_lung_dose_gy)
    whole: float | None = None
    m_n = m_liver
    if liver_mass_includes_tumour:
        whole = m_liver
        m_n = m_liver - m_t
        if m_n <= 0:
            raise InvalidInputError(
                f"tumour mass {m_t:g} kg is not smaller than the whole liver mass {m_liver:g} kg"
            )
    return _Compartments(
        f, r, m_n, m_t, m_lung, res, prev, whole, y90_dose_constant_gy_kg_per_gbq()
    )


def _partition_from(c: _Compartments, activity_gbq: float) -> PartitionResult:
    a = _non_negative("activity (GBq)", activity_gbq)
    d_n = a * c.normal_gy_per_gbq()
    d_t = c.tnr * d_n
    d_l = a * c.lung_gy_per_gbq()
    cumulative = c.previous_lung_gy + d_l
    warnings: list[str] = []
    lim1, lim2 = lung_limit_per_treatment_gy(), lung_limit_cumulative_gy()
    if d_l > lim1 * (1.0 + _LIMIT_RTOL):
        warnings.append(f"lung dose {d_l:.1f} Gy exceeds the per-treatment limit of {lim1:g} Gy")
    if c.previous_lung_gy > 0 and cumulative > lim2 * (1.0 + _LIMIT_RTOL):
        warnings.append(
            f"cumulative lung dose {cumulative:.1f} Gy (previous {c.previous_lung_gy:g} Gy) "
            f"exceeds the cumulative limit of {lim2:g} Gy"
        )
    return PartitionResult(
        tumour_dose_gy=d_t,
        normal_liver_dose_gy=d_n,
        lung_dose_gy=d_l,
        cumulative_lung_dose_gy=cumulative,
        activity_gbq=a,
        lsf=c.lsf,
        tnr=c.tnr,
        normal_liver_mass_kg=c.m_n,
        tumour_mass_kg=c.m_t,
        lung_mass_kg=c.m_lung,
        residual_fraction=c.residual,
        previous_lung_dose_gy=c.previous_lung_gy,
        dose_constant_gy_kg_per_gbq=c.k,
        whole_liver_mass_kg=c.whole_liver_kg,
        warnings=warnings,
    )


def partition_model(
    activity_gbq: float,
    lsf: float,
    tnr: float,
    liver_mass_kg: float,
    tumour_mass_kg: float,
    lung_mass_kg: float | None = None,
    residual_fraction: float = 0.0,
    *,
    previous_lung_dose_gy: float = 0.0,
    liver_mass_includes_tumour: bool = False,
) -> PartitionResult:
    """Mean doses to tumour, non-tumoural liver and lungs (partition model, Ho et al. 1996).

    With ``A' = A (1 - residual)`` the implanted activity and ``K`` from
    :func:`y90_dose_constant_gy_kg_per_gbq` (EANM SOP, Chiesa et al. 2021)::

        D_N    = K A' (1 - LSF) / (m_N + TNR m_T)
        D_T    = TNR D_N
        D_lung = K A' LSF / m_lung

    TNR is the ratio of activity *concentrations* (per kg) tumour / normal liver
    on the Tc-99m MAA SPECT/CT.

    Parameters
    ----------
    activity_gbq
        Activity administered (GBq, at the administration time).
    lsf
        Lung shunt fraction (0 <= LSF < 1, a fraction, not %).
    tnr
        Tumour-to-normal-liver concentration ratio (> 0).
    liver_mass_kg
        Non-tumoural perfused liver mass ``m_N`` (kg); the whole perfused liver
        (tumour included) if ``liver_mass_includes_tumour``.
    tumour_mass_kg
        Perfused tumour mass ``m_T`` (kg, >= 0).
    lung_mass_kg
        Lung mass (kg); default from the parameter file (1 kg, Ho et al. 1996).
    residual_fraction
        Fraction of the activity left in the vial/tubing/catheter (0 <= r < 1).
    previous_lung_dose_gy
        Lung dose of earlier treatments (Gy) for the cumulative limit.

    Returns
    -------
    PartitionResult
        Doses in Gy, the inputs, and warnings when the lung dose exceeds
        30 Gy per treatment or, with a previous lung dose, 50 Gy cumulative.
    """
    c = _compartments(
        lsf,
        tnr,
        liver_mass_kg,
        tumour_mass_kg,
        lung_mass_kg,
        residual_fraction,
        previous_lung_dose_gy,
        liver_mass_includes_tumour,
    )
    return _partition_from(c, _positive("activity (GBq)", activity_gbq))


def partition_activity_for_target(
    target: str,
    dose_gy: float,
    lsf: float,
    tnr: float,
    liver_mass_kg: float,
    tumour_mass_kg: float,
    lung_mass_kg: float | None = None,
    residual_fraction: float = 0.0,
    *,
    liver_mass_includes_tumour: bool = False,
) -> float:
    """Activity (GBq) giving ``dose_gy`` to ``target`` (``"tumour"`` or ``"normal-liver"``).

    Inverse of :func:`partition_model` (Ho et al. 1996; EANM SOP 2021)::

        A = D_N (m_N + TNR m_T) / (K (1 - LSF) (1 - r))        target normal liver
        A = D_T (m_N + TNR m_T) / (TNR K (1 - LSF) (1 - r))    target tumour
    """
    key = str(target).strip().lower().replace("_", "-")
    if key not in TARGETS:
        raise InvalidInputError(f"unknown target {target!r} (choose tumour or normal-liver)")
    d = _positive(f"target {key} dose (Gy)", dose_gy)
    c = _compartments(
        lsf,
        tnr,
        liver_mass_kg,
        tumour_mass_kg,
        lung_mass_kg,
        residual_fraction,
        0.0,
        liver_mass_includes_tumour,
    )
    d_n = d / c.tnr if key == "tumour" else d
    return d_n / c.normal_gy_per_gbq()


def partition_activity_limits(
    lsf: float,
    tnr: float,
    liver_mass_kg: float,
    tumour_mass_kg: float,
    lung_mass_kg: float | None = None,
    residual_fraction: float = 0.0,
    *,
    previous_lung_dose_gy: float = 0.0,
    normal_liver_limit_gy: float | None = None,
    liver_mass_includes_tumour: bool = False,
) -> dict[str, float]:
    """Maximum activity (GBq) allowed by each dose limit, by constraint name.

    * ``"lung-per-treatment"``: ``A = D_lim m_lung / (K LSF (1 - r))`` with the
      30 Gy limit (infinite when LSF = 0);
    * ``"lung-cumulative"`` (only with a previous lung dose):
      ``(50 Gy - D_previous)`` in place of ``D_lim`` (0 when already reached);
    * ``"normal-liver"`` (only when ``normal_liver_limit_gy`` is given, set by
      the physician for the device and the liver function; EANM SOP 2021):
      ``A = D_lim (m_N + TNR m_T) / (K (1 - LSF) (1 - r))``.
    """
    c = _compartments(
        lsf,
        tnr,
        liver_mass_kg,
        tumour_mass_kg,
        lung_mass_kg,
        residual_fraction,
        previous_lung_dose_gy,
        liver_mass_includes_tumour,
    )
    return _limits(c, normal_liver_limit_gy)


def _limits(c: _Compartments, normal_liver_limit_gy: float | None) -> dict[str, float]:
    out: dict[str, float] = {}
    lung = c.lung_gy_per_gbq()
    out["lung-per-treatment"] = lung_limit_per_treatment_gy() / lung if lung > 0 else math.inf
    if c.previous_lung_gy > 0:
        remaining = max(lung_limit_cumulative_gy() - c.previous_lung_gy, 0.0)
        out["lung-cumulative"] = remaining / lung if lung > 0 else math.inf
    if normal_liver_limit_gy is not None:
        lim = _positive("normal-liver dose limit (Gy)", normal_liver_limit_gy)
        out["normal-liver"] = lim / c.normal_gy_per_gbq()
    return out


@dataclass(frozen=True)
class ActivityPlan:
    """Recommended activity: the smallest of the target activity and the limit activities."""

    activity_gbq: float
    binding_constraint: str
    target: str
    target_dose_gy: float
    constraints_gbq: dict[str, float]
    doses: PartitionResult
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = self.doses.to_dict()
        return {
            "method": "partition",
            "activity_gbq": self.activity_gbq,
            "binding_constraint": self.binding_constraint,
            "target": self.target,
            "target_dose_gy": self.target_dose_gy,
            "constraints_gbq": {
                k: (None if math.isinf(v) else v) for k, v in self.constraints_gbq.items()
            },
            "tumour_dose_gy": d["tumour_dose_gy"],
            "normal_liver_dose_gy": d["normal_liver_dose_gy"],
            "lung_dose_gy": d["lung_dose_gy"],
            "cumulative_lung_dose_gy": d["cumulative_lung_dose_gy"],
            "inputs": d["inputs"],
            "warnings": list(self.warnings),
        }


def plan_partition_activity(
    target: str,
    dose_gy: float,
    lsf: float,
    tnr: float,
    liver_mass_kg: float,
    tumour_mass_kg: float,
    lung_mass_kg: float | None = None,
    residual_fraction: float = 0.0,
    *,
    previous_lung_dose_gy: float = 0.0,
    normal_liver_limit_gy: float | None = None,
    liver_mass_includes_tumour: bool = False,
) -> ActivityPlan:
    """Activity for a target dose, reduced to respect the lung (and normal-liver) limits.

    ``A = min(A_target, A_lung, A_lung_cumulative, A_normal_liver)``; the name of
    the smallest is the binding constraint (``"target-tumour"``,
    ``"target-normal-liver"``, ``"lung-per-treatment"``, ``"lung-cumulative"``,
    ``"normal-liver"``).  Doses at that activity by :func:`partition_model`.
    """
    key = str(target).strip().lower().replace("_", "-")
    a_target = partition_activity_for_target(
        key,
        dose_gy,
        lsf,
        tnr,
        liver_mass_kg,
        tumour_mass_kg,
        lung_mass_kg,
        residual_fraction,
        liver_mass_includes_tumour=liver_mass_includes_tumour,
    )
    c = _compartments(
        lsf,
        tnr,
        liver_mass_kg,
        tumour_mass_kg,
        lung_mass_kg,
        residual_fraction,
        previous_lung_dose_gy,
        liver_mass_includes_tumour,
    )
    constraints = {f"target-{key}": a_target, **_limits(c, normal_liver_limit_gy)}
    binding = min(constraints, key=lambda k: constraints[k])
    activity = constraints[binding]
    doses = _partition_from(c, activity)
    warnings = list(doses.warnings)
    if binding != f"target-{key}":
        reached = doses.tumour_dose_gy if key == "tumour" else doses.normal_liver_dose_gy
        warnings.append(
            f"the {key} target of {float(dose_gy):g} Gy needs {a_target:.3g} GBq; limited by "
            f"{binding} to {activity:.3g} GBq ({key} dose {reached:.1f} Gy)"
        )
    if activity <= 0:
        warnings.append("no activity can be given: the cumulative lung limit is already reached")
    return ActivityPlan(
        activity_gbq=activity,
        binding_constraint=binding,
        target=key,
        target_dose_gy=float(dose_gy),
        constraints_gbq=constraints,
        doses=doses,
        warnings=warnings,
    )


# ------------------------------------------------------------------ device methods
def single_compartment_dose_gy(
    activity_gbq: float,
    perfused_mass_kg: float,
    lsf: float,
    residual_fraction: float = 0.0,
    *,
    dose_constant_gy_kg_per_gbq: float | None = None,
) -> float:
    """Mean dose (Gy) to the whole perfused volume (single compartment, MIRD).

    ``D = K A (1 - LSF) (1 - r) / m`` (TheraSphere IFU with ``K = 50``; Gulec et
    al. 2006; EANM SOP 2021).  ``K`` defaults to the ICRP-107 value
    (:func:`y90_dose_constant_gy_kg_per_gbq`); pass
    :func:`therasphere_dose_constant_gy_kg_per_gbq` to reproduce the IFU.
    """
    a = _positive("activity (GBq)", activity_gbq)
    m = _positive("perfused mass (kg)", perfused_mass_kg)
    f = _check_lsf(lsf)
    r = _fraction_below_one("residual fraction", residual_fraction)
    k = _k(dose_constant_gy_kg_per_gbq)
    return k * a * (1.0 - f) * (1.0 - r) / m


def single_compartment_activity_gbq(
    dose_gy: float,
    perfused_mass_kg: float,
    lsf: float,
    residual_fraction: float = 0.0,
    *,
    dose_constant_gy_kg_per_gbq: float | None = None,
) -> float:
    """Activity (GBq) giving ``dose_gy`` to the whole perfused volume (single compartment).

    ``A = D m / (K (1 - LSF) (1 - r))``: the TheraSphere IFU formula
    ``A = D m / 50`` corrected for the activity shunted to the lungs (the IFU's
    delivered dose is ``50 A (1 - F) / m``) and for the residual.
    """
    d = _positive("dose (Gy)", dose_gy)
    m = _positive("perfused mass (kg)", perfused_mass_kg)
    f = _check_lsf(lsf)
    r = _fraction_below_one("residual fraction", residual_fraction)
    k = _k(dose_constant_gy_kg_per_gbq)
    return d * m / (k * (1.0 - f) * (1.0 - r))


def therasphere_dose_constant_gy_kg_per_gbq() -> float:
    """The rounded constant 50 Gy kg/GBq of the TheraSphere instructions for use."""
    return float(sirt_parameters()["therasphere_ifu"]["dose_constant_gy_kg_per_gbq"]["value"])


def _k(value: float | None) -> float:
    if value is None:
        return y90_dose_constant_gy_kg_per_gbq()
    return _positive("dose constant (Gy kg/GBq)", value)


def body_surface_area_m2(height_cm: float, weight_kg: float, formula: str = "mosteller") -> float:
    """Body surface area (m^2) from height (cm) and weight (kg).

    * ``"mosteller"``: ``sqrt(H W / 3600)`` (Mosteller, N Engl J Med 1987;317:1098);
    * ``"dubois"``: ``0.007184 H^0.725 W^0.425`` (Du Bois & Du Bois, Arch Intern
      Med 1916;17:863-871).
    """
    h = _positive("height (cm)", height_cm)
    w = _positive("weight (kg)", weight_kg)
    formulas = sirt_parameters()["sir_spheres_bsa"]["bsa_formulas"]
    key = formula.strip().lower().replace(" ", "").replace("-", "")
    if key == "mosteller":
        p = formulas["mosteller"]
        return math.sqrt(h * w / float(p["divisor_cm_kg_per_m4"]))
    if key == "dubois":
        p = formulas["dubois"]
        return (
            float(p["coefficient"])
            * h ** float(p["height_exponent"])
            * w ** float(p["weight_exponent"])
        )
    raise InvalidInputError(f"unknown BSA formula {formula!r} (choose mosteller or dubois)")


@dataclass(frozen=True)
class BsaActivity:
    """Resin-microsphere activity by the BSA method of the SIR-Spheres IFU."""

    activity_gbq: float
    whole_liver_activity_gbq: float
    bsa_m2: float
    tumour_fraction: float
    lsf: float | None
    lung_shunt_factor: float
    perfused_fraction: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def bsa_activity_gbq(
    bsa_m2: float,
    tumour_fraction: float,
    lsf: float | None = None,
    *,
    perfused_fraction: float = 1.0,
) -> BsaActivity:
    """Resin (SIR-Spheres) activity by the body-surface-area method.

    ``A = [(BSA - 0.2) + V_T / (V_T + V_N)] * f_LSF * f_perfused`` (SIR-Spheres
    IFU; Kennedy et al., Int J Radiat Oncol Biol Phys 2007;68:13-23), with
    ``f_LSF`` from the IFU lung-shunt table in the parameter file (LSF < 10 %:
    1; < 15 %: 0.8; < 20 %: 0.6; marked there as typed from memory) and
    ``f_perfused`` the perfused fraction of the liver volume for a lobar
    treatment (1 for whole liver).

    Raises
    ------
    InvalidInputError
        Impossible fractions, or LSF at or above the contraindication threshold (20 %).
    """
    bsa = _positive("body surface area (m^2)", bsa_m2)
    tf = _finite("tumour fraction", tumour_fraction)
    if not 0.0 <= tf <= 1.0:
        raise InvalidInputError(
            "tumour fraction (tumour / whole liver volume) must be in [0, 1], "
            f"got {tumour_fraction!r}"
        )
    pf = _finite("perfused fraction", perfused_fraction)
    if not 0.0 < pf <= 1.0:
        raise InvalidInputError(f"perfused fraction must be in (0, 1], got {perfused_fraction!r}")
    p = sirt_parameters()["sir_spheres_bsa"]
    base = bsa - float(p["offset_gbq"]["value"]) + tf
    if base <= 0:
        raise InvalidInputError(f"BSA {bsa:g} m^2 gives no positive activity by the BSA method")
    factor = 1.0
    f: float | None = None
    if lsf is not None:
        f = _check_lsf(lsf)
        table = p["lung_shunt_reduction"]
        stop = float(table["contraindicated_from_lsf"])
        if f >= stop:
            raise InvalidInputError(
                f"lung shunt fraction {f:.3f} is at or above {stop:g}: the BSA method "
                "(SIR-Spheres IFU) contraindicates treatment"
            )
        for row in table["table"]:
            if f < float(row["lsf_below"]):
                factor = float(row["activity_factor"])
                break
    return BsaActivity(
        activity_gbq=base * factor * pf,
        whole_liver_activity_gbq=base,
        bsa_m2=bsa,
        tumour_fraction=tf,
        lsf=f,
        lung_shunt_factor=factor,
        perfused_fraction=pf,
    )


# ------------------------------------------------------------------ voxel dosimetry
def _mask(mask: ArrayLike, shape: tuple[int, ...], name: str) -> NDArray[np.bool_]:
    m = np.asarray(mask)
    if m.shape != shape:
        raise InvalidInputError(f"{name} shape {m.shape} differs from the image {shape}")
    if m.dtype != np.bool_:
        if not np.all(np.isin(m, (0, 1))):
            raise InvalidInputError(f"{name} must be a boolean (0/1) mask")
        m = m.astype(bool)
    if not m.any():
        raise InvalidInputError(f"{name} is empty")
    return m


def _image(values: ArrayLike, name: str) -> NDArray[np.float64]:
    a = np.asarray(values)
    if a.ndim != 3:
        raise InvalidInputError(f"the {name} must be a 3-D array [z, y, x], got {a.ndim}-D")
    if not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
        raise InvalidInputError(f"the {name} must hold real numbers")
    a64 = np.asarray(a, dtype=np.float64)
    if not np.all(np.isfinite(a64)):
        raise InvalidInputError(f"the {name} contains NaN or infinite values")
    return a64


def sirt_voxel_dose(
    counts_or_activity: ArrayLike,
    spacing_mm: ArrayLike,
    liver_mask: ArrayLike,
    lung_shunt_fraction: float,
    administered_gbq: float,
    density_g_cm3: ArrayLike | None = None,
    residual_fraction: float = 0.0,
) -> NDArray[np.float32]:
    """Planning (or relative-calibration) voxel dose map, Gy, by local energy deposition.

    The image (Tc-99m MAA SPECT counts, or any map proportional to the
    microsphere density) is used as a *distribution* only: the values inside
    ``liver_mask`` (the perfused liver, tumour included) are scaled so that they
    sum to the implanted liver activity ``A (1 - r) (1 - LSF)`` (the EANM SOP's
    patient-relative calibration, Chiesa et al. 2021).  Each voxel then holds
    ``A_v / lambda`` decays (permanent implant, physical decay only) whose Y-90
    electron energy (ICRP-107) is absorbed locally
    (:func:`~dosimetry_core.dose.led.local_deposition_dose`).  Voxels outside the
    mask get 0 Gy: the lung dose comes from the partition model, because MAA
    SPECT of the lungs is not reliable for voxel dosimetry.

    The mean of the map over the mask is ``K A (1 - r) (1 - LSF) / m_mask`` with
    ``m_mask = rho V_mask``, i.e. the single-compartment dose.

    Parameters
    ----------
    counts_or_activity
        Non-negative counts or activity per voxel ``[z, y, x]`` (any unit).
    spacing_mm
        Voxel spacing (x, y, z), mm.
    liver_mask
        Perfused liver (tumour included), boolean, same shape.
    lung_shunt_fraction
        0 <= LSF < 1.
    administered_gbq
        Administered activity, GBq.
    density_g_cm3
        Mass density per voxel (same shape) or one number, g/cm^3; ``None``: 1 g/cm^3.
    residual_fraction
        Fraction left in vial, tubing and catheter (0 <= r < 1).
    """
    img = _image(counts_or_activity, "count map")
    m = _mask(liver_mask, img.shape, "liver mask")
    f = _check_lsf(lung_shunt_fraction)
    a_gbq = _positive("administered activity (GBq)", administered_gbq)
    r = _fraction_below_one("residual fraction", residual_fraction)
    inside = img[m]
    if np.any(inside < 0):
        raise InvalidInputError(
            f"the count map has negative values inside the liver mask (min {inside.min():g})"
        )
    total = float(inside.sum())
    if total <= 0:
        raise InvalidInputError("the count map has no counts inside the liver mask")
    liver_bq = a_gbq * BQ_PER_GBQ * (1.0 - r) * (1.0 - f)
    activity_bq = np.where(m, img * (liver_bq / total), 0.0)
    decays = activity_bq / _y90_decay_constant_per_s()
    rho: ArrayLike = 1.0 if density_g_cm3 is None else density_g_cm3
    return local_deposition_dose(
        decays, spacing_mm, energy_per_decay(NUCLIDE).non_penetrating_mev, rho
    )


def y90_pet_dose(
    activity_bq_per_ml: ArrayLike,
    spacing_mm: ArrayLike,
    density_g_cm3: ArrayLike | None = None,
    *,
    hours_after_administration: float = 0.0,
) -> NDArray[np.float32]:
    """Post-treatment dose map, Gy, from a quantitative Y-90 PET (or bremsstrahlung SPECT).

    Local energy deposition of the Y-90 electron energy (ICRP-107) with the
    microspheres as permanent implants (EANM SOP, Chiesa et al. 2021): the
    activity at the administration time is ``A0 = A(t) exp(lambda t)`` and the
    time-integrated activity ``A0 / lambda`` (physical decay only).

    Parameters
    ----------
    activity_bq_per_ml
        Activity concentration ``[z, y, x]``, Bq/mL (non-negative).
    spacing_mm
        Voxel spacing (x, y, z), mm.
    density_g_cm3
        Mass density per voxel or one number, g/cm^3; ``None``: 1 g/cm^3.
    hours_after_administration
        Time (h) from the administration to the reference time of the image
        values; 0 when the reconstruction decay-corrects to the administration.
    """
    c = _image(activity_bq_per_ml, "activity-concentration map")
    if np.any(c < 0):
        raise InvalidInputError(
            f"the activity-concentration map has negative values (min {c.min():g} Bq/mL)"
        )
    t_h = _non_negative("hours after administration", hours_after_administration)
    sx, sy, sz = _as_spacing(spacing_mm)
    voxel_ml = sx * sy * sz * CM3_PER_MM3 * ML_PER_CM3
    lam = _y90_decay_constant_per_s()
    a0_bq = c * voxel_ml * math.exp(lam * t_h * S_PER_H)
    rho: ArrayLike = 1.0 if density_g_cm3 is None else density_g_cm3
    return local_deposition_dose(
        a0_bq / lam, spacing_mm, energy_per_decay(NUCLIDE).non_penetrating_mev, rho
    )
