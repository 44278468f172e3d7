"""Typed results of the pipeline, kept with the case: kinetics, dose summaries, protocol runs.

Every result is a frozen dataclass with units in its field names and an explicit
``to_dict``/``from_dict`` (JSON-safe: non-finite numbers become ``null``).  A
result *record* (:class:`KineticsRecord`, :class:`DoseSummary`,
:class:`ProtocolRun`) carries an id, when and by whom it was made, the ids of the
inputs it used and a ``superseded`` flag.  Records are versioned like
:class:`~dosimetry_core.model.case.DerivedMap`: recomputing appends a new record to
``Case.results`` and marks the older current one of the same kind superseded
(:meth:`Case.add_result <dosimetry_core.model.case.Case.add_result>`); nothing is
edited in place.

Administered activity
---------------------
Every figure "per administered activity" (TIAC, Gy/GBq, next-cycle activity)
divides by the **net** administered activity: the syringe activity minus the
residual, the residual decay-corrected to the administration time
(:func:`dosimetry_core.physics.decay.net_administered_activity_mbq`).  Records
say so in ``administered_activity_definition`` (:data:`NET_ACTIVITY_DEFINITION`).

This module imports nothing of the project outside :mod:`dosimetry_core.model`.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

KINETICS_FORMAT = "mrt-kinetics/1"
DOSE_FORMAT = "mrt-dose/1"
RUN_FORMAT = "mrt-protocol-run/1"

NET_ACTIVITY_DEFINITION = (
    "net administered activity: syringe activity minus the residual decay-corrected "
    "to the administration time (physics.decay.net_administered_activity_mbq)"
)
"""The one definition of administered activity used by every 'per activity' figure."""


# ------------------------------------------------------------------ helpers
def new_id(prefix: str = "") -> str:
    """Short random identifier (12 hex digits), prefixed (as ``model.case.new_id``)."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def _now() -> datetime:
    return datetime.now().replace(microsecond=0)


def _num(x: Any) -> float | None:
    """Finite float or None (JSON has no NaN)."""
    if x is None:
        return None
    v = float(x)
    return v if math.isfinite(v) else None


def _nums(xs: Iterable[Any] | None) -> tuple[float, ...]:
    return tuple(float(x) for x in (xs or ()))


def json_clean(value: Any) -> Any:
    """JSON-safe copy: non-finite floats -> None, tuples -> lists, NumPy scalars -> Python."""
    if isinstance(value, Mapping):
        return {str(k): json_clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_clean(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "tolist"):
        return json_clean(value.tolist())
    return value


def _dt(value: datetime) -> str:
    return value.isoformat()


def _parse_dt(value: str | None) -> datetime:
    return datetime.fromisoformat(value) if value else _now()


# ----------------------------------------------------------------- kinetics
@dataclass(frozen=True)
class ParameterValue:
    """One fitted parameter of a TAC model: value, unit and 1-SD uncertainty."""

    name: str
    value: float | None
    unit: str
    sd: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"value": _num(self.value), "unit": self.unit, "sd": _num(self.sd)}


def parameters_from_dict(d: Mapping[str, Any] | None) -> tuple[ParameterValue, ...]:
    """``{"A0": {"value", "unit", "sd"}, ...}`` (the fit report's form) as typed parameters."""
    out = []
    for name, p in (d or {}).items():
        p = p if isinstance(p, Mapping) else {"value": p}
        value, sd = _num(p.get("value")), _num(p.get("sd"))
        out.append(ParameterValue(str(name), value, str(p.get("unit", "")), sd))
    return tuple(out)


@dataclass(frozen=True)
class CandidateModel:
    """A model tried on a TAC, with the corrected Akaike criterion that ranked it."""

    model: str
    aicc: float | None
    tia_mbq_h: float | None = None
    converged: bool = True
    well_conditioned: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "aicc": _num(self.aicc),
            "tia_mbq_h": _num(self.tia_mbq_h),
            "converged": self.converged,
            "well_conditioned": self.well_conditioned,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CandidateModel:
        return cls(
            model=str(d.get("model", "")),
            aicc=_num(d.get("aicc")),
            tia_mbq_h=_num(d.get("tia_mbq_h")),
            converged=bool(d.get("converged", True)),
            well_conditioned=bool(d.get("well_conditioned", True)),
        )


