"""The mrtdose command line: public JSON shapes, exit codes, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dosimetry_core.cli.main import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv: str) -> dict:
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def test_import_prints_the_public_json_shape(capsys, small_demo_dirs, store_dir):
    data = run_json(
        capsys, "--store", str(store_dir), "import", str(small_demo_dirs["siemens-bqml"])
    )
    assert set(data) >= {"cases", "skipped"}
    assert len(data["cases"]) == 1
    assert data["cases"][0]["time_points"] == 4
    assert isinstance(data["cases"][0]["case_id"], str)
    # ground_truth.json is not DICOM: reported, not fatal; the RTSTRUCT is attached as draft VOIs
    reasons = {Path(s["path"]).name: s["reason"] for s in data["skipped"]}
    assert not any("RTSTRUCT" in r for r in reasons.values())
    assert data["structure_sets"][0]["attached"]
    assert "ground_truth.json" in reasons
    assert all(set(s) == {"path", "reason"} for s in data["skipped"])


def test_show_reports_times_units_and_activity_against_ground_truth(
    capsys, small_demo_dirs, small_demo_truth, store_dir
):
    imp = run_json(
        capsys, "import", str(small_demo_dirs["siemens-bqml"]), "--store", str(store_dir)
    )
    case_id = imp["cases"][0]["case_id"]
    show = run_json(capsys, "show", case_id, "--store", str(store_dir))
    assert show["case_id"] == case_id
    assert show["patient"]["patient_id"] == small_demo_truth["patient"]["patient_id"]
    (adm,) = show["administrations"]
    assert adm["nuclide"] == "Lu-177"
    assert adm["activity_mbq"] == pytest.approx(small_demo_truth["injected_activity_mbq"], rel=1e-6)
    assert len(show["time_points"]) == 4
    for tp, truth in zip(show["time_points"], small_demo_truth["time_points"], strict=True):
        assert tp["modality"] == "NM"
        assert tp["units"] == "Bq/mL"
        assert tp["hours_after_administration"] == pytest.approx(
            truth["hours_after_administration"], abs=1e-6
        )
        assert tp["acquired_at"].startswith(truth["acquired_at"][:16])
        assert tp["total_activity_mbq"] == pytest.approx(truth["fov_activity_mbq"], rel=0.01)


def test_counts_series_need_a_calibration_factor(
    capsys, small_demo_dirs, small_demo_truth, tmp_path
):
    ge = str(small_demo_dirs["ge-counts"])
    a = run_json(capsys, "import", ge, "--store", str(tmp_path / "a"))
    show = run_json(capsys, "show", a["cases"][0]["case_id"], "--store", str(tmp_path / "a"))
    assert all(
        tp["units"] == "counts" and tp["total_activity_mbq"] is None for tp in show["time_points"]
    )
    assert all(tp["calibration_status"] == "uncalibrated" for tp in show["time_points"])

    cf = small_demo_truth["camera"]["cps_per_mbq"]
    b = run_json(
        capsys, "import", ge, "--calibration-cps-per-mbq", str(cf), "--store", str(tmp_path / "b")
    )
    show = run_json(capsys, "show", b["cases"][0]["case_id"], "--store", str(tmp_path / "b"))
    for tp, truth in zip(show["time_points"], small_demo_truth["time_points"], strict=True):
        assert tp["units"] == "Bq/mL"
        assert tp["calibration_status"] == "calibration factor"
        assert tp["total_activity_mbq"] == pytest.approx(truth["fov_activity_mbq"], rel=0.01)


def test_reimport_adds_nothing_and_cases_lists_the_case(capsys, small_demo_dirs, store_dir):
    d = str(small_demo_dirs["siemens-bqml"])
    first = run_json(capsys, "import", d, "--store", str(store_dir))
    second = run_json(capsys, "import", d, "--store", str(store_dir))
    assert second["cases"] == [] or second["cases"][0]["case_id"] == first["cases"][0]["case_id"]
    listing = run_json(capsys, "cases", "--store", str(store_dir))
    assert [c["case_id"] for c in listing["cases"]] == [first["cases"][0]["case_id"]]
    assert listing["cases"][0]["time_points"] == 4


def test_store_from_environment_variable(capsys, small_demo_dirs, tmp_path, monkeypatch):
    monkeypatch.setenv("MRTDOSE_STORE", str(tmp_path / "env-store"))
    data = run_json(capsys, "import", str(small_demo_dirs["siemens-bqml"]))
    assert (tmp_path / "env-store").exists()
    assert run_json(capsys, "cases")["cases"][0]["case_id"] == data["cases"][0]["case_id"]


def test_bad_files_are_skipped_with_reasons_and_good_series_still_import(
    capsys, small_demo_dirs, tmp_path
):
    import shutil

    mixed = tmp_path / "mixed"
    shutil.copytree(small_demo_dirs["siemens-bqml"], mixed)
    (mixed / "notes.txt").write_text("scan protocol notes\n")
    # truncate one CT slice of the last time point: that CT cannot be read
    ct_files = sorted(mixed.glob("tp4*/CT/*.dcm"))
    victim = ct_files[len(ct_files) // 2]
    victim.write_bytes(victim.read_bytes()[:2000])
    data = run_json(capsys, "import", str(mixed), "--store", str(tmp_path / "s"))
    assert data["cases"][0]["time_points"] == 4  # SPECTs still import
    skipped = {Path(s["path"]).name: s["reason"] for s in data["skipped"]}
    assert "notes.txt" in skipped and "not a DICOM" in skipped["notes.txt"].replace(
        "DICOM file", "DICOM"
    )
    assert any(victim.name in s["path"] or "CT" in s["path"] for s in data["skipped"])


def test_user_mistakes_give_one_line_and_nonzero_exit(capsys, tmp_path):
    code, out, err = run(
        capsys, "import", str(tmp_path / "nowhere"), "--store", str(tmp_path / "s")
    )
    assert code == 1 and "no such file or folder" in err and err.count("\n") == 1
    code, out, err = run(capsys, "show", "case-doesnotexist", "--store", str(tmp_path / "s"))
    assert code == 1 and "case-doesnotexist" in err and err.count("\n") == 1
    code, out, err = run(
        capsys,
        "import",
        str(tmp_path),
        "--calibration-cps-per-mbq",
        "-3",
        "--store",
        str(tmp_path / "s"),
    )
    assert code == 1 and "positive" in err
    with pytest.raises(SystemExit) as exc:
        main(["import"])
    assert exc.value.code == 2
    assert "DICOM_DIR" in capsys.readouterr().err


def test_console_script_never_prints_a_traceback(tmp_path):
    env = dict(os.environ, MRTDOSE_STORE=str(tmp_path / "s"))
    p = subprocess.run(
        [sys.executable, "-m", "dosimetry_core", "show", "nope", "--json"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert p.returncode == 1
    assert "Traceback" not in p.stderr and p.stderr.startswith("mrtdose: ")


def test_a_corrupt_store_is_reported_on_one_line(capsys, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "cases.sqlite").write_text("this is not a database")
    code, out, err = run(capsys, "cases", "--store", str(bad))
    assert code == 1
    assert err.startswith("mrtdose: cannot open the case store") and err.count("\n") == 1
    assert "not a database" in err
