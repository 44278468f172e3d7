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

Personal keys (issue 13, :mod:`dosimetry_core.store.keys`): ``bootstrap_admin``
makes the department CA (pinned in ``<store>/trust/ca.pem``) and every account
gets a key pair and a certificate; each row is signed by the CA key (role,
state, certificate) and by its own key (password hash).  The unlocked CA key
and the user's key are kept on the store object after ``bootstrap_admin`` or a
successful ``authenticate``; managing accounts needs the CA key (an admin
:class:`Actor` made by hand, without log-in, is refused).  An own password
change re-wraps the key (log in first); an admin reset cannot unwrap the old
key, so it issues a new key and certificate (audited).  Disabling revokes the
certificate (``revoked_at``, signed).  A store whose accounts predate the keys
has no CA and keeps the hash-only checks.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Connection, func, insert, select, update

from dosimetry_core.errors import AuthenticationError, InvalidInputError, PermissionDeniedError
from dosimetry_core.store import audit, keys
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
    integrity: str = "no keys"

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
            "integrity": self.integrity,
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


def _info(r: Any, ca_cert: Any = None) -> UserInfo:
    if ca_cert is None:
        integrity = "no keys"
    else:
        integrity = keys.account_problem(r, ca_cert) or "ok"
    return UserInfo(
        username=r.username,
        full_name=r.full_name or "",
        role=r.role,
        active=bool(r.active),
        failed_attempts=int(r.failed_attempts),
        locked_until=r.locked_until,
        created_at=r.created_at,
        created_by=r.created_by or "",
        integrity=integrity,
    )


