"""Population ranges: absorbed dose per administered activity (Gy/GBq) per organ and protocol.

Collected results build population distributions per therapy and organ (EFOMP:
registries, "normal ranges"), against which a new patient is shown (PHYSICS.md
section 8).  For every other patient's case of the same protocol the organ value is
taken from its newest **signed** report when there is one, otherwise from the
case's current protocol run (``case.protocol_run``, a typed
:class:`~dosimetry_core.model.results.ProtocolRun`), and every value says which.
Gy/GBq is per **net** administered activity (syringe minus residual,
decay-corrected to the administration time) for runs made by this version;
signed reports keep the figure they were signed with.
Cases of the same patient (earlier or later cycles) are left out: the population is
of other patients.

Percentile rank
---------------
The patient's percentile among the ``n`` population values ``x_i`` is the "mean"
percentile rank::

    P = 100 * (#{x_i < x} + 0.5 * #{x_i == x}) / n

(the definition of ``scipy.stats.percentileofscore(kind="mean")``; it is the
midpoint of the "strict" and "weak" ranks, so a value equal to the only
population value is at the 50th percentile).  Example: population 0.4 and
0.8 Gy/GBq; a patient at 0.6 Gy/GBq is at P = 100 * (1 + 0) / 2 = 50; at
0.4 Gy/GBq, P = 100 * (0 + 0.5) / 2 = 25.
"""

from __future__ import annotations

import json
from typing import Any

from dosimetry_core.store.report_rows import newest_reports_with_status
from dosimetry_core.store.repository import CaseRepository

SOURCE_SIGNED = "signed report"
SOURCE_RUN = "protocol run (not signed)"


def percentile_rank(value: float, population: list[float]) -> float | None:
    """Mean percentile rank (%) of ``value`` among ``population`` (module docstring).

    Returns
    -------
    float or None
        In [0, 100]; None for an empty population.
    """
    if not population:
        return None
    below = sum(1 for x in population if x < value)
    equal = sum(1 for x in population if x == value)
    return 100.0 * (below + 0.5 * equal) / len(population)


def _signed_organs(
    store: CaseRepository, case_ids: list[str]
) -> dict[str, tuple[str, dict[str, Any]]]:
    """Per case id: (report id, organs) of its newest fully signed report."""
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    for case_id, row in newest_reports_with_status(store, case_ids, "signed").items():
        try:
            organs = json.loads(row.content_json).get("organs") or {}
        except ValueError:
            continue
        out[case_id] = (row.report_id, organs)
    return out


def population_ranges(store: CaseRepository, case_id: str) -> dict[str, Any]:
    """The case's organ Gy/GBq against the other patients' cases of the same protocol.

    Parameters
    ----------
    store
        The case store.
    case_id
        The patient's case (its protocol run gives the protocol and the values).

    Returns
    -------
    dict
        ``{"protocol", "quantity": "dose_per_activity_gy_per_gbq", "unit": "Gy/GBq",
        "definition", "organs": {organ_id: {"label", "value_gy_per_gbq", "n",
        "n_signed", "n_unsigned", "min", "median", "max", "percentile",
        "population": [{"case_id", "value_gy_per_gbq", "source", "report_id"}]}}}``.
        ``percentile`` is None without population values or without the patient's
        value.
    """
    from statistics import median

    case = store.load_case(case_id)
    run = case.protocol_run
    protocol = str((run.protocol_id if run is not None else "") or case.protocol or "")
    mine = {k: o.to_dict() for k, o in run.organs.items()} if run is not None else {}
    others = [
        s
        for s in store.list_cases()
        if s.case_id != case_id
        and s.protocol == protocol
        and s.patient_id != case.patient.patient_id
    ]
    signed = _signed_organs(store, [s.case_id for s in others])
    values: dict[str, list[dict[str, Any]]] = {}
    for s in others:
        if s.case_id in signed:
            rid, organs = signed[s.case_id]
            source, report_id = SOURCE_SIGNED, rid
        else:
            o_run = store.load_case(s.case_id).protocol_run
            if o_run is None or o_run.protocol_id != protocol:
                continue
            organs = {k: o.to_dict() for k, o in o_run.organs.items()}
            source, report_id = SOURCE_RUN, None
        for organ_id, o in organs.items():
            v = o.get("dose_per_activity_gy_per_gbq")
            if v is None:
                continue
            values.setdefault(organ_id, []).append(
                {
                    "case_id": s.case_id,
                    "value_gy_per_gbq": float(v),
                    "source": source,
                    "report_id": report_id,
                }
            )
    out: dict[str, Any] = {}
    for organ_id in sorted(set(mine) | set(values)):
        pop = sorted(values.get(organ_id, []), key=lambda r: (r["value_gy_per_gbq"], r["case_id"]))
        xs = [r["value_gy_per_gbq"] for r in pop]
        v = (mine.get(organ_id) or {}).get("dose_per_activity_gy_per_gbq")
        label = (mine.get(organ_id) or {}).get("label") or organ_id
        out[organ_id] = {
            "label": label,
            "value_gy_per_gbq": None if v is None else float(v),
            "n": len(xs),
            "n_signed": sum(1 for r in pop if r["source"] == SOURCE_SIGNED),
            "n_unsigned": sum(1 for r in pop if r["source"] == SOURCE_RUN),
            "min": min(xs) if xs else None,
            "median": float(median(xs)) if xs else None,
            "max": max(xs) if xs else None,
            "percentile": None if v is None else percentile_rank(float(v), xs),
            "population": pop,
        }
    return {
        "protocol": protocol,
        "quantity": "dose_per_activity_gy_per_gbq",
        "unit": "Gy/GBq",
        "definition": "mean percentile rank 100*(#below + 0.5*#equal)/n among other patients' "
        "cases of the same protocol (newest signed report, else the unsigned protocol run)",
        "organs": out,
    }
