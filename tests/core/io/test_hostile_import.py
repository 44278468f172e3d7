"""Attacks on ``mrtdose import`` from issue 13, one test each, with the state after.

* a file reusing the good SPECT's SOP Instance UID, in another series, sorting
  first: the real series is imported completely, the conflict names both files;
* an identical copy: a true duplicate, silently de-duplicated;
* an empty Patient ID never merges two patients;
* an acquisition before the administration of the case it would join: refused;
* activity beyond the administered activity: refused, imported only with
  ``--allow-activity-above-administered``, which is audited;
* control characters from headers escaped in the text, raw in the JSON;
* exit status: 1 when nothing was imported, 0 when imported or already there.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid

from dosimetry_core.cli.main import main
from dosimetry_core.store import CaseStore, audit

GOOD_NM = "Lu-177 SPECT 4 h p.i. (demo)"
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@pytest.fixture(autouse=True)
def _logged_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MRTDOSE_USER", raising=False)
    monkeypatch.delenv("MRTDOSE_PASSWORD", raising=False)


@pytest.fixture()
def demo(small_demo_image_dirs) -> Path:
    return small_demo_image_dirs["siemens-bqml"]


def _good_study(demo: Path, folder: Path) -> Path:
    """The 4 h SPECT/CT (59 files), hard-linked into ``folder/good``."""
    good = folder / "good"
    for sub in ("NM", "CT"):
        (good / sub).mkdir(parents=True)
        for p in (demo / "tp1_004h" / sub).glob("*.dcm"):
            os.link(p, good / sub / p.name)
    return good


def _nm24(demo: Path) -> pydicom.Dataset:
    return pydicom.dcmread(next((demo / "tp2_024h" / "NM").glob("*.dcm")))


def _import(store: Path, folder: Path, capsys, *extra: str, text: bool = False):
    argv = ["--store", str(store)] + ([] if text else ["--json"]) + ["import", str(folder), *extra]
    rc = main(argv)
    captured = capsys.readouterr()
    return rc, (captured.out if text else json.loads(captured.out)), captured.err


def _cases(store: Path) -> list:
    with CaseStore(store) as s:
        return [s.load_case(c.case_id) for c in s.list_cases()]


def test_planted_valid_file_with_the_good_sop_uid_never_displaces_the_real_series(
    demo: Path, tmp_path: Path, capsys
) -> None:
    folder = tmp_path / "in"
    good = _good_study(demo, folder)
    real = pydicom.dcmread(next((good / "NM").glob("*.dcm")))
    planted = _nm24(demo)
    planted.SOPInstanceUID = real.SOPInstanceUID  # another series, same instance UID
    planted.save_as(folder / "0000_planted.dcm", enforce_file_format=False)

    rc, data, _ = _import(tmp_path / "store", folder, capsys)
    assert rc == 0
    (conflict,) = data["conflicts"]
    assert conflict["sop_instance_uid"] == real.SOPInstanceUID
    assert sorted(Path(p).name for p in conflict["paths"]) == [
        "0000_planted.dcm",
        next((good / "NM").glob("*.dcm")).name,
    ]
    (case,) = _cases(tmp_path / "store")
    tp1 = next(tp for tp in case.time_points if tp.functional.series_description == GOOD_NM)
    assert tp1.anatomical is not None and tp1.anatomical.n_files == 58
    rc, text, _ = _import(tmp_path / "store2", folder, capsys, text=True)
    assert rc == 0 and "conflict: SOP Instance UID" in text and "0000_planted.dcm" in text


def test_identical_copy_is_a_silent_duplicate(demo: Path, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "in"
    good = _good_study(demo, folder)
    nm = next((good / "NM").glob("*.dcm"))
    shutil.copyfile(nm, folder / "0000_copy.dcm")
    rc, data, _ = _import(tmp_path / "store", folder, capsys)
    assert rc == 0
    assert data["conflicts"] == []
    assert any("duplicate of" in s["reason"] for s in data["skipped"])
    (case,) = _cases(tmp_path / "store")
    assert len(case.time_points) == 1


def test_empty_patient_id_never_joins_another_patients_case(
    demo: Path, tmp_path: Path, capsys
) -> None:
    store = tmp_path / "store"
    rc, _, _ = _import(store, _good_study(demo, tmp_path / "a"), capsys)
    assert rc == 0
    (before,) = _cases(store)
    folder = tmp_path / "b"
    folder.mkdir()
    for pid in ("", " "):
        ds = _nm24(demo)
        ds.PatientID = pid
        ds.SeriesInstanceUID = generate_uid()
        ds.SOPInstanceUID = generate_uid()
        ds.save_as(folder / f"anon{len(pid)}.dcm", enforce_file_format=False)
    rc, data, err = _import(store, folder, capsys)
    assert rc == 1 and "nothing imported" in err
    assert all("Patient ID" in s["reason"] for s in data["skipped"])
    (after,) = _cases(store)
    assert after.version == before.version and len(after.time_points) == 1


def test_acquisition_before_the_administration_of_the_case_is_refused(
    demo: Path, tmp_path: Path, capsys
) -> None:
    store = tmp_path / "store"
    _import(store, _good_study(demo, tmp_path / "a"), capsys)
    (before,) = _cases(store)
    folder = tmp_path / "b"
    folder.mkdir()
    ds = _nm24(demo)
    del ds.RadiopharmaceuticalInformationSequence  # joins the patient's latest case
    for kw in ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate"):
        setattr(ds, kw, "20260301")  # the day before the administration
    ds.save_as(folder / "early.dcm", enforce_file_format=False)
    rc, data, _ = _import(store, folder, capsys)
    assert rc == 1
    (skip,) = data["skipped"]
    assert "before the administration" in skip["reason"] and before.case_id in skip["reason"]
    (after,) = _cases(store)
    assert after.version == before.version


def test_activity_above_administered_needs_the_flag_and_is_audited(
    demo: Path, tmp_path: Path, capsys
) -> None:
    store = tmp_path / "store"
    _import(store, _good_study(demo, tmp_path / "a"), capsys)
    (before,) = _cases(store)
    folder = tmp_path / "b"
    folder.mkdir()
    ds = _nm24(demo)
    item = ds.RealWorldValueMappingSequence[0]
    item.RealWorldValueSlope = float(item.RealWorldValueSlope) * 20
    ds.save_as(folder / "hot.dcm", enforce_file_format=False)

    rc, data, _ = _import(store, folder, capsys)
    assert rc == 1
    (skip,) = data["skipped"]
    assert "more than the net administered activity" in skip["reason"]
    assert "--allow-activity-above-administered" in skip["reason"]
    (same,) = _cases(store)
    assert same.version == before.version

    rc, data, _ = _import(store, folder, capsys, "--allow-activity-above-administered")
    assert rc == 0
    (entry,) = data["activity_above_administered"]
    assert entry["total_activity_mbq"] > entry["administered_at_scan_mbq"] > 0
    (after,) = _cases(store)
    assert len(after.time_points) == 2
    with CaseStore(store) as s:
        last = audit.entries(s, after.case_id)[-1]
    assert last.details["activity_above_administered_allowed"] == [ds.SeriesDescription]


def test_control_characters_escaped_in_text_raw_in_json(demo: Path, tmp_path: Path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    ds = _nm24(demo)
    ds.PatientName = "Evil\r\nCase forged\x1b[2J"
    ds.SeriesDescription = "SPECT\x1b[31m red\x9b"
    ds.save_as(folder / "x.dcm", enforce_file_format=False)
    rc, text, _ = _import(tmp_path / "s1", folder, capsys, text=True)
    assert rc == 0
    assert not _CONTROL.search(text)
    assert "Evil\\r\\nCase forged\\x1b[2J" in text and "SPECT\\x1b[31m red\\x9b" in text
    rc, data, _ = _import(tmp_path / "s2", folder, capsys)
    assert rc == 0
    assert data["cases"][0]["patient_name"] == "Evil\r\nCase forged\x1b[2J"


def test_exit_status(demo: Path, tmp_path: Path, capsys) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    rc, _, err = _import(tmp_path / "s", empty, capsys)
    assert rc == 1 and "no files found" in err
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.dcm").write_bytes(b"not dicom" * 10)
    rc, data, err = _import(tmp_path / "s", junk, capsys)
    assert rc == 1 and data["imported"] is False and "nothing imported" in err
    good = _good_study(demo, tmp_path / "g")
    rc, data, _ = _import(tmp_path / "s", good, capsys)
    assert rc == 0 and data["imported"] is True
    rc, data, _ = _import(tmp_path / "s", good, capsys)  # again: already in the store
    assert rc == 0 and data["cases"] == [] and data["already_present"] == 1


def test_help_documents_the_exit_status(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["import", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "exit status" in out and "1 when nothing was imported" in out
    assert "--allow-activity-above-administered" in out


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "0"])
def test_calibration_factor_must_be_finite_and_positive(value, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    rc = main(
        [
            "--store",
            str(tmp_path / "s"),
            "import",
            str(folder),
            f"--calibration-cps-per-mbq={value}",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 1 and "--calibration-cps-per-mbq" in err and err.count("\n") == 1
    assert not (tmp_path / "s").exists() or _cases(tmp_path / "s") == []


def test_missing_folder_with_escape_sequence_in_its_name(tmp_path: Path, capsys) -> None:
    rc = main(["--store", str(tmp_path / "s"), "import", str(tmp_path / "no\x1b[2Jdir")])
    err = capsys.readouterr().err
    assert rc == 1 and "no such file or folder" in err and "\x1b" not in err


@pytest.mark.parametrize(
    ("keyword", "value"),
    [("RescaleSlope", "NaN"), ("AcquisitionTime", "2x0000"), ("PixelSpacing", ["inf", "4.8"])],
)
def test_a_bad_time_point_never_joins_the_patients_existing_case(
    keyword: str, value, demo: Path, tmp_path: Path, capsys
) -> None:
    """The issue's 'a NaN time point joins the patient's existing case': refused, the
    case is unchanged, and the good 24 h series imported afterwards joins it."""
    store = tmp_path / "store"
    _import(store, _good_study(demo, tmp_path / "a"), capsys)
    (before,) = _cases(store)
    bad = tmp_path / "bad"
    bad.mkdir()
    for n, p in enumerate(sorted((demo / "tp2_024h" / "NM").glob("*.dcm"))):
        ds = pydicom.dcmread(p)
        setattr(ds, keyword, value)
        ds.save_as(bad / f"nm{n}.dcm", enforce_file_format=False)
    rc, data, _ = _import(store, bad, capsys)
    assert rc == 1 and data["skipped"]
    assert any(keyword in s["reason"] or "time" in s["reason"].lower() for s in data["skipped"])
    (after,) = _cases(store)
    assert (after.version, len(after.time_points)) == (before.version, 1)
    good24 = tmp_path / "good24"
    shutil.copytree(demo / "tp2_024h", good24)
    rc, data, _ = _import(store, good24, capsys)
    (joined,) = _cases(store)
    assert rc == 0 and joined.case_id == before.case_id and len(joined.time_points) == 2
