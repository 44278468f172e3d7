"""Remove a time point imported by mistake (a hostile or wrong series), audited.

A time point that should never have been imported (a wrong patient's scan, a
series with a broken calibration) is taken out of its case with
:func:`remove_time_point`: the reason is required and written to the audit
trail with what was removed.  Everything computed from the case's time points
is then out of date and is marked superseded, as the case model does when
results are recomputed (:meth:`dosimetry_core.model.case.Case.add_result`):
kinetics, dose summaries and protocol runs (all of them use every time point
through the time-activity curves) and derived maps (TIA and dose maps).  The
VOIs drawn on the removed time point go with it.  Signed reports stay as they
were signed (they are records); the ones of the case are named in the audit
entry so a reviewer sees which reports used the removed data.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from dosimetry_core.errors import InvalidInputError, PermissionDeniedError
from dosimetry_core.pipeline.importing import relabel_time_points
from dosimetry_core.store.permissions import Actor
from dosimetry_core.store.repository import CaseRepository

__all__ = ["RemovedTimePoint", "remove_time_point"]

#: Shortest accepted reason (characters): a word or two is not an explanation.
MIN_REASON_CHARS = 5


@dataclass(frozen=True)
class RemovedTimePoint:
    """What :func:`remove_time_point` did."""

    case_id: str
    time_point_id: str
    label: str
    version: int
    vois_removed: list[str] = field(default_factory=list)
    results_superseded: list[str] = field(default_factory=list)
    derived_superseded: list[str] = field(default_factory=list)
    signed_reports: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "time_point_id": self.time_point_id,
            "label": self.label,
            "removed": True,
            "version": self.version,
            "vois_removed": list(self.vois_removed),
            "results_superseded": list(self.results_superseded),
            "derived_superseded": list(self.derived_superseded),
            "signed_reports": list(self.signed_reports),
        }


def _check_actor(store: CaseRepository, actor: Actor | None) -> None:
    from dosimetry_core.store.permissions import require

    has_users = getattr(store, "has_users", None)
    if has_users is None or not has_users():
        return
    if actor is None:
        raise PermissionDeniedError("this store has user accounts: log in to remove a time point")
    logged_in = getattr(store, "actor", None)
    if logged_in is not None and getattr(logged_in, "username", None) != getattr(
        actor, "username", None
    ):
        raise PermissionDeniedError(
            f"the actor {getattr(actor, 'username', '?')!r} is not the logged-in user"
        )
    require(actor, "import")


def remove_time_point(
    store: CaseRepository, actor: Actor | None, case_id: str, time_point_id: str, reason: str
) -> RemovedTimePoint:
    """Remove one time point from a case, with its VOIs; supersede what was computed from it.

    Parameters
    ----------
    store
        A :class:`dosimetry_core.store.CaseStore`.
    actor
        The logged-in user (``store.actor``); None in a store without accounts.
        Removing a time point needs the ``import`` permission.
    case_id
        The case.
    time_point_id
        The time point: its id, or its label (``TP2``).
    reason
        Why (required, at least :data:`MIN_REASON_CHARS` characters); audited.

    Returns
    -------
    RemovedTimePoint
        The removed time point, the new case version, the VOIs removed, the
        result records and derived maps marked superseded and the signed
        reports of the case.

    Raises
    ------
    InvalidInputError
        No reason, unknown time point (``field="time_point_id"``).
    PermissionDeniedError
        Nobody logged in on a store with accounts, or a role that may not import.
    CaseNotFoundError, ConcurrentModificationError
        From the store; nothing is changed.
    """
    text = (reason or "").strip()
    if len(text) < MIN_REASON_CHARS:
        raise InvalidInputError(
            f"--reason: say why the time point is removed (at least {MIN_REASON_CHARS} characters)",
            field="reason",
        )
    _check_actor(store, actor)
    case = store.load_case(case_id)
    tp = next((t for t in case.time_points if time_point_id in (t.time_point_id, t.label)), None)
    if tp is None:
        known = ", ".join(f"{t.label} ({t.time_point_id})" for t in case.sorted_time_points())
        raise InvalidInputError(
            f"time_point_id: case {case_id} has no time point {time_point_id!r} "
            f"(it has: {known or 'none'})",
            field="time_point_id",
        )
    label = tp.label
    case.time_points = [t for t in case.time_points if t is not tp]
    removed_vois = [v.name for v in case.vois if v.time_point_id == tp.time_point_id]
    case.vois = [v for v in case.vois if v.time_point_id != tp.time_point_id]
    superseded: list[str] = []
    for i, record in enumerate(case.results):
        if not record.superseded:
            case.results[i] = replace(record, superseded=True)
            superseded.append(record.result_id)
    derived: list[str] = []
    for d in case.derived:
        if not d.superseded:
            d.superseded = True
            derived.append(d.derived_id)
    relabel_time_points(case)
    signed = _signed_reports(store, case_id)
    user = getattr(actor, "username", None)
    saved = store.save_case(
        case,
        audit=store.audit_spec(
            "remove-time-point",
            operation="remove time point",
            time_point_id=tp.time_point_id,
            label=label,
            series_instance_uid=tp.functional.series_instance_uid,
            acquired_at=tp.acquired_at.isoformat(),
            reason=text,
            removed_by=user,
            vois_removed=removed_vois,
            results_superseded=superseded,
            derived_superseded=derived,
            signed_reports=signed,
        ),
    )
    return RemovedTimePoint(
        case_id=saved.case_id,
        time_point_id=tp.time_point_id,
        label=label,
        version=saved.version,
        vois_removed=removed_vois,
        results_superseded=superseded,
        derived_superseded=derived,
        signed_reports=signed,
    )


def _signed_reports(store: CaseRepository, case_id: str) -> list[str]:
    """Ids of the case's reports that were signed (any status but draft)."""
    from dosimetry_core.reporting.records import DRAFT, list_reports

    return [r.report_id for r in list_reports(store, case_id) if r.status != DRAFT]
