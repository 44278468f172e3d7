"""The full-size demo patient through the real import path (DICOM written, then read)."""

from __future__ import annotations

import pytest

from dosimetry_core.pipeline.demo import ensure_demo_case
from dosimetry_core.store import CaseStore


@pytest.mark.slow
def test_demo_case_matches_ground_truth_and_is_imported_once(tmp_path):
    store = CaseStore(tmp_path / "store")
    seen = []
    case_id = ensure_demo_case(store, progress=lambda f, m: seen.append(f))
    assert seen and seen[-1] == 1.0 and all(0.0 <= f <= 1.0 for f in seen)
    assert ensure_demo_case(store) == case_id
    assert len(store.list_cases()) == 1
    case = store.load_case(case_id)
    truth = case.extra["demo"]["ground_truth"]
    tps = case.sorted_time_points()
    assert len(tps) == 4
    for tp, t in zip(tps, truth["time_points"], strict=True):
        # noisy demo: Poisson noise on millions of counts moves the total by far less than 1 %
        assert tp.total_activity_mbq == pytest.approx(t["fov_activity_mbq"], rel=0.01)
        assert case.hours_after_administration(tp) == pytest.approx(t["hours_after_administration"])
    assert case.administrations[0].activity_mbq == pytest.approx(7400.0)
    # the true outlines come in as draft VOIs on TP1, volumes close to the analytic ones
    names = {v.name: v for v in case.vois}
    assert {"Liver", "Kidney_L", "Kidney_R", "Spleen", "Tumour_1", "Tumour_2", "Tumour_3"} <= set(
        names
    )
    assert all(v.time_point_id == tps[0].time_point_id for v in case.vois)
    assert all(str(v.status) == "draft" for v in case.vois)
    from dosimetry_core.pipeline.contouring import voi_table

    rows = {r["name"]: r for r in voi_table(store, case)}
    comp = truth["compartments"]
    assert rows["Kidney_L"]["volume_ml"] == pytest.approx(
        comp["kidney_left"]["volume_ml"], rel=0.02
    )
    assert rows["Spleen"]["volume_ml"] == pytest.approx(comp["spleen"]["volume_ml"], rel=0.02)
