"""Everything the dose report states, gathered from the case: canonical and JSON-safe.

:func:`build_report_content` reads the typed records of the case
(:mod:`dosimetry_core.model.results`): the current protocol run
(``case.protocol_run``), the kinetics that run fitted (its ``kinetics_id``, else
the case's current kinetics record: the report never fits again when a fit is
stored; a VOI without a stored fit is measured and fitted for the report, without
recovery correction, and the report says so in its source and its warnings), the
DVHs of the run's dose summary, and the population of earlier cases
(:mod:`~dosimetry_core.reporting.population`).  Gy/GBq figures divide by the run's
**net** administered activity (syringe minus residual, decay-corrected to the
administration time).

Sections (keys of the returned dict): ``format``, ``patient``, ``therapy``
(protocol, nuclide, EANM level), ``administrations``, ``time_points``, ``methods``
(software name and version, dose method, kinetics, uncertainty inputs, sources),
``organs``, ``vois`` (one row per VOI with its review flag), ``limit_checks``,
``all_limits_passed``, ``next_cycle``, ``kinetics``, ``dvh``, ``population``,
``warnings``, ``checklist`` and ``inputs`` (the manifest: content keys of every
volume, SHA-256 of every stored result the numbers come from).

Canonical form
--------------
:func:`canonical_json` is ``json.dumps`` with sorted keys, no spaces, UTF-8, and no
NaN/Infinity (non-finite numbers are ``null``); Python writes floats with the
shortest repr that reads back to the same double, so parsing and re-serialising
gives the same bytes and :func:`sha256_hex` of it is a stable content hash.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from datetime import date, datetime
from typing import Any

import numpy as np

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.model import Case
from dosimetry_core.model.results import KineticsRecord, ProtocolRun, VoiKinetics
from dosimetry_core.store.repository import CaseRepository

REPORT_FORMAT = "mrt-dose-report/1"


def json_safe(x: Any) -> Any:
    """Copy of ``x`` that :func:`canonical_json` accepts (non-finite -> None, dates -> ISO)."""
    if isinstance(x, dict):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [json_safe(v) for v in x]
    if isinstance(x, bool) or x is None or isinstance(x, str | int):
        return x
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, np.bool_):
        return bool(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        return json_safe(float(x))
    if isinstance(x, datetime | date):
        return x.isoformat()
    if isinstance(x, np.ndarray):
        return json_safe(x.tolist())
    return str(x)


def canonical_json(obj: Any) -> str:
    """Canonical JSON text of ``obj`` (module docstring)."""
    return json.dumps(
        json_safe(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def sha256_hex(text: str | bytes) -> str:
    """Lowercase hex SHA-256 of ``text`` (UTF-8 when a str)."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()


def _eanm_level(protocol: Any, run: ProtocolRun) -> dict[str, Any]:
    """The EANM level the report documents, with the protocol's description of it.

    Level 2 (patient-specific dosimetry of this cycle) whenever the run computed
    patient doses; level 3 when it also gives the activity of the next cycle from
    this cycle's doses per activity (treatment planning); level descriptions come
    from the protocol file (Sjögreen Gleisner et al. 2022, EJNMMI 49:1778).
    """
    level = "2"
    reason = f"patient-specific dosimetry of this cycle ({run.method})"
    if run.next_cycle.activity_mbq is not None:
        level = "3"
        reason += "; next-cycle activity planned from this cycle's doses per activity"
    levels = getattr(protocol, "eanm_levels", {}) or {}
    return {"level": level, "description": levels.get(level, ""), "reason": reason}


def _volume_entry(role: str, ref: Any) -> dict[str, Any]:
    return {"role": role, "key": ref.key, "dtype": ref.dtype}


def _run_kinetics(case: Case, run: ProtocolRun) -> KineticsRecord | None:
    """The kinetics record the run fitted (by id), else the case's current one."""
    if run.kinetics_id:
        try:
            rec = case.find_result(run.kinetics_id)
        except KeyError:
            rec = None
        if isinstance(rec, KineticsRecord):
            return rec
    return case.kinetics


def _stored_entry(k: VoiKinetics, source: str) -> dict[str, Any]:
    return {
        "voi_name": k.voi_name,
        "source": source,
        "computed_at": k.computed_at,
        "recovery": k.recovery,
        "time_h": list(k.tac.time_h),
        "activity_mbq": list(k.tac.activity_mbq),
        "model": k.model,
        "parameters": {p.name: p.to_dict() for p in k.parameters} if k.parameters else None,
        "tia_mbq_h": k.tia_mbq_h,
        "tia_sd_mbq_h": k.tia_sd_mbq_h,
        "tiac_h": k.tiac_h,
        "administered_activity_definition": k.administered_activity_definition,
        "half_lives_h": {n: {"value": v, "unit": "h"} for n, v in k.half_lives_h} or None,
        "injection_time_h": k.injection_time_h,
        **({"error": k.error} if k.error else {}),
    }


