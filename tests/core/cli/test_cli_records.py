"""mrtdose user / audit: accounts from the command line, audit printing and verification."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from sqlalchemy import text

from dosimetry_core.cli import main as cli_main
from dosimetry_core.cli import records_command
from dosimetry_core.store import CaseStore, audit
from dosimetry_core.store.permissions import Actor
from tests.core.store.conftest import make_case


@pytest.fixture(autouse=True)
def _registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """Until cli/main.py registers records_command, add it to the parser here."""
    original = cli_main.build_parser

    def build() -> argparse.ArgumentParser:
        parser = original()
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        if "audit" not in sub.choices:
            common = argparse.ArgumentParser(add_help=False)
            common.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
            common.add_argument("--store", default=argparse.SUPPRESS)
            records_command.add_parsers(sub, common)
        return parser

    monkeypatch.setattr(cli_main, "build_parser", build)
    monkeypatch.delenv("MRTDOSE_PASSWORD", raising=False)
    monkeypatch.delenv("MRTDOSE_NEW_PASSWORD", raising=False)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli_main.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_bootstrap_add_list_unlock(capsys, store_dir: Path, monkeypatch) -> None:
    s = str(store_dir)
    monkeypatch.setenv("MRTDOSE_NEW_PASSWORD", "admin-password-1")
    code, out, err = run(capsys, "--store", s, "user", "bootstrap", "alice", "--json")
    assert code == 0, err
    assert json.loads(out) == {"username": "alice", "role": "admin", "full_name": ""}
    code, _, err = run(capsys, "--store", s, "user", "bootstrap", "eve")
    assert code == 1 and "the first admin exists" in err

    monkeypatch.setenv("MRTDOSE_PASSWORD", "admin-password-1")
    monkeypatch.setenv("MRTDOSE_NEW_PASSWORD", "bob-password-1")
    code, out, err = run(
        capsys, "--store", s, "user", "add", "bob", "--role", "physicist", "--as", "alice",
        "--full-name", "Bob B", "--json",
    )  # fmt: skip
    assert code == 0, err
    assert {k: json.loads(out)[k] for k in ("username", "role", "full_name", "created_by")} == {
        "username": "bob", "role": "physicist", "full_name": "Bob B", "created_by": "alice",
    }  # fmt: skip

    monkeypatch.setenv("MRTDOSE_PASSWORD", "wrong-password")
    code, _, err = run(capsys, "--store", s, "user", "unlock", "bob", "--as", "alice")
    assert (code, err) == (1, "mrtdose: wrong user name or password for 'alice'\n")

    monkeypatch.setenv("MRTDOSE_PASSWORD", "bob-password-1")
    monkeypatch.setenv("MRTDOSE_NEW_PASSWORD", "carol-password-1")
    code, _, err = run(
        capsys, "--store", s, "user", "add", "carol", "--role", "physician", "--as", "bob"
    )
    assert code == 1
    assert err == (
        "mrtdose: bob (physicist) may not create, disable and unlock users: "
        "this needs the role admin\n"
    )

    from dosimetry_core.store.users import list_users

    with CaseStore(store_dir) as store:  # the CLI's list needs an admin log-in, which resets it
        assert {u.username: u.failed_attempts for u in list_users(store)}["alice"] == 1
    monkeypatch.setenv("MRTDOSE_PASSWORD", "admin-password-1")
    monkeypatch.setenv("MRTDOSE_USER", "alice")
    code, out, err = run(capsys, "--store", s, "user", "list", "--json")
    assert code == 0, err
    users = {u["username"]: u for u in json.loads(out)["users"]}
    assert sorted(users) == ["alice", "bob"]
    assert "password_hash" not in users["alice"]
    assert {u["integrity"] for u in users.values()} == {"ok"}  # rows signed by the CA
    code, out, _ = run(capsys, "--store", s, "user", "list")
    assert "alice" in out and "bob" in out and "active" in out
    monkeypatch.delenv("MRTDOSE_USER")

    code, out, err = run(capsys, "--store", s, "user", "unlock", "bob", "--as", "alice")
    assert code == 0 and out == "unlocked user bob\n"


def test_no_password_without_a_terminal(capsys, store_dir: Path) -> None:
    code, _, err = run(capsys, "--store", str(store_dir), "user", "bootstrap", "alice")
    assert code == 1 and "set MRTDOSE_NEW_PASSWORD" in err


def test_audit_prints_a_case_and_verify_detects_tampering(capsys, store_dir: Path) -> None:
    with CaseStore(store_dir) as store:
        case = store.save_case(
            make_case(store), audit=(Actor("pat", "physicist"), "import", {"files": 3})
        )
        audit.record(store, Actor("pat", "physicist"), "fit", case.case_id, {"model": "mono"})
        audit.record(store, None, "export", "OTHER", {})
    s = str(store_dir)
    code, out, err = run(capsys, "--store", s, "audit", case.case_id, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["case_id"] == case.case_id
    assert [(e["seq"], e["action"], e["username"]) for e in data["entries"]] == [
        (1, "import", "pat"),
        (2, "fit", "pat"),
    ]
    assert set(data["entries"][0]) == {
        "seq", "at", "username", "role", "case_id", "action", "details", "prev_hash", "entry_hash",
    }  # fmt: skip
    code, out, _ = run(capsys, "--store", s, "audit", case.case_id)
    assert "import" in out and "files=3" in out and "OTHER" not in out
    code, _, err = run(capsys, "--store", s, "audit", "NO-SUCH-CASE")
    assert code == 1 and "NO-SUCH-CASE" in err

    code, out, _ = run(capsys, "--store", s, "audit", "--verify", "--json")
    assert code == 0 and json.loads(out) == {"intact": True, "n_entries": 3, "problems": []}

    with CaseStore(store_dir) as store, store.engine.begin() as conn:
        conn.execute(text("""UPDATE audit_log SET details = '{"model":"bi"}' WHERE seq = 2"""))
    code, out, err = run(capsys, "--store", s, "audit", "--verify")
    assert code == 1
    assert out.startswith("audit trail DAMAGED (1 problem(s)):\nentry 2 (fit, ")
    assert "the audit trail fails verification" in err