@dataclass(frozen=True)
class TacPoints:
    """A VOI's time-activity curve: activity (MBq) at each time point (h after administration).

    ``activity_mbq`` is after partial-volume correction when one was applied
    (``recovery_coefficient``); ``measured_activity_mbq`` before it.
    ``activity_sd_mbq`` is the 1-SD of each point when known (else None).
    """

    time_h: tuple[float, ...]
    activity_mbq: tuple[float, ...]
    activity_sd_mbq: tuple[float, ...] | None = None
    voi_id: str = ""
    voi_name: str = ""
    reference_time_point_id: str = ""
    time_point_ids: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    measured_activity_mbq: tuple[float, ...] = ()
    mean_bq_per_ml: tuple[float, ...] = ()
    volume_ml: float = 0.0
    recovery_coefficient: float | None = None
    registration_status: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "voi_id": self.voi_id,
            "voi_name": self.voi_name,
            "reference_time_point_id": self.reference_time_point_id,
            "time_point_ids": list(self.time_point_ids),
            "labels": list(self.labels),
            "time_h": list(self.time_h),
            "activity_mbq": list(self.activity_mbq),
            "measured_activity_mbq": list(self.measured_activity_mbq),
            "mean_bq_per_ml": list(self.mean_bq_per_ml),
            "volume_ml": self.volume_ml,
            "recovery_coefficient": self.recovery_coefficient,
            "registration_status": list(self.registration_status),
            "warnings": list(self.warnings),
        }
        if self.activity_sd_mbq is not None:
            d["activity_sd_mbq"] = list(self.activity_sd_mbq)
        return json_clean(d)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TacPoints:
        sd = d.get("activity_sd_mbq")
        rc = d.get("recovery_coefficient")
        return cls(
            time_h=_nums(d.get("time_h")),
            activity_mbq=_nums(d.get("activity_mbq")),
            activity_sd_mbq=None if sd is None else _nums(sd),
            voi_id=str(d.get("voi_id", "")),
            voi_name=str(d.get("voi_name", "")),
            reference_time_point_id=str(d.get("reference_time_point_id", "")),
            time_point_ids=tuple(str(x) for x in d.get("time_point_ids") or ()),
            labels=tuple(str(x) for x in d.get("labels") or ()),
            measured_activity_mbq=_nums(d.get("measured_activity_mbq")),
            mean_bq_per_ml=_nums(d.get("mean_bq_per_ml")),
            volume_ml=float(d.get("volume_ml") or 0.0),
            recovery_coefficient=None if rc is None else float(rc),
            registration_status=tuple(str(x) for x in d.get("registration_status") or ()),
            warnings=tuple(str(x) for x in d.get("warnings") or ()),
        )


