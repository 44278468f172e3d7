"""``mrtdose export`` in-process: anonymised RTSTRUCT + images of the small demo.

Known answers: the pseudonym printed is ANON- + the first 16 hex digits of
HMAC-SHA-256(secret, "patient:" + Patient ID) (recomputed here with hmac); the
date shift given is the one reported; a missing secret file fails with exit 1.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json

import pydicom
import pytest

import dosimetry_core.cli.main as cli_main
from dosimetry_core.cli import export_command
from dosimetry_core.pipeline.contour_io import import_rtstruct_into_case
from dosimetry_core.pipeline.importing import import_directory
from dosimetry_core.store import CaseStore


@pytest.fixture()
def main_with_export(monkeypatch):
    """``main`` with the export command, whether or not main.py registers it yet."""
    original = cli_main.build_parser

    def build() -> argparse.ArgumentParser:
        parser = original()
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        if "export" not in sub.choices:
            common = argparse.ArgumentParser(add_help=False)
            common.add_argument("--json", action="store_true")
            common.add_argument("--store", default=None)
            export_command.add_parsers(sub, common)
        return parser

    monkeypatch.setattr(cli_main, "build_parser", build)
    return cli_main.main


@pytest.fixture(scope="module")
def demo_case(small_demo_dirs, small_demo_image_dirs, tmp_path_factory):
    root = small_demo_dirs["siemens-bqml"]
    store_dir = tmp_path_factory.mktemp("cli-export-store")
    store = CaseStore(store_dir)
    case_id = import_directory(store, small_demo_image_dirs["siemens-bqml"]).cases[0].case_id
    case = store.load_case(case_id)
    rt = next(root.glob("tp1*/RTSTRUCT/*.dcm"))
    import_rtstruct_into_case(
        store, case, rt, time_point=case.sorted_time_points()[0].label, names=["Liver"]
    )
    store.save_case(case)
    return store_dir, case_id, case.patient.patient_id


def test_export_anonymised_json(main_with_export, demo_case, tmp_path, capsys):
    store_dir, case_id, patient_id = demo_case
    secret = tmp_path / "secret.txt"
    secret.write_text("multicentre-trial-42\n")
    out = tmp_path / "out"
    code = main_with_export(
        ["export", case_id, str(out), "--no-rtdose", "--rtstruct", "--anonymize",
         "--secret-file", str(secret), "--date-shift-days", "-30",
         "--store", str(store_dir), "--json"]
    )  # fmt: skip
    stdout, err = capsys.readouterr()
    assert code == 0, err
    data = json.loads(stdout)
    expected = (
        "ANON-"
        + hmac.new(b"multicentre-trial-42", f"patient:{patient_id}".encode(), hashlib.sha256)
        .hexdigest()[:16]
        .upper()
    )
    assert data["pseudonym"] == expected
    assert data["anonymized"] is True and data["date_shift_days"] == -30
    assert set(data["files"]) == {"CT", "NM", "RTSTRUCT"}
    assert data["n_files"] == sum(len(v) for v in data["files"].values())
    ds = pydicom.dcmread(data["files"]["RTSTRUCT"][0])
    assert ds.PatientID == expected
    assert [r.ROIName for r in ds.StructureSetROISequence] == ["Liver"]


def test_export_errors_are_one_line(main_with_export, demo_case, tmp_path, capsys):
    store_dir, case_id, _ = demo_case
    code = main_with_export(
        ["export", case_id, str(tmp_path / "o"), "--anonymize", "--store", str(store_dir)]
    )
    _, err = capsys.readouterr()
    assert code == 1 and "--secret-file" in err and len(err.strip().splitlines()) == 1
    code = main_with_export(
        ["export", case_id, str(tmp_path / "o"), "--anonymize", "--secret-file",
         str(tmp_path / "missing.txt"), "--store", str(store_dir)]
    )  # fmt: skip
    _, err = capsys.readouterr()
    assert code == 1 and "secret file" in err
