"""What a physicist checks in a VOI's kinetics before trusting its TIA (read-only helpers).

Everything here reads a stored :class:`~dosimetry_core.model.results.VoiKinetics`
(``mrtdose kinetics``) and returns typed records with units in their names; the
workstation's kinetics step shows them and computes nothing itself:

* :func:`candidate_rows` -- every candidate model of the fit: AICc, Akaike
  weight, parameters ± SD with units, half-lives, TIA ± SD, residuals, and
  which one is selected;
* :func:`candidate_curves` -- each candidate's fitted curve ``A(t)`` (MBq) on a
  time grid (h after administration), from the stored parameters (the
  trapezoid: the polyline through the points with its start and tail rules);
* :func:`point_sd_mbq` -- the 1-SD of each TAC point the fit used (the measured
  SD when known, else the fit's relative error model);
* :func:`stp_comparison` -- the single-time-point TIA from each scan in turn
  against the multi-point TIA (as ``mrtdose kinetics --compare-stp``);
* :func:`population_half_life` -- the population effective half-life of the
  VOI's organ for the case's radiopharmaceutical, when the table has one;
* :func:`recovery_choices` / :func:`recovery_from_record` -- the stored QA
  recovery records usable as a partial-volume correction
  (as ``mrtdose kinetics --recovery-record``);
* :func:`fit_case_kinetics` -- :func:`~dosimetry_core.pipeline.kinetics.compute_kinetics`
  with the recovery given as plain values (FWHM in mm or a QA record id), each
  VOI's model override kept when refitting all VOIs.

Akaike weights: ``w_i = exp(-Δ_i/2) / Σ_j exp(-Δ_j/2)`` with ``Δ_i = AICc_i -
min AICc`` over the candidates that have an AICc (Burnham KP, Anderson DR.
Model Selection and Multimodel Inference, 2nd ed., Springer 2002, section 2.9).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.model import Case
from dosimetry_core.model.results import ParameterValue, VoiKinetics
from dosimetry_core.progress import CancelCheck, ProgressCallback, report, sub_progress
from dosimetry_core.store.repository import CaseRepository

__all__ = [
    "POPULATION_ORGANS",
    "CandidateRow",
    "ModelCurve",
    "PopulationHalfLife",
    "RecoveryChoice",
    "StpRow",
    "akaike_weights",
    "candidate_curves",
    "candidate_rows",
    "fit_case_kinetics",
    "point_sd_mbq",
    "population_half_life",
    "recovery_choices",
    "recovery_from_record",
    "stp_comparison",
]

POPULATION_ORGANS: dict[str, str] = {
    "Kidney_L": "kidneys",
    "Kidney_R": "kidneys",
    "Liver": "liver",
    "Spleen": "spleen",
    "Lung_L": "lungs",
    "Lung_R": "lungs",
    "Parotid_L": "parotid-glands",
    "Parotid_R": "parotid-glands",
    "RedMarrow": "red-marrow",
    "Body": "whole-body",
}
"""Standard organ name (:func:`~dosimetry_core.segmentation.organs.match_organ`) ->
organ of the population half-life table (a pair's organs share the pair's entry)."""


# ------------------------------------------------------------------ models
@dataclass(frozen=True)
class CandidateRow:
    """One candidate model of a VOI's fit, as the model table shows it."""

    model: str
    aicc: float | None
    akaike_weight: float | None
    parameters: tuple[ParameterValue, ...]
    half_lives_h: tuple[tuple[str, float | None], ...]
    tia_mbq_h: float | None
    tia_sd_mbq_h: float | None
    residuals_mbq: tuple[float, ...]
    converged: bool
    well_conditioned: bool
    selected: bool
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelCurve:
    """A candidate's fitted curve: activity (MBq at scan time) against h after administration."""

    model: str
    time_h: tuple[float, ...]
    activity_mbq: tuple[float, ...]
    selected: bool


