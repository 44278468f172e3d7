"""Store side of "no stale saves" and of document hashes (issue 13), on SQLite and PostgreSQL.

``save_case(case, expected_inputs=fp)`` refuses, in its transaction, when the
stored case's inputs differ from the fingerprint a computation took; nothing is
saved then.  Every audited save records ``document_sha256``;
``verify_documents`` names a case whose stored document was edited behind the
program's back (raw SQL).
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from sqlalchemy import select, update

from dosimetry_core.errors import ConcurrentModificationError
from dosimetry_core.model import ImageUnits, Volume
from dosimetry_core.store import CaseStore
from dosimetry_core.store import audit as audit_trail
from dosimetry_core.store.case_inputs import (
    StaleInputsError,
    changed_inputs,
    fingerprint,
    save_results,
)
from dosimetry_core.store.permissions import Actor
from dosimetry_core.store.schema import cases as t_cases
from tests.core.store.conftest import make_case


@pytest.fixture()
def pair(store, store_path, store_url):
    """The same store opened twice: ``store`` (the computation) and ``other`` (ann's edits)."""
    case = store.save_case(make_case(store), audit=store.audit_spec("import"))
    other = CaseStore(store_path, url=store_url)
    other.actor = Actor("ann", "physicist")
    yield store, other, case.case_id
    other.close()


def _document(store, case_id):
    with store.engine.connect() as conn:
        return conn.execute(select(t_cases.c.document).where(t_cases.c.case_id == case_id)).scalar()


def _new_mask(store, case, name):
    voi = next(v for v in case.vois if v.name == name)
    arr = np.asarray(store.load_volume(voi.mask).array).copy()
    arr[0, 0, 0] = 0 if arr[0, 0, 0] else 1
    voi.mask = store.put_volume(Volume(arr, voi.mask.geometry, ImageUnits.MASK, name))


def test_an_input_edited_meanwhile_refuses_the_save_and_nothing_changes(pair):
    store, other, case_id = pair
    mine = store.load_case(case_id)
    fp = fingerprint(mine, "kinetics fit", parts=("administrations", "time_points", "vois"))
    edit = other.load_case(case_id)
    _new_mask(other, edit, "Kidney L")
    other.save_case(edit, audit=other.audit_spec("contour", voi="Kidney L"))
    doc, entries = _document(store, case_id), len(audit_trail.entries(store, case_id))

    latest = store.load_case(case_id)  # results put onto the newest case: version matches
    latest.description = "results of the old mask"
    with pytest.raises(StaleInputsError) as err:
        store.save_case(latest, audit=store.audit_spec("fit"), expected_inputs=fp)
    text = str(err.value)
    assert text.startswith("the case changed while the kinetics fit was computing: ")
    assert "VOI Kidney L was changed" in text and "contour by ann at" in text
    assert isinstance(err.value, ConcurrentModificationError)
    assert _document(store, case_id) == doc  # nothing saved, no audit entry
    assert len(audit_trail.entries(store, case_id)) == entries
    assert latest.version == edit.version  # the refused save left the object as it was


def test_the_version_alone_is_not_the_test_nor_does_an_unread_edit_block(pair):
    store, other, case_id = pair
    mine = store.load_case(case_id)
    fp = fingerprint(mine, "dose calculation")
    edit = other.load_case(case_id)
    edit.measurements[0].note = "re-read by ann"
    edit.description = "edited meanwhile"
    other.save_case(edit, audit=other.audit_spec("enter-measurement"))

    saved = save_results(
        store, fp, lambda c: c.extra.update(result="x"), audit=store.audit_spec("dose")
    )
    assert saved.version == mine.version + 2
    stored = store.load_case(case_id)
    assert stored.measurements[0].note == "re-read by ann"  # the edit is kept
    assert stored.extra["result"] == "x"
    # a stale version is still refused as before
    mine.extra["result"] = "y"
    with pytest.raises(ConcurrentModificationError):
        store.save_case(mine, expected_inputs=fp)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda c: setattr(c.administrations[0], "activity_mbq", 7000.0), "administration"),
        (lambda c: setattr(c.time_points[1].functional, "cps_per_mbq", 10.1), "time point TP2"),
        (lambda c: c.vois.pop(), "VOI Lesion 1 was removed"),
        (lambda c: setattr(c.vois[0], "status", "approved"), "VOI Kidney L was changed"),
    ],
)
def test_each_kind_of_input_is_covered(pair, edit, expected):
    store, other, case_id = pair
    fp = fingerprint(store.load_case(case_id), "protocol run")
    changed = other.load_case(case_id)
    edit(changed)
    other.save_case(changed, audit=other.audit_spec("contour"))
    with pytest.raises(StaleInputsError, match=expected):
        save_results(store, fp, lambda c: None, audit=store.audit_spec("protocol-run"))
    assert store.load_case(case_id).version == changed.version


