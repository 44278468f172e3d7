"""The shared analysis case of the step tests is what the steps expect to find."""

from __future__ import annotations

from dosimetry_core.model import DerivedKind


def test_analysis_case_is_registered_with_vois_and_a_tia_map(analysis_session):
    case = analysis_session.case
    assert len(case.time_points) == 4
    assert {"Kidney_L", "Liver"} <= {v.name for v in case.vois}
    assert all(tp.registration is not None for tp in case.sorted_time_points()[1:])
    assert len(case.derived_maps(DerivedKind.TIA_MAP)) == 1
