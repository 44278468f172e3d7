"""``mrtdose user ca-cert``, ``sign --role-as ... --out``, ``verify-report --trust/--store``.

Known answers: in a store with accounts the logged-in physicist and physician sign
(PAdES); ``sign --out`` writes the PDF as signed so far (1, then 2 signatures);
``user ca-cert --out`` writes the pinned CA; ``verify-report FILE --trust CA.pem``
exits 0 with two signatures (the last covering the whole file) and the JSON keys of
before plus ``signatures``; without a trust anchor exit 1 ("no trust anchor");
a copy with bytes appended exits 1; a signer who is not logged in is refused
(exit 1, one line) and nothing is signed.
"""

from __future__ import annotations

import json

import pytest

from dosimetry_core.cli.main import main
from dosimetry_core.reporting.records import create_report, load_report
from dosimetry_core.store import CaseStore
from dosimetry_core.store.permissions import Actor
from tests.core.reporting._synthetic import synthetic_case

PW = {"root": "otter-maple-fig-42", "alice": "alice-maple-fig-42", "bob": "bob-otter-fig-4242"}


@pytest.fixture()
def store_with_draft(tmp_path, monkeypatch):
    s = tmp_path / "store"
    with CaseStore(s) as store:
        cid = synthetic_case(store, "P1", 0.5)
    monkeypatch.delenv("MRTDOSE_USER", raising=False)
    monkeypatch.setenv("MRTDOSE_NEW_PASSWORD", PW["root"])
    assert main(["--store", str(s), "user", "bootstrap", "root"]) == 0
    monkeypatch.setenv("MRTDOSE_PASSWORD", PW["root"])
    for name, role in (("alice", "physicist"), ("bob", "physician")):
        monkeypatch.setenv("MRTDOSE_NEW_PASSWORD", PW[name])
        assert main(["--store", str(s), "user", "add", name, "--role", role, "--as", "root"]) == 0
    with CaseStore(s) as store:
        rid = create_report(store, Actor("alice", "physicist"), cid).report_id
    return s, rid


def _as(monkeypatch, name: str) -> None:
    monkeypatch.setenv("MRTDOSE_USER", name)
    monkeypatch.setenv("MRTDOSE_PASSWORD", PW[name])


def test_sign_out_ca_cert_and_verify_report(store_with_draft, tmp_path, monkeypatch, capsys):
    s, rid = store_with_draft
    capsys.readouterr()
    # a signer who is not logged in: refused before anything is signed
    monkeypatch.delenv("MRTDOSE_USER", raising=False)
    assert main(["--store", str(s), "sign", rid, "--role-as", "mpe"]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    with CaseStore(s) as store:
        assert load_report(store, rid).signatures == []

    one, two = tmp_path / "one.pdf", tmp_path / "two.pdf"
    _as(monkeypatch, "alice")
    assert main(["--store", str(s), "sign", rid, "--role-as", "mpe", "--out", str(one)]) == 0
    _as(monkeypatch, "bob")
    capsys.readouterr()
    code = main(
        ["--store", str(s), "sign", rid, "--role-as", "practitioner", "--out", str(two), "--json"]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "signed" and out["files"] == {"pdf": str(two)}

    ca = tmp_path / "ca.pem"
    _as(monkeypatch, "alice")
    assert main(["--store", str(s), "user", "ca-cert", "--out", str(ca)]) == 0
    capsys.readouterr()
    assert ca.read_text() == (s / "trust" / "ca.pem").read_text()

    monkeypatch.delenv("MRTDOSE_USER")
    assert main(["verify-report", str(two), "--trust", str(ca), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert set(res) == {"file", "report_id", "intact", "problems", "signatures"}
    assert res["intact"] and res["report_id"] == rid and res["problems"] == []
    assert [(x["field"], x["signer"], x["covers_whole_file"]) for x in res["signatures"]] == [
        ("MPE", "alice", False),
        ("Practitioner", "bob", True),
    ]
    # the PDF as signed so far: one signature, valid, but not the stored record any more
    assert main(["verify-report", str(one), "--trust", str(ca), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["signatures"]) == 1
    _as(monkeypatch, "alice")
    assert main(["verify-report", str(one), "--store", str(s), "--json"]) == 1
    assert any(
        "1 personal signature(s), the record 2" in p
        for p in json.loads(capsys.readouterr().out)["problems"]
    )
    assert main(["verify-report", str(two), "--store", str(s), "--json"]) == 0
    capsys.readouterr()
    monkeypatch.delenv("MRTDOSE_USER")

    # no trust anchor: a problem
    assert main(["verify-report", str(two), "--json"]) == 1
    assert "no trust anchor" in json.loads(capsys.readouterr().out)["problems"][0]
    # bytes appended after the last signature
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(two.read_bytes() + b"%extra\n")
    assert main(["verify-report", str(bad), "--trust", str(ca)]) == 1
    assert "does not cover the whole file" in capsys.readouterr().out


def test_ca_cert_of_a_store_without_accounts_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MRTDOSE_USER", raising=False)
    s = tmp_path / "single"
    CaseStore(s).close()
    assert main(["--store", str(s), "user", "ca-cert"]) == 1
    assert "no department CA" in capsys.readouterr().err


def test_trust_file_that_is_not_a_certificate_is_refused(store_with_draft, tmp_path, capsys):
    f = tmp_path / "x.pdf"
    f.write_bytes(b"%PDF-1.4\n")
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    assert main(["verify-report", str(f), "--trust", str(junk)]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