def _f(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def akaike_weights(aicc_by_model: Mapping[str, float | None]) -> dict[str, float]:
    """Akaike weights of the models that have an AICc (module docstring); they sum to 1."""
    vals = {m: v for m, a in aicc_by_model.items() if (v := _f(a)) is not None}
    if not vals:
        return {}
    best = min(vals.values())
    raw = {m: math.exp(-0.5 * (a - best)) for m, a in vals.items()}
    total = sum(raw.values())
    return {m: r / total for m, r in raw.items()}


def _candidate_dicts(kin: VoiKinetics) -> list[Mapping[str, Any]]:
    cands = kin.fit.get("candidates") if kin.fit else None
    return [c for c in cands or () if isinstance(c, Mapping)]


def candidate_rows(kin: VoiKinetics) -> tuple[CandidateRow, ...]:
    """Every candidate of the stored fit report, in the order the fit tried them."""
    from dosimetry_core.model.results import parameters_from_dict

    cands = _candidate_dicts(kin)
    weights = akaike_weights({str(c.get("model")): _f(c.get("aicc")) for c in cands})
    rows = []
    for c in cands:
        model = str(c.get("model", ""))
        hl = c.get("half_lives_h") or {}
        rows.append(
            CandidateRow(
                model=model,
                aicc=_f(c.get("aicc")),
                akaike_weight=weights.get(model),
                parameters=parameters_from_dict(c.get("parameters")),
                half_lives_h=tuple(
                    (str(k), _f(v.get("value") if isinstance(v, Mapping) else v))
                    for k, v in hl.items()
                ),
                tia_mbq_h=_f(c.get("tia_mbq_h")),
                tia_sd_mbq_h=_f(c.get("tia_sd_mbq_h")),
                residuals_mbq=tuple(float(r) for r in c.get("residuals_mbq") or ()),
                converged=bool(c.get("converged", True)),
                well_conditioned=bool(c.get("well_conditioned", True)),
                selected=model == kin.model,
                warnings=tuple(str(w) for w in c.get("warnings") or ()),
            )
        )
    return tuple(rows)


def _time_grid(kin: VoiKinetics, n_samples: int, t_end_h: float | None) -> np.ndarray:
    t = np.asarray(kin.tac.time_h, dtype=float)
    t0 = float(kin.injection_time_h)
    end = float(t_end_h) if t_end_h is not None else (float(t.max()) * 1.15 if t.size else 1.0)
    return np.linspace(t0, max(end, t0 + 1e-3), max(int(n_samples), 2))


def _trapezoid_curve(kin: VoiKinetics, c: Mapping[str, Any], t: np.ndarray) -> np.ndarray:
    """The polyline the trapezoidal TIA integrates (models.trapezoid_tia rules)."""
    tau = np.asarray(kin.tac.time_h, dtype=float) - kin.injection_time_h
    a = np.asarray(kin.tac.activity_mbq, dtype=float)
    trap = c.get("trapezoid") or {}
    start = str(trap.get("start_rule", "linear"))
    lam_tail = _f(trap.get("tail_rate_per_h")) or 0.0
    x = t - kin.injection_time_h
    out = np.interp(x, tau, a)
    early = x < tau[0]
    if start == "linear":
        out[early] = a[0] * x[early] / tau[0] if tau[0] > 0 else a[0]
    elif start == "mono" and a.size >= 2 and 0 < a[1] < a[0]:
        lam_s = math.log(a[0] / a[1]) / (tau[1] - tau[0])
        out[early] = a[0] * np.exp(np.minimum(lam_s * (tau[0] - x[early]), 50.0))
    else:
        out[early] = a[0]
    late = x > tau[-1]
    out[late] = a[-1] * np.exp(-lam_tail * (x[late] - tau[-1]))
    return out


def candidate_curves(
    kin: VoiKinetics, *, n_samples: int = 200, t_end_h: float | None = None
) -> tuple[ModelCurve, ...]:
    """Each candidate's fitted curve from administration to ``t_end_h`` (default last scan + 15 %).

    Parametric models are evaluated with their stored parameters
    (:mod:`dosimetry_core.kinetics.models`); a candidate without parameters
    (failed fit) has no curve.
    """
    from dosimetry_core.kinetics.models import MODELS

    if not kin.tac.time_h:
        return ()
    t = _time_grid(kin, n_samples, t_end_h)
    out = []
    for c in _candidate_dicts(kin):
        name = str(c.get("model", ""))
        if name == "trapezoid":
            a = _trapezoid_curve(kin, c, t)
        elif name in MODELS:
            params = c.get("parameters") or {}
            m = MODELS[name]
            vals = [_f((params.get(p) or {}).get("value")) for p in m.param_names]
            if any(v is None for v in vals):
                continue
            a = m.evaluate(np.asarray(vals, dtype=float), t - kin.injection_time_h)
        else:
            continue
        out.append(
            ModelCurve(
                name,
                tuple(float(x) for x in t),
                tuple(float(x) for x in a),
                name == kin.model,
            )
        )
    return tuple(out)


def point_sd_mbq(kin: VoiKinetics) -> tuple[tuple[float, ...], str]:
    """The 1-SD (MBq) of each TAC point and where it comes from.

    The measured SDs when the TAC has them; otherwise the fit's relative error
    model ``sigma_i = r * max(A_i, 1 % of max A)``
    (:mod:`dosimetry_core.kinetics.fitting`), with ``r`` from the stored fit.
    """
    a = np.asarray(kin.tac.activity_mbq, dtype=float)
    if kin.tac.activity_sd_mbq is not None:
        return tuple(float(s) for s in kin.tac.activity_sd_mbq), "measured SD"
    w = kin.fit.get("weights") if kin.fit else None
    if isinstance(w, Mapping) and w.get("model") == "absolute" and w.get("activity_sd_mbq"):
        return tuple(float(s) for s in w["activity_sd_mbq"]), "SD given to the fit"
    r = _f(w.get("relative_sd")) if isinstance(w, Mapping) else None
    r = 0.1 if r is None else r
    if a.size == 0:
        return (), f"relative error model {100 * r:g} %"
    sd = r * np.maximum(a, 0.01 * float(a.max()))
    return tuple(float(s) for s in sd), f"relative error model {100 * r:g} %"


# --------------------------------------------------------------------- STP
@dataclass(frozen=True)
class StpRow:
    """The single-time-point TIA from one scan against the multi-point TIA."""

    time_h: float
    method: str
    tia_mbq_h: float | None
    relative_difference: float | None
    """``TIA_stp / TIA_multi - 1`` (a fraction)."""
    error: str = ""


def stp_comparison(
    kin: VoiKinetics, method: str = "haenscheid", *, t_eff_h: float | None = None
) -> tuple[StpRow, ...]:
    """STP TIA from each scan in turn versus the VOI's multi-point TIA (``--compare-stp``).

    Hänscheid et al. J Nucl Med 2018;59:75-81 or Madsen et al. Med Phys
    2018;45:2318-2324 (:mod:`dosimetry_core.kinetics.stp`); a scan a method
    refuses gives a row with ``error``.
    """
    from dosimetry_core.kinetics.stp import STP_METHODS, stp_tia

    if method not in STP_METHODS:
        raise InvalidInputError(f"unknown single-time-point method {method!r}")
    if method == "madsen" and t_eff_h is None:
        raise InvalidInputError("the Madsen method needs an effective half-life (h)")
    ref = kin.tia_mbq_h
    if kin.error or ref is None or not ref > 0:
        return ()
    rows = []
    for t, a in zip(kin.tac.time_h, kin.tac.activity_mbq, strict=True):
        try:
            r = stp_tia(method, float(t), float(a), t_eff_h=t_eff_h)
        except InvalidInputError as exc:
            rows.append(StpRow(float(t), method, None, None, str(exc)))
            continue
        rows.append(StpRow(float(t), method, r.tia_mbq_h, r.tia_mbq_h / ref - 1.0))
    return tuple(rows)


# -------------------------------------------------------------- population
@dataclass(frozen=True)
class PopulationHalfLife:
    """The population effective half-life that applies to a VOI, or why none does."""

    organ: str
    radiopharmaceutical: str
    t_eff_h: float | None = None
    t_eff_sd_h: float | None = None
    statistic: str = ""
    n_patients: int | None = None
    source: str = ""
    note: str = ""
    """Why there is none (no standard organ, no table entry)."""


def population_half_life(
    case: Case, voi_name: str, *, path: str | None = None
) -> PopulationHalfLife:
    """The table entry for the VOI's organ and the case's radiopharmaceutical.

    The VOI name is matched to a standard organ
    (:func:`~dosimetry_core.segmentation.organs.match_organ`), then to the
    table's organ by :data:`POPULATION_ORGANS`; the radiopharmaceutical is
    looked up as entered and prefixed with the nuclide (``Lu-177`` +
    ``PSMA-617`` -> ``lu177-psma617``).
    """
    from dosimetry_core.kinetics.population import lookup
    from dosimetry_core.segmentation.organs import match_organ

    adm = case.first_administration
    pharm = (adm.radiopharmaceutical if adm is not None else "") or ""
    spec = match_organ(voi_name)
    organ = POPULATION_ORGANS.get(spec.name, "") if spec is not None else ""
    if not organ:
        return PopulationHalfLife(
            "", pharm, note=f"{voi_name}: no organ of the population half-life table"
        )
    if not pharm:
        return PopulationHalfLife(organ, "", note="the administration names no radiopharmaceutical")
    tries = [pharm]
    if adm is not None and adm.nuclide and adm.nuclide.lower() not in pharm.lower():
        tries.append(f"{adm.nuclide}-{pharm}")
    last = ""
    for p in tries:
        try:
            e = lookup(organ, p, path=path)
        except InvalidInputError as exc:
            last = str(exc)
            continue
        return PopulationHalfLife(
            organ,
            e.radiopharmaceutical,
            e.t_eff_h,
            e.t_eff_sd_h,
            e.statistic,
            e.n_patients,
            e.source,
        )
    return PopulationHalfLife(organ, pharm, note=last)


# ---------------------------------------------------------------- recovery
@dataclass(frozen=True)
class RecoveryChoice:
    """A stored QA recovery record offered as partial-volume correction."""

    record_id: str
    measured_at: datetime
    device_key: str
    nuclide: str
    created_by: str
    valid_now: bool
    has_curve: bool
    intact: bool

    @property
    def usable(self) -> bool:
        return self.has_curve and self.intact


def recovery_choices(store: CaseRepository, *, at: datetime | None = None) -> list[RecoveryChoice]:
    """The store's recovery QA records, newest measurement first."""
    from dosimetry_core.qa.records import list_records, verify_record

    when = at or datetime.now()
    out = [
        RecoveryChoice(
            r.record_id,
            r.measured_at,
            r.device_key,
            r.nuclide,
            r.created_by,
            r.is_valid_at(when),
            bool(r.payload.get("curve")),
            verify_record(r),
        )
        for r in list_records(store, kind="recovery")
    ]
    return sorted(out, key=lambda c: c.measured_at, reverse=True)


def recovery_from_record(store: CaseRepository, record_id: str) -> Any:
    """The fitted RC(volume) curve of a stored recovery record, as a TAC recovery model.

    Same checks as ``mrtdose kinetics --recovery-record``: the record exists, is
    a recovery record and matches its hash.
    """
    from dosimetry_core.qa.records import list_records, verify_record
    from dosimetry_core.qa.recovery import recovery_model_from_payload

    rec = next((r for r in list_records(store) if r.record_id == record_id), None)
    if rec is None:
        raise InvalidInputError(f"no QA record {record_id} in this store (mrtdose qa list)")
    if rec.kind != "recovery":
        raise InvalidInputError(f"QA record {record_id} is a {rec.kind} record, not a recovery one")
    if not verify_record(rec):
        raise InvalidInputError(f"QA record {record_id} does not match its hash: tampered with")
    return recovery_model_from_payload(rec.payload)


# --------------------------------------------------------------------- fit
def fit_case_kinetics(
    store: CaseRepository,
    case_id: str,
    *,
    vois: Sequence[str] | None = None,
    model: str | None = None,
    recovery_fwhm_mm: float | None = None,
    recovery_record_id: str | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
    user: str = "",
) -> list[VoiKinetics]:
    """Fit the named (default: all) VOIs through :func:`compute_kinetics`, saved in the case.

    ``model`` None keeps each VOI's current model request (``auto`` unless a
    model was forced for it before: an override survives a refit of all VOIs);
    a name forces that model for the VOIs fitted.  Recovery: a Gaussian PSF
    of ``recovery_fwhm_mm`` (shape-specific RC) or the RC(volume) curve of the
    QA record ``recovery_record_id``; neither: no partial-volume correction.
    VOIs with different model requests are fitted in one call per request
    (each call saves).
    """
    from dosimetry_core.kinetics.tac import PsfRecovery
    from dosimetry_core.pipeline.kinetics import compute_kinetics
    from dosimetry_core.pipeline.voi_review import find_voi

    if recovery_fwhm_mm is not None and recovery_record_id:
        raise InvalidInputError("give either a recovery FWHM or a recovery record, not both")
    recovery: Any = None
    if recovery_fwhm_mm is not None:
        if not (math.isfinite(recovery_fwhm_mm) and recovery_fwhm_mm > 0):
            raise InvalidInputError("the recovery FWHM must be a positive number of mm")
        recovery = PsfRecovery(float(recovery_fwhm_mm))
    elif recovery_record_id:
        recovery = recovery_from_record(store, recovery_record_id)
    case = store.load_case(case_id)
    selected = list(case.vois) if vois is None else [find_voi(case, v) for v in vois]
    if not selected:
        raise InvalidInputError(f"case {case_id} has no VOIs: draw or import contours first")
    groups: dict[str, list[str]] = {}
    current = case.kinetics
    for v in selected:
        req = model
        if req is None:
            prev = current.voi(v.voi_id) if current is not None else None
            req = prev.model_requested if prev is not None else "auto"
        groups.setdefault(req or "auto", []).append(v.voi_id)
    order = {v.voi_id: i for i, v in enumerate(selected)}
    results: list[VoiKinetics] = []
    done = 0
    for req, ids in groups.items():
        start, stop = done / len(selected), (done + len(ids)) / len(selected)
        results += compute_kinetics(
            store,
            case_id,
            vois=ids,
            model=req,
            recovery=recovery,
            progress=sub_progress(progress, start, stop),
            cancel=cancel,
            user=user,
        )
        done += len(ids)
    report(progress, 1.0, "kinetics done")
    return sorted(results, key=lambda r: order.get(r.voi_id, 0))
