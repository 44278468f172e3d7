"""Personal PAdES signatures of reports and the file attacks of issue 13.

Known answers: a report signed by the MPE and the practitioner of a store with
accounts holds two PAdES signatures that pyHanko validates against the exported CA
certificate (intact, valid, trusted; the last covers the whole file).  Each attack
of the issue's first bullet is performed and must fail ``verify-report`` with and
without ``--store``: the forged PDF (kidney dose 4.85 -> 0.123 Gy, hashes
recomputed, pages re-rendered), an incremental update appended after the
signatures, a report "signed" by invented names in a private store, one changed
byte.  The store is unchanged afterwards.
"""

from __future__ import annotations

import json
from io import BytesIO
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

from dosimetry_core.errors import AuthenticationError, PermissionDeniedError
from dosimetry_core.reporting import pades
from dosimetry_core.reporting.content import canonical_json, sha256_hex
from dosimetry_core.reporting.pdf import render_report_pdf
from dosimetry_core.reporting.records import (
    check_report_file,
    create_report,
    load_report,
    report_pdf,
    sign,
    verify,
    verify_report_file,
)
from dosimetry_core.store import CaseStore, keys
from dosimetry_core.store.permissions import Actor
from dosimetry_core.store.users import (
    authenticate,
    bootstrap_admin,
    ca_certificate_pem,
    create_user,
    disable_user,
)
from tests.core.reporting._synthetic import synthetic_case

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PW = {"root": "otter-maple-fig-42", "alice": "alice-maple-fig-42", "bob": "bob-otter-fig-4242"}
KIDNEY_GY = 4.85


def keyed_store(path: Path, names: tuple[str, str] = ("alice", "bob")) -> tuple[CaseStore, str]:
    """A store with accounts (root admin, a physicist, a physician) and one signed report."""
    store = CaseStore(path)
    cid = synthetic_case(store, "P1", KIDNEY_GY / 7.4)
    admin = bootstrap_admin(store, "root", PW["root"], hasher=FAST)
    create_user(store, admin, names[0], PW["alice"], "physicist", hasher=FAST)
    create_user(store, admin, names[1], PW["bob"], "physician", hasher=FAST)
    phys = authenticate(store, names[0], PW["alice"], hasher=FAST)
    rep = create_report(store, phys, cid)
    sign(store, phys, rep.report_id, "mpe")
    doc = authenticate(store, names[1], PW["bob"], hasher=FAST)
    sign(store, doc, rep.report_id, "practitioner")
    return store, rep.report_id


@pytest.fixture()
def signed(tmp_path):
    store, rid = keyed_store(tmp_path / "real")
    pdf = report_pdf(store, rid)
    f = tmp_path / "signed.pdf"
    f.write_bytes(pdf)
    yield store, rid, pdf, f
    store.close()


def _ca_file(store: CaseStore, tmp_path: Path) -> Path:
    f = tmp_path / "ca.pem"
    f.write_text(ca_certificate_pem(store), encoding="ascii")
    return f


def _state(store: CaseStore, rid: str) -> tuple:
    rec = load_report(store, rid)
    return rec.status, rec.content_hash, rec.pdf_blob_key, len(rec.signatures)


def test_done_means_two_signatures_validate_in_pyhanko_against_the_exported_ca(signed, tmp_path):
    store, rid, pdf, f = signed
    ca = keys.load_cert(_ca_file(store, tmp_path).read_bytes())
    vc = ValidationContext(trust_roots=[pades._der_cert(ca)])
    sigs = PdfFileReader(BytesIO(pdf)).embedded_signatures
    assert [s.field_name for s in sigs] == ["MPE", "Practitioner"]
    statuses = [validate_pdf_signature(s, vc) for s in sigs]
    assert all(st.intact and st.valid and st.trusted and st.bottom_line for st in statuses)
    assert statuses[-1].coverage == SignatureCoverageLevel.ENTIRE_FILE
    # the first signature's revision is followed only by the second signature
    assert statuses[0].docmdp_ok
    res = check_report_file(f, trust=tmp_path / "ca.pem")
    assert res["problems"] == []
    assert [(s["signer"], s["role"], s["signed_as"]) for s in res["signatures"]] == [
        ("alice", "physicist", "mpe"),
        ("bob", "physician", "practitioner"),
    ]
    assert [s["covers_whole_file"] for s in res["signatures"]] == [False, True]
    assert verify_report_file(f, store=store) == []  # pinned CA + stored record
    assert verify(store, rid) == []
    # a file alone names no trust anchor: a problem, not a pass
    alone = verify_report_file(f)
    assert len(alone) == 1 and "no trust anchor" in alone[0]