@dataclass(frozen=True)
class VoiKinetics:
    """Kinetics of one VOI: TAC, chosen model and its parameters, TIA and TIAC.

    ``tiac_h = tia_mbq_h / administered_activity_mbq`` with the **net** administered
    activity (module docstring; ``administered_activity_definition`` says it).
    ``fit`` is the complete fit report (``FitResult.to_dict()``: covariance,
    residuals, weights, ...) kept for audit and the CLI; the typed fields are what
    readers use.  ``error`` says why there is no fit (then no TIA).
    """

    voi_id: str
    voi_name: str
    tac: TacPoints
    model: str | None
    tia_mbq_h: float | None
    tia_sd_mbq_h: float | None
    tiac_h: float | None
    tiac_sd_h: float | None
    administered_activity_mbq: float
    administered_activity_definition: str = NET_ACTIVITY_DEFINITION
    parameters: tuple[ParameterValue, ...] = ()
    candidates: tuple[CandidateModel, ...] = ()
    half_lives_h: tuple[tuple[str, float | None], ...] = ()
    injection_time_h: float = 0.0
    review_flag: str = ""
    error: str | None = None
    warnings: tuple[str, ...] = ()
    nuclide: str = ""
    model_requested: str = "auto"
    recovery: str | None = None
    computed_at: str = ""
    fit: Mapping[str, Any] = field(default_factory=dict)

    def parameter(self, name: str) -> ParameterValue:
        """The fitted parameter called ``name`` (KeyError if the model has none)."""
        for p in self.parameters:
            if p.name == name:
                return p
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """The ``mrt-kinetics/1`` entry (also each row of ``mrtdose kinetics --json``)."""
        return json_clean(
            {
                "format": KINETICS_FORMAT,
                "voi_id": self.voi_id,
                "voi_name": self.voi_name,
                "review_flag": self.review_flag,
                "computed_at": self.computed_at,
                "nuclide": self.nuclide,
                "model_requested": self.model_requested,
                "administered_activity_mbq": self.administered_activity_mbq,
                "administered_activity_definition": self.administered_activity_definition,
                "recovery": self.recovery,
                "tac": self.tac.to_dict(),
                "model": self.model,
                "parameters": {p.name: p.to_dict() for p in self.parameters}
                if self.parameters or self.model
                else None,
                "candidates": [
                    {
                        "model": c.model,
                        "aicc": c.aicc,
                        "tia_mbq_h": c.tia_mbq_h,
                        "converged": c.converged,
                        "well_conditioned": c.well_conditioned,
                    }
                    for c in self.candidates
                ],  # fmt: skip
                "half_lives_h": {k: v for k, v in self.half_lives_h},
                "injection_time_h": self.injection_time_h,
                "tia_mbq_h": self.tia_mbq_h,
                "tia_sd_mbq_h": self.tia_sd_mbq_h,
                "tiac_h": self.tiac_h,
                "tiac_sd_h": self.tiac_sd_h,
                "fit": dict(self.fit),
                "error": self.error,
                "warnings": list(self.warnings),
            }
        )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> VoiKinetics:
        """Read an entry written by :meth:`to_dict` or by the old ``extra["kinetics"]``."""
        fit = dict(d.get("fit") or {})
        params = d.get("parameters") if d.get("parameters") is not None else fit.get("parameters")
        cands = d.get("candidates") if d.get("candidates") else fit.get("candidates")
        hl = d.get("half_lives_h") if d.get("half_lives_h") else fit.get("half_lives_h")
        half_lives = tuple(
            (str(k), _num(v.get("value") if isinstance(v, Mapping) else v))
            for k, v in (hl or {}).items()
        )
        inj = d.get("injection_time_h", fit.get("injection_time_h", 0.0))
        return cls(
            voi_id=str(d["voi_id"]),
            voi_name=str(d.get("voi_name", "")),
            tac=TacPoints.from_dict(d.get("tac") or {}),
            model=d.get("model"),
            tia_mbq_h=_num(d.get("tia_mbq_h")),
            tia_sd_mbq_h=_num(d.get("tia_sd_mbq_h")),
            tiac_h=_num(d.get("tiac_h")),
            tiac_sd_h=_num(d.get("tiac_sd_h")),
            administered_activity_mbq=float(d.get("administered_activity_mbq") or 0.0),
            administered_activity_definition=str(
                d.get("administered_activity_definition") or NET_ACTIVITY_DEFINITION
            ),
            parameters=parameters_from_dict(params),
            candidates=tuple(CandidateModel.from_dict(c) for c in cands or ()),
            half_lives_h=half_lives,
            injection_time_h=float(inj or 0.0),
            review_flag=str(d.get("review_flag", "")),
            error=d.get("error"),
            warnings=tuple(str(w) for w in d.get("warnings") or ()),
            nuclide=str(d.get("nuclide", "")),
            model_requested=str(d.get("model_requested", "auto")),
            recovery=d.get("recovery"),
            computed_at=str(d.get("computed_at", "")),
            fit=fit,
        )


