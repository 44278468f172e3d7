"""The SQL of the ``qa_records`` table, as typed rows.

:mod:`dosimetry_core.qa.records` decides what a QA record holds, its constancy
status and its hash; this module only reads and writes the rows.  Functions
take a database-backed :class:`~dosimetry_core.store.repository.CaseRepository`
and join the caller's open :meth:`~dosimetry_core.store.CaseStore.transaction`
(a constancy check and the insert it decides belong in one transaction, so two
programs storing records of the same device are serialised).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select

from dosimetry_core.store.case_store import case_store_of
from dosimetry_core.store.repository import CaseRepository
from dosimetry_core.store.schema import qa_records as t_qa

__all__ = [
    "QaRow",
    "audit_anchor_problems",
    "insert_qa_row",
    "select_qa_rows",
    "sign_checkpoint",
]

_WHAT = "QA records"


@dataclass(frozen=True)
class QaRow:
    """One row of ``qa_records`` (``payload_json`` is the canonical JSON of the result).

    Attributes
    ----------
    record_id, kind, device_key, nuclide
        Identity, kind of record, device key and nuclide.
    measured_at, valid_until
        Measurement time and end of validity (None: no end).
    created_at, created_by
        When and by whom it was stored.
    status
        Constancy status (``"ok"`` or ``"warning"``).
    payload_json, record_hash
        The result as canonical JSON and the SHA-256 of the hashed fields.
    """

    record_id: str
    kind: str
    device_key: str
    nuclide: str
    measured_at: datetime
    valid_until: datetime | None
    created_at: datetime
    created_by: str
    status: str
    payload_json: str
    record_hash: str


def _row(r: Any) -> QaRow:
    return QaRow(
        record_id=r.record_id,
        kind=r.kind,
        device_key=r.device_key,
        nuclide=r.nuclide,
        measured_at=r.measured_at,
        valid_until=r.valid_until,
        created_at=r.created_at,
        created_by=r.created_by,
        status=r.status,
        payload_json=r.payload,
        record_hash=r.record_hash,
    )


def select_qa_rows(
    store: CaseRepository,
    *,
    kind: str | None = None,
    device_key: str | None = None,
    nuclide: str | None = None,
) -> list[QaRow]:
    """QA rows, oldest measurement first (then oldest stored), optionally filtered (None: any)."""
    q = select(t_qa)
    if kind is not None:
        q = q.where(t_qa.c.kind == kind)
    if device_key is not None:
        q = q.where(t_qa.c.device_key == device_key)
    if nuclide is not None:
        q = q.where(t_qa.c.nuclide == nuclide)
    q = q.order_by(t_qa.c.measured_at, t_qa.c.created_at)
    with case_store_of(store, _WHAT).read_connection() as conn:
        rows = conn.execute(q).all()
    return [_row(r) for r in rows]


def insert_qa_row(store: CaseRepository, row: QaRow) -> None:
    """Insert a new QA record (the record id must be new)."""
    with case_store_of(store, _WHAT).connection() as conn:
        conn.execute(
            insert(t_qa).values(
                record_id=row.record_id,
                kind=row.kind,
                device_key=row.device_key,
                nuclide=row.nuclide,
                measured_at=row.measured_at,
                valid_until=row.valid_until,
                created_at=row.created_at,
                created_by=row.created_by,
                status=row.status,
                payload=row.payload_json,
                record_hash=row.record_hash,
            )
        )


def sign_checkpoint(store: CaseRepository, username: str) -> int | None:
    """Sign the audit head after a QA record and its audit entry (issue 13).

    Call it in the same transaction, after the record's audit entry: the user's
    key unlocked at log-in signs ``(seq, entry_hash)`` of the newest entry
    (:func:`dosimetry_core.store.audit.sign_head`).  Returns the signed ``seq``, or
    None for a store without personal keys or a user whose key is not unlocked.
    """
    from dosimetry_core.store import audit

    return audit.sign_head(store, username)


def audit_anchor_problems(store: CaseRepository) -> list[str]:
    """QA rows whose ``record_hash`` is not the one their audit entry recorded.

    Each stored QA record has an audit entry ``qa-<kind>`` naming its ``record_id``
    and ``record_hash``; the audit chain is anchored by signed checkpoints
    (:mod:`dosimetry_core.store.keys`).  A row inserted, or edited with its hash
    recomputed, by a database writer has no matching entry.  (That the payload
    matches ``record_hash`` is checked by :func:`dosimetry_core.qa.records.verify_record`.)
    """
    from dosimetry_core.store import audit

    recorded: dict[str, set[str]] = {}
    for e in audit.entries(store):
        if e.action.startswith("qa-") and "record_id" in e.details:
            recorded.setdefault(str(e.details["record_id"]), set()).add(
                str(e.details.get("record_hash"))
            )
    problems = []
    for row in select_qa_rows(store):
        hashes = recorded.get(row.record_id)
        if hashes is None:
            problems.append(
                f"QA record {row.record_id} ({row.kind}, {row.device_key}) has no audit entry "
                "(inserted outside the program)"
            )
        elif row.record_hash not in hashes:
            problems.append(
                f"QA record {row.record_id} ({row.kind}, {row.device_key}): its hash differs "
                "from the audited one (changed outside the program)"
            )
    return problems
