"""Department CA and personal keys through an account's life (issue 13).

Known answers: bootstrap pins the CA in ``<store>/trust/ca.pem`` and keeps it out of
reach of a database writer; an admin Actor made by hand (no log-in) cannot create
accounts (clear refusal, nothing written); an own password change re-wraps the key
(the old password no longer unlocks it, signatures made before still verify); an
admin reset issues a new certificate and audits it; the CA key travels with every
admin; a QA record stored by a logged-in user is anchored by a signed checkpoint,
and a QA row changed in the database is detected by ``audit --verify``'s check.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from argon2 import PasswordHasher
from sqlalchemy import text

from dosimetry_core.errors import AuthenticationError, IntegrityError, PermissionDeniedError
from dosimetry_core.qa.records import store_record
from dosimetry_core.store import CaseStore, audit, keys
from dosimetry_core.store import users as accounts
from dosimetry_core.store.permissions import Actor
from dosimetry_core.store.qa_rows import audit_anchor_problems, sign_checkpoint

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
ROOT_PW, BOB_PW, NEW_PW = "otter-maple-fig-42", "bob-otter-fig-4242", "fig-otter-maple-77"


@pytest.fixture()
def store(tmp_path):
    s = CaseStore(tmp_path / "s")
    yield s
    s.close()


def _row(store: CaseStore, name: str):
    with store.engine.connect() as conn:
        return conn.execute(text("SELECT * FROM users WHERE username = :u"), {"u": name}).one()


def _n_users(store: CaseStore) -> int:
    with store.engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM users")).scalar_one()


def test_bootstrap_pins_the_ca_outside_the_database(store, tmp_path):
    admin = accounts.bootstrap_admin(store, "root", ROOT_PW, hasher=FAST)
    pinned = (store.path / "trust" / "ca.pem").read_text()
    assert accounts.ca_certificate_pem(store) == pinned
    ca = keys.load_cert(pinned)
    root = _row(store, "root")
    cert = keys.load_cert(root.cert_pem)
    assert keys.issued_by(cert, ca) and keys.subject_fields(cert) == ("root", "admin")
    assert "PRIVATE KEY" in root.key_pem and "ENCRYPTED" in root.key_pem  # never in clear
    assert root.ca_key_pem and root.ca_key_pem != root.key_pem
    with pytest.raises(AuthenticationError):
        keys.unwrap_key(root.key_pem, "not-the-password-1", whose="root")
    # another CA cannot be pinned over it
    other = keys.make_ca(keys.new_key(), "mallory")
    with pytest.raises(IntegrityError, match="already pins another CA"):
        keys.pin_ca(store, other)
    assert (store.path / "trust" / "ca.pem").read_text() == pinned
    assert accounts.verify_accounts(store) == [] and admin.role == "admin"


def test_admin_made_by_hand_cannot_issue_keys(store, tmp_path):
    accounts.bootstrap_admin(store, "root", ROOT_PW, hasher=FAST)
    fresh = CaseStore(store.path)  # another process: no key unlocked
    try:
        with pytest.raises(PermissionDeniedError, match="CA key is not unlocked"):
            accounts.create_user(fresh, Actor("root", "admin"), "bob", BOB_PW, "physician")
        assert _n_users(fresh) == 1
        accounts.authenticate(fresh, "root", ROOT_PW, hasher=FAST)  # unlocks the CA key
        info = accounts.create_user(
            fresh, Actor("root", "admin"), "bob", BOB_PW, "physician", hasher=FAST
        )
        assert info.integrity == "ok"
    finally:
        fresh.close()


def test_own_password_change_rewraps_the_key(store):
    admin = accounts.bootstrap_admin(store, "root", ROOT_PW, hasher=FAST)
    accounts.create_user(store, admin, "bob", BOB_PW, "physician", hasher=FAST)
    cert_before = _row(store, "bob").cert_pem
    bob = accounts.authenticate(store, "bob", BOB_PW, hasher=FAST)
    accounts.set_password(store, bob, "bob", NEW_PW, hasher=FAST)
    row = _row(store, "bob")
    assert row.cert_pem == cert_before  # same key and certificate, re-wrapped
    keys.unwrap_key(row.key_pem, NEW_PW, whose="bob")
    with pytest.raises(AuthenticationError):
        keys.unwrap_key(row.key_pem, BOB_PW, whose="bob")
    assert accounts.verify_accounts(store) == []
    assert accounts.authenticate(store, "bob", NEW_PW, hasher=FAST) == bob


def test_admin_reset_reissues_key_and_certificate_audited(store):
    admin = accounts.bootstrap_admin(store, "root", ROOT_PW, hasher=FAST)
    accounts.create_user(store, admin, "bob", BOB_PW, "physician", hasher=FAST)
    old = keys.fingerprint(keys.load_cert(_row(store, "bob").cert_pem))
    accounts.set_password(store, admin, "bob", NEW_PW, hasher=FAST)
    new = keys.fingerprint(keys.load_cert(_row(store, "bob").cert_pem))
    assert new != old
    entry = audit.entries(store)[-1]
    assert entry.action == "user-password"
    assert entry.details == {"username": "bob", "key_reissued": True, "certificate_sha256": new}
    assert accounts.verify_accounts(store) == []
    assert accounts.authenticate(store, "bob", NEW_PW, hasher=FAST).username == "bob"


def test_second_admin_carries_the_ca_key(store):
    admin = accounts.bootstrap_admin(store, "root", ROOT_PW, hasher=FAST)
    accounts.create_user(store, admin, "ann", NEW_PW, "admin", hasher=FAST)
    fresh = CaseStore(store.path)
    try:
        ann = accounts.authenticate(fresh, "ann", NEW_PW, hasher=FAST)
        info = accounts.create_user(fresh, ann, "bob", BOB_PW, "physician", hasher=FAST)
        assert info.integrity == "ok"
    finally:
        fresh.close()


def test_disable_revokes_and_enable_restores_signed(store):
    admin = accounts.bootstrap_admin(store, "root", ROOT_PW, hasher=FAST)
    accounts.create_user(store, admin, "bob", BOB_PW, "physician", hasher=FAST)
    accounts.disable_user(store, admin, "bob")
    assert _row(store, "bob").revoked_at is not None
    assert accounts.verify_accounts(store) == []
    with pytest.raises(PermissionDeniedError, match="disabled"):
        accounts.signing_identity(store, Actor("bob", "physician"), BOB_PW)
    accounts.enable_user(store, admin, "bob")
    assert _row(store, "bob").revoked_at is None and accounts.verify_accounts(store) == []


def test_qa_record_anchored_by_a_signed_checkpoint(store):
    admin = accounts.bootstrap_admin(store, "root", ROOT_PW, hasher=FAST)
    accounts.create_user(store, admin, "phil", BOB_PW, "physicist", hasher=FAST)
    phil = accounts.authenticate(store, "phil", BOB_PW, hasher=FAST)
    rec = store_record(
        store, "camera-calibration", "Cam | 1", "Lu-177", datetime(2026, 1, 10, 9, 0),
        {"cps_per_mbq": 9.1}, actor=phil,
    )  # fmt: skip
    # store_record signed the audit head (the record's own entry) with phil's key
    with store.engine.connect() as conn:
        signed = conn.execute(text("SELECT seq, username FROM audit_checkpoints")).all()
    assert (audit.entries(store)[-1].seq, "phil") in [tuple(r) for r in signed]
    assert audit.verify(store) == [] and audit_anchor_problems(store) == []
    # a database writer changes the calibration factor and recomputes the row's hash
    with store.engine.begin() as conn:
        conn.execute(
            text("UPDATE qa_records SET payload = :p, record_hash = :h WHERE record_id = :r"),
            {"p": '{"cps_per_mbq":120.0}', "h": "f" * 64, "r": rec.record_id},
        )
    assert any("changed outside the program" in p for p in audit_anchor_problems(store))
    # a user whose key is not unlocked signs nothing
    with CaseStore(store.path) as other:
        assert sign_checkpoint(other, "phil") is None