# --------------------------------------------------------------------- dose
@dataclass(frozen=True)
class DoseStatistics:
    """Absorbed-dose statistics of one VOI on a dose grid (Gy; D2 = dose to the hottest 2 %).

    ``v_fraction``/``v_ml``: fraction of the VOI (or mL) receiving at least the
    threshold, keyed ``"V20Gy"``.  ``note`` explains an unusual basis (VOI smaller
    than a dose voxel).
    """

    n_voxels: int
    volume_ml: float
    mean_gy: float | None
    median_gy: float | None
    min_gy: float | None
    max_gy: float | None
    sd_gy: float | None
    d2_gy: float | None
    d50_gy: float | None
    d98_gy: float | None
    mass_g: float | None = None
    mass_weighted: bool = False
    v_fraction: Mapping[str, float] = field(default_factory=dict)
    v_ml: Mapping[str, float] = field(default_factory=dict)
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "n_voxels": self.n_voxels,
            "volume_ml": self.volume_ml,
            "mass_g": self.mass_g,
            "mass_weighted": self.mass_weighted,
            "mean_gy": self.mean_gy,
            "median_gy": self.median_gy,
            "min_gy": self.min_gy,
            "max_gy": self.max_gy,
            "sd_gy": self.sd_gy,
            "d2_gy": self.d2_gy,
            "d50_gy": self.d50_gy,
            "d98_gy": self.d98_gy,
            "v_fraction": dict(self.v_fraction),
            "v_ml": dict(self.v_ml),
        }
        if self.note:
            d["note"] = self.note
        return json_clean(d)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DoseStatistics:
        return cls(
            n_voxels=int(d.get("n_voxels") or 0),
            volume_ml=float(d.get("volume_ml") or 0.0),
            mean_gy=_num(d.get("mean_gy")),
            median_gy=_num(d.get("median_gy")),
            min_gy=_num(d.get("min_gy")),
            max_gy=_num(d.get("max_gy")),
            sd_gy=_num(d.get("sd_gy")),
            d2_gy=_num(d.get("d2_gy")),
            d50_gy=_num(d.get("d50_gy")),
            d98_gy=_num(d.get("d98_gy")),
            mass_g=_num(d.get("mass_g")),
            mass_weighted=bool(d.get("mass_weighted", False)),
            v_fraction={str(k): float(v) for k, v in (d.get("v_fraction") or {}).items()},
            v_ml={str(k): float(v) for k, v in (d.get("v_ml") or {}).items()},
            note=d.get("note"),
        )


@dataclass(frozen=True)
class DvhCurve:
    """Dose-volume histogram of one VOI: ``n + 1`` bin edges (Gy), per-bin and cumulative values.

    ``cumulative_fraction[i]`` is the fraction of the VOI receiving at least
    ``bin_edges_gy[i]``.
    """

    bin_edges_gy: tuple[float, ...]
    differential_ml: tuple[float, ...]
    differential_fraction: tuple[float, ...]
    cumulative_fraction: tuple[float, ...]
    volume_ml: float
    mass_g: float | None = None
    mass_weighted: bool = False

    def to_dict(self) -> dict[str, Any]:
        return json_clean(
            {
                "bin_edges_gy": list(self.bin_edges_gy),
                "differential_ml": list(self.differential_ml),
                "differential_fraction": list(self.differential_fraction),
                "cumulative_fraction": list(self.cumulative_fraction),
                "volume_ml": self.volume_ml,
                "mass_g": self.mass_g,
                "mass_weighted": self.mass_weighted,
            }
        )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DvhCurve:
        return cls(
            bin_edges_gy=_nums(d.get("bin_edges_gy")),
            differential_ml=_nums(d.get("differential_ml")),
            differential_fraction=_nums(d.get("differential_fraction")),
            cumulative_fraction=_nums(d.get("cumulative_fraction")),
            volume_ml=float(d.get("volume_ml") or 0.0),
            mass_g=_num(d.get("mass_g")),
            mass_weighted=bool(d.get("mass_weighted", False)),
        )


@dataclass(frozen=True)
class VoiDose:
    """Dose statistics (and optionally the DVH) of one VOI, beside its contour review flag.

    ``statistics`` is None when the VOI does not overlap the dose grid (``error``
    says so).  ``mc_mean_voxel_uncertainty``: dose-weighted mean of the voxels'
    relative 1-SD Monte Carlo uncertainty.
    """

    voi_id: str
    voi_name: str
    review_flag: str
    statistics: DoseStatistics | None
    error: str | None = None
    mc_mean_voxel_uncertainty: float | None = None
    dvh: DvhCurve | None = None

    def to_dict(self) -> dict[str, Any]:
        """Row of ``mrtdose dose --json``: the statistics flattened beside the VOI."""
        d: dict[str, Any] = {
            "voi_id": self.voi_id,
            "voi_name": self.voi_name,
            "review_flag": self.review_flag,
        }
        if self.statistics is not None:
            d.update(self.statistics.to_dict())
        if self.error is not None:
            d["error"] = self.error
        d["mc_mean_voxel_relative_uncertainty"] = _num(self.mc_mean_voxel_uncertainty)
        if self.dvh is not None:
            d["dvh"] = self.dvh.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> VoiDose:
        has_stats = d.get("mean_gy") is not None or "n_voxels" in d
        return cls(
            voi_id=str(d["voi_id"]),
            voi_name=str(d.get("voi_name", "")),
            review_flag=str(d.get("review_flag", "")),
            statistics=DoseStatistics.from_dict(d) if has_stats else None,
            error=d.get("error"),
            mc_mean_voxel_uncertainty=_num(d.get("mc_mean_voxel_relative_uncertainty")),
            dvh=DvhCurve.from_dict(d["dvh"]) if d.get("dvh") else None,
        )


