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


# ------------------------------------------- RTSTRUCT / SEG attached as draft VOIs
COMPACT_ROIS = ("Body", "Liver", "Kidney_L", "Kidney_R", "Spleen", "Bladder", "Tumour_3")
"""ROIs of the small demo large and compact enough for a 5 % volume check on its 6.4 x 6.4 x
10 mm CT grid (the 2 mL Tumour_2 has no chance; the lungs come out 8 % large)."""


def _copy_demo(src, dst, *, rtstruct: bool):
    import shutil

    for d in sorted(src.glob("tp*")):
        shutil.copytree(
            d, dst / d.name, ignore=None if rtstruct else shutil.ignore_patterns("RTSTRUCT")
        )
    return dst


def _rtstruct_path(demo_dir):
    (path,) = sorted(demo_dir.glob("tp1*/RTSTRUCT/*.dcm"))
    return path


def _mask_volume_ml(store, voi):
    from dosimetry_core.pipeline.contouring import load_mask

    mask, geometry = load_mask(store, voi)
    return float(mask.sum()) * geometry.voxel_volume_ml, geometry


def test_rtstruct_in_the_folder_becomes_draft_vois_on_the_ct_of_its_frame(
    small_demo_dirs, small_demo_truth, store_dir
):
    import pydicom

    from dosimetry_core.model import VoiKind, VoiStatus
    from dosimetry_core.store import audit

    store = CaseStore(store_dir)
    rep = importing.import_directory(store, small_demo_dirs["siemens-bqml"])
    case = store.load_case(rep.cases[0].case_id)
    tp1 = case.sorted_time_points()[0]
    ct = store.load_volume(tp1.anatomical.volume)
    sop = pydicom.dcmread(_rtstruct_path(small_demo_dirs["siemens-bqml"])).SOPInstanceUID
    names = small_demo_truth["rtstruct"]["rois"]
    assert sorted(v.name for v in case.vois) == sorted(names)
    assert rep.cases[0].vois_attached == names
    (ss,) = rep.structure_sets
    assert ss.attached and ss.time_point == "TP1" and ss.case_id == case.case_id
    assert not any("RTSTRUCT" in s.reason for s in rep.skipped)
    for voi in case.vois:
        assert voi.status == VoiStatus.DRAFT
        assert voi.time_point_id == tp1.time_point_id
        assert voi.source == f"RTSTRUCT {sop}"
        volume_ml, geometry = _mask_volume_ml(store, voi)
        assert geometry.same_grid(ct.geometry)  # on the CT grid of TP1
        if voi.name in COMPACT_ROIS:
            truth = small_demo_truth["rois"][voi.name]["shape_volume_ml"]
            assert volume_ml == pytest.approx(truth, rel=0.05), voi.name
    kinds = {v.name: v.kind for v in case.vois}
    assert kinds["Liver"] == VoiKind.ORGAN and kinds["Kidney_L"] == VoiKind.ORGAN
    assert kinds["Tumour_1"] == VoiKind.LESION and kinds["Tumour_3"] == VoiKind.LESION
    # one audited save: the import entry names what was attached
    (entry,) = audit.entries(store, case.case_id)
    assert entry.action == "import"
    assert entry.details["vois_attached"] == names
    assert entry.details["new_time_points"] == 4


def test_reimport_does_not_duplicate_the_vois_nor_touch_the_case(small_demo_dirs, store_dir):
    from dosimetry_core.store import audit

    store = CaseStore(store_dir)
    first = importing.import_directory(store, small_demo_dirs["siemens-bqml"])
    case = store.load_case(first.cases[0].case_id)
    again = importing.import_directory(store, small_demo_dirs["siemens-bqml"])
    assert again.cases == []
    (ss,) = again.structure_sets
    assert ss.attached and ss.vois_attached == [] and len(ss.vois_existing) == len(case.vois)
    after = store.load_case(case.case_id)
    assert len(after.vois) == len(case.vois) and after.version == case.version
    assert [v.voi_id for v in after.vois] == [v.voi_id for v in case.vois]
    assert len(audit.entries(store, case.case_id)) == 1
    # no CT "not paired" noise for CTs already in the case
    assert not any("not paired" in w for w in again.warnings)


