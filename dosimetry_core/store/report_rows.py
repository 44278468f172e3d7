"""The SQL of the ``reports`` and ``signatures`` tables (issue 7), as typed rows.

:mod:`dosimetry_core.reporting.records` decides what a report version is, who
may sign it and what its hashes cover; this module only reads and writes the
rows, so that no code outside the ``store`` package touches a connection.
Every function takes a :class:`~dosimetry_core.store.repository.CaseRepository`
backed by a database (a :class:`~dosimetry_core.store.CaseStore`) and joins the
caller's open :meth:`~dosimetry_core.store.CaseStore.transaction`: a caller that
reads, checks and writes groups the calls in one ``with store.transaction():``
so that they see one state and commit together.

Times are naive local wall-clock times, as everywhere in the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from dosimetry_core.store.case_store import case_store_of
from dosimetry_core.store.repository import CaseRepository
from dosimetry_core.store.schema import reports as t_reports
from dosimetry_core.store.schema import signatures as t_signatures

__all__ = [
    "ReportRow",
    "SignatureRow",
    "StoredReport",
    "case_reports",
    "insert_report",
    "insert_signature",
    "load_report",
    "newest_report",
    "newest_reports_with_status",
    "set_report_status",
    "update_report",
]

_WHAT = "reports"


@dataclass(frozen=True)
class ReportRow:
    """One row of ``reports``: a report version (columns in :mod:`~dosimetry_core.store.schema`).

    Attributes
    ----------
    report_id, case_id, version, status
        Identity, case, version number (1, 2, ...) and status of the version.
    created_at, created_by
        When and by whom (user name) it was made.
    content_json
        The canonical content JSON; ``content_hash`` is its SHA-256 and
        ``inputs_hash`` that of its inputs manifest.
    pdf_blob_key
        SHA-256 of the PDF in the report files (None before rendering).
    supersedes, amendment_reason
        The report id this version amends and why (None for version 1).
    """

    report_id: str
    case_id: str
    version: int
    status: str
    created_at: datetime
    created_by: str
    content_json: str
    content_hash: str
    inputs_hash: str
    pdf_blob_key: str | None
    supersedes: str | None
    amendment_reason: str | None

    def values(self) -> dict[str, Any]:
        """The columns as keyword values for an INSERT or UPDATE."""
        return {
            "report_id": self.report_id,
            "case_id": self.case_id,
            "version": self.version,
            "status": self.status,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "content_json": self.content_json,
            "content_hash": self.content_hash,
            "inputs_hash": self.inputs_hash,
            "pdf_blob_key": self.pdf_blob_key,
            "supersedes": self.supersedes,
            "amendment_reason": self.amendment_reason,
        }


@dataclass(frozen=True)
class SignatureRow:
    """One row of ``signatures`` (the database numbers them; their order is the signing order).

    ``cert_pem`` (the signer's certificate) and ``content_signature`` (ECDSA of the
    content JSON, base64) are set in a store with personal keys, None otherwise.
    """

    report_id: str
    username: str
    role: str
    signed_as: str
    at: datetime
    content_hash: str
    inputs_hash: str
    signature_hash: str
    cert_pem: str | None = None
    content_signature: str | None = None


@dataclass(frozen=True)
class StoredReport:
    """A report version with its signatures (signing order) and the version that supersedes it."""

    row: ReportRow
    signatures: tuple[SignatureRow, ...]
    superseded_by: str | None


def _report_row(r: Any) -> ReportRow:
    return ReportRow(
        report_id=r.report_id,
        case_id=r.case_id,
        version=int(r.version),
        status=r.status,
        created_at=r.created_at,
        created_by=r.created_by,
        content_json=r.content_json,
        content_hash=r.content_hash,
        inputs_hash=r.inputs_hash,
        pdf_blob_key=r.pdf_blob_key,
        supersedes=r.supersedes,
        amendment_reason=r.amendment_reason,
    )


def _signature_row(s: Any) -> SignatureRow:
    return SignatureRow(
        report_id=s.report_id,
        username=s.username,
        role=s.role,
        signed_as=s.signed_as,
        at=s.at,
        content_hash=s.content_hash,
        inputs_hash=s.inputs_hash,
        signature_hash=s.signature_hash,
        cert_pem=s.cert_pem,
        content_signature=s.content_signature,
    )


def _stored(conn: Connection, report_id: str) -> StoredReport | None:
    r = conn.execute(select(t_reports).where(t_reports.c.report_id == report_id)).one_or_none()
    if r is None:
        return None
    sigs = conn.execute(
        select(t_signatures)
        .where(t_signatures.c.report_id == report_id)
        .order_by(t_signatures.c.signature_id)
    ).all()
    successor = conn.execute(
        select(t_reports.c.report_id).where(t_reports.c.supersedes == report_id)
    ).first()
    return StoredReport(
        _report_row(r),
        tuple(_signature_row(s) for s in sigs),
        None if successor is None else str(successor[0]),
    )


# ------------------------------------------------------------------ reading
def load_report(store: CaseRepository, report_id: str) -> StoredReport | None:
    """The report version ``report_id`` with its signatures, or None if there is none."""
    with case_store_of(store, _WHAT).read_connection() as conn:
        return _stored(conn, report_id)


def case_reports(store: CaseRepository, case_id: str) -> list[StoredReport]:
    """Every report version of a case, oldest (lowest version) first, read in one snapshot."""
    with case_store_of(store, _WHAT).read_connection() as conn:
        ids = list(
            conn.execute(
                select(t_reports.c.report_id)
                .where(t_reports.c.case_id == case_id)
                .order_by(t_reports.c.version)
            ).scalars()
        )
        found = [_stored(conn, i) for i in ids]
    return [s for s in found if s is not None]


def newest_report(store: CaseRepository, case_id: str) -> ReportRow | None:
    """The highest version of the case's reports (any status), or None."""
    with case_store_of(store, _WHAT).read_connection() as conn:
        r = conn.execute(
            select(t_reports)
            .where(t_reports.c.case_id == case_id)
            .order_by(t_reports.c.version.desc())
        ).first()
    return None if r is None else _report_row(r)