def _kinetics_section(
    store: CaseRepository, case: Case, run: ProtocolRun, warnings: list[str]
) -> dict[str, Any]:
    """Per VOI of the run: its stored kinetics; measured (and said so) only when none is stored."""
    record = _run_kinetics(case, run)
    source = (
        "stored kinetics ("
        + (
            "fitted by mrtdose run"
            if record and record.source == "protocol run"
            else "mrtdose kinetics"
        )
        + ")"
    )
    out: dict[str, Any] = {}
    by_id = {v.voi_id: v for v in case.vois}
    measured = []
    for row in run.vois:
        k = None if record is None else record.voi(row.voi_id)
        if k is not None:
            out[row.voi_id] = _stored_entry(k, source)
            continue
        voi = by_id.get(row.voi_id)
        if voi is None:
            continue
        out[row.voi_id] = _measure_kinetics(store, case, voi, row.voi_name)
        measured.append(row.voi_name)
    if measured:
        warnings.append(
            "kinetics not stored for " + ", ".join(measured) + ": TACs measured and fitted for "
            "this report without recovery correction (run 'mrtdose kinetics' or 'mrtdose run' "
            "to store them)"
        )
    return out


def _measure_kinetics(store: CaseRepository, case: Case, voi: Any, voi_name: str) -> dict[str, Any]:
    """TAC and fit of a VOI whose kinetics are not stored (not saved in the case)."""
    from dosimetry_core.errors import DosimetryError
    from dosimetry_core.kinetics.fitting import fit_tac
    from dosimetry_core.kinetics.tac import voi_tac

    entry: dict[str, Any] = {
        "voi_name": voi_name,
        "source": "measured for the report (no recovery correction; kinetics not stored)",
    }
    try:
        tac = voi_tac(store, case, voi)
        entry["time_h"] = [float(t) for t in tac.time_h]
        entry["activity_mbq"] = [float(a) for a in tac.activity_mbq]
        adm = case.first_administration
        fit = fit_tac(tac.time_h, tac.activity_mbq, nuclide=adm.nuclide if adm else "")
        d = fit.to_dict()
        entry.update(
            model=d.get("model"),
            parameters=d.get("parameters"),
            tia_mbq_h=d.get("tia_mbq_h"),
            tia_sd_mbq_h=d.get("tia_sd_mbq_h"),
            half_lives_h=d.get("half_lives_h"),
            injection_time_h=d.get("injection_time_h", 0.0),
        )
    except DosimetryError as exc:
        entry["error"] = str(exc)
    return entry


def _dvh_section(case: Case, run: ProtocolRun, warnings: list[str]) -> dict[str, Any]:
    """Cumulative DVH per VOI of the run, from its stored dose summary (Gy, fraction of volume)."""
    if not run.dose_map_id:
        return {}
    summary = case.dose_summary(run.dose_map_id)
    ids = {r.voi_id for r in run.vois}
    out: dict[str, Any] = {}
    missing = []
    for v in summary.vois if summary is not None else ():
        if v.voi_id not in ids:
            continue
        if v.dvh is None:
            missing.append(v.voi_name)
            continue
        out[v.voi_id] = {
            "voi_name": v.voi_name,
            "dose_gy": list(v.dvh.bin_edges_gy),
            "volume_fraction": list(v.dvh.cumulative_fraction),
            "volume_ml": v.dvh.volume_ml,
            "weighting": "mass" if v.dvh.mass_weighted else "volume",
        }
    if summary is None or missing:
        warnings.append(
            "no stored DVH for "
            + (", ".join(missing) if missing else "the run's dose map")
            + " (a run made before DVHs were stored): run the protocol again for the DVH"
        )
    return out