# ------------------------------------------------------------- protocol run
@dataclass(frozen=True)
class UncertaintyComponent:
    """One input of the dose uncertainty budget (EANM, Gear et al. 2018): relative 1-SD."""

    name: str
    rel_sd: float | None
    variance_fraction: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "rel_sd": _num(self.rel_sd),
            "variance_fraction": _num(self.variance_fraction),
        }


@dataclass(frozen=True)
class VoiRunResult:
    """One VOI of a protocol run: TIA (MBq h), dose (Gy) +- SD, BED and EQD2 (Gy)."""

    voi_id: str
    voi_name: str
    role: str
    """"oar" (organ of the protocol), "lesion" or "target"."""
    organ_id: str | None
    review_flag: str
    mass_g: float | None
    tia_mbq_h: float | None
    dose_gy: float | None
    dose_sd_gy: float | None
    bed_gy: float | None
    eqd2_gy: float | None
    tissue: str | None
    model: str | None
    method: str
    sphere_model_dose_gy: float | None = None
    uncertainty_budget: tuple[UncertaintyComponent, ...] = ()
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return json_clean(
            {
                "voi_id": self.voi_id,
                "voi_name": self.voi_name,
                "role": self.role,
                "organ_id": self.organ_id,
                "review_flag": self.review_flag,
                "mass_g": self.mass_g,
                "tia_mbq_h": self.tia_mbq_h,
                "dose_gy": self.dose_gy,
                "dose_sd_gy": self.dose_sd_gy,
                "bed_gy": self.bed_gy,
                "eqd2_gy": self.eqd2_gy,
                "tissue": self.tissue,
                "model": self.model,
                "method": self.method,
                "sphere_model_dose_gy": self.sphere_model_dose_gy,
                "uncertainty_budget": [c.to_dict() for c in self.uncertainty_budget],
                "notes": list(self.notes),
            }
        )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> VoiRunResult:
        return cls(
            voi_id=str(d["voi_id"]),
            voi_name=str(d.get("voi_name", "")),
            role=str(d.get("role", "")),
            organ_id=d.get("organ_id"),
            review_flag=str(d.get("review_flag", "")),
            mass_g=_num(d.get("mass_g")),
            tia_mbq_h=_num(d.get("tia_mbq_h")),
            dose_gy=_num(d.get("dose_gy")),
            dose_sd_gy=_num(d.get("dose_sd_gy")),
            bed_gy=_num(d.get("bed_gy")),
            eqd2_gy=_num(d.get("eqd2_gy")),
            tissue=d.get("tissue"),
            model=d.get("model"),
            method=str(d.get("method", "")),
            sphere_model_dose_gy=_num(d.get("sphere_model_dose_gy")),
            uncertainty_budget=tuple(
                UncertaintyComponent(
                    str(c.get("name", "")), _num(c.get("rel_sd")), _num(c.get("variance_fraction"))
                )
                for c in d.get("uncertainty_budget") or ()
            ),
            notes=tuple(str(n) for n in d.get("notes") or ()),
        )


