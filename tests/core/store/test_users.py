"""Accounts: argon2id hashes, log-in, lockout after 5 failures for 15 minutes, audit."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import MetaData, select

from dosimetry_core.errors import AuthenticationError, InvalidInputError, PermissionDeniedError
from dosimetry_core.store import CaseStore, audit
from dosimetry_core.store import users as accounts
from dosimetry_core.store.permissions import Actor
from dosimetry_core.store.schema import users as t_users

# Cheap parameters so that tests are fast; one test checks the production defaults.
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
ADMIN_PW = "correct horse battery"
BOB_PW = "bobs-secret-42"
T0 = datetime(2026, 3, 2, 10, 0)


class Clock:
    """A settable clock for lockout tests."""

    def __init__(self, t: datetime) -> None:
        self.t = t

    def __call__(self) -> datetime:
        return self.t


@pytest.fixture()
def admin(store: CaseStore) -> Actor:
    return accounts.bootstrap_admin(store, "alice", ADMIN_PW, full_name="Alice A", hasher=FAST)


@pytest.fixture()
def bob(store: CaseStore, admin: Actor) -> str:
    accounts.create_user(store, admin, "bob", BOB_PW, "physicist", "Bob B", hasher=FAST)
    return "bob"


def _hash_of(store: CaseStore, username: str) -> str:
    with store.engine.connect() as conn:
        return str(
            conn.execute(
                select(t_users.c.password_hash).where(t_users.c.username == username)
            ).scalar_one()
        )


def _all_text(store: CaseStore) -> str:
    """Every value of every table, as text (for the no-plaintext check on any backend)."""
    md = MetaData()
    md.reflect(store.engine)
    parts = []
    with store.engine.connect() as conn:
        for table in md.sorted_tables:
            parts += [repr(tuple(r)) for r in conn.execute(select(table))]
    return "\n".join(parts)


def test_bootstrap_only_on_an_empty_store(store: CaseStore, admin: Actor) -> None:
    assert admin == Actor("alice", "admin")
    with pytest.raises(PermissionDeniedError, match="has 1 user"):
        accounts.bootstrap_admin(store, "mallory", "mallory-pw-123", hasher=FAST)
    assert [u.username for u in accounts.list_users(store)] == ["alice"]


def test_stored_hash_is_argon2id_and_no_password_is_in_the_database(
    store: CaseStore, bob: str
) -> None:
    assert _hash_of(store, "bob").startswith("$argon2id$")
    with pytest.raises(AuthenticationError):
        accounts.authenticate(store, "bob", "wrong-password-x", hasher=FAST)
    everything = _all_text(store)
    assert "$argon2id$" in everything  # the check sees the users table
    for secret in (ADMIN_PW, BOB_PW, "wrong-password-x"):
        assert secret not in everything
    if store.engine.dialect.name == "sqlite":
        for f in store.path.glob("cases.sqlite*"):
            raw = f.read_bytes()
            assert all(s.encode() not in raw for s in (ADMIN_PW, BOB_PW, "wrong-password-x"))


def test_right_password_gives_the_actor_and_wrong_one_a_clear_message(
    store: CaseStore, bob: str
) -> None:
    assert accounts.authenticate(store, "bob", BOB_PW, hasher=FAST) == Actor("bob", "physicist")
    with pytest.raises(AuthenticationError) as exc:
        accounts.authenticate(store, "bob", "nope-nope-nope", hasher=FAST)
    assert str(exc.value) == "wrong user name or password for 'bob'"
    with pytest.raises(AuthenticationError) as exc:
        accounts.authenticate(store, "nobody", BOB_PW, hasher=FAST)
    assert str(exc.value) == "wrong user name or password for 'nobody'"  # same as a wrong pw
    (info,) = [u for u in accounts.list_users(store) if u.username == "bob"]
    assert info.failed_attempts == 1


def test_five_failures_lock_for_fifteen_minutes_even_with_the_right_password(
    store: CaseStore, bob: str
) -> None:
    clock = Clock(T0)
    for i in range(1, 5):
        with pytest.raises(AuthenticationError) as exc:
            accounts.authenticate(store, "bob", f"guess-{i}-xxxx", now=clock, hasher=FAST)
        assert "locked" not in str(exc.value)
        clock.t += timedelta(seconds=10)
    with pytest.raises(AuthenticationError) as exc:  # 5th failure at 10:00:40
        accounts.authenticate(store, "bob", "guess-5-xxxx", now=clock, hasher=FAST)
    # 10:00:40 + 15 min = 10:15:40, printed to the minute
    assert "after 5 failed log-ins the account is locked until 2026-03-02 10:15" in str(exc.value)
    (info,) = [u for u in accounts.list_users(store) if u.username == "bob"]
    assert info.locked_until == datetime(2026, 3, 2, 10, 15, 40) and info.failed_attempts == 5

    clock.t = datetime(2026, 3, 2, 10, 15, 39)
    with pytest.raises(AuthenticationError, match="locked until 2026-03-02 10:15 after 5 failed"):
        accounts.authenticate(store, "bob", BOB_PW, now=clock, hasher=FAST)
    clock.t = datetime(2026, 3, 2, 10, 15, 40)  # the lock has run out
    assert accounts.authenticate(store, "bob", BOB_PW, now=clock, hasher=FAST).role == "physicist"
    (info,) = [u for u in accounts.list_users(store) if u.username == "bob"]
    assert (info.failed_attempts, info.locked_until) == (0, None)


def test_after_the_lock_runs_out_the_count_starts_again(store: CaseStore, bob: str) -> None:
    clock = Clock(T0)
    for i in range(5):
        with pytest.raises(AuthenticationError):
            accounts.authenticate(store, "bob", f"guess-{i}-xxxx", now=clock, hasher=FAST)
    clock.t = T0 + accounts.LOCKOUT_DURATION + timedelta(seconds=1)
    with pytest.raises(AuthenticationError) as exc:
        accounts.authenticate(store, "bob", "one-more-guess", now=clock, hasher=FAST)
    assert "locked" not in str(exc.value)
    (info,) = [u for u in accounts.list_users(store) if u.username == "bob"]
    assert (info.failed_attempts, info.locked_until) == (1, None)


def test_success_resets_the_count(store: CaseStore, bob: str) -> None:
    for _ in range(4):
        with pytest.raises(AuthenticationError):
            accounts.authenticate(store, "bob", "bad-bad-bad", hasher=FAST)
    accounts.authenticate(store, "bob", BOB_PW, hasher=FAST)
    for _ in range(4):  # 4 more: still not locked, since the count was reset
        with pytest.raises(AuthenticationError):
            accounts.authenticate(store, "bob", "bad-bad-bad", hasher=FAST)
    assert accounts.authenticate(store, "bob", BOB_PW, hasher=FAST).username == "bob"


def test_admin_unlocks_at_once(store: CaseStore, admin: Actor, bob: str) -> None:
    clock = Clock(T0)
    for _ in range(5):
        with pytest.raises(AuthenticationError):
            accounts.authenticate(store, "bob", "bad-bad-bad", now=clock, hasher=FAST)
    info = accounts.unlock_user(store, admin, "bob", now=clock)
    assert (info.failed_attempts, info.locked_until) == (0, None)
    assert accounts.authenticate(store, "bob", BOB_PW, now=clock, hasher=FAST).username == "bob"


def test_disabled_account_is_refused_and_last_admin_stays(
    store: CaseStore, admin: Actor, bob: str
) -> None:
    accounts.disable_user(store, admin, "bob")
    with pytest.raises(AuthenticationError, match="the account bob is disabled"):
        accounts.authenticate(store, "bob", BOB_PW, hasher=FAST)
    with pytest.raises(InvalidInputError, match="alice is the last active admin"):
        accounts.disable_user(store, admin, "alice")
    accounts.enable_user(store, admin, "bob")
    assert accounts.authenticate(store, "bob", BOB_PW, hasher=FAST).username == "bob"


def test_hash_made_with_weaker_parameters_is_replaced_at_login(store: CaseStore, bob: str) -> None:
    old = _hash_of(store, "bob")
    assert "m=1024,t=1,p=1" in old
    accounts.authenticate(store, "bob", BOB_PW)  # production hasher (argon2-cffi defaults)
    new = _hash_of(store, "bob")
    assert new.startswith("$argon2id$v=19$m=65536,t=3,p=4$")  # RFC 9106 low-memory profile
    assert PasswordHasher().verify(new, BOB_PW)


def test_own_password_change_and_bad_inputs(store: CaseStore, admin: Actor, bob: str) -> None:
    me = accounts.authenticate(store, "bob", BOB_PW, hasher=FAST)  # unlocks bob's key
    accounts.set_password(store, me, "bob", "a-new-password", hasher=FAST)
    with pytest.raises(AuthenticationError):
        accounts.authenticate(store, "bob", BOB_PW, hasher=FAST)
    assert accounts.authenticate(store, "bob", "a-new-password", hasher=FAST) == me
    with pytest.raises(PermissionDeniedError, match="bob \\(physicist\\) may not create"):
        accounts.set_password(store, me, "alice", "taken-over-123", hasher=FAST)
    with pytest.raises(InvalidInputError, match="too short: use at least 12"):
        accounts.create_user(store, admin, "carol", "short", "physician", hasher=FAST)
    with pytest.raises(InvalidInputError, match="unknown role 'nurse'"):
        accounts.create_user(store, admin, "carol", "long-enough-1", "nurse", hasher=FAST)
    with pytest.raises(InvalidInputError, match="user name 'bad name' is not allowed"):
        accounts.create_user(store, admin, "bad name", "long-enough-1", "physician", hasher=FAST)
    with pytest.raises(InvalidInputError, match="user 'bob' exists already"):
        accounts.create_user(store, admin, "bob", "long-enough-1", "physician", hasher=FAST)


def test_every_account_change_is_audited(store: CaseStore, admin: Actor, bob: str) -> None:
    clock = Clock(T0)
    with pytest.raises(AuthenticationError):
        accounts.authenticate(store, "bob", "bad-bad-bad", now=clock, hasher=FAST)
    accounts.unlock_user(store, admin, "bob", now=clock)
    accounts.set_password(store, admin, "bob", "reset-by-admin", hasher=FAST)
    got = [(e.username, e.action, e.details.get("username")) for e in audit.entries(store)]
    assert got == [
        ("alice", "user-bootstrap", "alice"),
        ("alice", "user-create", "bob"),
        ("bob", "login-failed", "bob"),
        ("alice", "user-unlock", "bob"),
        ("alice", "user-password", "bob"),
    ]
    assert audit.verify(store) == []
    assert all("password" not in k for e in audit.entries(store) for k in e.details)


def _failed_logins(store: CaseStore) -> list[tuple[str, str, str]]:
    """(actor, user name tried, reason) of every ``login-failed`` entry, in order."""
    return [
        (e.username, e.details["username"], e.details["reason"])
        for e in audit.entries(store)
        if e.action == "login-failed"
    ]


def test_a_sixth_attempt_on_the_locked_account_is_refused_and_audited(
    store: CaseStore, bob: str
) -> None:
    clock = Clock(T0)
    for i in range(accounts.MAX_FAILED_ATTEMPTS):
        with pytest.raises(AuthenticationError):
            accounts.authenticate(store, "bob", f"guess-{i}-xxxx", now=clock, hasher=FAST)
    clock.t = T0 + timedelta(minutes=1)
    with pytest.raises(AuthenticationError, match="locked until 2026-03-02 10:15 after 5 failed"):
        accounts.authenticate(store, "bob", BOB_PW, now=clock, hasher=FAST)  # right password
    assert _failed_logins(store) == [("bob", "bob", "wrong-password")] * 5 + [
        ("bob", "bob", "locked")
    ]
    last = audit.entries(store)[-1]
    assert last.details["locked_until"] == "2026-03-02T10:15:00"
    assert last.at == T0 + timedelta(minutes=1)
    (info,) = [u for u in accounts.list_users(store) if u.username == "bob"]
    assert (info.failed_attempts, info.locked_until) == (5, T0 + accounts.LOCKOUT_DURATION)
    assert audit.verify(store) == []


def test_a_log_in_on_a_disabled_account_is_audited(
    store: CaseStore, admin: Actor, bob: str
) -> None:
    accounts.disable_user(store, admin, "bob")
    with pytest.raises(AuthenticationError, match="the account bob is disabled"):
        accounts.authenticate(store, "bob", BOB_PW, hasher=FAST)
    assert _failed_logins(store) == [("bob", "bob", "disabled")]
    assert audit.entries(store)[-1].role == "physicist"
    assert audit.verify(store) == []


def test_a_log_in_as_an_unknown_user_is_audited_by_the_system(
    store: CaseStore, admin: Actor
) -> None:
    with pytest.raises(AuthenticationError, match="wrong user name or password for 'mallory'"):
        accounts.authenticate(store, "mallory", "any-password-1", hasher=FAST)
    with pytest.raises(AuthenticationError):
        accounts.authenticate(store, "x" * 500, "any-password-1", hasher=FAST)
    assert _failed_logins(store) == [
        ("", "mallory", "unknown-user"),
        ("", "x" * 64, "unknown-user"),
    ]
    assert audit.entries(store)[-1].role == ""
    assert "any-password-1" not in _all_text(store)
    assert audit.verify(store) == []
