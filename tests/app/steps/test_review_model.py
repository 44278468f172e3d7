"""The contour review step's model (no Qt) on the shared analysis case: queue, flags, history."""

from __future__ import annotations

from typing import Any

import pytest

from app.steps.review.model import ReviewModel, approval_withdrawn, awaiting_cases
from dosimetry_core.errors import InvalidInputError
from dosimetry_core.model import VoiStatus
from dosimetry_core.pipeline import voi_approval, voi_edit
from dosimetry_core.pipeline.voi_review import find_voi, review_flag


def _case(store: Any) -> Any:
    return store.load_case(store.case_id)


def test_queue_holds_the_submitted_vois_with_the_core_flag(analysis_store: Any) -> None:
    case = _case(analysis_store)
    assert ReviewModel(case, True).rows == []  # the demo's VOIs are drafts
    voi_approval.review_and_save(analysis_store, case, "submit", "Kidney_L")
    case = _case(analysis_store)
    model = ReviewModel(case, True)
    assert [r.name for r in model.rows] == ["Kidney_L"]
    row = model.rows[0]
    voi = find_voi(case, "Kidney_L")
    assert row.status == "submitted"
    assert row.flag == review_flag(voi) == "contour not approved (submitted)"
    assert model.queue_count == 1
    assert model.can_approve(row.voi_id) and not model.can_reject(row.voi_id, "  ")
    assert model.can_reject(row.voi_id, "too wide")
    assert not ReviewModel(case, False).can_approve(row.voi_id)  # no permission
    assert len(ReviewModel(case, True, show_all=True).rows) == len(case.vois)
    assert awaiting_cases(analysis_store, None, False) == [(case.case_id, case.patient.name, 1)]


def test_approve_then_an_edit_withdraws_it(analysis_store: Any) -> None:
    case = _case(analysis_store)
    voi_approval.review_and_save(analysis_store, case, "submit", "Kidney_L")
    voi_id = find_voi(case, "Kidney_L").voi_id
    voi_approval.approve_voi(analysis_store, case, voi_id, "fine")
    case = _case(analysis_store)
    voi = find_voi(case, "Kidney_L")
    assert voi.status == VoiStatus.APPROVED and review_flag(voi) == ""
    model = ReviewModel(case, True)
    assert model.rows == [] and model.queue_count == 0
    hist = model.history(voi_id)
    assert hist[0][2] == "approve" and hist[0][3] == "submitted → approved"
    assert hist[0][4] == "fine" and hist[1][2] == "submit"
    assert hist[-1][2].startswith("create (") and len(hist[-1][2]) <= len("create ()") + 28
    assert model.voi_name(voi_id) == "Kidney_L" and model.voi_name(None) == ""
    assert awaiting_cases(analysis_store, None, False) == []
    # an edit after approval withdraws it (core record_edit): back in the queue, visibly
    voi_edit.contour_and_save(analysis_store, case, "largest", "Kidney_L")
    case = _case(analysis_store)
    assert approval_withdrawn(find_voi(case, "Kidney_L"))
    model = ReviewModel(case, True)
    assert [r.name for r in model.rows] == ["Kidney_L"]
    assert model.rows[0].status == "approval withdrawn (draft)"
    assert model.rows[0].flag == "contour not approved (draft)"
    assert not model.can_approve(voi_id)  # it must be submitted again
    assert model.history(voi_id)[0][4] == "approval withdrawn by the edit"


def test_reject_needs_a_comment_and_nothing_is_saved(analysis_store: Any) -> None:
    case = _case(analysis_store)
    voi_approval.review_and_save(analysis_store, case, "submit", "Liver")
    voi_id = find_voi(case, "Liver").voi_id
    with pytest.raises(InvalidInputError, match="comment"):
        voi_approval.reject_voi(analysis_store, case, voi_id, " ")
    assert find_voi(_case(analysis_store), "Liver").status == VoiStatus.SUBMITTED
    voi_approval.reject_voi(analysis_store, case, voi_id, "misses the left lobe")
    voi = find_voi(_case(analysis_store), "Liver")
    assert review_flag(voi) == "REJECTED contour: misses the left lobe"