def test_forged_rerendered_pdf_with_recomputed_hashes_fails(signed, tmp_path):
    store, rid, pdf, _ = signed
    before = _state(store, rid)
    m = pades.read_manifest(pdf)
    assert m is not None
    content = json.loads(m["content_json"])
    assert content["organs"]["kidneys"]["dose_gy"] == pytest.approx(KIDNEY_GY)
    content["organs"]["kidneys"]["dose_gy"] = 0.123
    content["vois"][0]["dose_gy"] = 0.123
    text = canonical_json(content)
    m["content_json"] = text
    m["report"]["content_hash"] = sha256_hex(text)
    page = render_report_pdf(
        content, {}, report={**m["report"], "status": "signed"}, signatures=m["signatures"]
    )
    m["pdf_sha256"] = sha256_hex(page)
    forged = pades.embed_manifest(page, canonical_json(m))
    f = tmp_path / "forged.pdf"
    f.write_bytes(forged)
    trust = _ca_file(store, tmp_path)
    for kwargs in ({}, {"store": store}, {"trust": trust}, {"trust": trust, "store": store}):
        problems = verify_report_file(f, **kwargs)
        assert problems, kwargs
    with_store = " ".join(verify_report_file(f, store=store))
    assert "not the stored record" in with_store and "no personal signature" in with_store
    assert _state(store, rid) == before


def test_incremental_update_after_the_last_signature_fails(signed, tmp_path):
    store, rid, pdf, _ = signed
    w = IncrementalPdfFileWriter(BytesIO(pdf))
    m = pades.read_manifest(pdf)
    assert m is not None
    m["content_json"] = m["content_json"].replace(str(KIDNEY_GY), "0.123")
    w.root[pades.MANIFEST_KEY] = w.add_object(
        generic.StreamObject(stream_data=canonical_json(m).encode())
    )
    w.update_root()
    out = BytesIO()
    w.write(out)
    f = tmp_path / "appended.pdf"
    f.write_bytes(out.getvalue())
    trust = _ca_file(store, tmp_path)
    for kwargs in ({"trust": trust}, {"store": store}):
        problems = " ".join(verify_report_file(f, **kwargs))
        assert "does not cover the whole file" in problems, kwargs
    # plain bytes appended after %%EOF too
    f.write_bytes(pdf + b"\n% appended\n")
    assert any("whole file" in p for p in verify_report_file(f, trust=trust))


