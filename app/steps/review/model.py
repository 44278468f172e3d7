"""View-model of the contour review step (no Qt): the review queue, history, permitted actions.

What the review view shows is computed here from the case and the core, so it
is tested without a screen:

* :class:`ReviewModel` -- one :class:`ReviewRow` per VOI in the queue (status
  ``submitted``, and VOIs whose approval an edit withdrew, which wait to be
  submitted again) or per VOI of the case (``show_all``), each with the core's
  review flag (:func:`dosimetry_core.pipeline.voi_review.review_flag`), its
  history as rows (who, what, when, comment) and which actions the user may take.
* :func:`awaiting_cases` -- the cases with VOIs awaiting the logged-in user's
  approval (core worklist filter ``awaiting-approval``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dosimetry_core.model import VOI, Case, VoiStatus
from dosimetry_core.pipeline.voi_review import review_flag

__all__ = [
    "COLUMNS",
    "HISTORY_COLUMNS",
    "ReviewModel",
    "ReviewRow",
    "approval_withdrawn",
    "awaiting_cases",
]

COLUMNS: tuple[str, ...] = ("VOI", "Kind", "Status", "Review flag", "Last action")
HISTORY_COLUMNS: tuple[str, ...] = ("When", "Who", "Action", "Status", "Comment")
WITHDRAWN = "approval withdrawn"
OPERATION_CHARS = 28
"""The history shows an edit's operation cut to this many characters."""


def approval_withdrawn(voi: VOI) -> bool:
    """True when the VOI's last approval was withdrawn by an edit and it is not approved again."""
    if voi.status in (VoiStatus.APPROVED, VoiStatus.SUBMITTED):
        return False
    for h in reversed(voi.history):
        action = h.get("action")
        if action == "edit" and h.get("from") == str(VoiStatus.APPROVED):
            return True
        if action in ("approve", "reject", "submit"):
            return False
    return False


@dataclass(frozen=True)
class ReviewRow:
    voi_id: str
    name: str
    kind: str
    status: str
    """Status as shown (``submitted``, ``approved``, ... or ``approval withdrawn (draft)``)."""
    flag: str
    last_action: str
    approvable: bool
    """Submitted: a reviewer can approve or reject it now."""

    def cells(self) -> list[str]:
        return [self.name, self.kind, self.status, self.flag or "—", self.last_action]


def _last_action(voi: VOI) -> str:
    if not voi.history:
        return "—"
    h = voi.history[-1]
    text = (
        f"{h.get('action', '?')} by {h.get('user', '?')}, {str(h.get('at', '')).replace('T', ' ')}"
    )
    return text


class ReviewModel:
    """The queue of a case for a user who may (or may not) approve contours."""

    def __init__(self, case: Case | None, may_approve: bool, *, show_all: bool = False) -> None:
        self.case = case
        self.may_approve = may_approve
        self.show_all = show_all
        self.rows: list[ReviewRow] = []
        if case is None:
            return
        for voi in case.vois:
            withdrawn = approval_withdrawn(voi)
            submitted = voi.status == VoiStatus.SUBMITTED
            if not (show_all or submitted or withdrawn):
                continue
            status = f"{WITHDRAWN} ({voi.status})" if withdrawn else str(voi.status)
            self.rows.append(
                ReviewRow(
                    voi_id=voi.voi_id,
                    name=voi.name,
                    kind=str(voi.kind),
                    status=status,
                    flag=review_flag(voi),
                    last_action=_last_action(voi),
                    approvable=submitted,
                )
            )

    @property
    def queue_count(self) -> int:
        """VOIs of the case awaiting approval (submitted)."""
        if self.case is None:
            return 0
        return sum(1 for v in self.case.vois if v.status == VoiStatus.SUBMITTED)

    def index_of(self, voi_id: str | None) -> int:
        for n, row in enumerate(self.rows):
            if row.voi_id == voi_id:
                return n
        return -1

    def row(self, voi_id: str) -> ReviewRow:
        n = self.index_of(voi_id)
        if n < 0:
            raise KeyError(voi_id)
        return self.rows[n]

    def can_approve(self, voi_id: str | None) -> bool:
        """Approve enabled: the user may and the VOI is submitted."""
        n = self.index_of(voi_id)
        return self.may_approve and n >= 0 and self.rows[n].approvable

    def can_reject(self, voi_id: str | None, comment: str) -> bool:
        """Reject enabled: as approve, and a comment is typed (the core needs one)."""
        return self.can_approve(voi_id) and bool(comment.strip())

    def history(self, voi_id: str | None) -> list[list[str]]:
        """The VOI's history as table rows (newest first): when, who, action, from → to, comment."""
        if self.case is None or voi_id is None:
            return []
        voi = next((v for v in self.case.vois if v.voi_id == voi_id), None)
        if voi is None:
            return []
        out: list[list[str]] = []
        for h in reversed(voi.history):
            action = str(h.get("action", ""))
            if h.get("operation"):
                op = str(h["operation"])
                if len(op) > OPERATION_CHARS:  # e.g. an RTSTRUCT import names its long UID
                    op = op[: OPERATION_CHARS - 1] + "…"
                action += f" ({op})"
            out.append(
                [
                    str(h.get("at", "")).replace("T", " "),
                    str(h.get("user", "")),
                    action,
                    f"{h.get('from', '')} → {h.get('to', '')}",
                    str(h.get("comment", "")),
                ]
            )
        return out

    def voi_name(self, voi_id: str | None) -> str:
        """Name of a VOI of the case ("" when none or unknown)."""
        if self.case is None or voi_id is None:
            return ""
        return next((v.name for v in self.case.vois if v.voi_id == voi_id), "")

    def summary(self) -> str:
        if self.case is None:
            return "No case open."
        n = self.queue_count
        who = "" if self.may_approve else " — you may look but not approve (physician's role)"
        return f"{n} VOI(s) of {self.case.case_id} awaiting approval{who}"


def awaiting_cases(store: Any, actor: Any, has_accounts: bool) -> list[tuple[str, str, int]]:
    """``(case_id, patient name, VOIs submitted)`` of the cases awaiting this user's approval."""
    from dosimetry_core.pipeline.worklist import apply_filter, worklist

    rows = apply_filter(
        worklist(store, actor, status_of_report=lambda _s, _c: ""),
        "awaiting-approval",
        actor,
        has_accounts=has_accounts,
    )
    return [(r.case_id, r.patient_name, r.n_vois_submitted) for r in rows]
