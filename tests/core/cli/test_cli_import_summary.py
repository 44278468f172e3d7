"""``mrtdose import``: the JSON contract keeps its keys and gains descriptions; structure sets
of the folder become draft VOIs; the text speaks in series descriptions, not UIDs."""

from __future__ import annotations

import json

import pytest

from dosimetry_core.cli.main import main
from dosimetry_core.store import CaseStore


def _import(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["import", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_keeps_the_public_keys_and_adds_series_and_vois(
    capsys, small_demo_dirs, small_demo_truth, store_dir
):
    code, out, err = _import(
        capsys, str(small_demo_dirs["siemens-bqml"]), "--store", str(store_dir), "--json"
    )
    assert code == 0, err
    data = json.loads(out)
    assert set(data) >= {"cases", "skipped", "warnings"}
    (case,) = data["cases"]
    assert set(case) >= {"case_id", "time_points", "patient_id", "new_time_points", "created"}
    assert case["time_points"] == 4 and case["new_time_points"] == 4 and case["created"] is True
    assert all(set(s) == {"path", "reason"} for s in data["skipped"])
    # added: the time points in words and the VOIs attached from the RTSTRUCT
    for tp, truth in zip(case["series"], small_demo_truth["time_points"], strict=True):
        assert tp["hours_after_administration"] == pytest.approx(
            truth["hours_after_administration"]
        )
        assert tp["series_description"] and tp["series_description"] in tp["words"]
        assert tp["units"] == "Bq/mL" and tp["calibration"] == "vendor"
    assert case["vois_attached"] == small_demo_truth["rtstruct"]["rois"]
    (ss,) = data["structure_sets"]
    assert ss["kind"] == "RTSTRUCT" and ss["attached"] and ss["time_point"] == "TP1"
    # what `mrtdose voi` will list: the same VOIs, drafts, in the store
    stored = CaseStore(store_dir).load_case(case["case_id"])
    assert sorted(v.name for v in stored.vois) == sorted(case["vois_attached"])
    assert {str(v.status) for v in stored.vois} == {"draft"}


def test_reimport_text_names_series_by_description_and_time_without_uids(
    capsys, small_demo_dirs, store_dir
):
    folder = str(small_demo_dirs["siemens-bqml"])
    assert _import(capsys, folder, "--store", str(store_dir))[0] == 0
    code, text, err = _import(capsys, folder, "--store", str(store_dir))
    assert code == 0, err
    case = CaseStore(store_dir).load_case(CaseStore(store_dir).list_cases()[0].case_id)
    assert "no case imported" in text
    for tp in case.sorted_time_points():
        assert (
            f"'{tp.functional.series_description}' acquired {tp.acquired_at:%Y-%m-%d %H:%M}" in text
        )
    uids = {
        uid
        for tp in case.time_points
        for s in (tp.functional, tp.anatomical)
        for uid in (s.series_instance_uid, s.study_instance_uid, s.frame_of_reference_uid)
    }
    assert uids and not any(uid in text for uid in uids)
    assert len(case.vois) == 15  # not doubled by the second import


def test_a_physician_may_not_import_and_nothing_is_written(
    capsys, small_demo_dirs, store_dir, monkeypatch
):
    from dosimetry_core.store.users import bootstrap_admin, create_user

    store = CaseStore(store_dir)
    admin = bootstrap_admin(store, "admin", "admin-pass-123")
    create_user(store, admin, "doc", "doc-pass-1234", "physician")
    store.close()
    monkeypatch.setenv("MRTDOSE_USER", "doc")
    monkeypatch.setenv("MRTDOSE_PASSWORD", "doc-pass-1234")
    code, out, err = _import(
        capsys, str(small_demo_dirs["siemens-bqml"]), "--store", str(store_dir)
    )
    assert code != 0 and "may not import" in err
    assert CaseStore(store_dir).list_cases() == []
