"""Permissions: each role is refused what it may not do, with a clear message; nothing changes.

The expected matrix is written out by hand from issue 7 (technologist: imports,
administrations, measurements; physicist: also computes and signs as MPE;
physician: approves contours and signs as practitioner; admin: users only).
"""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select

from dosimetry_core.errors import AuthenticationError, PermissionDeniedError
from dosimetry_core.store import CaseStore, audit
from dosimetry_core.store import users as accounts
from dosimetry_core.store.permissions import ACTIONS, ROLES, Actor, require
from dosimetry_core.store.schema import users as t_users

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)

REFUSED = {
    "technologist": {
        "register", "contour", "approve-contour", "compute", "report", "sign-mpe",
        "sign-practitioner", "amend-report", "qa", "manage-users", "export", "read-audit",
    },
    "physicist": {"approve-contour", "sign-practitioner", "manage-users"},
    "physician": {
        "import", "enter-administration", "enter-measurement", "register", "contour",
        "compute", "report", "sign-mpe", "qa", "manage-users",
    },
    "admin": {
        "read", "import", "enter-administration", "enter-measurement", "register", "contour",
        "approve-contour", "compute", "report", "sign-mpe", "sign-practitioner",
        "amend-report", "export", "qa",
    },
}  # fmt: skip

CASES = [(role, action) for role in ROLES for action in ACTIONS]


@pytest.mark.parametrize(("role", "action"), CASES, ids=[f"{r}-{a}" for r, a in CASES])
def test_role_matrix_and_message(role: str, action: str) -> None:
    actor = Actor(f"user-{role}", role)
    if action in REFUSED[role]:
        with pytest.raises(PermissionDeniedError) as exc:
            require(actor, action)
        msg = str(exc.value)
        assert msg.startswith(f"user-{role} ({role}) may not {ACTIONS[action]}: this needs")
        assert "\n" not in msg
    else:
        require(actor, action)


def _n_users(store: CaseStore) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(t_users)).scalar_one())


@pytest.mark.parametrize("role", ["technologist", "physicist", "physician"])
def test_only_an_admin_manages_users_and_nothing_changes(store: CaseStore, role: str) -> None:
    admin = accounts.bootstrap_admin(store, "alice", "admin-password", hasher=FAST)
    accounts.create_user(store, admin, "u1", "user-password-1", role, hasher=FAST)
    for _ in range(5):  # lock the account, so that "unlock" would change something
        with pytest.raises(AuthenticationError):
            accounts.authenticate(store, "u1", "bad-password", hasher=FAST)
    me = Actor("u1", role)
    before_users = [u.to_dict() for u in accounts.list_users(store)]
    before_audit = [e.to_dict() for e in audit.entries(store)]
    calls = [
        lambda: accounts.create_user(store, me, "evil", "evil-password", "admin", hasher=FAST),
        lambda: accounts.unlock_user(store, me, "u1"),
        lambda: accounts.disable_user(store, me, "alice"),
        lambda: accounts.enable_user(store, me, "alice"),
        lambda: accounts.set_password(store, me, "alice", "stolen-password", hasher=FAST),
    ]
    for call in calls:
        with pytest.raises(PermissionDeniedError) as exc:
            call()
        assert str(exc.value).startswith(
            f"u1 ({role}) may not create, disable and unlock users: this needs the role admin"
        )
    assert [u.to_dict() for u in accounts.list_users(store)] == before_users
    assert [e.to_dict() for e in audit.entries(store)] == before_audit
    assert _n_users(store) == 2


def test_an_admin_actor_without_an_active_account_is_refused(store: CaseStore) -> None:
    admin = accounts.bootstrap_admin(store, "alice", "admin-password", hasher=FAST)
    forged = Actor("mallory", "admin")
    with pytest.raises(PermissionDeniedError, match="mallory \\(admin\\) is not an active admin"):
        accounts.create_user(store, forged, "evil", "evil-password", "admin", hasher=FAST)
    accounts.create_user(store, admin, "admin2", "admin2-password", "admin", hasher=FAST)
    accounts.disable_user(store, admin, "admin2")
    with pytest.raises(PermissionDeniedError, match="admin2 \\(admin\\) is not an active"):
        accounts.unlock_user(store, Actor("admin2", "admin"), "alice")
    assert _n_users(store) == 2
