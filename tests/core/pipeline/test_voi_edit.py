"""Saved VOI-list edits (pipeline.voi_edit): each call is the whole change, audited."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest

from dosimetry_core.errors import InvalidInputError, PermissionDeniedError
from dosimetry_core.imaging.case_volumes import load_mask
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
from dosimetry_core.pipeline import voi_edit
from dosimetry_core.store import CaseStore


@pytest.fixture()
def small(tmp_path):
    store = CaseStore(tmp_path / "s")
    g = Geometry((6, 8, 10), (2.0, 2.0, 3.0))
    ct = np.zeros(g.shape_zyx, dtype=np.float32)
    spect = np.zeros(g.shape_zyx, dtype=np.float32)
    spect[2:4, 3:6, 4:8] = 100.0
    spect[3, 4, 5] = 200.0
    ct_ref = store.put_volume(Volume(ct, g, ImageUnits.HU, "CT"))
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
    yield store, case.case_id, g, tp.time_point_id
    store.close()


def test_threshold_saved_equals_core_and_edits_round_trip(small):
    store, case_id, g, tp_id = small
    case = store.load_case(case_id)
    voi = voi_edit.contour_and_save(store, case, "threshold", "Hot", percent_of_max=60.0)
    case = store.load_case(case_id)
    mask, _ = load_mask(store, case.vois[0])
    assert mask.sum() == 1 and mask[3, 4, 5]  # 60 % of 200 Bq/mL: only the 200 voxel

    bigger = np.zeros(g.shape_zyx, dtype=bool)
    bigger[1:5, 2:7, 3:9] = True
    voi_edit.restore_voi_mask(store, case, "Hot", bigger, g, tp_id, "brush axial 2")
    case = store.load_case(case_id)
    mask, _ = load_mask(store, case.vois[0])
    assert np.array_equal(mask, bigger)
    assert case.vois[0].history[-1]["operation"] == "brush axial 2"

    voi_edit.rename_voi(store, case, voi.voi_id, "Tumour_1")
    voi_edit.set_voi_style(store, case, voi.voi_id, kind="lesion", color_rgb=(1, 2, 3))
    case = store.load_case(case_id)
    assert (case.vois[0].name, str(case.vois[0].kind), case.vois[0].color_rgb) == (
        "Tumour_1",
        "lesion",
        (1, 2, 3),
    )
    voi_edit.submit_voi(store, case, voi.voi_id)
    assert store.load_case(case_id).vois[0].status == VoiStatus.SUBMITTED
    assert voi_edit.delete_voi(store, store.load_case(case_id), voi.voi_id) == "Tumour_1"
    assert store.load_case(case_id).vois == []


def test_refused_edits_save_nothing(small):
    store, case_id, g, tp_id = small
    case = store.load_case(case_id)
    voi_edit.contour_and_save(store, case, "threshold", "A", lower=50.0)
    voi_edit.contour_and_save(store, case, "threshold", "B", lower=150.0)
    case = store.load_case(case_id)
    with pytest.raises(InvalidInputError):
        voi_edit.rename_voi(store, case, case.vois[1].voi_id, "a")  # same name, other case
    with pytest.raises(InvalidInputError):
        voi_edit.contour_and_save(store, case, "no-such-op", "A")
    with pytest.raises(InvalidInputError):
        voi_edit.set_voi_style(store, case, case.vois[0].voi_id, kind="bone")
    assert [v.name for v in store.load_case(case_id).vois] == ["A", "B"]


def test_a_physician_may_not_edit(small):
    from dosimetry_core.store.users import authenticate, bootstrap_admin, create_user

    store, case_id, g, tp_id = small
    case = store.load_case(case_id)
    voi_edit.contour_and_save(store, case, "threshold", "A", lower=50.0)
    admin = bootstrap_admin(store, "root", "admin-pass-1234")
    create_user(store, admin, "dora", "md-pass-12345", "physician")
    store.actor = authenticate(store, "dora", "md-pass-12345")
    case = store.load_case(case_id)
    with pytest.raises(PermissionDeniedError):
        voi_edit.rename_voi(store, case, case.vois[0].voi_id, "B")
    store.actor = None
    assert store.load_case(case_id).vois[0].name == "A"
