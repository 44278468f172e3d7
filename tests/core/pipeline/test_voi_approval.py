"""Saved contour reviews (pipeline.voi_approval): approve/reject/submit + save, role checked."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest

from dosimetry_core.errors import InvalidInputError, PermissionDeniedError
from dosimetry_core.model import (
    Case,
    Geometry,
    ImageUnits,
    Patient,
    SeriesInfo,
    TimePoint,
    VoiStatus,
    Volume,
)
from dosimetry_core.pipeline import voi_approval, voi_edit
from dosimetry_core.store import CaseStore
from dosimetry_core.store.users import authenticate, bootstrap_admin, create_user


@pytest.fixture()
def small(tmp_path):
    store = CaseStore(tmp_path / "s")
    g = Geometry((4, 5, 6), (2.0, 2.0, 3.0))
    spect = np.zeros(g.shape_zyx, dtype=np.float32)
    spect[1:3, 1:4, 2:5] = 100.0
    ct_ref = store.put_volume(Volume(np.zeros(g.shape_zyx, np.float32), g, ImageUnits.HU, "CT"))
    sp_ref = store.put_volume(Volume(spect, g, ImageUnits.BQML, "SPECT"))
    tp = TimePoint(
        acquired_at=datetime.now() - timedelta(hours=1),
        modality="NM",
        functional=SeriesInfo(series_instance_uid="1.2.3", volume=sp_ref),
        anatomical=SeriesInfo(series_instance_uid="1.2.4", volume=ct_ref),
        label="TP1",
    )
    case = Case(patient=Patient("P1"), time_points=[tp])
    store.save_case(case)
    voi_edit.contour_and_save(store, case, "threshold", "Hot", lower=50.0)
    voi_edit.contour_and_save(store, case, "threshold", "Warm", lower=10.0)
    yield store, case.case_id
    store.close()


def test_submit_approve_reject_are_saved_and_the_queue_follows(small):
    store, case_id = small
    case = store.load_case(case_id)
    assert voi_approval.review_queue(case) == []
    voi_approval.review_and_save(store, case, "submit", "Hot")
    voi_approval.review_and_save(store, case, "submit", "Warm")
    case = store.load_case(case_id)
    assert [v.name for v in voi_approval.review_queue(case)] == ["Hot", "Warm"]
    voi_approval.approve_voi(store, case, case.vois[0].voi_id, "ok")
    with pytest.raises(InvalidInputError, match="comment"):
        voi_approval.reject_voi(store, case, case.vois[1].voi_id, "")
    voi_approval.reject_voi(store, case, case.vois[1].voi_id, "too large")
    case = store.load_case(case_id)
    assert [v.status for v in case.vois] == [VoiStatus.APPROVED, VoiStatus.REJECTED]
    assert case.vois[0].history[-1]["comment"] == "ok"
    assert voi_approval.review_queue(case) == []
    with pytest.raises(InvalidInputError, match="unknown review operation"):
        voi_approval.review_and_save(store, case, "sign", "Hot")


def test_only_a_user_who_may_approve_contours_can_approve(small):
    store, case_id = small
    voi_approval.review_and_save(store, store.load_case(case_id), "submit", "Hot")
    admin = bootstrap_admin(store, "root", "admin-pass-1234")
    create_user(store, admin, "tom", "tech-pass-1234", "technologist")
    create_user(store, admin, "dora", "md-pass-12345", "physician")
    store.actor = authenticate(store, "tom", "tech-pass-1234")
    case = store.load_case(case_id)
    with pytest.raises(PermissionDeniedError):
        voi_approval.approve_voi(store, case, case.vois[0].voi_id)
    store.actor = authenticate(store, "dora", "md-pass-12345")
    case = store.load_case(case_id)
    assert case.vois[0].status == VoiStatus.SUBMITTED  # the refused approval saved nothing
    voi_approval.approve_voi(store, case, case.vois[0].voi_id)
    voi = store.load_case(case_id).vois[0]
    assert voi.status == VoiStatus.APPROVED and voi.history[-1]["user"] == "dora"
