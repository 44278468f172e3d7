"""Audit trail: an append-only, hash-chained log of every change in the store.

Each entry of ``audit_log`` carries ``prev_hash`` (the ``entry_hash`` of the
entry before it; :data:`GENESIS_HASH` for the first) and its own
``entry_hash``: the SHA-256 (FIPS 180-4, NIST 2015) of the canonical JSON of
``(seq, at, username, role, case_id, action, details, prev_hash)``.  Editing,
deleting, inserting or reordering an entry therefore breaks either the entry's
own hash or the link of the next entry (a hash chain, as in Haber & Stornetta
1991, "How to time-stamp a digital document", *J. Cryptology* 3:99-111).
Deleting the newest entries cannot break a link, so the number and hash of the
newest entry are also kept in ``store_meta`` (key :data:`HEAD_KEY`) and
compared.  Someone able to rewrite the whole table *and* that row can still
forge a consistent history up to the newest **signed checkpoint**: at each
report signing and each QA record the acting user's private key signs
``(seq, entry_hash)`` of the head (table ``audit_checkpoints``,
:func:`checkpoint`); :func:`verify` checks every checkpoint against the
department CA pinned outside the database (:mod:`dosimetry_core.store.keys`),
so a rewritten or truncated chain up to the newest checkpoint is detected.

Entries are appended inside the caller's transaction, so a change and its
entry commit together or not at all.  Appends are serialised: on SQLite by the
write lock that every store transaction takes (``BEGIN IMMEDIATE``), on
PostgreSQL by a transaction-level advisory lock (:data:`PG_AUDIT_LOCK`).
There is no update or delete API.

Actions used by the store and the CLI (free text, at most 64 characters):
``import``, ``contour``, ``approve-contour``, ``fit``, ``dose``, ``report``,
``sign``, ``amend``, ``export``, ``save-case``, ``delete-case``,
``user-bootstrap``, ``user-create``, ``user-password``, ``user-disable``,
``user-enable``, ``user-unlock``, ``login-failed``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, func, insert, select, text, update

from dosimetry_core.errors import IntegrityError
from dosimetry_core.store.permissions import Actor
from dosimetry_core.store.schema import audit_checkpoints as t_checkpoints
from dosimetry_core.store.schema import audit_log as t_audit
from dosimetry_core.store.schema import store_meta as t_meta

if TYPE_CHECKING:
    from dosimetry_core.store import keys
    from dosimetry_core.store.case_store import CaseStore
    from dosimetry_core.store.repository import CaseRepository

GENESIS_HASH = "0" * 64
"""``prev_hash`` of the first entry."""

HEAD_KEY = "audit_head"
"""``store_meta`` key holding ``"<seq> <entry_hash>"`` of the newest entry."""

PG_AUDIT_LOCK = 0x6D72746175646974
"""Key of the PostgreSQL transaction advisory lock that serialises appends."""

ACTION_MAX = 64


@dataclass(frozen=True)
class AuditEntry:
    """One entry of the audit trail, as stored.

    Attributes
    ----------
    seq
        Position in the chain (1, 2, 3, ... without gaps).
    at
        Naive local wall-clock time of the change.
    username, role
        Who did it (empty for the system itself).
    case_id
        The case concerned, or None (user management, ...).
    action
        What was done (see the module docstring).
    details
        JSON-compatible details of the change.
    prev_hash, entry_hash
        SHA-256 hex digests chaining the entries.
    """

    seq: int
    at: datetime
    username: str
    role: str
    case_id: str | None
    action: str
    details: dict[str, Any]
    prev_hash: str
    entry_hash: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible form (``at`` in ISO 8601)."""
        return {
            "seq": self.seq,
            "at": self.at.isoformat(),
            "username": self.username,
            "role": self.role,
            "case_id": self.case_id,
            "action": self.action,
            "details": self.details,
            "prev_hash": self.prev_hash,
            "entry_hash": self.entry_hash,
        }


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _normalise_details(details: dict[str, Any] | None) -> dict[str, Any]:
    """Details as they will read back from the database (dates become ISO strings)."""
    out = json.loads(json.dumps(details or {}, sort_keys=True, default=str, allow_nan=False))
    if not isinstance(out, dict):
        raise TypeError("audit details must be a dict")
    return out


def _naive(at: datetime) -> datetime:
    return at.astimezone().replace(tzinfo=None) if at.tzinfo is not None else at