def _file_sha256(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return sha256_hex(f.read())
    except OSError:
        return None


def _inputs_manifest(case: Case, run: ProtocolRun, protocol: Any) -> dict[str, Any]:
    volumes: list[dict[str, Any]] = []
    for tp in case.sorted_time_points():
        label = tp.label or tp.time_point_id
        if tp.functional.volume is not None:
            volumes.append(_volume_entry(f"{tp.modality} {label}", tp.functional.volume))
        if tp.anatomical is not None and tp.anatomical.volume is not None:
            volumes.append(_volume_entry(f"CT {label}", tp.anatomical.volume))
    ids = {r.voi_id for r in run.vois}
    for v in case.vois:
        if v.voi_id in ids:
            volumes.append(_volume_entry(f"mask {v.name}", v.mask))
    map_id = run.dose_map_id
    if map_id:
        try:
            dmap = case.find_derived(map_id)
            volumes.append(_volume_entry(f"dose map {map_id}", dmap.volume))
            tia_id = dmap.provenance.get("tia_map_id")
            if tia_id:
                volumes.append(_volume_entry(f"TIA map {tia_id}", case.find_derived(tia_id).volume))
        except KeyError:
            pass
    record = _run_kinetics(case, run)
    kin = {} if record is None else {k.voi_id: k.to_dict() for k in record.vois if k.voi_id in ids}
    results = {
        "protocol_run_sha256": sha256_hex(canonical_json(run.to_dict())),
        "kinetics_sha256": sha256_hex(canonical_json(kin)),
        "protocol_file": os.path.basename(protocol.path),
        "protocol_sha256": _file_sha256(protocol.path),
    }
    return {
        "case_id": case.case_id,
        "case_version": case.version,
        "dose_map_id": map_id,
        "volumes": volumes,
        "results": results,
    }


def build_report_content(
    store: CaseRepository, case_id: str, *, population: bool = True
) -> dict[str, Any]:
    """Everything the report of ``case_id`` states (module docstring), canonical and JSON-safe.

    Parameters
    ----------
    store
        The case store.
    case_id
        A case run under a protocol (``mrtdose run``).
    population
        Include the population ranges (reads every case of the protocol).

    Returns
    -------
    dict
        JSON-safe; ``canonical_json`` of it is stable.

    Raises
    ------
    InvalidInputError
        If the case has no protocol run.
    """
    from dosimetry_core import __version__
    from dosimetry_core.protocols.registry import load_protocol
    from dosimetry_core.reporting.population import population_ranges

    case = store.load_case(case_id)
    run = case.protocol_run
    if run is None:
        raise InvalidInputError(
            f"case {case_id} has no protocol run: run it first "
            f"(mrtdose run {case_id} --protocol ID)"
        )
    protocol = load_protocol(run.protocol_id)
    p = case.patient
    adm = case.first_administration
    t0 = adm.time if adm is not None else None
    a_gbq = run.administered_activity_mbq / 1e3  # net administered activity
    vois = []
    for r in run.vois:
        row = r.to_dict()
        row["dose_per_activity_gy_per_gbq"] = None if r.dose_gy is None else r.dose_gy / a_gbq
        vois.append(row)
    warnings = list(run.warnings)
    kinetics = _kinetics_section(store, case, run, warnings)
    dvh = _dvh_section(case, run, warnings)
    content: dict[str, Any] = {
        "format": REPORT_FORMAT,
        "patient": {
            "patient_id": p.patient_id,
            "name": p.name.replace("^", ", ").strip(", "),
            "birth_date": p.birth_date,
            "sex": p.sex,
            "weight_kg": p.weight_kg,
            "height_cm": p.height_cm,
        },
        "case": {"case_id": case.case_id, "description": case.description},
        "therapy": {
            "protocol": protocol.id,
            "protocol_name": protocol.name,
            "nuclide": run.nuclide,
            "radiopharmaceutical": (adm.radiopharmaceutical if adm else "") or "",
            "cycle": adm.cycle if adm else None,
            "administered_activity_mbq": run.administered_activity_mbq,
            "administered_activity_definition": run.administered_activity_definition,
            "previous_cycle_cases": list(run.previous_cycle_cases),
            "eanm_level": _eanm_level(protocol, run),
        },
        "administrations": [
            {
                "nuclide": a.nuclide,
                "activity_mbq": a.activity_mbq,
                "time": a.time,
                "radiopharmaceutical": a.radiopharmaceutical,
                "route": a.route,
                "residual_activity_mbq": a.residual_activity_mbq,
                "cycle": a.cycle,
            }
            for a in sorted(case.administrations, key=lambda a: a.time)
        ],
        "time_points": [
            {
                "label": tp.label,
                "acquired_at": tp.acquired_at,
                "time_h": None if t0 is None else tp.hours_after(t0),
                "modality": tp.modality,
                "registration": None if tp.registration is None else str(tp.registration.status),
            }
            for tp in case.sorted_time_points()
        ],
        "methods": {
            "software": {"name": "mrt-dosimetry (dosimetry_core)", "version": __version__},
            "method": run.method,
            "dose_method": run.dose_method,
            "computed_at": run.computed_at,
            "computed_by": run.user,
            "uncertainty": "EANM guidance, Gear et al. 2018, Eur J Nucl Med Mol Imaging 45:2456 "
            "(dose +- 1 SD)",
            "uncertainty_inputs": protocol.uncertainty_defaults.get("source", ""),
            "radiobiology": "BED by the Lea-Catcheside form for the fitted dose-rate curve; "
            "EQD2 = BED / (1 + 2/(alpha/beta))",
            "sources": list(protocol.sources),
        },
        "organs": {k: o.to_dict() for k, o in run.organs.items()},
        "vois": vois,
        "limit_checks": [c.to_dict() for c in run.limit_checks],
        "all_limits_passed": run.all_limits_passed,
        "next_cycle": run.next_cycle.to_dict(),
        "warnings": warnings,
        "checklist": [dict(c) for c in run.checklist],
        "kinetics": kinetics,
        "dvh": dvh,
        "population": population_ranges(store, case_id) if population else None,
        "inputs": _inputs_manifest(case, run, protocol),
    }
    safe: dict[str, Any] = json.loads(canonical_json(content))
    return safe
