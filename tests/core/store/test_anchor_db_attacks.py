"""A database writer against the anchored records (issue 13, second bullet).

Each test performs one tamper attack with raw SQL on a store with accounts and a
report signed by the MPE and the practitioner, as someone with write access to the
database (but not to ``<store>/trust/ca.pem`` and without any password) would, and
shows it is refused at log-in or detected by ``verify`` / ``audit.verify`` /
``user list``; the attacker gains nothing (the refused log-in changes no account).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

import pytest
from sqlalchemy import text

from dosimetry_core.errors import AuthenticationError
from dosimetry_core.reporting import pades
from dosimetry_core.reporting.records import (
    create_report,
    file_path,
    put_file,
    report_pdf,
    sign,
    verify,
)
from dosimetry_core.store import CaseStore, audit, keys
from dosimetry_core.store.permissions import Actor
from dosimetry_core.store.users import (
    MAX_FAILED_ATTEMPTS,
    authenticate,
    list_users,
    verify_accounts,
)
from tests.core.reporting._synthetic import synthetic_case
from tests.core.reporting.test_sig_pades import FAST, PW, keyed_store

ATTACKER_PW = "mallory-owns-42-db"


@pytest.fixture()
def signed(tmp_path):
    store, rid = keyed_store(tmp_path / "s")
    yield store, rid
    store.close()


def _sql(store: CaseStore, sql: str, **params) -> None:
    with store.engine.begin() as conn:
        conn.execute(text(sql), params)


def _user(store: CaseStore, name: str):
    with store.engine.connect() as conn:
        return conn.execute(text("SELECT * FROM users WHERE username = :u"), {"u": name}).one()


def _integrity(store: CaseStore) -> dict[str, str]:
    return {u.username: u.integrity for u in list_users(store)}


def test_role_change_is_refused_and_detected(signed):
    store, _ = signed
    _sql(store, "UPDATE users SET role = 'admin' WHERE username = 'alice'")
    with pytest.raises(AuthenticationError, match="alice: role, state or certificate changed"):
        authenticate(store, "alice", PW["alice"], hasher=FAST)
    assert keys.unlocked_key(store, keys.CA) is not None  # root's, from the fixture
    assert "changed outside the program" in _integrity(store)["alice"]
    assert any("alice" in p for p in verify_accounts(store))
    assert _user(store, "alice").role == "admin"  # nothing else was changed by the refusal


def test_inserted_user_is_refused(signed):
    store, _ = signed
    bob = _user(store, "bob")
    digest = FAST.hash(ATTACKER_PW)
    cols = dict(bob._mapping)
    cols.update(username="mallory", role="admin", password_hash=digest)
    _sql(
        store,
        "INSERT INTO users ("
        + ", ".join(cols)
        + ") VALUES ("
        + ", ".join(f":{k}" for k in cols)
        + ")",
        **cols,
    )
    with pytest.raises(AuthenticationError, match="mallory"):
        authenticate(store, "mallory", ATTACKER_PW, hasher=FAST)
    # and a bare row without keys
    _sql(store, "UPDATE users SET cert_pem = NULL, row_signature = NULL WHERE username = 'mallory'")
    with pytest.raises(AuthenticationError, match="no certificate signed by the department CA"):
        authenticate(store, "mallory", ATTACKER_PW, hasher=FAST)
    assert _integrity(store)["mallory"] != "ok"


def test_swapped_password_hash_is_refused(signed):
    store, _ = signed
    _sql(
        store,
        "UPDATE users SET password_hash = :h WHERE username = 'bob'",
        h=FAST.hash(ATTACKER_PW),
    )
    with pytest.raises(AuthenticationError, match="password hash or key changed"):
        authenticate(store, "bob", ATTACKER_PW, hasher=FAST)
    last = audit.entries(store)[-1]
    assert (last.action, last.details["reason"]) == ("login-failed", "account-tampered")
    fresh = CaseStore(store.path)  # another process: nothing unlocked, still refused
    with pytest.raises(AuthenticationError):
        authenticate(fresh, "bob", ATTACKER_PW, hasher=FAST)
    assert keys.unlocked_key(fresh, "bob") is None
    fresh.close()


def test_swapped_certificate_from_an_own_ca_is_refused(signed):
    store, _ = signed
    ca_key = keys.new_key()
    ca = keys.make_ca(ca_key, "mallory")
    k = keys.new_key()
    cert = keys.issue_certificate(ca_key, ca, k.public_key(), "bob", "physician")
    _sql(
        store,
        "UPDATE users SET cert_pem = :c, key_pem = :k WHERE username = 'bob'",
        c=keys.cert_pem(cert),
        k=keys.wrap_key(k, ATTACKER_PW),
    )
    # and the CA copy in the database, which verification does not use
    _sql(
        store, "UPDATE store_meta SET value = :v WHERE key = 'ca_certificate'", v=keys.cert_pem(ca)
    )
    with pytest.raises(AuthenticationError, match="not issued by the pinned department CA"):
        authenticate(store, "bob", PW["bob"], hasher=FAST)


def test_reenabled_account_is_refused(signed):
    store, _ = signed
    from dosimetry_core.store.users import disable_user

    admin = authenticate(store, "root", PW["root"], hasher=FAST)
    disable_user(store, admin, "bob")
    _sql(store, "UPDATE users SET active = 1, revoked_at = NULL WHERE username = 'bob'")
    with pytest.raises(AuthenticationError, match="changed outside the program"):
        authenticate(store, "bob", PW["bob"], hasher=FAST)


def test_cleared_lockout_is_refused(signed):
    store, _ = signed
    for _ in range(MAX_FAILED_ATTEMPTS):
        with pytest.raises(AuthenticationError):
            authenticate(store, "alice", "not-her-password-1", hasher=FAST)
    assert _user(store, "alice").locked_until is not None
    _sql(
        store, "UPDATE users SET failed_attempts = 0, locked_until = NULL WHERE username = 'alice'"
    )
    with pytest.raises(AuthenticationError, match="lock recorded in the audit trail"):
        authenticate(store, "alice", PW["alice"], hasher=FAST)
    # an admin's unlock lifts it
    from dosimetry_core.store.users import unlock_user

    admin = authenticate(store, "root", PW["root"], hasher=FAST)
    unlock_user(store, admin, "alice")
    assert authenticate(store, "alice", PW["alice"], hasher=FAST) == Actor("alice", "physicist")


def test_inserted_signature_row_with_a_matching_pdf_is_detected(tmp_path):
    store, _ = keyed_store(tmp_path / "s")
    cid = synthetic_case(store, "P2", 0.5)
    alice = authenticate(store, "alice", PW["alice"], hasher=FAST)
    rep = create_report(store, alice, cid)
    sign(store, alice, rep.report_id, "mpe")
    rid = rep.report_id
    assert verify(store, rid) == []
    # the attacker signs the stored PDF as "bob" with a CA of their own, stores that PDF
    # and inserts a practitioner row copying bob's real certificate
    ca_key = keys.new_key()
    ca = keys.make_ca(ca_key, "mallory")
    k = keys.new_key()
    fake_cert = keys.issue_certificate(ca_key, ca, k.public_key(), "bob", "physician")
    pdf = pades.sign_pdf(
        report_pdf(store, rid), key=k, cert=fake_cert, ca_cert=ca, signed_as="practitioner",
        reason="forged",
    )  # fmt: skip
    key = put_file(store, pdf)
    row = _user(store, "bob")
    with store.engine.connect() as conn:
        first = conn.execute(
            text("SELECT * FROM signatures WHERE report_id = :r"), {"r": rid}
        ).one()
    _sql(
        store,
        "INSERT INTO signatures (report_id, username, role, signed_as, at, content_hash, "
        "inputs_hash, signature_hash, cert_pem, content_signature) VALUES (:r, 'bob', "
        "'physician', 'practitioner', :at, :c, :i, :h, :cert, :sig)",
        r=rid,
        at=datetime.now(),
        c=first.content_hash,
        i=first.inputs_hash,
        h="0" * 64,
        cert=row.cert_pem,
        sig=first.content_signature,
    )
    _sql(store, "UPDATE reports SET status = 'signed', pdf_blob_key = :k WHERE report_id = :r",
         k=key, r=rid)  # fmt: skip
    problems = " ".join(verify(store, rid))
    assert "not issued by the trusted CA" in problems
    assert "signature of the content does not verify" in problems
    assert "is not the one that signed field Practitioner" in problems
    assert file_path(store, key).is_file()


def test_reattributed_signature_row_is_detected(signed):
    store, rid = signed
    _sql(
        store,
        "UPDATE signatures SET username = 'root', role = 'admin' WHERE signed_as = 'mpe'",
    )
    problems = " ".join(verify(store, rid))
    assert "re-attributed" in problems and "the certificate names alice" in problems


def test_changed_clinical_number_in_a_signed_report_is_detected(signed):
    store, rid = signed
    with store.engine.connect() as conn:
        content = conn.execute(
            text("SELECT content_json FROM reports WHERE report_id = :r"), {"r": rid}
        ).scalar_one()
    forged = content.replace('"dose_gy":4.85', '"dose_gy":0.123')
    assert forged != content
    h = hashlib.sha256(forged.encode()).hexdigest()
    _sql(store, "UPDATE reports SET content_json = :j, content_hash = :h WHERE report_id = :r",
         j=forged, h=h, r=rid)  # fmt: skip
    _sql(store, "UPDATE signatures SET content_hash = :h WHERE report_id = :r", h=h, r=rid)
    problems = " ".join(verify(store, rid))
    assert "the PDF holds other content" in problems
    assert "signature of the content does not verify" in problems


def _rehash_chain(store: CaseStore, rows) -> None:
    """Rewrite audit rows from scratch with consistent hashes and head (as an attacker)."""
    prev = audit.GENESIS_HASH
    import json

    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log"))
        for seq, r in enumerate(rows, start=1):
            details = json.loads(r.details)
            at = r.at if isinstance(r.at, datetime) else datetime.fromisoformat(str(r.at))
            h = audit.compute_hash(
                seq=seq, at=at, username=r.username, role=r.role, case_id=r.case_id,
                action=r.action, details=details, prev_hash=prev,
            )  # fmt: skip
            conn.execute(
                text(
                    "INSERT INTO audit_log (seq, at, username, role, case_id, action, details, "
                    "prev_hash, entry_hash) VALUES (:s, :at, :u, :ro, :c, :a, :d, :p, :h)"
                ),
                {"s": seq, "at": at, "u": r.username, "ro": r.role, "c": r.case_id,
                 "a": r.action, "d": r.details, "p": prev, "h": h},
            )  # fmt: skip
            prev = h
        conn.execute(
            text("UPDATE store_meta SET value = :v WHERE key = 'audit_head'"),
            {"v": f"{len(rows)} {prev}"},
        )


def _audit_rows(store: CaseStore):
    with store.engine.connect() as conn:
        return conn.execute(text("SELECT * FROM audit_log ORDER BY seq")).all()


def test_audit_rewrite_with_its_head_is_detected_by_the_checkpoints(signed):
    store, _ = signed
    assert audit.verify(store) == []
    rows = _audit_rows(store)
    # rewrite: drop the entry of bob's account creation and re-chain everything
    kept = [r for r in rows if not (r.action == "user-create" and '"bob"' in r.details)]
    assert len(kept) == len(rows) - 1
    _rehash_chain(store, kept)
    problems = " ".join(audit.verify(store))
    assert "the trail was rewritten" in problems or "the trail was truncated" in problems


def test_audit_truncation_with_its_head_is_detected(signed):
    store, _ = signed
    rows = _audit_rows(store)
    with store.engine.connect() as conn:
        last_cp = conn.execute(text("SELECT max(seq) FROM audit_checkpoints")).scalar_one()
    _rehash_chain(store, rows[: last_cp - 1])  # cut before the newest signed checkpoint
    problems = " ".join(audit.verify(store))
    assert f"checkpoint at entry {last_cp}" in problems and "missing" in problems


def test_deleted_checkpoints_are_detected(signed):
    store, _ = signed
    _sql(store, "DELETE FROM audit_checkpoints")
    problems = " ".join(audit.verify(store))
    assert "checkpoints were deleted" in problems


def test_forged_checkpoint_is_detected(signed):
    store, _ = signed
    _sql(store, "UPDATE audit_checkpoints SET entry_hash = :h", h="1" * 64)
    assert "signature does not verify" in " ".join(audit.verify(store))


def test_locked_out_until_expiry_then_allowed(signed):
    store, _ = signed
    t0 = datetime(2030, 1, 1, 12, 0)
    for _ in range(MAX_FAILED_ATTEMPTS):
        with pytest.raises(AuthenticationError):
            authenticate(store, "bob", "not-his-password-1", hasher=FAST, now=lambda: t0)
    later = t0 + timedelta(hours=1)
    assert authenticate(store, "bob", PW["bob"], hasher=FAST, now=lambda: later).username == "bob"


def test_deleted_signature_with_status_and_pdf_set_back_is_detected(signed):
    """A consistent roll-back of the practitioner's sign-off (row, status, older PDF)."""
    store, rid = signed
    with store.engine.connect() as conn:
        mpe_pdf = conn.execute(
            text("SELECT details FROM audit_log WHERE action = 'report-sign-mpe' ORDER BY seq DESC")
        ).scalar_one()
    import json

    older = json.loads(mpe_pdf)["pdf_sha256"]
    _sql(store, "DELETE FROM signatures WHERE signed_as = 'practitioner'")
    _sql(store, "UPDATE reports SET status = 'mpe-signed', pdf_blob_key = :k", k=older)
    problems = " ".join(verify(store, rid))
    assert "differ from the sign-offs in the audit trail" in problems
