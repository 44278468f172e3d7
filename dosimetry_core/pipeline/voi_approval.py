"""A physician's review of submitted contours, saved at once: approve, reject, the queue.

:mod:`dosimetry_core.pipeline.voi_review` holds the state machine (draft ->
submitted -> approved | rejected) and changes a VOI in memory.  The functions
here do the review *and* the save in one call (``fn(store, case, ...)``, as the
workstation's ``session.change`` wants it), the same save and audit as
``mrtdose contour CASE approve|reject``: ``store.save_case`` with the audit
action ``approve-contour`` (which checks the actor's role) and the operation.
On an error nothing is saved.

Who reviews is always :func:`~dosimetry_core.pipeline.contouring.acting_user`
(the logged-in user on a store with accounts).
"""

from __future__ import annotations

from dosimetry_core.model import VOI, Case, VoiStatus
from dosimetry_core.pipeline import contouring as c
from dosimetry_core.pipeline import voi_review
from dosimetry_core.store.repository import CaseRepository

__all__ = ["approve_voi", "reject_voi", "review_and_save", "review_queue"]


def review_queue(case: Case) -> list[VOI]:
    """The VOIs of ``case`` awaiting a reviewer (status ``submitted``), in the case's order."""
    return [v for v in case.vois if v.status == VoiStatus.SUBMITTED]


def review_and_save(
    store: CaseRepository,
    case: Case,
    operation: str,
    key: str,
    comment: str = "",
    user: str | None = None,
) -> VOI:
    """``submit``, ``approve`` or ``reject`` the VOI ``key`` (id or name) of ``case`` and save.

    The audit action is ``approve-contour`` for approve/reject and ``contour``
    for submit, with ``operation`` in the details (as ``mrtdose contour``).

    Raises
    ------
    InvalidInputError
        Unknown VOI, a transition the state machine refuses, a reject without a comment.
    PermissionDeniedError
        The logged-in user may not do it (nothing saved).
    """
    if operation not in ("submit", "approve", "reject"):
        from dosimetry_core.errors import InvalidInputError

        raise InvalidInputError(f"unknown review operation {operation!r} (submit, approve, reject)")
    acting = c.acting_user(store, user)
    voi = voi_review.find_voi(case, key)
    getattr(voi_review, operation)(voi, acting, comment or "")
    action = "approve-contour" if operation in ("approve", "reject") else "contour"
    store.save_case(case, audit=store.audit_spec(action, operation=operation))
    return voi


def approve_voi(store: CaseRepository, case: Case, voi_id: str, comment: str = "") -> VOI:
    """Approve a submitted VOI and save (``mrtdose contour CASE approve VOI``)."""
    return review_and_save(store, case, "approve", voi_id, comment)


def reject_voi(store: CaseRepository, case: Case, voi_id: str, comment: str) -> VOI:
    """Reject a submitted VOI with a comment saying what is wrong, and save."""
    return review_and_save(store, case, "reject", voi_id, comment)
