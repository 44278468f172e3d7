"""The worklist and its filters, and creating a case from a protocol (issue 12).

Known answers: a store with four hand-made cases, one per state (no administration;
VOIs submitted; a report signed by both; a report signed by the physicist only).
Each filter keeps exactly the cases of its state; "awaiting my approval" depends on
who asks.  ``create_case`` refuses an empty patient ID, a physician, nobody logged
in, and an unknown protocol, saving nothing; an accepted one is audited.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from dosimetry_core.errors import InvalidInputError, PermissionDeniedError
from dosimetry_core.model import VOI, Geometry, VoiKind, VoiStatus, Volume
from dosimetry_core.pipeline.cases import create_case
from dosimetry_core.pipeline.worklist import NO_REPORT, apply_filter, worklist
from dosimetry_core.reporting.records import create_report, sign
from dosimetry_core.store import CaseStore
from dosimetry_core.store.audit import entries
from dosimetry_core.store.permissions import Actor
from dosimetry_core.store.users import bootstrap_admin, create_user
from tests.core.reporting._synthetic import synthetic_case

PHYS, DOC, TECH = (
    Actor("alice", "physicist"),
    Actor("bob", "physician"),
    Actor("tom", "technologist"),
)


def _mask(store):
    geom = Geometry(shape_zyx=(2, 2, 2), spacing_mm=(1.0, 1.0, 1.0), origin_mm=(0.0, 0.0, 0.0))
    return store.put_volume(Volume(np.ones((2, 2, 2), dtype=np.uint8), geom))


@pytest.fixture()
def four_cases(tmp_path):
    store = CaseStore(tmp_path / "s")
    ids = {}
    ids["no-adm"] = create_case(store, "P-NOADM", "Doe^Jane", protocol_id="lu177-dotatate").case_id
    cid = synthetic_case(store, "P-VOIS", 0.5)
    case = store.load_case(cid)
    case.vois.append(VOI("Kidney_L", VoiKind.ORGAN, _mask(store), status=VoiStatus.SUBMITTED))
    case.vois.append(VOI("Liver", VoiKind.ORGAN, _mask(store), status=VoiStatus.DRAFT))
    store.save_case(case, audit=store.audit_spec("contour"))
    ids["vois"] = cid
    cid = synthetic_case(store, "P-SIGNED", 0.5)
    rep = create_report(store, PHYS, cid)
    sign(store, PHYS, rep.report_id, "mpe")
    sign(store, DOC, rep.report_id, "practitioner")
    ids["signed"] = cid
    cid = synthetic_case(store, "P-MPE", 0.5)
    sign(store, PHYS, create_report(store, PHYS, cid).report_id, "mpe")
    ids["mpe"] = cid
    yield store, ids
    store.close()


def test_rows_say_what_each_case_has(four_cases):
    store, ids = four_cases
    rows = {r.case_id: r for r in worklist(store, DOC)}
    assert set(rows) == set(ids.values())
    assert not rows[ids["no-adm"]].has_administration
    assert rows[ids["no-adm"]].protocol == "lu177-dotatate"
    assert rows[ids["no-adm"]].report_status == NO_REPORT
    assert rows[ids["vois"]].n_vois_submitted == 1
    assert rows[ids["signed"]].report_status == "signed"
    assert rows[ids["mpe"]].report_status == "mpe-signed"
    assert rows[ids["vois"]].patient_name == "Test^P-VOIS"


def test_each_filter_keeps_only_its_cases(four_cases):
    store, ids = four_cases
    rows = worklist(store, DOC)

    def kept(name, actor):
        return {r.case_id for r in apply_filter(rows, name, actor)}

    assert kept("all", DOC) == set(ids.values())
    assert kept("missing-administration", DOC) == {ids["no-adm"]}
    assert kept("unsigned", DOC) == {ids["no-adm"], ids["vois"], ids["mpe"]}
    assert kept("awaiting-approval", DOC) == {ids["vois"]}
    # a physicist or technologist may not approve contours: nothing awaits them
    assert kept("awaiting-approval", PHYS) == set()
    assert kept("awaiting-approval", TECH) == set()


def test_unknown_filter_is_refused_naming_the_field(four_cases):
    store, _ = four_cases
    with pytest.raises(InvalidInputError) as err:
        apply_filter(worklist(store, DOC), "everything'; drop table cases", DOC)
    assert err.value.field == "filter"


def test_create_case_from_protocol_is_audited(tmp_path):
    store = CaseStore(tmp_path / "s")
    bootstrap_admin(store, "admin", "admin-password-1")
    create_user(store, Actor("admin", "admin"), "tom", "tom-password-1", "technologist")
    store.actor = TECH
    case = create_case(
        store, " P-77 ", "Roe^Ann", date(1960, 2, 3), "f", "lu177-dotatate", today=date(2026, 1, 1)
    )
    again = store.load_case(case.case_id)
    assert (again.patient.patient_id, again.patient.sex, again.protocol) == (
        "P-77",
        "F",
        "lu177-dotatate",
    )
    assert again.patient.birth_date == date(1960, 2, 3)
    audit = [e for e in entries(store, case.case_id)]
    assert [e.action for e in audit] == ["import"]
    assert audit[0].username == "tom"
    store.close()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"patient_id": "   "}, "patient_id"),
        ({"patient_id": ""}, "patient_id"),
        ({"patient_id": "x" * 65}, "patient_id"),
        ({"patient_id": "A^B"}, "patient_id"),
        ({"patient_id": "P1", "sex": "X"}, "sex"),
        ({"patient_id": "P1", "birth_date": date(2030, 1, 1)}, "birth_date"),
        ({"patient_id": "P1", "protocol_id": "../../etc/passwd"}, "protocol"),
    ],
)
def test_create_case_refuses_bad_values_and_saves_nothing(tmp_path, kwargs, field):
    store = CaseStore(tmp_path / "s")
    with pytest.raises(InvalidInputError) as err:
        create_case(store, **kwargs, today=date(2026, 1, 1))
    assert err.value.field == field
    assert store.list_cases() == []
    store.close()


def test_create_case_needs_a_permitted_user(tmp_path):
    store = CaseStore(tmp_path / "s")
    bootstrap_admin(store, "admin", "admin-password-1")
    with pytest.raises(PermissionDeniedError, match="log in"):
        create_case(store, "P1")
    store.actor = DOC
    with pytest.raises(PermissionDeniedError, match="physician"):
        create_case(store, "P1")
    store.actor = Actor("admin", "admin")
    with pytest.raises(PermissionDeniedError):
        create_case(store, "P1")
    assert store.list_cases() == []
    store.close()
