"""The worklist: one row per case with what the workstation's case list filters on.

A row says who the patient is, which protocol the case follows, how far the
case has come (time points, administration, contours waiting for approval)
and where its report stands.  The filters are the rule the case list and
``mrtdose worklist --filter`` share:

``awaiting-approval``
    Contours (VOIs) are submitted, and the acting user may approve contours
    (:data:`dosimetry_core.store.permissions.PERMISSIONS`).  For a user who may
    not approve, no case is awaiting *their* approval.
``missing-administration``
    No administration is recorded (nothing to compute a dose from).
``unsigned``
    No report version of the case is signed by both the medical physics
    expert and the practitioner.

Report states are read through :func:`dosimetry_core.reporting.records.list_reports`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.model import VoiStatus
from dosimetry_core.store.permissions import Actor
from dosimetry_core.store.repository import CaseRepository

__all__ = [
    "FILTERS",
    "NO_REPORT",
    "WorklistRow",
    "apply_filter",
    "may_approve",
    "report_status",
    "worklist",
]

NO_REPORT = "none"
"""``report_status`` of a case without any report."""

FILTERS: dict[str, str] = {
    "awaiting-approval": "Awaiting my approval",
    "missing-administration": "Missing administration",
    "unsigned": "Unsigned",
}
"""Filter id -> the label the case list shows."""


@dataclass(frozen=True)
class WorklistRow:
    """One case as the worklist shows it.

    Attributes
    ----------
    case_id, patient_id, patient_name, protocol
        As stored (``protocol`` empty: none chosen yet).
    n_time_points
        Imaging time points of the case.
    has_administration
        True when at least one administration is recorded.
    n_vois_submitted
        VOIs submitted for approval (status ``submitted``).
    report_status
        Status of the newest report version that is not superseded
        (``draft``, ``mpe-signed``, ``signed``) or :data:`NO_REPORT`.
    modified_at
        Last save (naive local time), or the creation time.
    version
        Stored version of the case.
    """

    case_id: str
    patient_id: str
    patient_name: str
    protocol: str
    n_time_points: int
    has_administration: bool
    n_vois_submitted: int
    report_status: str
    modified_at: datetime | None
    version: int

    @property
    def signed(self) -> bool:
        """A report of this case is signed by both signatories."""
        from dosimetry_core.reporting.records import SIGNED

        return self.report_status == SIGNED

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["modified_at"] = self.modified_at.isoformat() if self.modified_at else None
        return d


def report_status(store: CaseRepository, case_id: str) -> str:
    """Status of the case's newest report version that is not superseded, or :data:`NO_REPORT`."""
    from dosimetry_core.reporting.records import SIGNED, SUPERSEDED, list_reports

    records = list_reports(store, case_id)
    if any(r.status == SIGNED for r in records):
        return SIGNED
    current = [r for r in records if r.status != SUPERSEDED]
    return current[-1].status if current else NO_REPORT


def worklist(
    store: CaseRepository,
    actor: Actor | None,
    *,
    status_of_report: Callable[[CaseRepository, str], str] | None = None,
) -> list[WorklistRow]:
    """Every case of ``store`` as a :class:`WorklistRow`, newest change first.

    Parameters
    ----------
    store
        The case store.
    actor
        The user asking (recorded for symmetry with the filters; reading is
        open to every clinical role).
    status_of_report
        How to read a case's report state (default :func:`report_status`).
    """
    read_status = status_of_report or report_status
    rows: list[WorklistRow] = []
    for s in store.list_cases():
        case = store.load_case(s.case_id)
        rows.append(
            WorklistRow(
                case_id=case.case_id,
                patient_id=case.patient.patient_id,
                patient_name=case.patient.name,
                protocol=case.protocol,
                n_time_points=len(case.time_points),
                has_administration=bool(case.administrations),
                n_vois_submitted=sum(1 for v in case.vois if v.status == VoiStatus.SUBMITTED),
                report_status=read_status(store, case.case_id),
                modified_at=s.modified_at or s.created_at,
                version=case.version,
            )
        )
    rows.sort(key=lambda r: r.modified_at or datetime.min, reverse=True)
    return rows


def may_approve(actor: Actor | None, has_accounts: bool) -> bool:
    """Whether ``actor`` may approve contours (a single-user store: the one user may)."""
    if actor is None:
        return not has_accounts
    return actor.may("approve-contour")


def apply_filter(
    rows: list[WorklistRow], name: str | None, actor: Actor | None, *, has_accounts: bool = True
) -> list[WorklistRow]:
    """The rows a filter keeps (module docstring); ``None`` or ``"all"`` keeps every row.

    Raises
    ------
    InvalidInputError
        For an unknown filter name (``field="filter"``).
    """
    if name in (None, "", "all"):
        return list(rows)
    if name == "awaiting-approval":
        if not may_approve(actor, has_accounts):
            return []
        return [r for r in rows if r.n_vois_submitted > 0]
    if name == "missing-administration":
        return [r for r in rows if not r.has_administration]
    if name == "unsigned":
        return [r for r in rows if not r.signed]
    raise InvalidInputError(
        f"unknown worklist filter {name!r}; choose all, {', '.join(FILTERS)}", field="filter"
    )