def test_a_voi_added_counts_only_when_every_voi_was_read(pair):
    store, other, case_id = pair
    case = store.load_case(case_id)
    all_vois = fingerprint(case, "protocol run", parts=("vois",))
    one_voi = fingerprint(case, "kinetics fit", parts=("vois",), vois=[case.vois[0].voi_id])
    added = other.load_case(case_id)
    extra = added.vois[1]
    from dataclasses import replace

    added.vois.append(replace(extra, name="Tumour 9", voi_id="voi-added"))
    other.save_case(added, audit=other.audit_spec("contour"))
    now = store.load_case(case_id)
    assert changed_inputs(all_vois, now) == ["VOI Tumour 9 was added"]
    assert changed_inputs(one_voi, now) == []


def test_a_case_deleted_meanwhile_is_not_brought_back(pair):
    store, other, case_id = pair
    mine = store.load_case(case_id)
    fp = fingerprint(mine, "TIA map")
    other.delete_case(case_id, audit=other.audit_spec("import"))
    mine.version = 0
    with pytest.raises(StaleInputsError, match="was deleted while the TIA map was computing"):
        store.save_case(mine, expected_inputs=fp)
    assert store.list_cases() == []


def test_audited_saves_record_the_document_hash(pair):
    store, _, case_id = pair
    case = store.load_case(case_id)
    case.description = "second save"
    store.save_case(case, audit=store.audit_spec("enter-measurement"))
    entry = audit_trail.entries(store, case_id)[-1]
    text = _document(store, case_id)
    assert entry.details["document_sha256"] == hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert entry.details["case_version"] == json.loads(text)["version"] == 2
    assert store.verify_documents() == []
    assert audit_trail.verify(store) == []


def test_a_document_edited_with_raw_sql_is_named(pair):
    """A database writer changes a dose in the stored document; verify_documents names the case."""
    store, _, case_id = pair
    second = store.save_case(make_case(store, "P-002", seed=1), audit=store.audit_spec("import"))
    text = _document(store, case_id)
    doc = json.loads(text)
    doc["administrations"][0]["activity_mbq"] = 740.0  # a tenth of the real activity
    forged = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    with store.engine.begin() as conn:
        conn.execute(update(t_cases).where(t_cases.c.case_id == case_id).values(document=forged))
    assert store.load_case(case_id).administrations[0].activity_mbq == 740.0
    problems = store.verify_documents()
    assert len(problems) == 1
    assert problems[0].startswith(f"case {case_id}: the stored document")
    assert "does not match the hash recorded by its newest audit entry" in problems[0]
    assert second.case_id not in problems[0]
    # putting the original text back makes it whole again
    with store.engine.begin() as conn:
        conn.execute(update(t_cases).where(t_cases.c.case_id == case_id).values(document=text))
    assert store.verify_documents() == []


def test_a_case_without_a_recorded_hash_is_reported_as_not_anchored(store):
    case = store.save_case(make_case(store))  # no audit entry
    (problem,) = store.verify_documents()
    assert problem.startswith(f"case {case.case_id}: no audit entry records the hash")
