"""Run a case end to end under a therapy protocol (Lu-177 and generic voxel protocols).

:func:`run_protocol` does, headless and in order (``mrtdose run CASE --protocol ID``):

1. checks the protocol fits the case (nuclide, enough time points for the method:
   ``multi-point`` needs the protocol's minimum, ``single-time-point`` one);
2. registers the time points if that was not done (proposed, not accepted: the
   result says so);
3. finds the protocol's organs and the lesions among the case's VOIs (by name
   patterns and VOI kind);
4. kinetics per VOI (fit with model selection, optional partial-volume correction
   with the camera resolution) or the single-time-point TIA (Hänscheid 2018);
5. absorbed dose: multi-point -> voxel-wise TIA map and a voxel dose map by the
   protocol's method (default ``vsv-density``), VOI mean doses; single time point ->
   organ-level self-dose ``TIA x E_np / m`` (electrons local, photons neglected,
   stated in the result) and the sphere model for lesions;
6. BED and EQD2 per VOI with the tissue's alpha/beta and repair half-time
   (``resources/radiobiology``), the dose-rate shape being the fitted curve;
7. uncertainty per VOI by the EANM guidance (Gear et al. 2018) with the protocol's
   default input uncertainties (to be replaced by the department's QA values);
8. cumulative dose and BED over the patient's earlier cycles (cases of the same
   patient and protocol run before, by administration time) and the check against
   every limit of the protocol;
9. the activity for the next cycle that keeps every cumulative limit (EANM level 3),
   assuming the same doses per activity as this cycle.

The result is a typed :class:`~dosimetry_core.model.results.ProtocolRun` kept in
``case.results`` (an earlier run is superseded; it is saved only if the VOIs,
administrations and time points the run read are unchanged in the store, else
:class:`~dosimetry_core.store.case_inputs.StaleInputsError` and nothing is saved),
with the per-VOI kinetics it fitted as a
:class:`~dosimetry_core.model.results.KineticsRecord` (so the report never fits again),
and ``case.protocol`` is set.  Organ values for organs made of several
VOIs (left and right kidney) are mass-weighted means of the VOIs' values.

Administered activity: every figure per activity (organ Gy/GBq, TIAC, next-cycle
activity) uses the **net** administered activity of the first administration
(syringe minus residual, decay-corrected to the administration time:
:func:`dosimetry_core.physics.decay.net_administered_activity_mbq`); the
next-cycle activity is likewise a net administered activity.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import numpy as np

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.model import Case
from dosimetry_core.model.results import (
    KineticsRecord,
    LimitCheck,
    NextCycle,
    OrganResult,
    ProtocolRun,
    UncertaintyComponent,
    VoiKinetics,
    VoiRunResult,
)
from dosimetry_core.progress import (
    CancelCheck,
    ProgressCallback,
    check_cancel,
    report,
    sub_progress,
)
from dosimetry_core.store.case_inputs import fingerprint, require_unchanged, save_results
from dosimetry_core.store.repository import CaseRepository

# The record types live in the model; these names are kept for callers of this module.
ProtocolRunResult = ProtocolRun
VoiResult = VoiRunResult

log = logging.getLogger(__name__)

RUN_DVH_BINS = 60
"""Equal dose bins of the DVHs the run keeps in its dose summary (the report's DVHs)."""

__all__ = ["STAGES", "LimitCheck", "ProtocolRunResult", "VoiResult", "run_protocol"]

STAGES = (
    "load",
    "registration",
    "kinetics",
    "tia_map",
    "dose",
    "mass",
    "sphere_model",
    "bed",
    "uncertainty",
    "limits",
    "save",
)
"""Stages timed by :func:`run_protocol` (keys of its ``timings_s``), in run order.

``load``: reading the case, the protocol and the checks before the computation;
``kinetics``: VOI time-activity curves and fits; ``mass``: VOI masses from the CT;
``limits``: earlier cycles, limit checks and the next-cycle activity."""


class _StageClock:
    """Wall time per stage (``time.perf_counter``), summed over repeated laps.

    ``lap(stage)`` charges the time since the previous lap (or the start) to
    ``stage``, so consecutive laps cover the whole run without gaps.
    """

    def __init__(self, out: dict[str, float] | None) -> None:
        self.t: dict[str, float] = {} if out is None else out
        self.t.clear()
        self.t.update(dict.fromkeys(STAGES, 0.0))
        self.start = self.last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.t[stage] = self.t.get(stage, 0.0) + now - self.last
        self.last = now

    def finish(self) -> None:
        self.t["total"] = time.perf_counter() - self.start
        log.info("protocol run stage timings (s): %s", json.dumps(self.t))


def _choose_method(protocol: Any, n_tp: int, method: str) -> str:
    if method == "auto":
        if "multi-point" in protocol.methods and n_tp >= protocol.min_time_points("multi-point"):
            return "multi-point"
        if "single-time-point" in protocol.methods and n_tp == 1:
            return "single-time-point"
        raise InvalidInputError(
            f"the case has {n_tp} time point(s): the multi-point method of protocol "
            f"{protocol.id} needs at least {protocol.min_time_points('multi-point')}, the "
            "single-time-point method exactly one; add time points or choose "
            "--method single-time-point --stp-time-point N"
        )
    need = protocol.min_time_points(method)
    if n_tp < need:
        raise InvalidInputError(
            f"method {method} of protocol {protocol.id} needs at least {need} time points; "
            f"the case has {n_tp}"
        )
    if method not in ("multi-point", "single-time-point"):
        raise InvalidInputError(
            f"method {method!r} is not run by mrtdose run (use multi-point or single-time-point)"
        )
    return method


def _needs_registration(case: Any) -> bool:
    tps = case.sorted_time_points()
    return len(tps) > 1 and any(tp.registration is None for tp in tps[1:])


def _classify(protocol: Any, vois: Sequence[Any]) -> list[tuple[Any, str, str | None, str | None]]:
    """(voi, role, organ id, tissue) for every VOI the protocol uses."""
    out = []
    for voi in vois:
        organ = next((o for o in protocol.organs if o.matches(voi.name)), None)
        if organ is not None:
            out.append((voi, organ.role, organ.id, organ.tissue))
            continue
        kind = str(getattr(voi, "kind", "") or "")
        kind = getattr(kind, "value", kind)
        if protocol.lesions.matches(voi.name, str(kind)):
            out.append((voi, "lesion", None, protocol.lesions.tissue))
    return out


def _previous_cycles(store: CaseRepository, case: Case, protocol_id: str) -> list[Case]:
    """Earlier cases of the same patient run under the same protocol (by administration)."""
    adm = case.first_administration
    if adm is None:
        return []
    out = []
    for s in store.list_cases():
        if s.case_id == case.case_id or s.patient_id != case.patient.patient_id:
            continue
        other = store.load_case(s.case_id)
        run = other.protocol_run
        o_adm = other.first_administration
        if run is None or run.protocol_id != protocol_id or o_adm is None:
            continue
        if o_adm.time < adm.time:
            out.append(other)
    return sorted(out, key=lambda c: c.first_administration.time)  # type: ignore[union-attr]


def _mass_weighted(rows: Sequence[VoiRunResult], attr: str) -> float | None:
    vals = [(getattr(r, attr), r.mass_g) for r in rows]
    if any(v is None for v, _ in vals):
        return None
    masses = [m for _, m in vals]
    if any(m is None or m <= 0 for m in masses):
        return float(np.mean([v for v, _ in vals]))
    total = float(sum(m for m in masses if m is not None))
    return float(sum(v * m for v, m in vals if v is not None and m is not None) / total)


def run_protocol(
    store: CaseRepository,
    case_id: str,
    protocol_id: str | None = None,
    *,
    method: str = "auto",
    dose_method: str | None = None,
    recovery_fwhm_mm: float | None = None,
    risk_factors: bool = False,
    stp_time_point: int | None = None,
    user: str = "",
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
    timings_s: dict[str, float] | None = None,
) -> ProtocolRun:
    """Run ``case_id`` under ``protocol_id`` (default: the case's protocol); module docstring.

    Returns the :class:`~dosimetry_core.model.results.ProtocolRun` stored in the
    case (``case.protocol_run``); organ Gy/GBq and the next-cycle activity are per
    **net** administered activity.

    Parameters
    ----------
    method
        ``"auto"``, ``"multi-point"`` or ``"single-time-point"``.
    dose_method
        Voxel dose method (``led``, ``vsv``, ``vsv-density``, ``mc``); default the protocol's.
    recovery_fwhm_mm
        Reconstructed SPECT resolution for the shape-specific recovery correction of
        VOI activities (None: no correction).
    risk_factors
        Apply the limits marked ``"when": "risk factors"`` (e.g. kidney BED 28 Gy)
        instead of the default ones.
    stp_time_point
        1-based time point used by the single-time-point method (default: the only one,
        or the last).
    timings_s
        Filled (when given) with the wall time in seconds of every stage of
        :data:`STAGES` and ``total``; also logged at INFO level by this module's
        logger (``benchmarks/bench_protocol_run.py`` prints them).
    """
    clock = _StageClock(timings_s)
    from dosimetry_core.dose.organ_level import sphere_model_dose_gy
    from dosimetry_core.kinetics.fitting import fit_tac
    from dosimetry_core.kinetics.stp import stp_tia
    from dosimetry_core.kinetics.tac import PsfRecovery, voi_tac
    from dosimetry_core.physics.decay import net_administered_activity_mbq
    from dosimetry_core.physics.nuclides import chain_energy_per_decay, normalize_nuclide
    from dosimetry_core.pipeline.kinetics import voi_kinetics
    from dosimetry_core.pipeline.registration import register_case
    from dosimetry_core.pipeline.voi_review import review_flag
    from dosimetry_core.protocols.registry import checklist, load_protocol

    case = store.load_case(case_id)
    # what this run reads: saved only if still so (no stale saves, store.case_inputs)
    input_parts = ("administrations", "time_points", "vois")
    inputs = fingerprint(case, "protocol run", parts=input_parts)
    pid = protocol_id or case.protocol
    if not pid:
        raise InvalidInputError(f"case {case_id} has no protocol: give one (--protocol ID)")
    protocol = load_protocol(pid)
    if protocol.therapy not in ("lu177", "generic"):
        cmd = {"thyroid": "thyroid", "mibg": "mibg", "sirt": "sirt"}[protocol.therapy]
        raise InvalidInputError(
            f"protocol {protocol.id} is planned with 'mrtdose {cmd}', not with 'mrtdose run'"
        )
    adm = case.first_administration
    if adm is None:
        raise InvalidInputError(f"case {case_id} has no administration: enter it first")
    nuclide = normalize_nuclide(adm.nuclide)
    if protocol.nuclide and normalize_nuclide(protocol.nuclide) != nuclide:
        raise InvalidInputError(
            f"protocol {protocol.id} is for {protocol.nuclide} but the case's administration "
            f"is {nuclide}"
        )
    tps = case.sorted_time_points()
    chosen = _choose_method(protocol, len(tps), method)
    dm = dose_method or protocol.dose_method
    warnings: list[str] = []
    if recovery_fwhm_mm is None:
        warnings.append(
            "no partial-volume correction (give --recovery-fwhm-mm with the camera's "
            "reconstructed resolution): small organs and lesions are underestimated"
        )
    recovery = PsfRecovery(recovery_fwhm_mm) if recovery_fwhm_mm else None

    classified = _classify(protocol, case.vois)
    if not classified:
        names = ", ".join(v.name for v in case.vois) or "none"
        raise InvalidInputError(
            f"no VOI of case {case_id} matches an organ or lesion of protocol {protocol.id} "
            f"(VOIs: {names})"
        )
    report(progress, 0.02, f"protocol {protocol.id}, method {chosen}")
    clock.lap("load")
    if chosen == "multi-point" and _needs_registration(case):
        register_case(store, case_id, progress=sub_progress(progress, 0.02, 0.2), cancel=cancel)
        warnings.append("time points registered automatically (proposed, not reviewed)")
        case = store.load_case(case_id)
        # the administration and VOIs read above must not have changed meanwhile; from
        # here on the inputs include the registrations just saved
        require_unchanged(store, inputs, case, ignore=("registration",))
        inputs = fingerprint(case, "protocol run", parts=input_parts)
    clock.lap("registration")
    check_cancel(cancel)
    energy = chain_energy_per_decay(nuclide)
    defaults = dict(protocol.uncertainty_defaults)
    activity = float(net_administered_activity_mbq(adm))
    if not activity > 0:
        raise InvalidInputError(
            f"case {case_id}: the net administered activity is not positive", field="activity_mbq"
        )
    dose_map_id = None
    dose_summary_id = None
    voi_dose: dict[str, float] = {}
    fitted: list[VoiKinetics] = []
    now = datetime.now().replace(microsecond=0).isoformat()
    if chosen == "multi-point":
        from dosimetry_core.pipeline.dose import compute_dose
        from dosimetry_core.pipeline.tia_map import compute_tia_map

        tmap = compute_tia_map(
            store, case_id, user=user, progress=sub_progress(progress, 0.2, 0.45), cancel=cancel
        )
        warnings += [f"TIA map: {w}" for w in tmap.warnings]
        clock.lap("tia_map")
        dres = compute_dose(
            store,
            case_id,
            method=dm,
            vois=[v.voi_id for v, *_ in classified],
            dvh_bins=RUN_DVH_BINS,
            user=user,
            progress=sub_progress(progress, 0.45, 0.8),
            cancel=cancel,
        )
        dose_map_id = dres.dose_map.derived_id
        dose_summary_id = dres.summary.result_id
        warnings += [f"dose: {w}" for w in dres.warnings]
        for row in dres.vois:
            if row.statistics is not None and row.statistics.mean_gy is not None:
                voi_dose[row.voi_id] = float(row.statistics.mean_gy)
        case = store.load_case(case_id)
        clock.lap("dose")
    clock.lap("load")
    rows: list[VoiResult] = []
    spect_cache = _prefill_spect_cache(store, case)
    ct_cache: dict[str, Any] = {}
    for i, (voi, role, organ_id, tissue) in enumerate(classified):
        check_cancel(cancel)
        report(progress, 0.8 + 0.15 * i / len(classified), f"VOI {voi.name}")
        notes: list[str] = []
        tac = voi_tac(store, case, voi, recovery=recovery, spect_cache=spect_cache)
        rc_factor = 1.0
        if tac.recovery_coefficient:
            rc_factor = 1.0 / float(tac.recovery_coefficient)
        clock.lap("kinetics")
        mass_g = _voi_mass_g(store, case, voi, tac, ct_cache)
        clock.lap("mass")
        model = None
        fit = None
        if chosen == "multi-point":
            err = None
            try:
                fit = fit_tac(tac.time_h, tac.activity_mbq, nuclide=nuclide)
            except InvalidInputError as exc:
                err = str(exc)
                notes.append(f"fit failed: {exc}")
            tia = None if fit is None else float(fit.tia_mbq_h)
            model = None if fit is None else fit.chosen.model
            fitted.append(
                voi_kinetics(
                    voi,
                    tac,
                    None if fit is None else fit.to_dict(),
                    administered_activity_mbq=activity,
                    review_flag=review_flag(voi),
                    error=err,
                    nuclide=nuclide,
                    recovery=None
                    if recovery is None
                    else f"shape-specific RC, Gaussian PSF FWHM {recovery.fwhm_mm:g} mm",
                    computed_at=now,
                )
            )
            dose = voi_dose.get(voi.voi_id)
            if dose is not None and rc_factor != 1.0:
                dose *= rc_factor
                notes.append(
                    f"voxel mean dose x 1/RC = {rc_factor:.3f} (partial-volume correction)"
                )
        else:
            k = (stp_time_point or len(tps)) - 1
            if not 0 <= k < len(tps):
                raise InvalidInputError(f"--stp-time-point must be 1..{len(tps)}")
            stp_method = protocol.methods.get("single-time-point", {}).get(
                "stp_method", "haenscheid"
            )
            r = stp_tia(stp_method, float(tac.time_h[k]), float(tac.activity_mbq[k]))
            tia = float(r.tia_mbq_h)
            model = f"stp-{stp_method}"
            stp = voi_kinetics(
                voi,
                tac,
                None,
                administered_activity_mbq=activity,
                review_flag=review_flag(voi),
                nuclide=nuclide,
                model_requested=model,
                computed_at=now,
            )
            stp_fit = {"method": stp_method, "time_point_index": k, "tia_mbq_h": tia}
            fitted.append(
                replace(stp, model=model, tia_mbq_h=tia, tiac_h=tia / activity, fit=stp_fit)
            )
            dose = None
            if mass_g:
                dose = tia * 3.6e9 * energy.non_penetrating_mev * 1.602176634e-13 / (mass_g * 1e-3)
                notes.append("organ-level self-dose, electrons local, photons neglected")
        clock.lap("kinetics")
        sphere = None
        if role == "lesion" and tia is not None and tac.volume_ml > 0:
            from dosimetry_core.dose.sphere_model import sphere_absorbed_fractions

            af = sphere_absorbed_fractions(nuclide)
            e_af, p_af = af.callables()
            sphere = sphere_model_dose_gy(
                tia, float(tac.volume_ml), nuclide, electron_af=e_af, photon_af=p_af
            )
            if dose is None:
                dose = sphere
        clock.lap("sphere_model")
        bed = eqd2 = None
        if dose is not None and tissue:
            bed, eqd2, bed_note = _bed(dose, tissue, fit, tac, nuclide)
            if bed_note:
                notes.append(bed_note)
        clock.lap("bed")
        sd = None
        budget: list[UncertaintyComponent] = []
        if dose is not None and tia and chosen == "multi-point" and fit is not None:
            sd, budget, unc_note = _uncertainty(fit, dose, tia, mass_g, defaults)
            if unc_note:
                notes.append(unc_note)
        clock.lap("uncertainty")
        rows.append(
            VoiRunResult(
                voi_id=voi.voi_id,
                voi_name=voi.name,
                role=role,
                organ_id=organ_id,
                review_flag=review_flag(voi),
                mass_g=mass_g,
                tia_mbq_h=tia,
                dose_gy=dose,
                dose_sd_gy=sd,
                bed_gy=bed,
                eqd2_gy=eqd2,
                tissue=tissue,
                model=model,
                method=chosen if chosen == "single-time-point" else f"voxel {dm}",
                sphere_model_dose_gy=sphere,
                uncertainty_budget=tuple(budget),
                notes=tuple(notes),
            )
        )
    organs: dict[str, OrganResult] = {}
    for organ in protocol.organs:
        parts = [r for r in rows if r.organ_id == organ.id]
        if not parts:
            continue
        dose = _mass_weighted(parts, "dose_gy")
        sd_vals = [r.dose_sd_gy for r in parts]
        organs[organ.id] = OrganResult(
            label=organ.label,
            vois=tuple(r.voi_name for r in parts),
            review_flags=tuple(r.review_flag for r in parts),
            mass_g=sum(r.mass_g or 0.0 for r in parts) or None,
            dose_gy=dose,
            dose_sd_gy=_mass_weighted(parts, "dose_sd_gy") if None not in sd_vals else None,
            bed_gy=_mass_weighted(parts, "bed_gy"),
            eqd2_gy=_mass_weighted(parts, "eqd2_gy"),
            dose_per_activity_gy_per_gbq=None if dose is None else dose / activity * 1e3,
        )
    previous = _previous_cycles(store, case, protocol.id)
    previous_organs = [c.protocol_run.organs for c in previous if c.protocol_run is not None]
    checks = _limit_checks(protocol, organs, previous_organs, risk_factors)
    next_cycle = _next_cycle(protocol, organs, rows, checks, activity)
    actor = getattr(store, "actor", None)
    kinetics = KineticsRecord(
        vois=tuple(fitted),
        created_by=user or str(getattr(actor, "username", "") or ""),
        source="protocol run",
    )
    result = ProtocolRun(
        case_id=case_id,
        protocol_id=protocol.id,
        method=chosen,
        dose_method=dm if chosen == "multi-point" else "organ-level",
        nuclide=nuclide,
        administered_activity_mbq=activity,
        vois=tuple(rows),
        organs=organs,
        limit_checks=tuple(checks),
        next_cycle=next_cycle,
        previous_cycle_cases=tuple(c.case_id for c in previous),
        warnings=tuple(warnings),
        computed_at=now,
        user=user,
        dose_map_id=dose_map_id,
        checklist=tuple(checklist(case, protocol)),
        kinetics_id=kinetics.result_id,
        dose_summary_id=dose_summary_id,
    )
    clock.lap("limits")
    check_cancel(cancel)

    def apply(latest: Case) -> None:
        latest.protocol = protocol.id
        record = kinetics
        live = {v.voi_id for v in latest.vois}
        current = latest.kinetics
        if current is not None:  # the other VOIs' stored kinetics stay current
            ids = {k.voi_id for k in fitted}
            kept = tuple(v for v in current.vois if v.voi_id in live and v.voi_id not in ids)
            record = replace(kinetics, vois=kept + kinetics.vois)
        latest.add_result(record)
        latest.add_result(result)

    # refused (StaleInputsError, nothing saved) if a VOI, an administration or a time
    # point was changed by anyone while the run computed
    save_results(
        store,
        inputs,
        apply,
        audit=store.audit_spec("protocol-run", protocol=protocol.id, method=chosen, user=user),
    )
    clock.lap("save")
    clock.finish()
    report(progress, 1.0, "protocol run done")
    return result


def _prefill_spect_cache(store: CaseRepository, case: Case) -> dict[str, Any]:
    """Every time point's SPECT on the reference CT grid, two resamples at a time.

    The same calls as ``voi_tac`` makes (``spect_on_reference(store, case, tp)``,
    keyed by time point id), run in threads because ``scipy.ndimage`` releases the
    GIL.  A time point whose resample fails is left out: ``voi_tac`` then tries it
    itself and reports the error as before.
    """
    import os
    from concurrent.futures import ThreadPoolExecutor

    from dosimetry_core.imaging.case_volumes import spect_on_reference
    from dosimetry_core.model.units import ImageUnits

    tps = [
        tp
        for tp in case.sorted_time_points()
        if tp.functional is not None
        and tp.functional.volume is not None
        and tp.units == ImageUnits.BQML
    ]
    workers = max(1, min(len(tps), 2, os.cpu_count() or 1))
    if len(tps) < 2 or workers < 2:
        return {}

    def one(tp: Any) -> Any:
        try:
            return spect_on_reference(store, case, tp)
        except Exception:  # voi_tac repeats the call and reports the error
            return None

    with ThreadPoolExecutor(max_workers=workers) as pool:
        vols = list(pool.map(one, tps))
    return {tp.time_point_id: v for tp, v in zip(tps, vols, strict=True) if v is not None}


def _voi_mass_g(
    store: CaseRepository, case: Any, voi: Any, tac: Any, ct_cache: dict[str, Any]
) -> float | None:
    """VOI mass (g) from the reference CT densities, else volume x 1.04 g/mL (soft tissue)."""
    from dosimetry_core.kinetics.tac import mask_on_reference, tac_reference_time_point
    from dosimetry_core.segmentation.mass import voi_mass_g

    ref = tac_reference_time_point(case)
    if ref.anatomical is not None and ref.anatomical.volume is not None:
        mask, geom = mask_on_reference(store, case, voi, ref)
        key = ref.time_point_id
        if key not in ct_cache:
            ct_cache[key] = store.load_volume(ref.anatomical.volume)
        ct = ct_cache[key]
        if ct.geometry.same_grid(geom):
            return voi_mass_g(mask, ct)
    return float(tac.volume_ml) * 1.04 if tac.volume_ml else None


def _bed(
    dose_gy: float, tissue: str, fit: Any, tac: Any, nuclide: str
) -> tuple[float | None, float | None, str | None]:
    """BED and EQD2 (Gy) with the dose rate following the fitted curve.

    Without a fit (single time point) the delivery is taken mono-exponential with
    the effective half-life of the Hänscheid 2018 assumption (TIA = A(t) 2t/ln2:
    T_eff = t) for the time of the scan.
    """
    from dosimetry_core.radiobiology.bed import bed_from_tac, bed_mono_exponential, eqd2_gy
    from dosimetry_core.radiobiology.tissues import tissue_parameters

    tp = tissue_parameters(tissue)
    if fit is not None:
        try:
            r = bed_from_tac(dose_gy, fit, tp.alpha_beta_gy, tp.t_repair_h)
            return float(r.bed_gy), float(r.eqd2_gy), None
        except InvalidInputError as exc:
            return None, None, f"no BED: {exc}"
    t_eff_h = float(tac.time_h[-1])
    bed = float(bed_mono_exponential(dose_gy, t_eff_h, tp.alpha_beta_gy, tp.t_repair_h))
    eq = float(eqd2_gy(bed, tp.alpha_beta_gy))
    return bed, eq, f"BED with mono-exponential delivery, T_eff = {t_eff_h:g} h (Hänscheid)"


def _uncertainty(
    fit: Any, dose_gy: float, tia_mbq_h: float, mass_g: float | None, defaults: dict[str, Any]
) -> tuple[float | None, list[UncertaintyComponent], str | None]:
    """Dose SD and budget by Gear et al. 2018 with the protocol's default input SDs."""
    from dosimetry_core.uncertainty.budget import UncertaintyInputs, dose_uncertainty_from_fit

    keys = (
        "calibration_rel_sd",
        "recovery_rel_sd",
        "volume_rel_sd",
        "activity_rel_sd",
        "s_value_rel_sd",
        "recovery_volume_slope",
        "source",
    )
    inputs = UncertaintyInputs(**{k: defaults[k] for k in keys if k in defaults})
    try:
        u = dose_uncertainty_from_fit(
            fit, dose_per_tia_gy_per_mbq_h=dose_gy / tia_mbq_h, inputs=inputs, mass_g=mass_g
        )
    except InvalidInputError as exc:
        return None, [], f"no uncertainty: {exc}"
    budget = [
        UncertaintyComponent(c.name, float(c.rel_sd), float(c.variance_fraction))
        for c in u.contributions
    ]
    return float(u.rel_sd * dose_gy), budget, f"uncertainty inputs: {inputs.source}"


def _limit_checks(
    protocol: Any,
    organs: Mapping[str, OrganResult],
    previous: Sequence[Mapping[str, OrganResult]],
    risk: bool,
) -> list[LimitCheck]:
    """Every applicable limit of the protocol; ``previous``: organs of the earlier cycles' runs."""
    checks = []
    for organ in protocol.organs:
        if organ.id not in organs:
            continue
        for lim in organ.limits:
            if bool(lim.when) != risk and any(
                other.quantity == lim.quantity and bool(other.when) == risk
                for other in organ.limits
            ):
                continue  # the other variant of this limit applies
            this = organs[organ.id].value(lim.quantity)
            if this is None:
                continue
            prev = 0.0
            if lim.scope == "cumulative":
                for earlier in previous:
                    o = earlier.get(organ.id)
                    prev += float((o.value(lim.quantity) if o is not None else None) or 0.0)
            value = float(this) + prev
            checks.append(
                LimitCheck(
                    organ_id=organ.id,
                    quantity=lim.quantity,
                    scope=lim.scope,
                    limit=lim.value,
                    value=value,
                    this_cycle=float(this),
                    previous_cycles=prev,
                    fraction_of_limit=value / lim.value,
                    passed=value <= lim.value,
                    source=lim.source,
                    when=lim.when or None,
                )
            )
    return checks


def _next_cycle(
    protocol: Any,
    organs: Mapping[str, OrganResult],
    rows: Sequence[VoiRunResult],
    checks: Sequence[LimitCheck],
    activity_mbq: float,
) -> NextCycle:
    """Largest next-cycle activity (MBq) keeping every cumulative limit (EANM level 3).

    ``activity_mbq`` is this cycle's **net** administered activity, so the doses per
    activity and the activity returned are net administered activities too.

    Assumes the same doses per activity and the same kinetics as this cycle.  A
    dose limit allows ``(limit - cumulative) / (dose per MBq)``.  A BED limit with
    ``BED = D + q D^2`` (``q`` from this cycle's organ values, the Lea-Catcheside
    form: Dale 1985) allows the dose ``D = 2B / (1 + sqrt(1 + 4 q B))`` for the
    remaining BED ``B`` (cycles weeks apart: complete repair, BEDs add).
    """
    limits: dict[str, float] = {}
    for c in checks:
        if c.scope != "cumulative":
            continue
        organ = organs[c.organ_id]
        d = organ.dose_gy
        if not d or d <= 0:
            continue
        per_mbq = d / activity_mbq
        remaining = c.limit - c.value
        if remaining <= 0:
            limits[f"{c.organ_id} {c.quantity}"] = 0.0
            continue
        if c.quantity == "dose_gy":
            allowed = remaining
        else:
            this = organ.value(c.quantity)
            if this is None:
                continue
            if c.quantity == "eqd2_gy":
                continue  # EQD2 limits are converted through BED by the user
            q = max((float(this) - d) / d**2, 0.0)
            allowed = 2.0 * remaining / (1.0 + math.sqrt(1.0 + 4.0 * q * remaining))
        limits[f"{c.organ_id} {c.quantity}"] = allowed / per_mbq
    if not limits:
        return NextCycle(activity_mbq=None, binding=None, limits={}, reason="no limit applies")
    binding = min(limits, key=lambda k: limits[k])
    return NextCycle(
        activity_mbq=limits[binding],
        binding=binding,
        limits=limits,
        assumption="same kinetics and doses per activity as this cycle (net administered activity)",
    )