@dataclass(frozen=True)
class OrganResult:
    """An organ of the protocol (possibly several VOIs): mass-weighted values.

    ``dose_per_activity_gy_per_gbq`` divides by the **net** administered activity.
    """

    label: str
    vois: tuple[str, ...]
    review_flags: tuple[str, ...]
    mass_g: float | None
    dose_gy: float | None
    dose_sd_gy: float | None
    bed_gy: float | None
    eqd2_gy: float | None
    dose_per_activity_gy_per_gbq: float | None

    def value(self, quantity: str) -> float | None:
        """``dose_gy``, ``bed_gy`` or ``eqd2_gy`` (the quantities limits are set on)."""
        if quantity not in ("dose_gy", "dose_sd_gy", "bed_gy", "eqd2_gy"):
            raise KeyError(quantity)
        v: float | None = getattr(self, quantity)
        return v

    def to_dict(self) -> dict[str, Any]:
        return json_clean(
            {
                "label": self.label,
                "vois": list(self.vois),
                "review_flags": list(self.review_flags),
                "mass_g": self.mass_g,
                "dose_gy": self.dose_gy,
                "dose_sd_gy": self.dose_sd_gy,
                "bed_gy": self.bed_gy,
                "eqd2_gy": self.eqd2_gy,
                "dose_per_activity_gy_per_gbq": self.dose_per_activity_gy_per_gbq,
            }
        )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> OrganResult:
        return cls(
            label=str(d.get("label", "")),
            vois=tuple(str(x) for x in d.get("vois") or ()),
            review_flags=tuple(str(x) for x in d.get("review_flags") or ()),
            mass_g=_num(d.get("mass_g")),
            dose_gy=_num(d.get("dose_gy")),
            dose_sd_gy=_num(d.get("dose_sd_gy")),
            bed_gy=_num(d.get("bed_gy")),
            eqd2_gy=_num(d.get("eqd2_gy")),
            dose_per_activity_gy_per_gbq=_num(d.get("dose_per_activity_gy_per_gbq")),
        )


@dataclass(frozen=True)
class LimitCheck:
    """A protocol limit checked: this cycle plus earlier cycles (cumulative) against the limit."""

    organ_id: str
    quantity: str
    scope: str
    limit: float
    value: float
    this_cycle: float
    previous_cycles: float
    fraction_of_limit: float
    passed: bool
    source: str
    when: str | None

    def to_dict(self) -> dict[str, Any]:
        return json_clean(dict(self.__dict__))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LimitCheck:
        return cls(
            organ_id=str(d["organ_id"]),
            quantity=str(d["quantity"]),
            scope=str(d.get("scope", "")),
            limit=float(d["limit"]),
            value=float(d["value"]),
            this_cycle=float(d.get("this_cycle", d["value"])),
            previous_cycles=float(d.get("previous_cycles") or 0.0),
            fraction_of_limit=float(d.get("fraction_of_limit") or 0.0),
            passed=bool(d.get("passed")),
            source=str(d.get("source", "")),
            when=d.get("when"),
        )


@dataclass(frozen=True)
class NextCycle:
    """Largest next-cycle activity (MBq, net administered) keeping every cumulative limit.

    ``limits`` gives the activity each limit allows; ``binding`` names the
    smallest; ``reason`` says why there is none.
    """

    activity_mbq: float | None
    binding: str | None
    limits: Mapping[str, float] = field(default_factory=dict)
    assumption: str | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "activity_mbq": _num(self.activity_mbq),
            "binding": self.binding,
            "limits": {k: _num(v) for k, v in self.limits.items()},
        }
        if self.assumption is not None:
            d["assumption"] = self.assumption
        if self.reason is not None:
            d["reason"] = self.reason
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> NextCycle:
        d = d or {}
        return cls(
            activity_mbq=_num(d.get("activity_mbq")),
            binding=d.get("binding"),
            limits={str(k): float(v) for k, v in (d.get("limits") or {}).items() if v is not None},
            assumption=d.get("assumption"),
            reason=d.get("reason"),
        )


