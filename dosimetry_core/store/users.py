"""User accounts: roles, argon2id password hashes, log-in with lockout.

Passwords are never stored or logged: only their argon2id hash, computed by
argon2-cffi's :class:`~argon2.PasswordHasher` with its default parameters (the
RFC 9106 "low memory" profile: t=3, m=64 MiB, p=4; Biryukov, Dinu,
Khovratovich & Josefsson 2021, RFC 9106, IRTF).  A hash made with older
parameters is replaced at the next successful log-in.

Lockout policy (a local policy, within the limit of at most 100 consecutive
failures that NIST SP 800-63B, Grassi et al. 2017, section 5.2.2 sets):
after :data:`MAX_FAILED_ATTEMPTS` wrong passwords in a row the account is
locked for :data:`LOCKOUT_DURATION`; a locked or disabled account is refused
even with the right password; a successful log-in resets the count; an
administrator can unlock at once.  Failed log-ins and every change to an
account are written to the audit trail (:mod:`dosimetry_core.store.audit`).

Functions that take ``now`` accept any callable returning the naive local
time (tests inject a clock).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Connection, func, insert, select, update

from dosimetry_core.errors import AuthenticationError, InvalidInputError, PermissionDeniedError
from dosimetry_core.store import audit
from dosimetry_core.store.case_store import case_store_of
from dosimetry_core.store.password_policy import check_password
from dosimetry_core.store.permissions import ROLES, Actor, require
from dosimetry_core.store.schema import users as t_users

if TYPE_CHECKING:
    from dosimetry_core.store.repository import CaseRepository

MAX_FAILED_ATTEMPTS = 5
"""Wrong passwords in a row that lock an account (module docstring)."""

LOCKOUT_DURATION = timedelta(minutes=15)
"""How long an account stays locked after :data:`MAX_FAILED_ATTEMPTS` failures."""


USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
"""User names: 1-64 letters, digits and ``. _ @ -``, starting with a letter or digit."""

Clock = Callable[[], datetime]

_WHAT = "user accounts"

_DEFAULT_HASHER = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    return _DEFAULT_HASHER.hash("not the password of anyone")


@dataclass(frozen=True)
class UserInfo:
    """An account as listed (never the hash)."""

    username: str
    full_name: str
    role: str
    active: bool
    failed_attempts: int
    locked_until: datetime | None
    created_at: datetime
    created_by: str

    def locked(self, now: datetime) -> bool:
        """True while the lock set after repeated failures is in force."""
        return self.locked_until is not None and now < self.locked_until

    def to_dict(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "full_name": self.full_name,
            "role": self.role,
            "active": self.active,
            "failed_attempts": self.failed_attempts,
            "locked_until": self.locked_until.isoformat() if self.locked_until else None,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
        }


# ------------------------------------------------------------------ helpers
def _check_username(username: str) -> None:
    if not USERNAME_PATTERN.match(username or ""):
        raise InvalidInputError(
            f"user name {username!r} is not allowed: use 1-64 letters, digits or . _ @ - "
            "starting with a letter or digit"
        )


def _check_password(password: str, username: str) -> None:
    check_password(password, username)


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise InvalidInputError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")


def _row(conn: Connection, username: str, *, for_update: bool = False) -> Any:
    q = select(t_users).where(t_users.c.username == username)
    if for_update:
        q = q.with_for_update()  # PostgreSQL row lock; SQLite already holds the write lock
    return conn.execute(q).first()


def _require_manager(conn: Connection, actor: Actor) -> None:
    """``actor`` may manage users and is an active account of this store."""
    require(actor, "manage-users")
    row = _row(conn, actor.username)
    if row is None or not row.active or row.role != actor.role:
        raise PermissionDeniedError(
            f"{actor.username} ({actor.role}) is not an active {actor.role} account of this "
            "store; log in again"
        )


def _info(r: Any) -> UserInfo:
    return UserInfo(
        username=r.username,
        full_name=r.full_name or "",
        role=r.role,
        active=bool(r.active),
        failed_attempts=int(r.failed_attempts),
        locked_until=r.locked_until,
        created_at=r.created_at,
        created_by=r.created_by or "",
    )


def _insert_user(
    conn: Connection,
    username: str,
    password_hash: str,
    role: str,
    full_name: str,
    created_by: str,
    at: datetime,
) -> None:
    conn.execute(
        insert(t_users).values(
            username=username,
            full_name=full_name,
            role=role,
            password_hash=password_hash,
            active=1,
            failed_attempts=0,
            locked_until=None,
            created_at=at,
            created_by=created_by,
            modified_at=at,
        )
    )


# ----------------------------------------------------------------- accounts
def bootstrap_admin(
    store: CaseRepository,
    username: str,
    password: str,
    *,
    full_name: str = "",
    now: Clock = datetime.now,
    hasher: PasswordHasher | None = None,
) -> Actor:
    """Create the first account, an admin; allowed only while no user exists.

    Returns
    -------
    Actor
        The new admin.

    Raises
    ------
    PermissionDeniedError
        If the store has users already.
    InvalidInputError
        If the user name or password is not acceptable.
    """
    _check_username(username)
    _check_password(password, username)
    digest = (hasher or _DEFAULT_HASHER).hash(password)
    at = now()
    with case_store_of(store, _WHAT).connection() as conn:
        audit._lock(conn)  # PostgreSQL: two bootstraps at once cannot both see no user
        n = conn.execute(select(func.count()).select_from(t_users)).scalar_one()
        if n:
            raise PermissionDeniedError(
                f"the store has {n} user(s) already: the first admin exists; "
                "an admin must create further accounts"
            )
        _insert_user(conn, username, digest, "admin", full_name, "", at)
        actor = Actor(username, "admin")
        audit.append_for(conn, actor, "user-bootstrap", None, {"username": username}, at=at)
    return actor


def create_user(
    store: CaseRepository,
    actor: Actor,
    username: str,
    password: str,
    role: str,
    full_name: str = "",
    *,
    now: Clock = datetime.now,
    hasher: PasswordHasher | None = None,
) -> UserInfo:
    """Create an account (admins only).

    Raises
    ------
    PermissionDeniedError
        If ``actor`` may not manage users; nothing is changed.
    InvalidInputError
        Bad user name, role or password, or the user exists already.
    """
    require(actor, "manage-users")
    _check_username(username)
    _check_role(role)
    _check_password(password, username)
    digest = (hasher or _DEFAULT_HASHER).hash(password)
    at = now()
    with case_store_of(store, _WHAT).connection() as conn:
        _require_manager(conn, actor)
        if _row(conn, username) is not None:
            raise InvalidInputError(f"user {username!r} exists already")
        _insert_user(conn, username, digest, role, full_name, actor.username, at)
        audit.append_for(
            conn,
            actor,
            "user-create",
            None,
            {"username": username, "role": role, "full_name": full_name},
            at=at,
        )
        row = _row(conn, username)
    return _info(row)


def _existing(conn: Connection, username: str) -> Any:
    row = _row(conn, username, for_update=True)
    if row is None:
        raise InvalidInputError(f"no user {username!r} in this store")
    return row


def set_password(
    store: CaseRepository,
    actor: Actor,
    username: str,
    new_password: str,
    *,
    now: Clock = datetime.now,
    hasher: PasswordHasher | None = None,
) -> None:
    """Change a password: one's own, or anyone's for an admin.  Clears a lock."""
    if actor.username != username:
        require(actor, "manage-users")
    _check_password(new_password, username)
    digest = (hasher or _DEFAULT_HASHER).hash(new_password)
    at = now()
    with case_store_of(store, _WHAT).connection() as conn:
        if actor.username != username:
            _require_manager(conn, actor)
        _existing(conn, username)
        conn.execute(
            update(t_users)
            .where(t_users.c.username == username)
            .values(password_hash=digest, failed_attempts=0, locked_until=None, modified_at=at)
        )
        audit.append_for(conn, actor, "user-password", None, {"username": username}, at=at)


def _set_fields(
    store: CaseRepository,
    actor: Actor,
    username: str,
    action: str,
    values: dict[str, Any],
    now: Clock,
    check: Callable[[Connection, Any], None] | None = None,
) -> UserInfo:
    require(actor, "manage-users")
    at = now()
    with case_store_of(store, _WHAT).connection() as conn:
        _require_manager(conn, actor)
        row = _existing(conn, username)
        if check is not None:
            check(conn, row)
        conn.execute(
            update(t_users).where(t_users.c.username == username).values(**values, modified_at=at)
        )
        audit.append_for(conn, actor, action, None, {"username": username}, at=at)
        row = _row(conn, username)
    return _info(row)


def disable_user(
    store: CaseRepository, actor: Actor, username: str, *, now: Clock = datetime.now
) -> UserInfo:
    """Disable an account (admins only); the last active admin cannot be disabled."""

    def not_last_admin(conn: Connection, row: Any) -> None:
        if row.role != "admin" or not row.active:
            return
        admins = conn.execute(
            select(func.count())
            .select_from(t_users)
            .where(t_users.c.role == "admin", t_users.c.active == 1)
        ).scalar_one()
        if admins <= 1:
            raise InvalidInputError(
                f"{username} is the last active admin: create another admin before disabling it"
            )

    return _set_fields(store, actor, username, "user-disable", {"active": 0}, now, not_last_admin)


def enable_user(
    store: CaseRepository, actor: Actor, username: str, *, now: Clock = datetime.now
) -> UserInfo:
    """Enable a disabled account again (admins only)."""
    values = {"active": 1, "failed_attempts": 0, "locked_until": None}
    return _set_fields(store, actor, username, "user-enable", values, now)


def unlock_user(
    store: CaseRepository, actor: Actor, username: str, *, now: Clock = datetime.now
) -> UserInfo:
    """Lift a lock after failed log-ins and reset the count (admins only)."""
    values = {"failed_attempts": 0, "locked_until": None}
    return _set_fields(store, actor, username, "user-unlock", values, now)


def list_users(store: CaseRepository) -> list[UserInfo]:
    """All accounts, sorted by user name (no password hashes)."""
    with case_store_of(store, _WHAT).read_connection() as conn:
        rows = conn.execute(select(t_users).order_by(t_users.c.username)).all()
    return [_info(r) for r in rows]


# ------------------------------------------------------------------- log-in
def authenticate(
    store: CaseRepository,
    username: str,
    password: str,
    *,
    now: Clock = datetime.now,
    hasher: PasswordHasher | None = None,
) -> Actor:
    """Check a user name and password; return the :class:`Actor` (module docstring).

    Returns
    -------
    Actor
        The user and the role of the account.

    Raises
    ------
    AuthenticationError
        Unknown user or wrong password (the same message for both), or the
        account is disabled or locked (the message says until when).  Every
        failure is audited as ``login-failed`` with ``details["reason"]`` one
        of ``unknown-user`` (recorded by the system, no actor), ``disabled``,
        ``locked``, ``wrong-password``; the entry is committed before the
        error is raised.
    """
    ph = hasher or _DEFAULT_HASHER
    at = now()
    failure: str | None = None
    actor: Actor | None = None
    with case_store_of(store, _WHAT).connection() as conn:
        row = _row(conn, username, for_update=True)
        if row is None:
            # Spend the same time as for a real account, so timing does not reveal names.
            try:
                ph.verify(_dummy_hash(), password)
            except VerificationError:
                pass
            failure = f"wrong user name or password for {username!r}"
            # No account to attribute the attempt to: the system records it.
            # The name is cut to the longest valid one (USERNAME_PATTERN), so that a
            # hostile caller cannot bloat the trail.
            audit.append_for(
                conn,
                None,
                "login-failed",
                None,
                {"username": username[:64], "reason": "unknown-user"},
                at=at,
            )
        elif not row.active:
            failure = f"the account {username} is disabled; ask an administrator"
            audit.append_for(
                conn,
                Actor(username, row.role),
                "login-failed",
                None,
                {"username": username, "reason": "disabled"},
                at=at,
            )
        elif row.locked_until is not None and at < row.locked_until:
            failure = (
                f"the account {username} is locked until "
                f"{row.locked_until.isoformat(sep=' ', timespec='minutes')} after "
                f"{row.failed_attempts} failed log-ins; wait or ask an administrator to unlock it"
            )
            audit.append_for(
                conn,
                Actor(username, row.role),
                "login-failed",
                None,
                {
                    "username": username,
                    "reason": "locked",
                    "locked_until": row.locked_until.isoformat(),
                },
                at=at,
            )
        else:
            attempts = 0 if row.locked_until is not None else int(row.failed_attempts)
            try:
                ph.verify(row.password_hash, password)
            except VerifyMismatchError:
                attempts += 1
                locked_until = at + LOCKOUT_DURATION if attempts >= MAX_FAILED_ATTEMPTS else None
                conn.execute(
                    update(t_users)
                    .where(t_users.c.username == username)
                    .values(failed_attempts=attempts, locked_until=locked_until, modified_at=at)
                )
                details: dict[str, Any] = {
                    "username": username,
                    "reason": "wrong-password",
                    "failed_attempts": attempts,
                }
                if locked_until is not None:
                    details["locked_until"] = locked_until.isoformat()
                audit.append_for(
                    conn, Actor(username, row.role), "login-failed", None, details, at=at
                )
                failure = f"wrong user name or password for {username!r}"
                if locked_until is not None:
                    failure += (
                        f"; after {attempts} failed log-ins the account is locked until "
                        f"{locked_until.isoformat(sep=' ', timespec='minutes')}"
                    )
            except (InvalidHashError, VerificationError) as exc:
                raise AuthenticationError(
                    f"the stored password hash of {username} cannot be checked ({exc}); "
                    "ask an administrator to set a new password"
                ) from exc
            else:
                values: dict[str, Any] = {}
                if row.failed_attempts or row.locked_until is not None:
                    values.update(failed_attempts=0, locked_until=None)
                if ph.check_needs_rehash(row.password_hash):
                    values["password_hash"] = ph.hash(password)
                if values:
                    conn.execute(
                        update(t_users)
                        .where(t_users.c.username == username)
                        .values(**values, modified_at=at)
                    )
                actor = Actor(username, row.role)
    if failure is not None:  # raised after the commit, so the failed attempt is kept
        raise AuthenticationError(failure)
    assert actor is not None
    return actor