def newest_reports_with_status(
    store: CaseRepository, case_ids: Sequence[str], status: str
) -> dict[str, ReportRow]:
    """Per case id: its highest report version with ``status`` (cases without one are left out).

    For population statistics over many cases (one query, not one per case).
    """
    if not case_ids:
        return {}
    with case_store_of(store, _WHAT).read_connection() as conn:
        rows = conn.execute(
            select(t_reports)
            .where(t_reports.c.case_id.in_(list(case_ids)), t_reports.c.status == status)
            .order_by(t_reports.c.version)
        ).all()
    out: dict[str, ReportRow] = {}
    for r in rows:  # ascending versions: the newest wins
        out[r.case_id] = _report_row(r)
    return out


# ------------------------------------------------------------------ writing
def insert_report(store: CaseRepository, row: ReportRow) -> None:
    """Insert a new report version (the report id must be new)."""
    with case_store_of(store, _WHAT).connection() as conn:
        conn.execute(insert(t_reports).values(**row.values()))


def update_report(store: CaseRepository, row: ReportRow, *, expected_status: str) -> bool:
    """Overwrite the columns of report ``row.report_id`` if its status is still ``expected_status``.

    Returns
    -------
    bool
        False (nothing changed) when the report is absent or its status changed
        meanwhile (e.g. a draft was signed by someone else).
    """
    values = row.values()
    report_id = values.pop("report_id")
    with case_store_of(store, _WHAT).connection() as conn:
        n = conn.execute(
            update(t_reports)
            .where(t_reports.c.report_id == report_id, t_reports.c.status == expected_status)
            .values(**values)
        ).rowcount
    return n == 1


def set_report_status(
    store: CaseRepository,
    report_id: str,
    status: str,
    *,
    expected_status: str | None = None,
    pdf_blob_key: str | None = None,
) -> bool:
    """Set a report version's status (and, if given, its PDF key).

    Parameters
    ----------
    expected_status
        Change only if the status is still this one (None: whatever it is).
    pdf_blob_key
        The new PDF (None: keep the stored one).

    Returns
    -------
    bool
        True when the row was changed.
    """
    values: dict[str, Any] = {"status": status}
    if pdf_blob_key is not None:
        values["pdf_blob_key"] = pdf_blob_key
    q = update(t_reports).where(t_reports.c.report_id == report_id)
    if expected_status is not None:
        q = q.where(t_reports.c.status == expected_status)
    with case_store_of(store, _WHAT).connection() as conn:
        n = conn.execute(q.values(**values)).rowcount
    return n == 1


def insert_signature(store: CaseRepository, signature: SignatureRow) -> None:
    """Append a signature of a report version (after the ones it has)."""
    with case_store_of(store, _WHAT).connection() as conn:
        conn.execute(
            insert(t_signatures).values(
                report_id=signature.report_id,
                username=signature.username,
                role=signature.role,
                signed_as=signature.signed_as,
                at=signature.at,
                content_hash=signature.content_hash,
                inputs_hash=signature.inputs_hash,
                signature_hash=signature.signature_hash,
                cert_pem=signature.cert_pem,
                content_signature=signature.content_signature,
            )
        )
