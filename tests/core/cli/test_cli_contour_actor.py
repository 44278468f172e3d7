"""``mrtdose contour`` review: the reviewer is always the logged-in user (issue 13).

A store with accounts records the logged-in user in ``VOI.history``; a
``--user`` naming anybody else is refused before anything is read or written.
A single-user store keeps ``--user`` as the reviewer's name.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from argon2 import PasswordHasher

from dosimetry_core.cli.main import main
from dosimetry_core.model import VoiStatus
from dosimetry_core.store import CaseStore, audit
from dosimetry_core.store.users import bootstrap_admin, create_user
from tests.core.store.conftest import make_case

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PASSWORDS = {"root": "admin-pass-12", "ann": "phys-pass-12", "dora": "md-pass-1234"}
VOI = "Kidney L"


@pytest.fixture(autouse=True)
def _logged_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MRTDOSE_USER", raising=False)
    monkeypatch.delenv("MRTDOSE_PASSWORD", raising=False)
    monkeypatch.delenv("MRTDOSE_STORE", raising=False)


def _make_store(store_dir: Path, *, accounts: bool) -> str:
    with CaseStore(store_dir) as store:
        case = make_case(store)
        store.save_case(case)
        if accounts:
            root = bootstrap_admin(store, "root", PASSWORDS["root"], hasher=FAST)
            create_user(store, root, "ann", PASSWORDS["ann"], "physicist", hasher=FAST)
            create_user(store, root, "dora", PASSWORDS["dora"], "physician", hasher=FAST)
        return case.case_id


def _log_in(monkeypatch: pytest.MonkeyPatch, username: str) -> None:
    monkeypatch.setenv("MRTDOSE_USER", username)
    monkeypatch.setenv("MRTDOSE_PASSWORD", PASSWORDS[username])


def _state(store_dir: Path, case_id: str) -> tuple[int, VoiStatus, list[str], int]:
    """Case version, the VOI's status, who is named in its history, audit entries of the case."""
    with CaseStore(store_dir) as store:
        case = store.load_case(case_id)
        voi = next(v for v in case.vois if v.name == VOI)
        users = [str(h.get("user")) for h in voi.history if "user" in h]
        return case.version, voi.status, users, len(audit.entries(store, case_id))


def test_user_naming_somebody_else_is_refused_and_nothing_changes(
    store_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    case_id = _make_store(store_dir, accounts=True)
    s = ("--store", str(store_dir))
    _log_in(monkeypatch, "ann")
    assert main(["contour", case_id, "submit", VOI, *s]) == 0
    capsys.readouterr()
    _log_in(monkeypatch, "dora")
    before = _state(store_dir, case_id)
    assert before[1] == VoiStatus.SUBMITTED and before[2][-1] == "ann"

    for op in ("approve", "reject"):
        code = main(
            ["contour", case_id, op, VOI, "--user", "chief.physician", "--comment", "x", *s]
        )
        out, err = capsys.readouterr()
        assert code == 1 and out == ""
        assert err.startswith("mrtdose: --user names somebody else than the logged-in user")
        assert "'chief.physician'" in err and "'dora'" in err and err.count("\n") == 1
        assert _state(store_dir, case_id) == before

    assert main(["contour", case_id, "approve", VOI, *s]) == 0  # no --user: the logged-in user
    capsys.readouterr()
    version, status, users, n_entries = _state(store_dir, case_id)
    assert (version, status, users[-1]) == (before[0] + 1, VoiStatus.APPROVED, "dora")
    assert "chief.physician" not in users and n_entries == before[3] + 1
    with CaseStore(store_dir) as store:
        last = audit.entries(store, case_id)[-1]
        assert (last.username, last.role, last.action) == ("dora", "physician", "approve-contour")
        assert audit.verify(store) == []


def test_user_repeating_the_logged_in_name_is_accepted(
    store_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    case_id = _make_store(store_dir, accounts=True)
    _log_in(monkeypatch, "ann")
    assert (
        main(["contour", case_id, "submit", VOI, "--user", "ann", "--store", str(store_dir)]) == 0
    )
    capsys.readouterr()
    assert _state(store_dir, case_id)[1:3] == (VoiStatus.SUBMITTED, ["ann"])


def test_nobody_logged_in_on_a_store_with_accounts_is_refused(
    store_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case_id = _make_store(store_dir, accounts=True)
    before = _state(store_dir, case_id)
    code = main(["contour", case_id, "submit", VOI, "--user", "ann", "--store", str(store_dir)])
    err = capsys.readouterr().err
    assert code == 1 and "this store has user accounts: log in" in err
    assert _state(store_dir, case_id) == before


def test_single_user_store_keeps_user_as_the_reviewer(
    store_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case_id = _make_store(store_dir, accounts=False)
    s = ("--store", str(store_dir))
    assert main(["contour", case_id, "submit", VOI, "--user", "pat.physicist", *s]) == 0
    assert main(["contour", case_id, "approve", VOI, "--user", "chief.physician", *s]) == 0
    capsys.readouterr()
    _, status, users, _ = _state(store_dir, case_id)
    assert (status, users) == (VoiStatus.APPROVED, ["pat.physicist", "chief.physician"])


def test_registration_review_user_naming_somebody_else_is_refused(
    store_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``mrtdose registration ... --user`` obeys the same rule, before the case is read."""
    case_id = _make_store(store_dir, accounts=True)
    _log_in(monkeypatch, "ann")
    before = _state(store_dir, case_id)
    code = main(
        ["registration", case_id, "accept", "TP1", "--user", "chief.physicist",
         "--store", str(store_dir)]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert err.startswith("mrtdose: --user names somebody else than the logged-in user")
    assert _state(store_dir, case_id) == before
