"""export_case on the small demo: RT Dose linked to the study, anonymised case export.

Known answers: the RT Dose equals the stored dose map within one quantisation
step and sits on its grid; in the anonymised export no original identifying value
or UID of the source files is left, every date moved by the reported shift, and the
re-imported case has the same scan times after administration (4, 24, 96, 168 h
in the demo's ground truth).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pydicom
import pytest

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.io.anonymize import basic_profile
from dosimetry_core.io.encapsulated_pdf import read_encapsulated_pdf
from dosimetry_core.io.rtdose import read_rtdose
from dosimetry_core.model import DerivedKind
from dosimetry_core.pipeline.contour_io import import_rtstruct_into_case
from dosimetry_core.pipeline.dose import compute_dose
from dosimetry_core.pipeline.export import export_case
from dosimetry_core.pipeline.importing import import_directory
from dosimetry_core.pipeline.tia_map import compute_tia_map
from dosimetry_core.store import CaseStore
from tests.conftest import copy_store

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n"


@pytest.fixture(scope="module")
def prepared(small_demo_dirs, small_demo_registered_store, shared_kernel_cache, tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("MRTDOSE_KERNEL_CACHE", str(shared_kernel_cache))
    root = small_demo_dirs["siemens-bqml"]
    # the demo imported and registered: a copy of the session's template store
    template, case_id = small_demo_registered_store
    store = CaseStore(copy_store(template, tmp_path_factory.mktemp("export-store") / "store"))
    case = store.load_case(case_id)
    rt = next(root.glob("tp1*/RTSTRUCT/*.dcm"))
    tp1 = case.sorted_time_points()[0].label
    import_rtstruct_into_case(store, case, rt, time_point=tp1, names=["Kidney_L", "Liver"])
    store.save_case(case)
    compute_tia_map(store, case_id)
    compute_dose(store, case_id, method="led")
    out = tmp_path_factory.mktemp("anon")
    anon = export_case(
        store, case_id, out, anonymize=True, secret="trial-secret", seg=True, rtstruct=True
    )
    yield store, root, case_id, anon
    mp.undo()


def _source_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*.dcm")]


def test_rtdose_is_the_dose_map_linked_to_the_study(prepared, tmp_path):
    store, _, case_id, _ = prepared
    res = export_case(store, case_id, tmp_path, rtstruct=False, report_pdf=PDF)
    case = store.load_case(case_id)
    [dose_map] = case.derived_maps(DerivedKind.DOSE)
    dose = store.load_volume(dose_map.volume)
    [path] = res.files["RTDOSE"]
    back = read_rtdose(path)
    assert back.volume.geometry.same_grid(dose.geometry, atol_mm=1e-4)
    assert np.max(np.abs(back.volume.array - dose.array)) <= back.dose_grid_scaling
    ref = case.sorted_time_points()[0]
    assert back.study_instance_uid == ref.functional.study_instance_uid
    assert back.frame_of_reference_uid == ref.anatomical.frame_of_reference_uid
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    assert ds.PatientID == case.patient.patient_id
    assert "mrtdose" in ds.SoftwareVersions
    [doc] = res.files["DOC"]
    assert read_encapsulated_pdf(doc).pdf == PDF
    assert read_encapsulated_pdf(doc).study_instance_uid == back.study_instance_uid


def test_anonymised_export_keeps_no_identifying_value(prepared):
    _, root, _, anon = prepared
    originals: dict[str, set[str]] = {}
    uids: set[str] = set()
    keywords = (
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "InstitutionName",
        "AccessionNumber",
        "StationName",
        "DeviceSerialNumber",
        "StudyDescription",
        "SeriesDescription",
    )
    for p in _source_files(root):
        ds = pydicom.dcmread(p, stop_before_pixels=True)
        for kw in keywords:
            v = str(ds.get(kw, "") or "")
            if v:
                originals.setdefault(kw, set()).add(v)
        uids |= {str(e.value) for e in ds.iterall() if e.VR == "UI" and e.value}
    assert originals["PatientName"] and originals["PatientID"] and originals["PatientBirthDate"]
    registered = {u for u in uids if pydicom.uid.UID(u).name != u}
    profile = basic_profile()
    kinds = set(anon.files)
    assert {"CT", "NM", "RTDOSE", "RTSTRUCT", "SEG"} <= kinds
    for path in [p for paths in anon.files.values() for p in paths]:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        assert ds.PatientID == anon.pseudonym and str(ds.PatientName) == anon.pseudonym
        for kw in keywords:
            assert str(ds.get(kw, "") or "") not in originals.get(kw, set()), (path, kw)
        for e in ds.iterall():
            assert not e.tag.is_private, (path, e.tag)
            # removed attributes are gone, except dates/times, which the Retain
            # Longitudinal Temporal Information with Modified Dates Option keeps (shifted)
            if e.VR not in ("DA", "DT", "TM"):
                assert profile.action(int(e.tag)) != "X", (path, e.tag)
            if e.VR == "UI" and e.value:
                values = e.value if isinstance(e.value, list) else [e.value]
                for v in values:
                    assert str(v) not in uids - registered, (path, e.keyword)
        assert ds.PatientIdentityRemoved == "YES"


def test_dates_shifted_consistently_and_intervals_kept(prepared, small_demo_truth, tmp_path):
    store, root, case_id, anon = prepared
    shift = timedelta(days=anon.date_shift_days)
    assert anon.date_shift_days < 0
    src_nm = {
        pydicom.dcmread(p, stop_before_pixels=True).AcquisitionDate for p in root.glob("*/NM/*.dcm")
    }
    out_nm = {pydicom.dcmread(p, stop_before_pixels=True).AcquisitionDate for p in anon.files["NM"]}
    from datetime import datetime

    assert out_nm == {(datetime.strptime(d, "%Y%m%d") + shift).strftime("%Y%m%d") for d in src_nm}
    # the anonymised files import into a new store as a case with the same intervals
    new_store = CaseStore(tmp_path / "store2")
    report = import_directory(new_store, anon.out_dir)
    [imported] = report.cases
    assert imported.patient_id == anon.pseudonym and imported.time_points == 4
    new_case = new_store.load_case(imported.case_id)
    old_case = store.load_case(case_id)
    old_h = [old_case.hours_after_administration(t) for t in old_case.sorted_time_points()]
    new_h = [new_case.hours_after_administration(t) for t in new_case.sorted_time_points()]
    assert new_h == pytest.approx(old_h, abs=1e-9)
    assert new_h == pytest.approx([4.0, 24.0, 96.0, 168.0], abs=1e-6)
    assert new_case.first_administration.time == old_case.first_administration.time + shift
    assert new_case.first_administration.activity_mbq == pytest.approx(
        old_case.first_administration.activity_mbq
    )
    assert new_case.patient.birth_date is None and new_case.patient.weight_kg is None


def test_rtdose_references_the_anonymised_ct(prepared):
    _, _, _, anon = prepared
    [rd] = anon.files["RTDOSE"]
    dose = pydicom.dcmread(rd, stop_before_pixels=True)
    ct_uids = {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in anon.files["CT"]}
    refs = {i.ReferencedSOPInstanceUID for i in dose.ReferencedImageSequence}
    assert refs and refs <= ct_uids
    tp1_ct = pydicom.dcmread(sorted((anon.out_dir / "TP1" / "CT").glob("*.dcm"))[0])
    assert dose.StudyInstanceUID == tp1_ct.StudyInstanceUID
    assert dose.FrameOfReferenceUID == tp1_ct.FrameOfReferenceUID


def test_same_secret_same_pseudonym_other_secret_other(prepared, tmp_path):
    store, _, case_id, anon = prepared
    kw = dict(rtstruct=False, images=False, anonymize=True)
    again = export_case(store, case_id, tmp_path / "a", secret="trial-secret", **kw)
    other = export_case(store, case_id, tmp_path / "b", secret="another", **kw)
    assert again.pseudonym == anon.pseudonym
    assert again.date_shift_days == anon.date_shift_days
    assert other.pseudonym != anon.pseudonym
    uid = {
        r.pseudonym: pydicom.dcmread(r.files["RTDOSE"][0], stop_before_pixels=True)
        for r in (again, other)
    }
    first = pydicom.dcmread(anon.files["RTDOSE"][0], stop_before_pixels=True)
    assert uid[again.pseudonym].StudyInstanceUID == first.StudyInstanceUID
    assert uid[again.pseudonym].SOPInstanceUID == first.SOPInstanceUID
    assert uid[other.pseudonym].StudyInstanceUID != first.StudyInstanceUID


def test_refusals(prepared, tmp_path):
    store, _, case_id, _ = prepared
    with pytest.raises(InvalidInputError, match="secret"):
        export_case(store, case_id, tmp_path, anonymize=True)
    with pytest.raises(InvalidInputError, match="PDF"):
        export_case(store, case_id, tmp_path, anonymize=True, secret="s", report_pdf=PDF)
    with pytest.raises(InvalidInputError, match="CT files"):
        export_case(store, case_id, tmp_path, rtdose=False, rtstruct=True)


def _uids(res) -> dict[str, list[str]]:
    return {
        kind: sorted(str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in files)
        for kind, files in res.files.items()
    }


def test_sending_the_same_results_again_gives_the_same_instances(prepared, tmp_path):
    """A re-export (a second 'pacs send') of unchanged results carries the same Series and SOP
    Instance UIDs, so the PACS replaces instead of duplicating; an edited VOI, or another
    version of the report, is a new instance."""
    store, root, case_id, _ = prepared
    copy = CaseStore(copy_store(Path(store.path), tmp_path / "store"))
    kw = {"rtstruct": True, "seg": True, "ct_dir": root}
    first = export_case(copy, case_id, tmp_path / "a", report_pdf=PDF, **kw)
    again = export_case(copy, case_id, tmp_path / "b", report_pdf=PDF, **kw)
    assert set(first.files) == {"RTDOSE", "RTSTRUCT", "SEG", "DOC"}
    assert _uids(first) == _uids(again)
    series = {
        k: str(pydicom.dcmread(f[0], stop_before_pixels=True).SeriesInstanceUID)
        for k, f in first.files.items()
    }
    assert len(set(series.values())) == 4  # one series per kind
    case = copy.load_case(case_id)
    liver = next(v for v in case.vois if v.name == "Liver")
    liver.color_rgb = (12, 34, 56)
    copy.save_case(case)
    other_pdf = PDF.replace(b"1.4", b"1.5")
    edited = export_case(copy, case_id, tmp_path / "c", report_pdf=other_pdf, **kw)
    before, after = _uids(first), _uids(edited)
    assert after["RTDOSE"] == before["RTDOSE"]
    for kind in ("RTSTRUCT", "SEG", "DOC"):
        assert set(after[kind]).isdisjoint(before[kind]), kind
    copy.close()