def _insert_user(
    conn: Connection,
    username: str,
    password_hash: str,
    role: str,
    full_name: str,
    created_by: str,
    at: datetime,
    key_values: dict[str, Any] | None = None,
) -> None:
    conn.execute(
        insert(t_users).values(
            **(key_values or {}),
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


def _row_signature(
    ca_key: keys.PrivateKey,
    username: str,
    role: str,
    active: bool,
    cert_pem: str,
    revoked_at: datetime | None,
    ca_key_wrapped: str | None,
) -> str:
    payload = keys.account_payload(
        username=username,
        role=role,
        active=active,
        cert_fingerprint=keys.fingerprint(keys.load_cert(cert_pem)),
        revoked_at=revoked_at,
        ca_key_wrapped=ca_key_wrapped,
    )
    return keys.sign_bytes(ca_key, payload)


def _new_identity(
    ca_key: keys.PrivateKey,
    ca_cert: Any,
    username: str,
    role: str,
    password: str,
    password_hash: str,
    *,
    active: bool = True,
) -> tuple[keys.PrivateKey, dict[str, Any]]:
    """A new key pair and certificate for an account, with the signed key columns."""
    user_key = keys.new_key()
    cert = keys.issue_certificate(ca_key, ca_cert, user_key.public_key(), username, role)
    cert_text = keys.cert_pem(cert)
    key_w = keys.wrap_key(user_key, password)
    ca_w = keys.wrap_key(ca_key, password) if role == "admin" else None
    values = {
        "cert_pem": cert_text,
        "key_pem": key_w,
        "ca_key_pem": ca_w,
        "revoked_at": None,
        "row_signature": _row_signature(ca_key, username, role, active, cert_text, None, ca_w),
        "password_signature": keys.sign_bytes(
            user_key, keys.password_payload(username, password_hash, key_w)
        ),
    }
    return user_key, values


def _ca_key_for(store: CaseRepository, actor: Actor, ca_cert: Any) -> keys.PrivateKey:
    """The unlocked CA key matching the pinned certificate (PermissionDeniedError otherwise)."""
    ca_key = keys.ca_key_or_refuse(store, actor.username)
    if ca_key.public_key() != ca_cert.public_key():
        raise PermissionDeniedError(
            f"{actor.username}: the unlocked CA key does not belong to this store's pinned CA"
        )
    return ca_key


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
    ca_key = keys.new_key()
    ca_cert = keys.make_ca(ca_key, username)
    user_key, key_values = _new_identity(ca_key, ca_cert, username, "admin", password, digest)
    with case_store_of(store, _WHAT).connection() as conn:
        audit._lock(conn)  # PostgreSQL: two bootstraps at once cannot both see no user
        n = conn.execute(select(func.count()).select_from(t_users)).scalar_one()
        if n:
            raise PermissionDeniedError(
                f"the store has {n} user(s) already: the first admin exists; "
                "an admin must create further accounts"
            )
        _insert_user(conn, username, digest, "admin", full_name, "", at, key_values)
        _set_meta(conn, keys.CA_META_KEY, keys.cert_pem(ca_cert))
        actor = Actor(username, "admin")
        audit.append_for(
            conn,
            actor,
            "user-bootstrap",
            None,
            {"username": username, "ca_certificate_sha256": keys.fingerprint(ca_cert)},
            at=at,
        )
        keys.pin_ca(store, ca_cert)  # outside the database; a failure rolls the bootstrap back
        # the admin's key signs the head: everything before the department CA is anchored
        audit.checkpoint(conn, username, user_key, str(key_values["cert_pem"]), at=at)
    keys.remember_key(store, keys.CA, ca_key)
    keys.remember_key(store, username, user_key)
    return actor


def _set_meta(conn: Connection, key: str, value: str) -> None:
    from dosimetry_core.store.schema import store_meta as t_meta

    if conn.execute(select(t_meta.c.key).where(t_meta.c.key == key)).first() is None:
        conn.execute(insert(t_meta).values(key=key, value=value))
    else:
        conn.execute(update(t_meta).where(t_meta.c.key == key).values(value=value))


def ca_certificate_pem(store: CaseRepository) -> str:
    """The department CA certificate (PEM) pinned in the store folder.

    Raises
    ------
    InvalidInputError
        If the store has no department CA (no accounts, or accounts made before keys).
    """
    cert = keys.pinned_ca(store)
    if cert is None:
        raise InvalidInputError(
            "this store has no department CA (no accounts, or accounts made before personal keys)"
        )
    return keys.cert_pem(cert)


def verify_accounts(store: CaseRepository) -> list[str]:
    """Problems of the account rows' keyed checks against the pinned CA (empty when intact)."""
    ca_cert = keys.pinned_ca(store)
    if ca_cert is None:
        return []
    with case_store_of(store, _WHAT).read_connection() as conn:
        rows = conn.execute(select(t_users).order_by(t_users.c.username)).all()
    return [p for p in (keys.account_problem(r, ca_cert) for r in rows) if p]


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
    ca_cert = keys.pinned_ca(store)
    ca_key = _ca_key_for(store, actor, ca_cert) if ca_cert is not None else None
    digest = (hasher or _DEFAULT_HASHER).hash(password)
    at = now()
    key_values = None
    if ca_key is not None:
        key_values = _new_identity(ca_key, ca_cert, username, role, password, digest)[1]
    with case_store_of(store, _WHAT).connection() as conn:
        _require_manager(conn, actor)
        if _row(conn, username) is not None:
            raise InvalidInputError(f"user {username!r} exists already")
        _insert_user(conn, username, digest, role, full_name, actor.username, at, key_values)
        audit.append_for(
            conn,
            actor,
            "user-create",
            None,
            {"username": username, "role": role, "full_name": full_name},
            at=at,
        )
        row = _row(conn, username)
    return _info(row, ca_cert)


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
    """Change a password: one's own, or anyone's for an admin.  Clears a lock.

    With personal keys: an own change re-wraps the private key (and an admin's CA
    key copy) under the new password, which needs the key unlocked by a log-in in
    this process; an admin reset issues a new key and certificate (the old key
    cannot be unwrapped without the old password) and audits it.

    Raises
    ------
    PermissionDeniedError
        Not one's own account and not an admin, or the key needed is not unlocked.
    """
    own = actor.username == username
    if not own:
        require(actor, "manage-users")
    _check_password(new_password, username)
    ca_cert = keys.pinned_ca(store)
    own_key = keys.unlocked_key(store, username) if own else None
    ca_key = None
    if ca_cert is not None and not own:
        ca_key = _ca_key_for(store, actor, ca_cert)
    if ca_cert is not None and own and own_key is None:
        raise PermissionDeniedError(
            f"{username}: log in with the current password first, so that your private key "
            "can be re-wrapped under the new one"
        )
    digest = (hasher or _DEFAULT_HASHER).hash(new_password)
    at = now()
    details: dict[str, Any] = {"username": username}
    with case_store_of(store, _WHAT).connection() as conn:
        if not own:
            _require_manager(conn, actor)
        row = _existing(conn, username)
        values: dict[str, Any] = {}
        if ca_cert is not None and own:
            assert own_key is not None
            if keys.account_problem(row, ca_cert):
                raise PermissionDeniedError(f"{username}: {keys.account_problem(row, ca_cert)}")
            key_w = keys.wrap_key(own_key, new_password)
            values = {
                "key_pem": key_w,
                "password_signature": keys.sign_bytes(
                    own_key, keys.password_payload(username, digest, key_w)
                ),
            }
            if row.ca_key_pem:
                ca_own = _ca_key_for(store, actor, ca_cert)
                ca_w = keys.wrap_key(ca_own, new_password)
                values["ca_key_pem"] = ca_w
                values["row_signature"] = _row_signature(
                    ca_own, username, row.role, bool(row.active), row.cert_pem, row.revoked_at, ca_w
                )
        elif ca_key is not None:
            _, values = _new_identity(
                ca_key, ca_cert, username, row.role, new_password, digest, active=bool(row.active)
            )
            if not row.active:  # keep the disabled account's revocation signed
                values["revoked_at"] = row.revoked_at
                values["row_signature"] = _row_signature(
                    ca_key,
                    username,
                    row.role,
                    False,
                    values["cert_pem"],
                    row.revoked_at,
                    values["ca_key_pem"],
                )
            new_cert = keys.load_cert(values["cert_pem"])
            details["key_reissued"] = True
            details["certificate_sha256"] = keys.fingerprint(new_cert)
        conn.execute(
            update(t_users)
            .where(t_users.c.username == username)
            .values(
                password_hash=digest,
                failed_attempts=0,
                locked_until=None,
                modified_at=at,
                **values,
            )
        )
        audit.append_for(conn, actor, "user-password", None, details, at=at)


def _set_fields(
    store: CaseRepository,
    actor: Actor,
    username: str,
    action: str,
    values: dict[str, Any],
    now: Clock,
    check: Callable[[Connection, Any], None] | None = None,
    *,
    signed: bool = False,
) -> UserInfo:
    require(actor, "manage-users")
    ca_cert = keys.pinned_ca(store)
    ca_key = _ca_key_for(store, actor, ca_cert) if (signed and ca_cert is not None) else None
    at = now()
    with case_store_of(store, _WHAT).connection() as conn:
        _require_manager(conn, actor)
        row = _existing(conn, username)
        if check is not None:
            check(conn, row)
        if ca_key is not None:
            problem = keys.account_problem(row, ca_cert)
            if problem:
                raise PermissionDeniedError(f"not changed: {problem}")
            values = dict(values)
            if "active" in values:
                values["revoked_at"] = None if values["active"] else at
            values["row_signature"] = _row_signature(
                ca_key,
                username,
                row.role,
                bool(values.get("active", row.active)),
                row.cert_pem,
                values.get("revoked_at", row.revoked_at),
                row.ca_key_pem,
            )
        conn.execute(
            update(t_users).where(t_users.c.username == username).values(**values, modified_at=at)
        )
        audit.append_for(conn, actor, action, None, {"username": username}, at=at)
        row = _row(conn, username)
    return _info(row, ca_cert)


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

    return _set_fields(
        store, actor, username, "user-disable", {"active": 0}, now, not_last_admin, signed=True
    )


def enable_user(
    store: CaseRepository, actor: Actor, username: str, *, now: Clock = datetime.now
) -> UserInfo:
    """Enable a disabled account again (admins only)."""
    values = {"active": 1, "failed_attempts": 0, "locked_until": None}
    return _set_fields(store, actor, username, "user-enable", values, now, signed=True)


def unlock_user(
    store: CaseRepository, actor: Actor, username: str, *, now: Clock = datetime.now
) -> UserInfo:
    """Lift a lock after failed log-ins and reset the count (admins only)."""
    values = {"failed_attempts": 0, "locked_until": None}
    return _set_fields(store, actor, username, "user-unlock", values, now)


def list_users(store: CaseRepository) -> list[UserInfo]:
    """All accounts, sorted by user name (no password hashes).

    ``integrity`` of each is ``"ok"`` (its keyed checks pass against the pinned CA),
    ``"no keys"`` (a store without a department CA) or the problem found.
    """
    ca_cert = keys.pinned_ca(store)
    with case_store_of(store, _WHAT).read_connection() as conn:
        rows = conn.execute(select(t_users).order_by(t_users.c.username)).all()
    return [_info(r, ca_cert) for r in rows]


# ------------------------------------------------------------------- log-in
_LIFTING_ACTIONS = ("user-unlock", "user-enable", "user-password")


def _audited_lock(conn: Connection, username: str) -> datetime | None:
    """The lock time of the newest audited lock of ``username`` not lifted by an admin.

    The lockout columns of ``users`` are not signed (they change at failed log-ins,
    when no key is unlocked); the audit trail also records each lock, so that
    clearing the columns alone does not lift it (module :mod:`~dosimetry_core.store.keys`).
    """
    from dosimetry_core.store.schema import audit_log as t_audit

    needle = f'%"username":"{username}"%'
    rows = conn.execute(
        select(t_audit.c.action, t_audit.c.details)
        .where(
            t_audit.c.action.in_(["login-failed", *_LIFTING_ACTIONS]),
            t_audit.c.details.like(needle),
        )
        .order_by(t_audit.c.seq.desc())
        .limit(50)
    ).all()
    for action, details in rows:
        try:
            d = json.loads(details)
        except ValueError:
            continue
        if not isinstance(d, dict) or d.get("username") != username:
            continue
        if action in _LIFTING_ACTIONS:
            return None
        if d.get("locked_until"):
            try:
                return datetime.fromisoformat(str(d["locked_until"]))
            except ValueError:
                return None
    return None


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
    ca_cert = keys.pinned_ca(store)
    unlocked: dict[str, keys.PrivateKey] = {}
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
        elif ca_cert is not None and keys.account_problem(row, ca_cert):
            failure = f"log-in refused: {keys.account_problem(row, ca_cert)}"
            audit.append_for(
                conn,
                None,
                "login-failed",
                None,
                {"username": username, "reason": "account-tampered"},
                at=at,
            )
        elif (
            (audited := _audited_lock(conn, username)) is not None
            and at < audited
            and (row.locked_until is None or row.locked_until < audited)
        ):
            failure = (
                f"the account {username} is locked until "
                f"{audited.isoformat(sep=' ', timespec='minutes')} (lock recorded in the audit "
                "trail; the account row was cleared outside the program): ask an administrator"
            )
            audit.append_for(
                conn,
                Actor(username, row.role),
                "login-failed",
                None,
                {
                    "username": username,
                    "reason": "locked",
                    "locked_until": audited.isoformat(),
                    "row_cleared": True,
                },
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
                if ca_cert is not None:
                    unlocked[username] = keys.unwrap_key(row.key_pem, password, whose=username)
                    if row.ca_key_pem:
                        unlocked[keys.CA] = keys.unwrap_key(
                            row.ca_key_pem, password, whose="the department CA"
                        )
                if ph.check_needs_rehash(row.password_hash):
                    values["password_hash"] = ph.hash(password)
                    if ca_cert is not None:
                        values["password_signature"] = keys.sign_bytes(
                            unlocked[username],
                            keys.password_payload(username, values["password_hash"], row.key_pem),
                        )
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
    for name, key in unlocked.items():
        keys.remember_key(store, name, key)
    return actor


# ------------------------------------------------------------------ signing keys
def signing_identity(
    store: CaseRepository, actor: Actor, password: str | None = None
) -> tuple[keys.PrivateKey, Any, Any] | None:
    """``(private key, certificate, pinned CA certificate)`` of ``actor`` for signing.

    None for a store without a department CA (single-user store, or accounts made
    before personal keys): signing then keeps the hash-only record.

    Parameters
    ----------
    password
        The signer's password (unlocks the stored key); None: the key unlocked at
        this process's log-in.

    Raises
    ------
    PermissionDeniedError
        No account, a disabled account (its key is revoked), a role other than the
        account's, an account row that fails its keyed checks, or no key unlocked.
    AuthenticationError
        Wrong password.
    """
    ca_cert = keys.pinned_ca(store)
    if ca_cert is None:
        return None
    with case_store_of(store, _WHAT).read_connection() as conn:
        row = _row(conn, actor.username)
    if row is None:
        raise PermissionDeniedError(f"{actor.username} is not an account of this store")
    problem = keys.account_problem(row, ca_cert)
    if problem:
        raise PermissionDeniedError(f"signing refused: {problem}")
    if not row.active or row.revoked_at is not None:
        raise PermissionDeniedError(
            f"the account {actor.username} is disabled: its key is revoked and cannot sign"
        )
    if row.role != actor.role:
        raise PermissionDeniedError(
            f"{actor.username} is a {row.role} in this store, not a {actor.role}"
        )
    if password is not None:
        key = keys.unwrap_key(row.key_pem, password, whose=actor.username)
    else:
        found = keys.unlocked_key(store, actor.username)
        if found is None:
            raise PermissionDeniedError(
                f"{actor.username}: give your password to sign (your key is not unlocked)"
            )
        key = found
    cert = keys.load_cert(row.cert_pem)
    if key.public_key() != cert.public_key():
        raise PermissionDeniedError(f"{actor.username}: the key does not match the certificate")
    return key, cert, ca_cert


def account_state(
    store: CaseRepository, username: str
) -> tuple[str | None, datetime | None, str | None]:
    """``(certificate SHA-256, revoked_at, problem)`` of an account as stored and checked.

    ``problem`` is set when the account is missing or fails its keyed checks against
    the pinned CA.
    """
    ca_cert = keys.pinned_ca(store)
    with case_store_of(store, _WHAT).read_connection() as conn:
        row = _row(conn, username)
    if row is None:
        return None, None, f"no account {username!r} in this store"
    problem = keys.account_problem(row, ca_cert) if ca_cert is not None else None
    fp = keys.fingerprint(keys.load_cert(row.cert_pem)) if row.cert_pem else None
    return fp, row.revoked_at, problem