def test_an_edited_voi_is_not_replaced_by_a_later_import_of_the_structure_set(
    small_demo_dirs, tmp_path
):
    """A VOI of the same name drawn before the RTSTRUCT arrives stays as the user left it."""
    from dosimetry_core.pipeline.contouring import set_voi_mask

    demo = small_demo_dirs["siemens-bqml"]
    store = CaseStore(tmp_path / "store")
    images = importing.import_directory(store, _copy_demo(demo, tmp_path / "img", rtstruct=False))
    assert images.structure_sets == [] and images.cases[0].vois_attached == []
    case = store.load_case(images.cases[0].case_id)
    tp1 = case.sorted_time_points()[0]
    ct = store.load_volume(tp1.anatomical.volume)
    mine = np.zeros(ct.geometry.shape_zyx, dtype=bool)
    mine[20:24, 40:44, 40:44] = True
    set_voi_mask(store, case, "Liver", mine, ct.geometry, time_point=tp1, operation="brush")
    store.save_case(case, audit=store.audit_spec("contour", voi="Liver"))

    only_rt = tmp_path / "rt"
    only_rt.mkdir()
    (only_rt / "rs.dcm").write_bytes(_rtstruct_path(demo).read_bytes())
    rep = importing.import_directory(store, only_rt)
    (ss,) = rep.structure_sets
    assert ss.vois_existing == ["Liver"] and "Liver" not in ss.vois_attached
    assert rep.cases[0].case_id == case.case_id and rep.cases[0].new_time_points == 0
    after = store.load_case(case.case_id)
    liver = next(v for v in after.vois if v.name == "Liver")
    assert liver.source == "brush" and _mask_volume_ml(store, liver)[0] == pytest.approx(
        64 * ct.geometry.voxel_volume_ml
    )
    assert len(after.vois) == len(ss.roi_names)


def test_a_structure_set_of_another_frame_of_reference_is_reported_with_its_reason(
    small_demo_dirs, tmp_path
):
    import pydicom
    from pydicom.uid import generate_uid

    demo = small_demo_dirs["siemens-bqml"]
    store = CaseStore(tmp_path / "store")
    first = importing.import_directory(store, demo)
    n_vois = len(store.load_case(first.cases[0].case_id).vois)
    ds = pydicom.dcmread(_rtstruct_path(demo))
    other = generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    for item in ds.ReferencedFrameOfReferenceSequence:
        item.FrameOfReferenceUID = other
    for roi in ds.StructureSetROISequence:
        roi.ReferencedFrameOfReferenceUID = other
    if "FrameOfReferenceUID" in ds:
        ds.FrameOfReferenceUID = other
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    ds.save_as(folder / "rs.dcm")
    rep = importing.import_directory(store, folder)
    (ss,) = rep.structure_sets
    assert not ss.attached and "frame of reference" in ss.reason and other in ss.reason
    assert any(s.path.endswith("rs.dcm") and "frame of reference" in s.reason for s in rep.skipped)
    assert "not attached" in "\n".join(rep.summary_lines())
    assert rep.cases == []
    assert len(store.load_case(first.cases[0].case_id).vois) == n_vois


def test_a_structure_set_without_a_case_of_its_patient_is_reported(small_demo_dirs, tmp_path):
    folder = tmp_path / "rt"
    folder.mkdir()
    (folder / "rs.dcm").write_bytes(_rtstruct_path(small_demo_dirs["siemens-bqml"]).read_bytes())
    rep = importing.import_directory(CaseStore(tmp_path / "store"), folder)
    (ss,) = rep.structure_sets
    assert not ss.attached and "no case of patient" in ss.reason


def test_a_seg_in_the_folder_becomes_draft_vois(small_demo_dirs, small_demo_truth, tmp_path):
    """SEG written on TP1's CT from the true outlines: attached to the stored case, same voxels."""
    import pydicom

    from dosimetry_core.io.rtstruct import import_rtstruct
    from dosimetry_core.io.seg import export_seg
    from dosimetry_core.model import VoiStatus

    demo = small_demo_dirs["siemens-bqml"]
    images = _copy_demo(demo, tmp_path / "img", rtstruct=False)
    store = CaseStore(tmp_path / "store")
    case_id = importing.import_directory(store, images).cases[0].case_id
    tp1 = store.load_case(case_id).sorted_time_points()[0]
    ct = store.load_volume(tp1.anatomical.volume)
    wanted = ["Liver", "Kidney_L", "Tumour_3"]
    truth_masks = import_rtstruct(_rtstruct_path(demo), ct.geometry, wanted).masks
    folder = tmp_path / "seg"
    folder.mkdir()
    export_seg(
        folder / "seg.dcm",
        {n: (m, (200, 100, 50), "ORGAN") for n, m in truth_masks.items()},
        ct.geometry,
        sorted((images / "tp1_004h" / "CT").glob("*.dcm")),
        series_description="AI organs",
    )
    rep = importing.import_directory(store, folder)
    (ss,) = rep.structure_sets
    assert ss.kind == "SEG" and ss.attached and ss.time_point == "TP1"
    assert sorted(ss.vois_attached) == sorted(wanted)
    sop = pydicom.dcmread(folder / "seg.dcm", stop_before_pixels=True).SOPInstanceUID
    case = store.load_case(case_id)
    for voi in case.vois:
        assert voi.status == VoiStatus.DRAFT and voi.source == f"SEG {sop}"
        volume_ml, geometry = _mask_volume_ml(store, voi)
        assert geometry.same_grid(ct.geometry)
        assert volume_ml == pytest.approx(
            float(truth_masks[voi.name].sum()) * ct.geometry.voxel_volume_ml
        )
        truth = small_demo_truth["rois"][voi.name]["shape_volume_ml"]
        assert volume_ml == pytest.approx(truth, rel=0.05), voi.name
    again = importing.import_directory(store, folder)
    assert again.cases == [] and len(store.load_case(case_id).vois) == 3


