"""Physician verification of contours: draft -> submitted -> approved | rejected.

Rules (issue 3):

* A VOI starts as ``draft``.  The contouring physicist ``submit``\\ s it for review.
* A reviewer ``approve``\\ s or ``reject``\\ s a submitted VOI; a rejection needs a
  comment saying what is wrong.
* Any edit of the mask returns the VOI to ``draft`` -- an approved contour that
  is changed is no longer approved (the history says approval was withdrawn).
* A rejected VOI can be edited (-> draft) and submitted again.

Every transition appends an entry to ``VOI.history`` (action, from, to, user,
time, comment); the history is never rewritten, so it feeds the audit trail.
Who may approve (the physician role) is enforced by the user/role layer of the
clinical-records issue; this module enforces the state machine itself.  The
``user`` given here is the name of whoever acts: callers take it from
:func:`dosimetry_core.pipeline.contouring.acting_user`, which is always the
logged-in user once the store has accounts (issue 13).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.model import VOI, Case, VoiStatus, VolumeRef

_ALLOWED: dict[str, tuple[set[VoiStatus], VoiStatus]] = {
    "submit": ({VoiStatus.DRAFT, VoiStatus.REJECTED}, VoiStatus.SUBMITTED),
    "approve": ({VoiStatus.SUBMITTED}, VoiStatus.APPROVED),
    "reject": ({VoiStatus.SUBMITTED}, VoiStatus.REJECTED),
}


def find_voi(case: Case, key: str) -> VOI:
    """A VOI of ``case`` by id or (case-insensitive) name."""
    for voi in case.vois:
        if voi.voi_id == key:
            return voi
    matches = [v for v in case.vois if v.name.lower() == key.lower()]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise InvalidInputError(
            f"several VOIs are named {key!r} in case {case.case_id}; use the VOI id"
        )
    names = ", ".join(v.name for v in case.vois) or "none"
    raise InvalidInputError(f"case {case.case_id} has no VOI {key!r} (VOIs: {names})")


def _entry(
    action: str,
    old: VoiStatus,
    new: VoiStatus,
    user: str,
    comment: str,
    at: datetime | None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "action": action,
        "from": str(old),
        "to": str(new),
        "user": user,
        "at": (at or datetime.now()).replace(microsecond=0).isoformat(),
        "comment": comment,
        **extra,
    }


def _transition(voi: VOI, action: str, user: str, comment: str, at: datetime | None) -> VOI:
    if not user.strip():
        raise InvalidInputError(f"{action} of VOI {voi.name!r} needs the name of the user")
    allowed_from, to = _ALLOWED[action]
    if voi.status not in allowed_from:
        allowed = " or ".join(sorted(str(s) for s in allowed_from))
        raise InvalidInputError(
            f"cannot {action} VOI {voi.name!r}: it is {voi.status}, "
            f"and only a {allowed} VOI can be {'submitted' if action == 'submit' else action + 'd'}"
        )
    if action == "reject" and not comment.strip():
        raise InvalidInputError(f"rejecting VOI {voi.name!r} needs a comment saying what is wrong")
    voi.history.append(_entry(action, voi.status, to, user, comment, at))
    voi.status = to
    return voi


def submit(voi: VOI, user: str, comment: str = "", at: datetime | None = None) -> VOI:
    """Send a draft (or a corrected rejected) VOI for physician review."""
    return _transition(voi, "submit", user, comment, at)


def approve(voi: VOI, user: str, comment: str = "", at: datetime | None = None) -> VOI:
    """Approve a submitted VOI."""
    return _transition(voi, "approve", user, comment, at)


def reject(voi: VOI, user: str, comment: str, at: datetime | None = None) -> VOI:
    """Reject a submitted VOI; ``comment`` is required."""
    return _transition(voi, "reject", user, comment, at)


def record_creation(voi: VOI, user: str, operation: str, at: datetime | None = None) -> VOI:
    """Start the history of a new (draft) VOI with how it was made."""
    voi.history.append(
        _entry("create", VoiStatus.DRAFT, VoiStatus.DRAFT, user, "", at, operation=operation)
    )
    return voi


def record_edit(
    voi: VOI,
    new_mask: VolumeRef,
    user: str,
    operation: str,
    at: datetime | None = None,
) -> VOI:
    """Replace the mask of ``voi`` after an edit; the VOI returns to draft.

    ``operation`` says what was done (e.g. "grow 5 mm", "brush axial 42").
    Editing an approved VOI withdraws the approval (recorded in the history).
    """
    if not user.strip():
        raise InvalidInputError(f"editing VOI {voi.name!r} needs the name of the user")
    old = voi.status
    note = "approval withdrawn by the edit" if old == VoiStatus.APPROVED else ""
    voi.history.append(
        _entry(
            "edit",
            old,
            VoiStatus.DRAFT,
            user,
            note,
            at,
            operation=operation,
            previous_mask=voi.mask.key,
            new_mask=new_mask.key,
        )
    )
    voi.mask = new_mask
    voi.status = VoiStatus.DRAFT
    return voi


def review_flag(voi: VOI) -> str:
    """Text to show beside any number derived from this VOI: empty only when approved."""
    if voi.status == VoiStatus.APPROVED:
        return ""
    if voi.status == VoiStatus.REJECTED:
        last = next((h for h in reversed(voi.history) if h.get("action") == "reject"), None)
        why = f": {last['comment']}" if last and last.get("comment") else ""
        return f"REJECTED contour{why}"
    return f"contour not approved ({voi.status})"