def compute_hash(
    *,
    seq: int,
    at: datetime,
    username: str,
    role: str,
    case_id: str | None,
    action: str,
    details: dict[str, Any],
    prev_hash: str,
) -> str:
    """SHA-256 hex digest of the canonical JSON of one entry (module docstring).

    Canonical JSON: keys sorted, no spaces, UTF-8; ``at`` as ISO 8601 with
    microseconds.
    """
    payload = {
        "seq": int(seq),
        "at": _naive(at).isoformat(timespec="microseconds"),
        "username": username,
        "role": role,
        "case_id": case_id,
        "action": action,
        "details": details,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(_canonical(payload).encode("utf-8")).hexdigest()


def _lock(conn: Connection) -> None:
    """Serialise appends (SQLite: the store transaction already holds the write lock)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_AUDIT_LOCK})


def append(
    conn: Connection,
    *,
    at: datetime,
    username: str,
    role: str,
    action: str,
    case_id: str | None,
    details: dict[str, Any] | None,
) -> int:
    """Append one entry inside the caller's open transaction; return its ``seq``.

    Parameters
    ----------
    conn
        Connection with an open write transaction (e.g. from :meth:`CaseStore.connection`);
        the entry commits or rolls back with it.
    at
        Time of the change (naive local time; an aware time is converted).
    username, role
        Who acted ("" for the system).
    action
        What was done (at most 64 characters).
    case_id
        The case concerned, or None.
    details
        JSON-compatible details (values that are not JSON become strings).

    Returns
    -------
    int
        Sequence number of the new entry.
    """
    if not action or len(action) > ACTION_MAX:
        raise ValueError(f"audit action must be 1-{ACTION_MAX} characters, got {action!r}")
    _lock(conn)
    last = conn.execute(
        select(t_audit.c.seq, t_audit.c.entry_hash).order_by(t_audit.c.seq.desc()).limit(1)
    ).first()
    seq = 1 if last is None else int(last.seq) + 1
    prev = GENESIS_HASH if last is None else str(last.entry_hash)
    at = _naive(at)
    norm = _normalise_details(details)
    digest = compute_hash(
        seq=seq,
        at=at,
        username=username,
        role=role,
        case_id=case_id,
        action=action,
        details=norm,
        prev_hash=prev,
    )
    conn.execute(
        insert(t_audit).values(
            seq=seq,
            at=at,
            username=username,
            role=role,
            case_id=case_id,
            action=action,
            details=_canonical(norm),
            prev_hash=prev,
            entry_hash=digest,
        )
    )
    head = f"{seq} {digest}"
    found = conn.execute(select(t_meta.c.key).where(t_meta.c.key == HEAD_KEY)).first()
    if found is None:
        conn.execute(insert(t_meta).values(key=HEAD_KEY, value=head))
    else:
        conn.execute(update(t_meta).where(t_meta.c.key == HEAD_KEY).values(value=head))
    return seq


def append_for(
    conn: Connection,
    actor: Actor | None,
    action: str,
    case_id: str | None = None,
    details: dict[str, Any] | None = None,
    *,
    at: datetime | None = None,
) -> int:
    """:func:`append` for an :class:`Actor` (None: the system), at ``at`` or now."""
    return append(
        conn,
        at=at if at is not None else datetime.now(),
        username=actor.username if actor else "",
        role=actor.role if actor else "",
        action=action,
        case_id=case_id,
        details=details,
    )


def record(
    store: CaseRepository,
    actor: Actor | None,
    action: str,
    case_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> int:
    """Append an entry in a transaction of ``store`` (joins an open :meth:`transaction`).

    Returns
    -------
    int
        Sequence number of the new entry.
    """
    with _database(store).connection() as conn:
        return append_for(conn, actor, action, case_id, details)


def checkpoint(
    conn: Connection, username: str, key: keys.PrivateKey, cert_pem: str, *, at: datetime
) -> int:
    """Sign the newest entry ``(seq, entry_hash)`` with ``key``, inside the caller's transaction.

    Returns
    -------
    int
        The ``seq`` signed.
    """
    from dosimetry_core.store import keys

    last = conn.execute(
        select(t_audit.c.seq, t_audit.c.entry_hash).order_by(t_audit.c.seq.desc()).limit(1)
    ).first()
    if last is None:
        raise ValueError("no audit entry to checkpoint")
    seq, digest = int(last.seq), str(last.entry_hash)
    if conn.execute(select(t_checkpoints.c.seq).where(t_checkpoints.c.seq == seq)).first():
        return seq  # this head is signed already (e.g. by the case save of the same action)
    conn.execute(
        insert(t_checkpoints).values(
            seq=seq,
            entry_hash=digest,
            at=_naive(at),
            username=username,
            cert_pem=cert_pem,
            signature=keys.sign_bytes(key, keys.checkpoint_payload(seq, digest)),
        )
    )
    return seq


def record_checkpoint(
    store: CaseRepository, username: str, key: keys.PrivateKey, cert_pem: str
) -> int:
    """:func:`checkpoint` in a transaction of ``store`` (joins an open one)."""
    with _database(store).connection() as conn:
        return checkpoint(conn, username, key, cert_pem, at=datetime.now())


def sign_head_in(
    conn: Connection, store: CaseRepository, username: str, *, at: datetime
) -> int | None:
    """:func:`sign_head` inside the caller's transaction ``conn`` (e.g. a case save).

    Returns the ``seq`` signed, or None when the store has no pinned department CA or
    ``username``'s key is not unlocked in this process (nothing is written).
    """
    from dosimetry_core.store import keys
    from dosimetry_core.store.schema import users as t_users

    key = keys.unlocked_key(store, username)
    if key is None or keys.pinned_ca(store) is None:
        return None
    cert_pem = conn.execute(
        select(t_users.c.cert_pem).where(t_users.c.username == username)
    ).scalar()
    if not cert_pem:
        return None
    return checkpoint(conn, username, key, str(cert_pem), at=at)


def sign_head(store: CaseRepository, username: str) -> int | None:
    """Checkpoint the head with ``username``'s key unlocked in this process, if any.

    For actions whose caller holds no key object (e.g. a QA record stored by the
    logged-in user).  Returns the ``seq`` signed, or None when the store has no
    department CA or the user's key is not unlocked (nothing is written).
    """
    from dosimetry_core.store import keys

    if keys.unlocked_key(store, username) is None:
        return None  # nothing to sign with: no connection opened
    with _database(store).connection() as conn:
        return sign_head_in(conn, store, username, at=datetime.now())


def _unsigned_case_saves(conn: Connection, newest_checkpoint: int) -> list[str]:
    """Case saves after the newest signed checkpoint (in a store with a pinned CA).

    Every case save by a logged-in user signs the audit head with that user's key
    (:meth:`~dosimetry_core.store.case_store.CaseStore.save_case`), so the newest
    entry that records a ``document_sha256`` is always covered by a checkpoint.  An
    entry after the newest checkpoint was appended by someone holding no key: a
    database writer covering an edit of a case document with a made-up entry.
    """
    rows = conn.execute(
        select(t_audit.c.seq, t_audit.c.case_id, t_audit.c.action, t_audit.c.username)
        .where(t_audit.c.seq > newest_checkpoint)
        .where(t_audit.c.details.like('%"document_sha256"%'))
        .order_by(t_audit.c.seq)
    ).all()
    return [
        f"entry {r.seq} ({r.action} of case {r.case_id} by {r.username or 'nobody'}) is not "
        "covered by a signed checkpoint: it was not written by a logged-in user of this store"
        for r in rows
    ]


def _checkpoint_problems(conn: Connection, store: CaseRepository) -> list[str]:
    from dosimetry_core.store import keys

    ca_cert = keys.pinned_ca(store)
    rows = conn.execute(select(t_checkpoints).order_by(t_checkpoints.c.seq)).all()
    if ca_cert is None:
        return ["audit checkpoints exist but no department CA is pinned"] if rows else []
    problems = []
    hashes = dict(conn.execute(select(t_audit.c.seq, t_audit.c.entry_hash)).all())
    for r in rows:
        seq = int(r.seq)
        try:
            cert = keys.load_cert(r.cert_pem)
        except IntegrityError as exc:
            problems.append(f"checkpoint at entry {seq}: unreadable certificate ({exc})")
            continue
        if not keys.issued_by(cert, ca_cert) or keys.subject_fields(cert)[0] != r.username:
            problems.append(
                f"checkpoint at entry {seq}: the certificate of {r.username} was not issued "
                "by the pinned department CA"
            )
        elif not keys.verify_bytes(
            cert, keys.checkpoint_payload(seq, str(r.entry_hash)), r.signature
        ):
            problems.append(f"checkpoint at entry {seq}: its signature does not verify (altered)")
        if seq not in hashes:
            problems.append(
                f"checkpoint at entry {seq} signed by {r.username}: the entry is missing "
                "(the trail was truncated or rewritten)"
            )
        elif hashes[seq] != r.entry_hash:
            problems.append(
                f"checkpoint at entry {seq} signed by {r.username}: the entry's hash differs "
                "from the signed one (the trail was rewritten)"
            )
    from dosimetry_core.store.schema import signatures as t_signatures

    keyed = conn.execute(
        select(func.count())
        .select_from(t_signatures)
        .where(t_signatures.c.content_signature.is_not(None))
    ).scalar_one()
    if keyed > len(rows):
        problems.append(
            f"{keyed} personal report signature(s) but only {len(rows)} signed audit "
            "checkpoint(s): checkpoints were deleted"
        )
    problems += _unsigned_case_saves(conn, max((int(r.seq) for r in rows), default=0))
    return problems


def _database(store: CaseRepository) -> CaseStore:
    # Imported here: case_store imports this module (save_case appends entries).
    from dosimetry_core.store.case_store import case_store_of

    return case_store_of(store, "the audit trail")


def _row_entry(r: Any) -> tuple[AuditEntry | None, str | None]:
    try:
        details = json.loads(r.details)
        if not isinstance(details, dict):
            raise ValueError("not an object")
    except ValueError as exc:
        return None, f"entry {r.seq}: details are not readable JSON ({exc})"
    entry = AuditEntry(
        seq=int(r.seq),
        at=r.at,
        username=r.username or "",
        role=r.role or "",
        case_id=r.case_id,
        action=r.action,
        details=details,
        prev_hash=r.prev_hash,
        entry_hash=r.entry_hash,
    )
    return entry, None


def entries(store: CaseRepository, case_id: str | None = None) -> list[AuditEntry]:
    """Entries of one case (all entries when None), oldest first.

    Entries whose details cannot be read (tampering) are left out; :func:`verify`
    reports them.
    """
    q = select(t_audit).order_by(t_audit.c.seq)
    if case_id is not None:
        q = q.where(t_audit.c.case_id == case_id)
    with _database(store).read_connection() as conn:
        rows = conn.execute(q).all()
    out = []
    for r in rows:
        entry, _problem = _row_entry(r)
        if entry is not None:
            out.append(entry)
    return out


def verify(store: CaseRepository) -> list[str]:
    """Check the whole chain; return one line per problem (empty when intact).

    Detects a changed entry (its hash no longer matches its content), deleted
    entries (a gap in ``seq``, or fewer entries than the recorded head),
    reordered or inserted entries and any other break of the chain
    (``prev_hash`` not equal to the hash of the entry before).
    """
    problems: list[str] = []
    with _database(store).read_connection() as conn:
        rows = conn.execute(select(t_audit).order_by(t_audit.c.seq)).all()
        head = conn.execute(select(t_meta.c.value).where(t_meta.c.key == HEAD_KEY)).scalar()
        n = conn.execute(select(func.count()).select_from(t_audit)).scalar_one()
        signed_problems = _checkpoint_problems(conn, store)
    expected_seq = 1
    expected_prev = GENESIS_HASH
    for r in rows:
        seq = int(r.seq)
        if seq > expected_seq:
            gap = (
                f"entry {expected_seq} is"
                if seq == expected_seq + 1
                else f"entries {expected_seq}-{seq - 1} are"
            )
            problems.append(f"{gap} missing (deleted) before entry {seq}")
        entry, problem = _row_entry(r)
        if problem is not None:
            problems.append(problem)
        else:
            assert entry is not None
            digest = compute_hash(
                seq=entry.seq,
                at=entry.at,
                username=entry.username,
                role=entry.role,
                case_id=entry.case_id,
                action=entry.action,
                details=entry.details,
                prev_hash=entry.prev_hash,
            )
            if digest != entry.entry_hash:
                problems.append(
                    f"entry {seq} ({entry.action}, {entry.at.isoformat(sep=' ')}) was changed: "
                    "its content does not match its hash"
                )
        if r.prev_hash != expected_prev:
            problems.append(
                f"entry {seq} is not chained to the entry before it "
                "(entries deleted, inserted or reordered)"
            )
        expected_seq = seq + 1
        expected_prev = r.entry_hash
    if head is not None:
        try:
            head_seq_text, head_hash = str(head).split(" ", 1)
            head_seq = int(head_seq_text)
        except ValueError:
            problems.append(f"the recorded head of the audit trail is unreadable ({head!r})")
        else:
            last_seq = int(rows[-1].seq) if rows else 0
            if head_seq > last_seq:
                gap = (
                    f"entry {head_seq} is"
                    if head_seq == last_seq + 1
                    else f"entries {last_seq + 1}-{head_seq} are"
                )
                problems.append(
                    f"{gap} missing (deleted): the trail ends at entry {last_seq} "
                    f"but entry {head_seq} was recorded as the newest"
                )
            elif head_seq < last_seq or (rows and rows[-1].entry_hash != head_hash):
                problems.append(
                    f"the newest entry ({last_seq}) is not the one recorded as newest "
                    f"({head_seq}): entries were added or changed outside the program"
                )
    elif n:
        problems.append("the recorded head of the audit trail is missing")
    return problems + signed_problems
