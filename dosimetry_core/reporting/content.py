"""Everything the dose report states, gathered from the case: canonical and JSON-safe.

:func:`build_report_content` reads the case's protocol run
(``case.extra["protocol_run"]``, :mod:`dosimetry_core.pipeline.protocol_run`), its
kinetics (``case.extra["kinetics"]``; TACs not stored there are measured again for
the report, without recovery correction, and marked so), the current dose map (for
the DVHs) and the population of earlier cases (:mod:`~dosimetry_core.reporting.population`).

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

REPORT_FORMAT = "mrt-dose-report/1"
DVH_BINS = 60
"""Equal dose bins of the DVHs kept in the report (cumulative, volume-weighted)."""


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


def _eanm_level(protocol: Any, run: dict[str, Any]) -> dict[str, Any]:
    """The EANM level the report documents, with the protocol's description of it.

    Level 2 (patient-specific dosimetry of this cycle) whenever the run computed
    patient doses; level 3 when it also gives the activity of the next cycle from
    this cycle's doses per activity (treatment planning); level descriptions come
    from the protocol file (Sjögreen Gleisner et al. 2022, EJNMMI 49:1778).
    """
    level = "2"
    reason = f"patient-specific dosimetry of this cycle ({run.get('method')})"
    nc = run.get("next_cycle") or {}
    if nc.get("activity_mbq") is not None:
        level = "3"
        reason += "; next-cycle activity planned from this cycle's doses per activity"
    levels = getattr(protocol, "eanm_levels", {}) or {}
    return {"level": level, "description": levels.get(level, ""), "reason": reason}


def _volume_entry(role: str, ref: Any) -> dict[str, Any]:
    return {"role": role, "key": ref.key, "dtype": ref.dtype}


def _kinetics_section(store: Any, case: Any, run: dict[str, Any]) -> dict[str, Any]:
    from dosimetry_core.pipeline.kinetics import KINETICS_KEY

    stored = case.extra.get(KINETICS_KEY) or {}
    out: dict[str, Any] = {}
    by_id = {v.voi_id: v for v in case.vois}
    for row in run.get("vois") or []:
        vid = row["voi_id"]
        k = stored.get(vid)
        if k is not None:
            tac = k.get("tac") or {}
            out[vid] = {
                "voi_name": row["voi_name"],
                "source": "stored kinetics (mrtdose kinetics)",
                "computed_at": k.get("computed_at"),
                "recovery": k.get("recovery"),
                "time_h": tac.get("time_h"),
                "activity_mbq": tac.get("activity_mbq"),
                "model": k.get("model"),
                "parameters": k.get("parameters"),
                "tia_mbq_h": k.get("tia_mbq_h"),
                "tia_sd_mbq_h": k.get("tia_sd_mbq_h"),
                "half_lives_h": (k.get("fit") or {}).get("half_lives_h"),
                "injection_time_h": (k.get("fit") or {}).get("injection_time_h", 0.0),
            }
            continue
        voi = by_id.get(vid)
        if voi is None:
            continue
        out[vid] = _measure_kinetics(store, case, voi, row)
    return out


def _measure_kinetics(store: Any, case: Any, voi: Any, row: dict[str, Any]) -> dict[str, Any]:
    """TAC and fit of a VOI whose kinetics are not stored (not saved in the case)."""
    from dosimetry_core.errors import DosimetryError
    from dosimetry_core.kinetics.fitting import fit_tac
    from dosimetry_core.kinetics.tac import voi_tac

    entry: dict[str, Any] = {
        "voi_name": row["voi_name"],
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


def _dvh_section(store: Any, case: Any, run: dict[str, Any]) -> dict[str, Any]:
    """Cumulative volume DVH per VOI of the run on its dose map (Gy, fraction of volume)."""
    from dosimetry_core.dose.dvh import dose_volume_histogram
    from dosimetry_core.errors import DosimetryError
    from dosimetry_core.pipeline.dose import voi_masks_on_grid

    map_id = run.get("dose_map_id")
    if not map_id:
        return {}
    try:
        dmap = case.find_derived(map_id)
    except KeyError:
        return {}
    dose = store.load_volume(dmap.volume)
    ids = {r["voi_id"] for r in run.get("vois") or []}
    vois = [v for v in case.vois if v.voi_id in ids]
    try:
        masks = voi_masks_on_grid(store, case, vois, dose.geometry)
    except DosimetryError:
        return {}
    out: dict[str, Any] = {}
    for v in vois:
        m = masks.get(v.voi_id)
        if m is None or not m.any():
            continue
        h = dose_volume_histogram(dose.array, m, dose.geometry.spacing_mm, n_bins=DVH_BINS)
        out[v.voi_id] = {
            "voi_name": v.name,
            "dose_gy": [float(x) for x in h.bin_edges_gy],
            "volume_fraction": [float(x) for x in h.cumulative_fraction],
            "volume_ml": float(h.volume_ml),
            "weighting": "volume",
        }
    return out


def _file_sha256(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return sha256_hex(f.read())
    except OSError:
        return None


def _inputs_manifest(case: Any, run: dict[str, Any], protocol: Any) -> dict[str, Any]:
    from dosimetry_core.pipeline.kinetics import KINETICS_KEY

    volumes: list[dict[str, Any]] = []
    for tp in case.sorted_time_points():
        label = tp.label or tp.time_point_id
        if tp.functional.volume is not None:
            volumes.append(_volume_entry(f"{tp.modality} {label}", tp.functional.volume))
        if tp.anatomical is not None and tp.anatomical.volume is not None:
            volumes.append(_volume_entry(f"CT {label}", tp.anatomical.volume))
    ids = {r["voi_id"] for r in run.get("vois") or []}
    for v in case.vois:
        if v.voi_id in ids:
            volumes.append(_volume_entry(f"mask {v.name}", v.mask))
    map_id = run.get("dose_map_id")
    if map_id:
        try:
            dmap = case.find_derived(map_id)
            volumes.append(_volume_entry(f"dose map {map_id}", dmap.volume))
            tia_id = dmap.provenance.get("tia_map_id")
            if tia_id:
                volumes.append(_volume_entry(f"TIA map {tia_id}", case.find_derived(tia_id).volume))
        except KeyError:
            pass
    kin = case.extra.get(KINETICS_KEY) or {}
    results = {
        "protocol_run_sha256": sha256_hex(canonical_json(run)),
        "kinetics_sha256": sha256_hex(canonical_json({k: kin[k] for k in sorted(kin) if k in ids})),
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


def build_report_content(store: Any, case_id: str, *, population: bool = True) -> dict[str, Any]:
    """Everything the report of ``case_id`` states (module docstring), canonical and JSON-safe.

    Parameters
    ----------
    store
        A :class:`~dosimetry_core.store.CaseStore`.
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
    from dosimetry_core.pipeline.protocol_run import RUN_KEY
    from dosimetry_core.protocols.registry import load_protocol
    from dosimetry_core.reporting.population import population_ranges

    case = store.load_case(case_id)
    run = case.extra.get(RUN_KEY)
    if not run:
        raise InvalidInputError(
            f"case {case_id} has no protocol run: run it first "
            f"(mrtdose run {case_id} --protocol ID)"
        )
    protocol = load_protocol(run["protocol"])
    p = case.patient
    adm = case.first_administration
    t0 = adm.time if adm is not None else None
    a_gbq = float(run["administered_activity_mbq"]) / 1e3
    vois = []
    for r in run.get("vois") or []:
        row = dict(r)
        d = row.get("dose_gy")
        row["dose_per_activity_gy_per_gbq"] = None if d is None else float(d) / a_gbq
        vois.append(row)
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
            "nuclide": run.get("nuclide"),
            "radiopharmaceutical": (adm.radiopharmaceutical if adm else "") or "",
            "cycle": adm.cycle if adm else None,
            "administered_activity_mbq": run.get("administered_activity_mbq"),
            "previous_cycle_cases": run.get("previous_cycle_cases") or [],
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
            "method": run.get("method"),
            "dose_method": run.get("dose_method"),
            "computed_at": run.get("computed_at"),
            "computed_by": run.get("user"),
            "uncertainty": "EANM guidance, Gear et al. 2018, Eur J Nucl Med Mol Imaging 45:2456 "
            "(dose +- 1 SD)",
            "uncertainty_inputs": protocol.uncertainty_defaults.get("source", ""),
            "radiobiology": "BED by the Lea-Catcheside form for the fitted dose-rate curve; "
            "EQD2 = BED / (1 + 2/(alpha/beta))",
            "sources": list(protocol.sources),
        },
        "organs": run.get("organs") or {},
        "vois": vois,
        "limit_checks": run.get("limit_checks") or [],
        "all_limits_passed": run.get("all_limits_passed"),
        "next_cycle": run.get("next_cycle") or {},
        "warnings": run.get("warnings") or [],
        "checklist": run.get("checklist") or [],
        "kinetics": _kinetics_section(store, case, run),
        "dvh": _dvh_section(store, case, run),
        "population": population_ranges(store, case_id) if population else None,
        "inputs": _inputs_manifest(case, run, protocol),
    }
    safe: dict[str, Any] = json.loads(canonical_json(content))
    return safe
