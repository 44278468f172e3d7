"""mrtdose administration / measurement / scan-time: JSON, one-line errors, exit codes, roles."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from dosimetry_core.cli.main import main
from dosimetry_core.model import Case, Patient, SeriesInfo, TimePoint
from dosimetry_core.store import CaseStore
from dosimetry_core.store import audit as audit_trail
from dosimetry_core.store.users import bootstrap_admin, create_user

T0 = datetime(2026, 1, 5, 9, 0)
CASE = "case-entry-cli"


@pytest.fixture()
def store_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.delenv("MRTDOSE_USER", raising=False)
    monkeypatch.delenv("MRTDOSE_PASSWORD", raising=False)
    store = CaseStore(tmp_path / "store")
    tp = TimePoint(
        acquired_at=T0 + timedelta(hours=4),
        modality="NM",
        functional=SeriesInfo(series_instance_uid="1.2.3"),
        label="TP1",
    )
    store.save_case(Case(patient=Patient("P-CLI"), time_points=[tp], case_id=CASE))
    store.close()
    return str(tmp_path / "store")


def run(capsys, store: str, *argv: str) -> tuple[int, str, str]:
    code = main(["--store", store, *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _add_admin(capsys, s: str, *extra: str) -> tuple[int, str, str]:
    return run(
        capsys, s, "administration", CASE, "add", "--activity-mbq", "7400",
        "--time", T0.isoformat(), "--nuclide", "Lu-177", *extra,
    )  # fmt: skip


def test_administration_add_edit_list_json(capsys, store_path):
    code, out, err = _add_admin(
        capsys, store_path, "--cycle", "2", "--radiopharmaceutical", "DOTATATE",
        "--measured-by", "tom", "--calibrator", "CRC-1", "--json",
    )  # fmt: skip
    assert code == 0, err
    rec = json.loads(out)
    assert rec["activity_mbq"] == 7400.0 and rec["net_activity_mbq"] == 7400.0
    assert rec["cycle"] == 2 and rec["calibrator"] == "CRC-1" and rec["warnings"] == []
    adm_id = rec["administration_id"]
    code, out, err = run(
        capsys, store_path, "administration", CASE, "edit", adm_id, "--residual-mbq", "150",
        "--residual-time", (T0 + timedelta(minutes=10)).isoformat(), "--json",
    )  # fmt: skip
    assert code == 0, err
    rec = json.loads(out)
    # Lu-177 T1/2 = 6.647 d: the residual 10 min later is 150 * 2^(10/60/159.528) at t0
    assert rec["net_activity_mbq"] == pytest.approx(7400 - 150 * 2 ** (10 / 60 / 159.528), rel=1e-6)
    code, out, _ = run(capsys, store_path, "administration", CASE, "list", "--json")
    data = json.loads(out)
    assert data["case_id"] == CASE and len(data["administrations"]) == 1
    assert data["administrations"][0]["residual_activity_mbq"] == 150.0
    assert data["administrations"][0]["net_activity_mbq"] == pytest.approx(rec["net_activity_mbq"])
    code, out, _ = run(capsys, store_path, "administration", CASE, "list")
    assert code == 0 and "net 7,249.9 MBq" in out


@pytest.mark.parametrize(
    ("extra", "field", "option"),
    [
        (("--activity-mbq", "-5"), "activity_mbq", "--activity-mbq"),
        (("--activity-mbq", "lots"), "activity_mbq", "--activity-mbq"),
        (("--residual-mbq", "8000"), "residual_activity_mbq", "--residual-mbq"),
        (
            ("--residual-time", "yesterday", "--residual-mbq", "5"),
            "residual_time",
            "--residual-time",
        ),
        (("--nuclide", "Zz-1"), "nuclide", "--nuclide"),
        (("--time", "2999-01-01T00:00"), "time", "--time"),
    ],
)
def test_administration_errors_one_line_exit_1(capsys, store_path, extra, field, option):
    code, out, err = _add_admin(capsys, store_path, *extra)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"mrtdose: {field}:") and option in err
    case = CaseStore(Path(store_path)).load_case(CASE)
    assert case.administrations == [] and case.version == 1


def test_measurements_add_list_delete_json(capsys, store_path):
    assert _add_admin(capsys, store_path)[0] == 0
    code, out, err = run(
        capsys, store_path, "measurement", CASE, "add", "--kind", "dose-rate",
        "--time", "2026-01-05T10:00", "--dose-rate-usv-h", "35", "--distance-m", "1",
        "--background-usv-h", "0.1", "--json",
    )  # fmt: skip
    assert code == 0, err
    dose = json.loads(out)
    assert (dose["kind"], dose["value"], dose["unit"]) == ("dose rate", 35.0, "uSv/h")
    assert dose["extra"]["distance_m"] == 1.0 and dose["warnings"] == []
    code, out, err = run(
        capsys, store_path, "measurement", CASE, "add", "--kind", "blood",
        "--time", "2026-01-05T11:00", "--concentration-bq-ml", "1200", "--hematocrit", "0.7",
        "--json",
    )  # fmt: skip
    blood = json.loads(out)
    assert [w["field"] for w in blood["warnings"]] == ["hematocrit"]
    code, out, _ = run(
        capsys, store_path, "measurement", CASE, "add", "--kind", "weight", "--weight-kg", "81",
        "--json",
    )  # fmt: skip
    assert json.loads(out)["weight_kg"] == 81.0
    code, out, _ = run(capsys, store_path, "measurement", CASE, "list", "--json")
    data = json.loads(out)
    assert data["patient"] == {"weight_kg": 81.0, "height_cm": None}
    assert [m["kind"] for m in data["measurements"]] == ["dose rate", "blood sample"]
    code, out, _ = run(capsys, store_path, "measurement", CASE, "list", "--kind", "blood", "--json")
    assert [m["measurement_id"] for m in json.loads(out)["measurements"]] == [
        blood["measurement_id"]
    ]
    code, out, err = run(
        capsys, store_path, "measurement", CASE, "delete", dose["measurement_id"],
        "--reason", "wrong patient", "--json",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["measurement_id"] == dose["measurement_id"]
    store = CaseStore(Path(store_path))
    assert [m.measurement_id for m in store.load_case(CASE).measurements] == [
        blood["measurement_id"]
    ]
    last = audit_trail.entries(store, CASE)[-1]
    assert last.details["operation"] == "delete" and last.details["values"]["value"] == 35.0
    code, _, err = run(capsys, store_path, "measurement", CASE, "delete", "m-none")
    assert code == 1 and err.startswith("mrtdose: measurement_id:")


def test_measurement_errors_and_scan_time(capsys, store_path):
    code, _, err = run(
        capsys, store_path, "measurement", CASE, "add", "--kind", "dose-rate",
        "--time", "2026-01-05T10:00", "--dose-rate-usv-h", "5", "--distance-m", "1",
    )  # fmt: skip
    assert code == 1 and "enter the administration first" in err  # no administration yet
    assert _add_admin(capsys, store_path)[0] == 0
    code, _, err = run(
        capsys, store_path, "measurement", CASE, "add", "--kind", "height", "--height-cm", "300"
    )
    assert code == 1 and err.startswith("mrtdose: height_cm:") and "--height-cm" in err
    code, _, err = run(
        capsys, store_path, "measurement", CASE, "add", "--kind", "blood",
        "--time", "2026-01-05T10:00", "--concentration-bq-ml", "100", "--hematocrit", "42",
    )  # fmt: skip
    assert code == 1 and err.startswith("mrtdose: hematocrit:")
    code, _, err = run(capsys, store_path, "measurement", CASE, "add", "--kind", "sweat")
    assert code == 1 and err.startswith("mrtdose: kind: unknown measurement kind 'sweat'")
    code, out, err = run(
        capsys, store_path, "scan-time", CASE, "TP1", "--acquired-at", "2026-01-05T13:30",
        "--reason", "scanner clock 30 min late", "--json",
    )  # fmt: skip
    assert code == 0, err
    rec = json.loads(out)
    assert rec["acquired_at"] == "2026-01-05T13:30:00"
    assert rec["acquired_at_original"] == "2026-01-05T13:00:00"
    code, _, err = run(
        capsys, store_path, "scan-time", CASE, "TP1", "--acquired-at", "2026-01-05T08:00",
        "--reason", "x",
    )  # fmt: skip
    assert code == 1 and err.startswith("mrtdose: acquired_at:") and "--acquired-at" in err


def test_roles_on_a_store_with_accounts(capsys, store_path, monkeypatch):
    store = CaseStore(Path(store_path))
    admin = bootstrap_admin(store, "root", "admin-pass-1234")
    create_user(store, admin, "tom", "tech-pass-1234", "technologist")
    create_user(store, admin, "dora", "md-pass-12345", "physician")
    store.close()
    code, _, err = _add_admin(capsys, store_path)
    assert code == 1 and "log in" in err
    monkeypatch.setenv("MRTDOSE_USER", "dora")
    monkeypatch.setenv("MRTDOSE_PASSWORD", "md-pass-12345")
    code, _, err = _add_admin(capsys, store_path)
    assert code == 1 and "dora (physician) may not enter administrations" in err
    code, _, err = run(
        capsys, store_path, "measurement", CASE, "add", "--kind", "weight", "--weight-kg", "70"
    )
    assert code == 1 and "may not enter probe, blood and dose-rate measurements" in err
    code, out, _ = run(capsys, store_path, "administration", CASE, "list", "--json")
    assert code == 0 and json.loads(out)["administrations"] == []  # reading is allowed
    monkeypatch.setenv("MRTDOSE_USER", "tom")
    monkeypatch.setenv("MRTDOSE_PASSWORD", "tech-pass-1234")
    code, out, err = _add_admin(capsys, store_path, "--json")
    assert code == 0, err
    assert json.loads(out)["entered_by"] == "tom"