# --------------------------------------------------------------- the summary in words
def test_the_text_summary_names_series_descriptions_and_hours_not_uids(
    small_demo_dirs, small_demo_truth, store_dir
):
    store = CaseStore(store_dir)
    rep = importing.import_directory(store, small_demo_dirs["siemens-bqml"])
    text = "\n".join(rep.summary_lines())
    case = store.load_case(rep.cases[0].case_id)
    (imported,) = rep.cases
    assert imported.patient_name == case.patient.name and case.patient.name in text
    for tp, truth in zip(imported.series, small_demo_truth["time_points"], strict=True):
        assert tp.new and tp.units == "Bq/mL" and tp.calibration == "vendor"
        assert tp.hours_after_administration == pytest.approx(truth["hours_after_administration"])
        assert tp.words() in text
        assert f"{truth['hours_after_administration']:.1f} h" in tp.words()
        assert f"'{tp.series_description}'" in tp.words()
    stored = {tp.label: tp for tp in case.sorted_time_points()}
    assert imported.series[1].n_files == stored["TP2"].functional.n_files > 0
    assert imported.series[1].ct_n_files == stored["TP2"].anatomical.n_files > 1
    assert "TP2 · 24.0 h · NM 'Lu-177 SPECT 24 h p.i. (demo)'" in text
    assert "RTSTRUCT" in text and "Liver" in text
    uids = set()
    for tp in case.time_points:
        for s in (tp.functional, tp.anatomical):
            uids |= {s.series_instance_uid, s.study_instance_uid, s.frame_of_reference_uid}
    uids |= {v.source.split()[-1] for v in case.vois}
    assert all(uid not in text for uid in uids if uid)
    again = "\n".join(
        importing.import_directory(store, small_demo_dirs["siemens-bqml"]).summary_lines()
    )
    assert "already in case" in again and all(uid not in again for uid in uids if uid)


def test_counts_series_summary_says_how_it_was_calibrated(small_demo_dirs, tmp_path):
    ge = small_demo_dirs["ge-counts"]
    raw = importing.import_directory(CaseStore(tmp_path / "a"), ge)
    assert {tp.calibration for tp in raw.cases[0].series} == {"uncalibrated"}
    assert {tp.units for tp in raw.cases[0].series} == {"counts"}
    cal = importing.import_directory(CaseStore(tmp_path / "b"), ge, calibration_cps_per_mbq=9.0)
    assert {tp.calibration for tp in cal.cases[0].series} == {"calibrated 9 cps/MBq"}
    assert "Bq/mL calibrated 9 cps/MBq" in cal.cases[0].series[0].words()


def test_report_json_keeps_its_keys_and_adds_the_descriptions(small_demo_dirs, store_dir):
    rep = importing.import_directory(CaseStore(store_dir), small_demo_dirs["siemens-bqml"])
    data = json.loads(json.dumps(rep.to_dict()))
    assert set(data) >= {"cases", "skipped", "warnings", "calibrations", "structure_sets"}
    case = data["cases"][0]
    assert set(case) >= {"case_id", "time_points", "patient_id", "new_time_points", "created"}
    assert isinstance(case["time_points"], int) and case["time_points"] == 4
    assert [s["label"] for s in case["series"]] == ["TP1", "TP2", "TP3", "TP4"]
    assert case["series"][1]["hours_after_administration"] == pytest.approx(24.0)
    assert "Liver" in case["vois_attached"]
    assert data["structure_sets"][0]["attached"] is True


# ------------------------------------------------------------------------ who may import
def test_only_a_role_that_may_import_can_import_and_a_refusal_writes_nothing(
    small_demo_dirs, tmp_path
):
    from dosimetry_core.errors import PermissionDeniedError
    from dosimetry_core.store.users import bootstrap_admin, create_user

    store = CaseStore(tmp_path / "store")
    admin = bootstrap_admin(store, "admin", "admin-pass-123")
    create_user(store, admin, "doc", "doc-pass-1234", "physician")
    create_user(store, admin, "tech", "tech-pass-1234", "technologist")
    from dosimetry_core.store.users import authenticate

    store.actor = None
    with pytest.raises(PermissionDeniedError, match="log in"):
        importing.import_directory(store, small_demo_dirs["siemens-bqml"])
    store.actor = authenticate(store, "doc", "doc-pass-1234")
    blobs_before = sorted(p for p in store.path.rglob("*") if p.is_file())
    with pytest.raises(PermissionDeniedError, match="may not import"):
        importing.import_directory(store, small_demo_dirs["siemens-bqml"])
    assert store.list_cases() == []
    assert sorted(p for p in store.path.rglob("*") if p.is_file()) == blobs_before
    store.actor = authenticate(store, "tech", "tech-pass-1234")
    rep = importing.import_directory(store, small_demo_dirs["siemens-bqml"])
    case = store.load_case(rep.cases[0].case_id)
    assert case.vois and all(v.history[0]["user"] == "tech" for v in case.vois)
