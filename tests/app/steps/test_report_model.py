"""The report step's view-model without Qt: rows, rules and words, on the core's records.

A synthetic case with a hand-written protocol run (no images, fast): the kidney dose
is a known number; the report is made, signed and amended by the core, and the model
must show exactly what the records say.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher

from app.steps.report.model import (
    PROTOCOL_STEP_TITLE,
    ReportModel,
    explain_file_check,
    load_state,
    number_rows,
    short_flag,
)
from dosimetry_core.model import Administration, Case, Patient
from dosimetry_core.reporting.records import amend, create_report, sign
from dosimetry_core.store import CaseStore
from dosimetry_core.store.permissions import PERMISSIONS, Actor
from dosimetry_core.store.users import bootstrap_admin, create_user
from tests.core.reporting._synthetic import synthetic_case

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PW = {"root": "otter-maple-fig-42", "pia": "pia-maple-fig-4242", "dora": "dora-otter-fig-42"}
KIDNEY_GY_PER_GBQ = 0.5
KIDNEY_GY = KIDNEY_GY_PER_GBQ * 7.4  # 7400 MBq


def _may(role: str) -> dict[str, bool]:
    actions = ("report", "sign-mpe", "sign-practitioner", "amend-report", "verify")
    return {a: a in PERMISSIONS[role] for a in actions}


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: Any) -> Any:
    store = CaseStore(tmp_path_factory.mktemp("report-model") / "store")
    case_id = synthetic_case(store, "P1", KIDNEY_GY_PER_GBQ)
    bare = Case(
        patient=Patient("P2", name="Bare^Case"),
        administrations=[Administration("Lu-177", 7400.0, synthetic_start())],
    )
    store.save_case(bare)
    admin = bootstrap_admin(store, "root", PW["root"], hasher=FAST)
    create_user(store, admin, "pia", PW["pia"], "physicist", hasher=FAST)
    create_user(store, admin, "dora", PW["dora"], "physician", hasher=FAST)
    yield store, case_id, bare.case_id
    store.close()


def synthetic_start() -> Any:
    from datetime import datetime

    return datetime(2026, 1, 5, 9, 0)


def test_no_protocol_run_names_the_protocol_step(keyed: Any) -> None:
    store, _, bare_id = keyed
    m = ReportModel(load_state(store, bare_id), _may("physicist"))
    assert not m.can_make()
    assert "no protocol run" in m.summary() and PROTOCOL_STEP_TITLE in m.summary()
    assert m.numbers() == [] and m.versions() == [] and m.signatures() == []


def test_life_of_a_report_in_the_model(keyed: Any) -> None:
    store, case_id, _ = keyed
    phys, doc = Actor("pia", "physicist"), Actor("dora", "physician")
    state = load_state(store, case_id)
    assert state.reports == () and state.has_protocol_run and state.has_ca
    assert ReportModel(state, _may("physicist")).can_make()
    assert not ReportModel(state, _may("technologist")).can_make()
    assert not ReportModel(state, _may("physician")).can_make()

    rec = create_report(store, phys, case_id)
    state = load_state(store, case_id)
    m = ReportModel(state, _may("physicist"))
    assert state.pdf is not None and state.pdf.startswith(b"%PDF") and state.problems == ()
    # the kidney dose is the content's number, with its limit and PASS, approved contour
    kidneys = next(r for r in m.numbers() if r.name == "Kidneys")
    assert kidneys.dose == f"{KIDNEY_GY:.3f}" and kidneys.dose_gy == pytest.approx(KIDNEY_GY)
    assert kidneys.result == "PASS" and kidneys.limit == "dose ≤ 23 Gy" and not kidneys.flagged
    assert kidneys.limit_detail == f"dose cumulative {KIDNEY_GY:.3f} of 23 Gy"
    assert m.sign_roles() == ["mpe"] and ReportModel(state, _may("physician")).sign_roles() == []
    assert "MPE signs first" in ReportModel(state, _may("physician")).sign_hint()
    assert ReportModel(state, _may("technologist")).sign_roles() == []
    assert not m.amend_allowed()  # a draft is regenerated, not amended

    sign(store, phys, rec.report_id, "mpe", password=PW["pia"])
    state = load_state(store, case_id)
    assert ReportModel(state, _may("physicist")).sign_roles() == []
    assert ReportModel(state, _may("physician")).sign_roles() == ["practitioner"]
    sign(store, doc, rec.report_id, "practitioner", password=PW["dora"])
    state = load_state(store, case_id)
    m = ReportModel(state, _may("physician"))
    assert "signed" in m.summary() and "final" in m.summary()
    rows = m.signatures()
    assert [r[:3] for r in rows] == [
        ["pia", "physicist", "MPE"],
        ["dora", "physician", "Practitioner"],
    ]
    assert [r[4] for r in rows] == ["yes", "yes"]
    assert all(r[5].startswith("yes") for r in rows)
    assert not ReportModel(state, _may("physicist")).can_make()  # signed: amend it
    assert m.amend_allowed() and not m.can_amend("   ") and m.can_amend("typo in weight")

    new = amend(store, doc, rec.report_id, "typo in weight")
    state = load_state(store, case_id)
    m = ReportModel(state, _may("physician"))
    assert m.versions() == [
        ["1", "superseded", rec.created_at.isoformat(sep=" "), "pia", "—", "—"],
        ["2", "draft", new.created_at.isoformat(sep=" "), "dora", "version 1", "typo in weight"],
    ]
    old = ReportModel(load_state(store, case_id, rec.report_id), _may("physician"))
    assert "SUPERSEDED by version 2" in old.summary() and old.sign_roles() == []
    assert "superseded" in old.sign_hint()


def test_unapproved_contours_are_flagged() -> None:
    content = {
        "organs": {
            "kidneys": {
                "label": "Kidneys",
                "dose_gy": 3.25,
                "review_flags": ["contour not approved (draft)", ""],
            }
        },
        "vois": [
            {"voi_name": "Kidney_L", "dose_gy": 3.3, "review_flag": "contour not approved (draft)"},
            {"voi_name": "Kidney_R", "dose_gy": 3.2, "review_flag": ""},
        ],
        "limit_checks": [
            {"organ_id": "kidneys", "quantity": "bed_gy", "scope": "cumulative", "limit": 40.0,
             "value": 41.0, "passed": False},
        ],
    }  # fmt: skip
    rows = {r.name.strip(): r for r in number_rows(content)}
    assert rows["Kidneys"].flagged and rows["Kidneys"].flag == "draft - not approved"
    assert rows["Kidneys"].flag_detail == "contour not approved (draft)"  # the core's words
    assert rows["Kidneys"].result == "FAIL" and rows["Kidneys"].limit == "BED ≤ 40 Gy"
    assert rows["Kidneys"].limit_detail == "BED cumulative 41.000 of 40 Gy"
    assert rows["Kidney_L"].flagged and not rows["Kidney_R"].flagged
    assert rows["Kidney_R"].flag == "approved" and rows["Kidney_L"].dose == "3.300"
    assert short_flag("REJECTED contour: misses the pole") == "REJECTED: misses the pole"


def test_file_verdict_in_plain_words() -> None:
    ok = {
        "report_id": "rep-1",
        "intact": True,
        "problems": [],
        "signatures": [
            {"signed_as": "mpe", "signer": "pia", "role": "physicist", "intact": True,
             "valid": True, "trusted": True, "signed_at": "2026-01-01T10:00:00"},
        ],
    }  # fmt: skip
    v = explain_file_check(ok, trust_label="the store's CA")
    assert v.intact and v.headline.startswith("INTACT: report rep-1, 1 signature(s)")
    assert "pia (physicist)" in v.text()
    bad = dict(
        ok, intact=False, problems=["x.pdf: signature MPE (pia): the signed bytes were changed"]
    )
    bad["signatures"] = [dict(ok["signatures"][0], intact=False)]
    v = explain_file_check(bad, trust_label="the store's CA")
    assert not v.intact and v.headline.startswith("NOT INTACT: 1 problem(s)")
    assert "the signed bytes were changed" in v.text() and "CHANGED after signing" in v.text()


def test_model_imports_no_qt() -> None:
    import subprocess

    code = (
        "import sys, app.steps.report.model; "
        "print(any(m.startswith(('PySide6', 'pyqtgraph', 'vtk')) for m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
        check=True,
    )
    assert out.stdout.strip() == "False"


def test_a_review_after_the_protocol_run_is_pointed_out() -> None:
    """The report states the flags of its protocol run; a later approval is said, not hidden."""
    from types import SimpleNamespace

    from app.steps.report.model import ReportState

    content = {
        "organs": {},
        "vois": [
            {"voi_id": "v1", "voi_name": "Kidney_L", "dose_gy": 4.0,
             "review_flag": "contour not approved (submitted)"},
            {"voi_id": "v2", "voi_name": "Liver", "dose_gy": 2.7,
             "review_flag": "contour not approved (draft)"},
        ],
        "limit_checks": [],
    }  # fmt: skip
    record = SimpleNamespace(
        report_id="rep-1", content=content, status="draft", version=1, signatures=()
    )
    now = (("v1", "Kidney_L", ""), ("v2", "Liver", "contour not approved (draft)"))
    state = ReportState("case-1", True, (record,), "rep-1", current_flags=now)  # type: ignore[arg-type]
    model = ReportModel(state, _may("physicist"))
    assert model.review_changes() == [
        "Kidney_L is now approved (the report states submitted - not approved)"
    ]
    assert any(
        h.startswith("Contour review changed since this report's protocol run: Kidney_L is now")
        and h.endswith("Run the protocol again, then make the report again (amend it if signed).")
        for h in model.hints()
    )
    same = ReportState("case-1", True, (record,), "rep-1", current_flags=now[1:])  # type: ignore[arg-type]
    assert ReportModel(same, _may("physicist")).review_changes() == []