def test_one_changed_byte_fails(signed, tmp_path):
    store, _, pdf, _ = signed
    trust = _ca_file(store, tmp_path)
    first_sig = pdf.find(b"/ByteRange")
    for pos in (300, len(pdf) // 2, first_sig - 50, len(pdf) - 30):
        bad = bytearray(pdf)
        bad[pos] = ord("A") if bad[pos] != ord("A") else ord("B")
        f = tmp_path / f"bad{pos}.pdf"
        f.write_bytes(bytes(bad))
        assert verify_report_file(f, trust=trust), f"change at byte {pos} not detected"
        assert verify_report_file(f, store=store), f"change at byte {pos} not detected"


def test_report_signed_by_invented_names_in_a_private_store_fails(signed, tmp_path):
    store, rid, _, _ = signed
    before = _state(store, rid)
    private, prid = keyed_store(tmp_path / "private")  # same names, another CA
    fake = tmp_path / "private.pdf"
    fake.write_bytes(report_pdf(private, prid))
    assert verify_report_file(fake, store=private) == []  # valid in its own world
    trust = _ca_file(store, tmp_path)
    problems = " ".join(verify_report_file(fake, trust=trust))
    assert "not issued by the trusted CA" in problems
    problems = " ".join(verify_report_file(fake, store=store))
    assert "not issued by the trusted CA" in problems and f"no report {prid}" in problems
    private.close()
    assert _state(store, rid) == before


def test_json_export_signature_is_the_content_signature(signed, tmp_path):
    from dosimetry_core.reporting.records import export_manifest

    store, rid, _, _ = signed
    f = tmp_path / "r.json"
    m = export_manifest(store, rid)
    f.write_text(json.dumps(m), encoding="utf-8")
    trust = _ca_file(store, tmp_path)
    assert verify_report_file(f, trust=trust) == []
    assert verify_report_file(f, store=store) == []
    assert "no trust anchor" in verify_report_file(f)[0]
    m["content_json"] = m["content_json"].replace(str(KIDNEY_GY), "0.123")
    m["report"]["content_hash"] = sha256_hex(m["content_json"])
    f.write_text(json.dumps(m), encoding="utf-8")
    assert any("does not verify" in p for p in verify_report_file(f, trust=trust))


def test_signing_refusals_change_nothing(tmp_path):
    store = CaseStore(tmp_path / "s")
    cid = synthetic_case(store, "P1", 0.5)
    admin = bootstrap_admin(store, "root", PW["root"], hasher=FAST)
    create_user(store, admin, "alice", PW["alice"], "physicist", hasher=FAST)
    create_user(store, admin, "carl", PW["bob"], "physicist", hasher=FAST)
    rep = create_report(store, Actor("alice", "physicist"), cid)
    before = _state(store, rep.report_id)
    # key not unlocked (actor made by hand), wrong password, a role the account lacks
    with pytest.raises(PermissionDeniedError, match="give your password"):
        sign(store, Actor("alice", "physicist"), rep.report_id, "mpe")
    with pytest.raises(AuthenticationError, match="cannot be unlocked"):
        sign(store, Actor("alice", "physicist"), rep.report_id, "mpe", password="wrong-pass-1234")
    with pytest.raises(PermissionDeniedError, match="is a physicist in this store"):
        sign(
            store, Actor("alice", "physician"), rep.report_id, "practitioner", password=PW["alice"]
        )
    # a disabled account's key is revoked: signing refused even with the password
    disable_user(store, admin, "carl")
    with pytest.raises(PermissionDeniedError, match="disabled"):
        sign(store, Actor("carl", "physicist"), rep.report_id, "mpe", password=PW["bob"])
    assert _state(store, rep.report_id) == before
    rec = sign(store, Actor("alice", "physicist"), rep.report_id, "mpe", password=PW["alice"])
    assert rec.status == "mpe-signed" and rec.signatures[0]["certificate_pem"]
    store.close()


def test_signature_by_a_since_disabled_user_stays_valid_later_ones_not(signed):
    store, rid, _, _ = signed
    admin = authenticate(store, "root", PW["root"], hasher=FAST)
    disable_user(store, admin, "bob")
    # bob signed before he was disabled: the record stays valid
    assert verify(store, rid) == []


def test_a_pdf_whose_parser_chokes_is_unreadable_not_a_crash(monkeypatch):
    """A flipped byte inside a number token made pyHanko raise decimal.InvalidOperation
    (seen in CI on a tampered report): every reader of the file says 'unreadable'."""
    import decimal

    from dosimetry_core.reporting import pades

    class Choking:
        def __init__(self, *_a, **_k):
            raise decimal.InvalidOperation([decimal.ConversionSyntax])

    monkeypatch.setattr(pades, "PdfFileReader", Choking)
    assert pades.count_signatures(b"%PDF-1.7 damaged") == 0
    assert pades.read_manifest(b"%PDF-1.7 damaged") == {}
    checks, problems = pades.validate(b"%PDF-1.7 damaged", None)
    assert checks == [] and len(problems) == 1
    assert problems[0].startswith("the PDF cannot be read")
