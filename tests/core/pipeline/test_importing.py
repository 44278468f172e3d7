"""Import pipeline: time points, CT pairing, atomicity, re-import."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dosimetry_core.imaging.resample import resample
from dosimetry_core.model import CalibrationStatus, ImageUnits
from dosimetry_core.pipeline import importing
from dosimetry_core.store import CaseStore


def test_each_spect_gets_its_own_ct_and_times_from_the_administration(
    small_demo_dirs, small_demo_truth, store_dir
):
    store = CaseStore(store_dir)
    rep = importing.import_directory(store, small_demo_dirs["siemens-bqml"])
    case = store.load_case(rep.cases[0].case_id)
    assert [tp.label for tp in case.sorted_time_points()] == ["TP1", "TP2", "TP3", "TP4"]
    (adm,) = case.administrations
    assert adm.source == "dicom" and adm.radiopharmaceutical
    for tp, truth in zip(case.sorted_time_points(), small_demo_truth["time_points"], strict=True):
        assert tp.anatomical is not None
        # CT and SPECT of one visit share the frame of reference written by the demo
        assert tp.anatomical.frame_of_reference_uid == tp.functional.frame_of_reference_uid
        assert tp.functional.calibration_status == CalibrationStatus.VENDOR_BQML
        assert case.hours_after_administration(tp) == pytest.approx(
            truth["hours_after_administration"]
        )
        assert tp.duration_s == pytest.approx(small_demo_truth["camera"]["acquisition_duration_s"])
        spect = store.load_volume(tp.functional.volume)
        assert spect.units == ImageUnits.BQML and spect.array.dtype == np.float32
        assert spect.total_activity_mbq() == pytest.approx(truth["fov_activity_mbq"], rel=0.01)
        ct = store.load_volume(tp.anatomical.volume)
        assert ct.units == ImageUnits.HU and ct.array.dtype == np.int16


def test_spect_and_ct_of_a_visit_overlay_in_world_space(small_demo_dirs, store_dir):
    """The hottest organ on SPECT sits on soft tissue of the CT once resampled (geometry check)."""
    store = CaseStore(store_dir)
    rep = importing.import_directory(store, small_demo_dirs["siemens-bqml"])
    case = store.load_case(rep.cases[0].case_id)
    tp = case.time_point("2")
    spect = store.load_volume(tp.functional.volume)
    ct = store.load_volume(tp.anatomical.volume)
    on_ct = resample(spect, ct.geometry, fill_value=0.0)
    hot = on_ct.array > 0.5 * on_ct.array.max()
    assert hot.sum() > 10
    assert np.median(ct.array[hot]) > -200  # hot spots are in tissue, not in air or lung
    # total activity is preserved within a few per cent when resampled onto the finer CT grid
    assert on_ct.total() == pytest.approx(spect.total(), rel=0.03)


def test_failed_save_leaves_nothing_half_imported(small_demo_dirs, store_dir, monkeypatch):
    store = CaseStore(store_dir)

    def boom(*args, **kwargs):
        raise RuntimeError("disk full (simulated)")

    # fail after save_case ran inside the transaction
    monkeypatch.setattr(importing, "ImportedCase", boom)
    with pytest.raises(RuntimeError, match="simulated"):
        importing.import_directory(store, small_demo_dirs["siemens-bqml"])
    assert store.list_cases() == []
    monkeypatch.undo()
    rep = importing.import_directory(store, small_demo_dirs["siemens-bqml"])
    assert rep.cases[0].time_points == 4
    assert store.check_integrity() == []


def test_reimport_is_idempotent_and_a_new_visit_extends_the_case(small_demo_dirs, tmp_path):
    import shutil

    part = tmp_path / "first-two"
    rest = tmp_path / "last-two"
    src = small_demo_dirs["siemens-bqml"]
    for d in sorted(src.glob("tp*")):
        shutil.copytree(d, (part if d.name < "tp3" else rest) / d.name)
    store = CaseStore(tmp_path / "store")
    a = importing.import_directory(store, part)
    assert a.cases[0].created and a.cases[0].time_points == 2
    again = importing.import_directory(store, part)
    assert again.cases == [] and any("already in case" in w for w in again.warnings)
    b = importing.import_directory(store, rest)
    assert b.cases[0].case_id == a.cases[0].case_id and not b.cases[0].created
    case = store.load_case(a.cases[0].case_id)
    assert [tp.label for tp in case.sorted_time_points()] == ["TP1", "TP2", "TP3", "TP4"]
    assert len(case.administrations) == 1


def test_report_json_shape(small_demo_dirs, store_dir):
    rep = importing.import_directory(CaseStore(store_dir), small_demo_dirs["siemens-bqml"])
    data = json.loads(json.dumps(rep.to_dict()))
    assert set(data["cases"][0]) >= {"case_id", "time_points"}
    assert all(set(s) == {"path", "reason"} for s in data["skipped"])
