"""Report versions, sign-off order, immutability and tamper detection (issue 7).

Known answers: the physicist signs first, then the physician; a technologist cannot
sign (PermissionDeniedError, nothing changes); a signed report cannot be signed twice
in one role or regenerated; amending creates version 2 with the reason and leaves
version 1 readable as "superseded"; every raw-SQL or file edit is reported by verify.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from dosimetry_core.errors import InvalidInputError, PermissionDeniedError
from dosimetry_core.reporting.content import canonical_json, sha256_hex
from dosimetry_core.reporting.records import (
    amend,
    create_report,
    file_path,
    load_report,
    report_pdf,
    sign,
    verify,
    verify_report_file,
)
from dosimetry_core.store import CaseStore
from dosimetry_core.store.permissions import Actor
from tests.core.reporting._synthetic import synthetic_case

PHYS, DOC, TECH = (
    Actor("alice", "physicist"),
    Actor("bob", "physician"),
    Actor("tom", "technologist"),
)


@pytest.fixture()
def signed(tmp_path):
    store = CaseStore(tmp_path / "s")
    cid = synthetic_case(store, "P1", 0.5)
    rep = create_report(store, PHYS, cid)
    sign(store, PHYS, rep.report_id, "mpe")
    sign(store, DOC, rep.report_id, "practitioner")
    yield store, cid, rep.report_id
    store.close()


def test_sign_order_and_roles(tmp_path):
    with CaseStore(tmp_path / "s") as store:
        cid = synthetic_case(store, "P1", 0.5)
        rep = create_report(store, PHYS, cid)
        assert rep.status == "draft" and rep.version == 1 and verify(store, rep.report_id) == []
        with pytest.raises(InvalidInputError, match="signs first"):
            sign(store, DOC, rep.report_id, "practitioner")
        for as_ in ("mpe", "practitioner"):
            with pytest.raises(PermissionDeniedError):
                sign(store, TECH, rep.report_id, as_)
        with pytest.raises(PermissionDeniedError):
            sign(store, DOC, rep.report_id, "mpe")
        with pytest.raises(PermissionDeniedError):
            create_report(store, TECH, cid)
        after = load_report(store, rep.report_id)
        assert after.status == "draft" and after.signatures == []
        assert after.content_hash == rep.content_hash
        r1 = sign(store, PHYS, rep.report_id, "mpe")
        assert r1.status == "mpe-signed" and [s["signed_as"] for s in r1.signatures] == ["mpe"]
        r2 = sign(store, DOC, rep.report_id, "practitioner")
        assert r2.status == "signed"
        assert [(s["username"], s["role"]) for s in r2.signatures] == [
            ("alice", "physicist"),
            ("bob", "physician"),
        ]
        assert r2.content_hash == rep.content_hash == sha256_hex(canonical_json(r2.content))
        assert verify(store, rep.report_id, check_inputs=True) == []


def test_signed_report_is_immutable_and_amend_makes_v2(signed):
    store, cid, rid = signed
    with pytest.raises(InvalidInputError, match="already signed"):
        sign(store, PHYS, rid, "mpe")
    with pytest.raises(InvalidInputError, match="amend"):
        create_report(store, PHYS, cid)
    with pytest.raises(InvalidInputError, match="reason"):
        amend(store, DOC, rid, "  ")
    v2 = amend(store, DOC, rid, "kidney contour corrected")
    assert v2.version == 2 and v2.status == "draft" and v2.supersedes == rid
    assert v2.content["report"]["amendment_reason"] == "kidney contour corrected"
    v1 = load_report(store, rid)
    assert v1.status == "superseded" and len(v1.signatures) == 2
    assert verify(store, rid) == [] and verify(store, v2.report_id) == []
    with pytest.raises(InvalidInputError, match="superseded"):
        sign(store, PHYS, rid, "mpe")


def _exec(store, sql, **kw):
    with store.engine.begin() as conn:
        conn.execute(text(sql), kw)


def test_edit_of_content_json_is_detected(signed):
    store, _, rid = signed
    row = load_report(store, rid)
    edited = canonical_json(
        {**row.content, "all_limits_passed": not row.content["all_limits_passed"]}
    )
    _exec(store, "UPDATE reports SET content_json = :c WHERE report_id = :r", c=edited, r=rid)
    problems = verify(store, rid)
    assert any("content hash does not match" in p for p in problems)


def test_edit_of_signature_row_is_detected(signed):
    store, _, rid = signed
    _exec(store, "UPDATE signatures SET username = 'mallory' WHERE signed_as = 'mpe'")
    problems = verify(store, rid)
    assert any("signature hash does not match" in p for p in problems)


def test_deleted_signature_and_status_edit_are_detected(signed):
    store, _, rid = signed
    _exec(store, "UPDATE reports SET status = 'draft' WHERE report_id = :r", r=rid)
    assert any("status draft" in p for p in verify(store, rid))


def test_overwritten_pdf_blob_is_detected(signed):
    store, _, rid = signed
    path = file_path(store, load_report(store, rid).pdf_blob_key)
    data = bytearray(path.read_bytes())
    data[200] ^= 0xFF
    path.write_bytes(bytes(data))
    assert any("PDF" in p and "modified" in p for p in verify(store, rid))


def test_single_user_pdf_verifies_against_its_store_and_one_changed_byte_is_detected(
    signed, tmp_path
):
    """A single-user store has no keys: the file alone is "unsigned"; with the store it is
    accepted only as the stored bytes, so any changed byte (manifest or page) fails."""
    store, _, rid = signed
    pdf = report_pdf(store, rid)
    good = tmp_path / "good.pdf"
    good.write_bytes(pdf)
    alone = verify_report_file(good)
    assert len(alone) == 1 and "unsigned (single-user store)" in alone[0]
    assert verify_report_file(good, store=store) == []
    # one byte of the embedded manifest stream, then one byte of the visible pages
    i = pdf.find(b'"content_json"')
    assert i > 0
    for pos in (i + 40, 300):
        bad = bytearray(pdf)
        bad[pos] = ord("A") if bad[pos] != ord("A") else ord("B")
        f = tmp_path / f"bad{pos}.pdf"
        f.write_bytes(bytes(bad))
        assert verify_report_file(f, store=store), f"change at byte {pos} not detected"
