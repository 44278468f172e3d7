"""mrtdose worklist / case-new: the case list's filters and a new case, headless (issue 12).

Known answers: ``case-new`` creates a case whose checklist lacks the administration,
so ``worklist --filter missing-administration`` lists exactly it; a physician (role
read from ``$MRTDOSE_USER``) may not create a case, and an empty patient ID is
refused naming the field; nothing is then saved.
"""

from __future__ import annotations

import json

import pytest

from dosimetry_core.cli import main as cli_main
from dosimetry_core.store import CaseStore
from dosimetry_core.store.permissions import Actor
from dosimetry_core.store.users import bootstrap_admin, create_user
from tests.core.reporting._synthetic import synthetic_case


@pytest.fixture(autouse=True)
def _no_user(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MRTDOSE_USER", "MRTDOSE_PASSWORD", "MRTDOSE_STORE"):
        monkeypatch.delenv(name, raising=False)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli_main.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_case_new_then_worklist_filters(tmp_path, capsys):
    store_dir = str(tmp_path / "s")
    with_adm = CaseStore(tmp_path / "s")
    adm_case = synthetic_case(with_adm, "P-ADM", 0.5)
    with_adm.close()
    code, out, err = run(
        capsys,
        "case-new",
        "--store",
        store_dir,
        "--patient-id",
        "P-NEW",
        "--name",
        "Doe^John",
        "--birth-date",
        "1958-04-01",
        "--sex",
        "M",
        "--protocol",
        "lu177-dotatate",
        "--json",
    )
    assert code == 0, err
    made = json.loads(out)
    assert made["patient_id"] == "P-NEW" and made["protocol"] == "lu177-dotatate"
    missing = [i["item"] for i in made["checklist"] if not i["present"]]
    assert "administration" in missing

    code, out, err = run(
        capsys, "worklist", "--store", store_dir, "--filter", "missing-administration", "--json"
    )
    assert code == 0, err
    rows = json.loads(out)["cases"]
    assert [r["case_id"] for r in rows] == [made["case_id"]]
    assert rows[0]["has_administration"] is False

    code, out, _ = run(capsys, "worklist", "--store", store_dir, "--json")
    assert {r["case_id"] for r in json.loads(out)["cases"]} == {made["case_id"], adm_case}
    code, out, _ = run(capsys, "worklist", "--store", store_dir)
    assert "P-NEW" in out and "lu177-dotatate" in out


def test_case_new_refusals_save_nothing(tmp_path, capsys, monkeypatch):
    store_dir = str(tmp_path / "s")
    code, _, err = run(capsys, "case-new", "--store", store_dir, "--patient-id", "  ")
    assert code == 1 and "patient ID is required" in err
    code, _, err = run(
        capsys, "case-new", "--store", store_dir, "--patient-id", "P1", "--birth-date", "1.2.1960"
    )
    assert code == 1 and "birth date" in err

    store = CaseStore(tmp_path / "s")
    bootstrap_admin(store, "admin", "admin-password-1")
    create_user(store, Actor("admin", "admin"), "doc", "doc-password-1", "physician")
    store.close()
    monkeypatch.setenv("MRTDOSE_USER", "doc")
    monkeypatch.setenv("MRTDOSE_PASSWORD", "doc-password-1")
    code, _, err = run(capsys, "case-new", "--store", store_dir, "--patient-id", "P1")
    assert code == 1 and "physician" in err
    code, out, _ = run(capsys, "worklist", "--store", store_dir, "--json")
    assert json.loads(out)["cases"] == []


def test_unknown_filter_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli_main.main(["worklist", "--store", str(tmp_path / "s"), "--filter", "bogus"])
    assert exit_.value.code == 2
