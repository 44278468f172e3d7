"""Contour verification state machine: every transition, every refusal, the history."""

from datetime import datetime

import pytest

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.model import VOI, Geometry, ImageUnits, VoiKind, VoiStatus, VolumeRef
from dosimetry_core.pipeline import voi_review as review


def _voi() -> VOI:
    ref = VolumeRef("k0", Geometry((2, 2, 2), (1.0, 1.0, 1.0)), ImageUnits.MASK, "uint8")
    return VOI("Kidney_L", VoiKind.ORGAN, ref)


def test_draft_submit_approve_then_edit_withdraws_approval():
    v = _voi()
    assert v.status == VoiStatus.DRAFT and review.review_flag(v) == "contour not approved (draft)"
    review.submit(v, "phys", at=datetime(2026, 3, 10, 9, 0))
    review.approve(v, "dr.md", "ok", at=datetime(2026, 3, 10, 10, 0))
    assert v.status == VoiStatus.APPROVED and review.review_flag(v) == ""
    new = VolumeRef("k1", v.mask.geometry, ImageUnits.MASK, "uint8")
    review.record_edit(v, new, "phys", "grow 3 mm")
    assert v.status == VoiStatus.DRAFT and v.mask.key == "k1"
    actions = [(h["action"], h["from"], h["to"], h["user"]) for h in v.history]
    assert actions == [
        ("submit", "draft", "submitted", "phys"),
        ("approve", "submitted", "approved", "dr.md"),
        ("edit", "approved", "draft", "phys"),
    ]
    assert v.history[-1]["comment"] == "approval withdrawn by the edit"
    assert v.history[-1]["previous_mask"] == "k0" and v.history[0]["at"] == "2026-03-10T09:00:00"


def test_rejection_needs_a_comment_and_is_flagged_then_resubmitted():
    v = _voi()
    review.submit(v, "phys")
    with pytest.raises(InvalidInputError, match="needs a comment"):
        review.reject(v, "dr.md", "  ")
    assert v.status == VoiStatus.SUBMITTED  # nothing changed by the refused call
    review.reject(v, "dr.md", "misses the upper pole")
    assert review.review_flag(v) == "REJECTED contour: misses the upper pole"
    review.submit(v, "phys", "upper pole added")
    assert v.status == VoiStatus.SUBMITTED


@pytest.mark.parametrize(
    ("setup", "action"),
    [
        ([], "approve"),
        ([], "reject"),
        (["submit"], "submit"),
        (["submit", "approve"], "approve"),
        (["submit", "approve"], "submit"),
    ],
)
def test_impossible_transitions_are_refused_and_change_nothing(setup, action):
    v = _voi()
    for step in setup:
        getattr(review, step)(v, "u", "c")
    before = (v.status, list(v.history))
    with pytest.raises(InvalidInputError, match=f"cannot {action}"):
        getattr(review, action)(v, "u", "c")
    assert (v.status, v.history) == before


def test_a_user_is_required():
    with pytest.raises(InvalidInputError, match="name of the user"):
        review.submit(_voi(), "")