# ------------------------------------------------------------------ records
@dataclass(frozen=True)
class KineticsRecord:
    """The case's kinetics: one :class:`VoiKinetics` per VOI.

    Recomputing some VOIs makes a new record holding those VOIs and the current
    entries of the others (each entry has its own ``computed_at``); the older
    record is marked superseded.
    """

    vois: tuple[VoiKinetics, ...]
    result_id: str = field(default_factory=lambda: new_id("kin-"))
    created_at: datetime = field(default_factory=_now)
    created_by: str = ""
    source: str = "kinetics"
    """``"kinetics"`` (mrtdose kinetics) or ``"protocol run"`` (fitted by run_protocol)."""
    superseded: bool = False

    kind = "kinetics"

    def voi(self, voi_id: str) -> VoiKinetics | None:
        return next((v for v in self.vois if v.voi_id == voi_id), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "format": KINETICS_FORMAT,
            "result_id": self.result_id,
            "created_at": _dt(self.created_at),
            "created_by": self.created_by,
            "source": self.source,
            "superseded": self.superseded,
            "vois": [v.to_dict() for v in self.vois],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> KineticsRecord:
        return cls(
            vois=tuple(VoiKinetics.from_dict(v) for v in d.get("vois") or ()),
            result_id=str(d["result_id"]),
            created_at=_parse_dt(d.get("created_at")),
            created_by=str(d.get("created_by", "")),
            source=str(d.get("source", "kinetics")),
            superseded=bool(d.get("superseded", False)),
        )


@dataclass(frozen=True)
class DoseSummary:
    """VOI dose statistics (and DVHs) of one dose map (a DerivedMap of the case).

    Inputs: ``dose_map_id`` (and ``uncertainty_map_id``, ``tia_map_id``).  A new
    dose summary by the same method supersedes the older one.
    """

    dose_map_id: str
    method: str
    vois: tuple[VoiDose, ...]
    nuclide: str = ""
    tia_map_id: str | None = None
    uncertainty_map_id: str | None = None
    warnings: tuple[str, ...] = ()
    provenance: Mapping[str, Any] = field(default_factory=dict)
    result_id: str = field(default_factory=lambda: new_id("dose-"))
    created_at: datetime = field(default_factory=_now)
    created_by: str = ""
    superseded: bool = False

    kind = "dose"

    def voi(self, voi_id: str) -> VoiDose | None:
        return next((v for v in self.vois if v.voi_id == voi_id), None)

    def to_dict(self) -> dict[str, Any]:
        return json_clean(
            {
                "kind": self.kind,
                "format": DOSE_FORMAT,
                "result_id": self.result_id,
                "created_at": _dt(self.created_at),
                "created_by": self.created_by,
                "superseded": self.superseded,
                "dose_map_id": self.dose_map_id,
                "uncertainty_map_id": self.uncertainty_map_id,
                "tia_map_id": self.tia_map_id,
                "method": self.method,
                "nuclide": self.nuclide,
                "unit": "Gy",
                "provenance": dict(self.provenance),
                "vois": [v.to_dict() for v in self.vois],
                "warnings": list(self.warnings),
            }
        )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DoseSummary:
        return cls(
            dose_map_id=str(d["dose_map_id"]),
            method=str(d.get("method", "")),
            vois=tuple(VoiDose.from_dict(v) for v in d.get("vois") or ()),
            nuclide=str(d.get("nuclide", "")),
            tia_map_id=d.get("tia_map_id"),
            uncertainty_map_id=d.get("uncertainty_map_id"),
            warnings=tuple(str(w) for w in d.get("warnings") or ()),
            provenance=dict(d.get("provenance") or {}),
            result_id=str(d["result_id"]),
            created_at=_parse_dt(d.get("created_at")),
            created_by=str(d.get("created_by", "")),
            superseded=bool(d.get("superseded", False)),
        )


@dataclass(frozen=True)
class ProtocolRun:
    """A case run end to end under a therapy protocol (``mrtdose run``).

    ``administered_activity_mbq`` is the **net** administered activity (module
    docstring); organ Gy/GBq and the next-cycle activity use it.  Inputs:
    ``kinetics_id`` (the kinetics record the run fitted), ``dose_summary_id`` and
    ``dose_map_id`` (multi-point runs).
    """

    case_id: str
    protocol_id: str
    method: str
    dose_method: str
    nuclide: str
    administered_activity_mbq: float
    vois: tuple[VoiRunResult, ...]
    organs: Mapping[str, OrganResult]
    limit_checks: tuple[LimitCheck, ...]
    next_cycle: NextCycle
    previous_cycle_cases: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    computed_at: str = ""
    user: str = ""
    dose_map_id: str | None = None
    checklist: tuple[Mapping[str, Any], ...] = ()
    administered_activity_definition: str = NET_ACTIVITY_DEFINITION
    kinetics_id: str | None = None
    dose_summary_id: str | None = None
    result_id: str = field(default_factory=lambda: new_id("run-"))
    created_at: datetime = field(default_factory=_now)
    superseded: bool = False

    kind = "protocol_run"

    @property
    def created_by(self) -> str:
        return self.user

    @property
    def all_limits_passed(self) -> bool:
        return all(c.passed for c in self.limit_checks)

    def to_dict(self) -> dict[str, Any]:
        """The ``mrt-protocol-run/1`` object (``mrtdose run --json``) plus the record fields."""
        return json_clean(
            {
                "kind": self.kind,
                "format": RUN_FORMAT,
                "result_id": self.result_id,
                "created_at": _dt(self.created_at),
                "superseded": self.superseded,
                "case_id": self.case_id,
                "protocol": self.protocol_id,
                "method": self.method,
                "dose_method": self.dose_method,
                "nuclide": self.nuclide,
                "administered_activity_mbq": self.administered_activity_mbq,
                "administered_activity_definition": self.administered_activity_definition,
                "dose_map_id": self.dose_map_id,
                "kinetics_id": self.kinetics_id,
                "dose_summary_id": self.dose_summary_id,
                "organs": {k: o.to_dict() for k, o in self.organs.items()},
                "vois": [v.to_dict() for v in self.vois],
                "limit_checks": [c.to_dict() for c in self.limit_checks],
                "all_limits_passed": self.all_limits_passed,
                "next_cycle": self.next_cycle.to_dict(),
                "previous_cycle_cases": list(self.previous_cycle_cases),
                "warnings": list(self.warnings),
                "checklist": [dict(c) for c in self.checklist],
                "computed_at": self.computed_at,
                "user": self.user,
            }
        )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ProtocolRun:
        """Read a record, or the old ``extra["protocol_run"]`` dictionary (no ``result_id``)."""
        computed = str(d.get("computed_at") or "")
        created = d.get("created_at") or computed or None
        return cls(
            case_id=str(d.get("case_id", "")),
            protocol_id=str(d.get("protocol", "")),
            method=str(d.get("method", "")),
            dose_method=str(d.get("dose_method", "")),
            nuclide=str(d.get("nuclide", "")),
            administered_activity_mbq=float(d.get("administered_activity_mbq") or 0.0),
            vois=tuple(VoiRunResult.from_dict(v) for v in d.get("vois") or ()),
            organs={str(k): OrganResult.from_dict(o) for k, o in (d.get("organs") or {}).items()},
            limit_checks=tuple(LimitCheck.from_dict(c) for c in d.get("limit_checks") or ()),
            next_cycle=NextCycle.from_dict(d.get("next_cycle")),
            previous_cycle_cases=tuple(str(c) for c in d.get("previous_cycle_cases") or ()),
            warnings=tuple(str(w) for w in d.get("warnings") or ()),
            computed_at=computed,
            user=str(d.get("user", "")),
            dose_map_id=d.get("dose_map_id"),
            checklist=tuple(dict(c) for c in d.get("checklist") or ()),
            administered_activity_definition=str(
                d.get("administered_activity_definition") or NET_ACTIVITY_DEFINITION
            ),
            kinetics_id=d.get("kinetics_id"),
            dose_summary_id=d.get("dose_summary_id"),
            result_id=str(d.get("result_id") or new_id("run-")),
            created_at=_parse_dt(created),
            superseded=bool(d.get("superseded", False)),
        )


Result = KineticsRecord | DoseSummary | ProtocolRun
"""A result record kept in ``Case.results``."""

_KINDS: dict[str, Any] = {
    KineticsRecord.kind: KineticsRecord,
    DoseSummary.kind: DoseSummary,
    ProtocolRun.kind: ProtocolRun,
}


def result_from_dict(d: Mapping[str, Any]) -> Result:
    """Any result record from its ``to_dict`` (by its ``kind``)."""
    kind = d.get("kind")
    if kind not in _KINDS:
        raise ValueError(f"unknown result kind {kind!r}")
    record: Result = _KINDS[kind].from_dict(d)
    return record


def superseded_copy(record: Result) -> Result:
    """The same record marked superseded (records are frozen)."""
    return replace(record, superseded=True)
