"""Roles enforced on real case operations, and each change in the audit trail (issue 7).

Once a store has user accounts, every case change needs a logged-in actor whose
role allows it (``permissions.SAVE_ACTIONS``); a refused change leaves the case
as it was and adds no audit entry.
"""

from __future__ import annotations

import json

import pytest

from dosimetry_core.cli.main import main
from dosimetry_core.errors import AuthenticationError, PermissionDeniedError
from dosimetry_core.model import DerivedKind
from dosimetry_core.pipeline.contour_io import import_rtstruct_into_case
from dosimetry_core.pipeline.dose import compute_dose
from dosimetry_core.pipeline.importing import import_directory
from dosimetry_core.pipeline.registration import register_case
from dosimetry_core.pipeline.tia_map import compute_tia_map
from dosimetry_core.store import CaseStore
from dosimetry_core.store import audit as audit_trail
from dosimetry_core.store.users import authenticate, bootstrap_admin, create_user

PASSWORDS = {
    "root": "admin-pass-1234",
    "tom": "tech-pass-1234",
    "ann": "phys-pass-1234",
    "dora": "md-pass-12345",
}


@pytest.fixture(scope="module")
def department(small_demo_dirs, tmp_path_factory):
    store_dir = tmp_path_factory.mktemp("dept-store")
    store = CaseStore(store_dir)
    root = small_demo_dirs["siemens-bqml"]
    case_id = import_directory(store, root).cases[0].case_id
    case = store.load_case(case_id)
    rt = next(root.glob("tp1*/RTSTRUCT/*.dcm"))
    import_rtstruct_into_case(store, case, rt, time_point=case.sorted_time_points()[0].label)
    store.save_case(case)
    register_case(store, case_id)
    compute_tia_map(store, case_id)
    admin = bootstrap_admin(store, "root", PASSWORDS["root"])
    create_user(store, admin, "tom", PASSWORDS["tom"], "technologist")
    create_user(store, admin, "ann", PASSWORDS["ann"], "physicist")
    create_user(store, admin, "dora", PASSWORDS["dora"], "physician")
    return store, store_dir, case_id


def _state(store, case_id):
    """(version, derived results without the grid caches, audit entries) of the stored case.

    The VOI fractions and the CT on the dose grid that a dose keeps with the case
    (pipeline/grid_cache.py) are caches, not results: not counted."""
    case = store.load_case(case_id)
    caches = (DerivedKind.VOI_FRACTION, DerivedKind.CT_ON_GRID)
    n_results = sum(1 for d in case.derived if d.kind not in caches)
    return case.version, n_results, len(audit_trail.entries(store, case_id))


def test_roles_decide_who_computes_and_refusals_change_nothing(department):
    store, _, case_id = department
    before = _state(store, case_id)
    store.actor = None
    with pytest.raises(PermissionDeniedError, match="log in"):
        compute_dose(store, case_id, method="led", vois=["Kidney_L"])
    for user in ("tom", "dora"):
        store.actor = authenticate(store, user, PASSWORDS[user])
        with pytest.raises(PermissionDeniedError, match=f"{user} .* may not fit kinetics"):
            compute_dose(store, case_id, method="led", vois=["Kidney_L"])
        assert _state(store, case_id) == before
    store.actor = authenticate(store, "ann", PASSWORDS["ann"])
    res = compute_dose(store, case_id, method="led", vois=["Kidney_L"], user="ann")
    store.actor = None
    version, n_derived, n_entries = _state(store, case_id)
    assert version == before[0] + 1 and n_derived == before[1] + 1
    assert n_entries == before[2] + 1
    last = audit_trail.entries(store, case_id)[-1]
    assert (last.username, last.role, last.action) == ("ann", "physicist", "dose")
    assert last.details["dose_map_id"] == res.dose_map.derived_id
    assert res.dose_map.derived_id in {
        d.derived_id for d in store.load_case(case_id).derived_maps(DerivedKind.DOSE)
    }
    assert audit_trail.verify(store) == []


def test_command_line_login_and_contour_approval_by_role(department, capsys, monkeypatch):
    store, store_dir, case_id = department
    s = ("--store", str(store_dir))
    monkeypatch.setenv("MRTDOSE_USER", "ann")
    monkeypatch.setenv("MRTDOSE_PASSWORD", PASSWORDS["ann"])
    assert main(["contour", case_id, "submit", "Kidney_R", *s]) == 0
    capsys.readouterr()
    before = _state(store, case_id)
    monkeypatch.setenv("MRTDOSE_USER", "tom")
    monkeypatch.setenv("MRTDOSE_PASSWORD", PASSWORDS["tom"])
    assert main(["contour", case_id, "approve", "Kidney_R", *s]) == 1
    assert "tom (technologist) may not approve or reject contours" in capsys.readouterr().err
    assert _state(store, case_id) == before
    monkeypatch.setenv("MRTDOSE_PASSWORD", "wrong")
    assert main(["cases", *s]) == 1
    assert "password" in capsys.readouterr().err.lower()
    monkeypatch.setenv("MRTDOSE_USER", "dora")
    monkeypatch.setenv("MRTDOSE_PASSWORD", PASSWORDS["dora"])
    assert main(["contour", case_id, "approve", "Kidney_R", *s]) == 0
    capsys.readouterr()
    entries = audit_trail.entries(store, case_id)
    assert [(e.username, e.action) for e in entries[-2:]] == [
        ("ann", "contour"),
        ("dora", "approve-contour"),
    ]
    assert main(["audit", "--verify", *s, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["intact"] is True
    with pytest.raises(AuthenticationError):
        authenticate(store, "dora", "not-her-password")
