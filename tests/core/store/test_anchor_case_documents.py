"""A database writer edits a case document (issue 13: "edits of case documents, e.g. a
protocol-run dose").

Every audited case save records the SHA-256 of the stored document in its audit entry,
and the saving user's key signs the audit head (a checkpoint).  So an edit of the
document by SQL is detected whatever the attacker does with the audit trail: leave it
(the hash differs), append a made-up entry with the new hash (not covered by a signed
checkpoint), or rewrite the newest entry with its chain (the signed checkpoint no
longer matches).  Each test performs the attack, then runs ``mrtdose audit --verify``
as the admin would; the forged dose stays visible as damage, nothing is repaired or
lost silently.
"""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from sqlalchemy import text

from dosimetry_core.cli.main import main
from dosimetry_core.store import CaseStore, audit
from dosimetry_core.store.case_store import document_sha256
from dosimetry_core.store.users import authenticate
from tests.core.reporting.test_sig_pades import FAST, PW, keyed_store

FORGED_GY = 0.123


@pytest.fixture()
def saved(tmp_path):
    """A store with accounts; alice (physicist, logged in) saved the case last."""
    store, _ = keyed_store(tmp_path / "s")
    alice = authenticate(store, "alice", PW["alice"], hasher=FAST)
    case_id = store.list_cases()[0].case_id
    case = store.load_case(case_id)
    case.description = "kidney dosimetry cycle 1"
    store.save_case(case, audit=(alice, "enter-measurement", {"field": "description"}))
    yield store, case_id
    store.close()


def _forge_dose(store: CaseStore, case_id: str) -> str:
    """Set the protocol run's kidney dose to FORGED_GY by SQL; return the new document hash."""
    with store.engine.begin() as conn:
        document = conn.execute(
            text("SELECT document FROM cases WHERE case_id = :c"), {"c": case_id}
        ).scalar_one()
        assert '"dose_gy"' in document
        doc = json.loads(document)
        n = _set_doses(doc)
        assert n > 0
        forged = json.dumps(doc, sort_keys=True, separators=(",", ":"))
        conn.execute(
            text("UPDATE cases SET document = :d WHERE case_id = :c"), {"d": forged, "c": case_id}
        )
    return document_sha256(forged)


def _set_doses(node) -> int:
    n = 0
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "dose_gy" and isinstance(v, float):
                node[k] = FORGED_GY
                n += 1
            else:
                n += _set_doses(v)
    elif isinstance(node, list):
        n += sum(_set_doses(v) for v in node)
    return n


def _verify_cli(store: CaseStore, capsys, monkeypatch) -> tuple[int, dict]:
    monkeypatch.setenv("MRTDOSE_USER", "root")
    monkeypatch.setenv("MRTDOSE_PASSWORD", PW["root"])
    code = main(["--store", str(store.path), "--json", "audit", "--verify"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def _entries(store: CaseStore):
    with store.engine.connect() as conn:
        return conn.execute(text("SELECT * FROM audit_log ORDER BY seq")).all()


def test_the_intact_store_verifies(saved, capsys, monkeypatch):
    store, _ = saved
    code, data = _verify_cli(store, capsys, monkeypatch)
    assert (code, data["intact"], data["problems"]) == (0, True, [])


def test_a_dose_edited_by_sql_is_named(saved, capsys, monkeypatch):
    store, case_id = saved
    _forge_dose(store, case_id)
    code, data = _verify_cli(store, capsys, monkeypatch)
    assert code == 1 and not data["intact"]
    assert any(case_id in p and "does not match the hash" in p for p in data["problems"])
    assert (
        f'"dose_gy":{FORGED_GY}'
        in store.engine.connect().execute(text("SELECT document FROM cases")).scalar_one()
    )  # the damage is shown, not repaired


def test_a_made_up_entry_covering_the_edit_is_not_signed(saved, capsys, monkeypatch):
    store, case_id = saved
    digest = _forge_dose(store, case_id)
    last = _entries(store)[-1]
    details = {"case_version": 99, "document_sha256": digest, "field": "description"}
    at = datetime(2026, 12, 5, 12, 0, 0)
    seq = int(last.seq) + 1
    entry_hash = audit.compute_hash(
        seq=seq,
        at=at,
        username="alice",
        role="physicist",
        case_id=case_id,
        action="enter-measurement",
        details=details,
        prev_hash=last.entry_hash,
    )
    with store.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO audit_log (seq, at, username, role, case_id, action, details, "
                "prev_hash, entry_hash) VALUES (:s, :at, 'alice', 'physicist', :c, "
                "'enter-measurement', :d, :p, :h)"
            ),
            {
                "s": seq,
                "at": at,
                "c": case_id,
                "d": json.dumps(details, sort_keys=True, separators=(",", ":")),
                "p": last.entry_hash,
                "h": entry_hash,
            },
        )
        conn.execute(
            text("UPDATE store_meta SET value = :v WHERE key = 'audit_head'"),
            {"v": f"{seq} {entry_hash}"},
        )
    assert store.verify_documents(include_unrecorded=False) == []  # the hash now "matches"
    code, data = _verify_cli(store, capsys, monkeypatch)
    assert code == 1
    assert any(
        f"entry {seq}" in p and "not covered by a signed checkpoint" in p for p in data["problems"]
    ), data["problems"]


def test_a_rewritten_newest_entry_breaks_its_signed_checkpoint(saved, capsys, monkeypatch):
    store, case_id = saved
    digest = _forge_dose(store, case_id)
    last = _entries(store)[-1]
    details = json.loads(last.details)
    assert "document_sha256" in details
    details["document_sha256"] = digest
    entry_hash = audit.compute_hash(
        seq=int(last.seq),
        at=last.at if isinstance(last.at, datetime) else datetime.fromisoformat(last.at),
        username=last.username,
        role=last.role,
        case_id=last.case_id,
        action=last.action,
        details=details,
        prev_hash=last.prev_hash,
    )
    with store.engine.begin() as conn:
        conn.execute(
            text("UPDATE audit_log SET details = :d, entry_hash = :h WHERE seq = :s"),
            {
                "d": json.dumps(details, sort_keys=True, separators=(",", ":")),
                "h": entry_hash,
                "s": last.seq,
            },
        )
        conn.execute(
            text("UPDATE store_meta SET value = :v WHERE key = 'audit_head'"),
            {"v": f"{last.seq} {entry_hash}"},
        )
    assert store.verify_documents(include_unrecorded=False) == []
    code, data = _verify_cli(store, capsys, monkeypatch)
    assert code == 1
    assert any(
        f"checkpoint at entry {last.seq}" in p and "differs from the signed one" in p
        for p in data["problems"]
    ), data["problems"]
