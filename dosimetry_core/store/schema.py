"""Database tables of the case store and the Alembic migration runner.

The tables below describe the schema **as the migrations leave it**; the
migrations in ``migrations/versions`` are the authority for creating and
changing it (a test compares both).  To change the schema: edit the tables
here, add a migration (``render_as_batch`` is on, so SQLite ALTERs work), and
run the store tests against SQLite and PostgreSQL.

Tables
------
``patients``
    One row per patient (identifying data, updated from the case on every save).
``cases``
    One row per case; ``document`` is the JSON text of ``Case.to_dict()``; the
    other columns are copies used for listing and the optimistic-concurrency
    ``version``.  ``n_time_points`` is denormalised so listing needs no JSON.
``blobs``
    One row per stored voxel array (see :mod:`dosimetry_core.store.blobs`).
``case_blobs``
    Which case uses which blob (garbage collection keeps referenced blobs).
``store_meta``
    Key/value facts about the store (format names).
``users``
    Accounts: role, password hash (argon2), failed-login count and lock time; with
    personal keys the certificate, the wrapped private key (and CA key for admins),
    the revocation time and the signatures of the row (:mod:`dosimetry_core.store.keys`).
``audit_log``
    Append-only trail of every change; each entry carries the SHA-256 of the
    previous entry (``prev_hash``) and of itself (``entry_hash``): a hash chain.
``reports``
    Dose reports, one row per version; ``content_json`` and its hash, the hash of
    the inputs, the PDF blob, status, and the version it supersedes with the reason.
``signatures``
    Signatures on a report version: who, which role, when, and the hashes signed;
    with personal keys also the signer's certificate and the ECDSA signature of the
    content JSON (:mod:`dosimetry_core.store.keys`).
``audit_checkpoints``
    Audit heads ``(seq, entry_hash)`` signed by the acting user's key at each report
    signing and QA record (:mod:`dosimetry_core.store.keys`).
``qa_records``
    Commissioning and QA results (calibration factors, recovery curves, counter
    and probe calibrations) keyed by camera / device, with their payload (JSON).

All date-times are naive local wall-clock time, as in the model.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Date,
    DateTime,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)

from dosimetry_core.errors import StoreError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
"""Alembic script location (inside the package, so it works when installed)."""

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Deterministic constraint names, so later SQLite batch migrations can drop them."""

CASE_ID_MAX = 64
PATIENT_ID_MAX = 128

metadata = MetaData(naming_convention=NAMING_CONVENTION)

patients = Table(
    "patients",
    metadata,
    Column("patient_id", String(PATIENT_ID_MAX), primary_key=True),
    Column("name", Text, nullable=False, server_default=""),
    Column("birth_date", Date, nullable=True),
    Column("sex", String(16), nullable=False, server_default=""),
    Column("created_at", DateTime, nullable=False),
)

cases = Table(
    "cases",
    metadata,
    Column("case_id", String(CASE_ID_MAX), primary_key=True),
    Column(
        "patient_id",
        String(PATIENT_ID_MAX),
        ForeignKey("patients.patient_id", ondelete="RESTRICT"),
        nullable=False,
        index=True,
    ),
    Column("version", Integer, nullable=False),
    Column("protocol", Text, nullable=False, server_default=""),
    Column("description", Text, nullable=False, server_default=""),
    Column("n_time_points", Integer, nullable=False, server_default="0"),
    Column("created_at", DateTime, nullable=False),
    Column("modified_at", DateTime, nullable=False),
    Column("document", Text, nullable=False),
)

blobs = Table(
    "blobs",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("size_bytes", BigInteger, nullable=False),
    Column("dtype", String(32), nullable=False),
    Column("shape", String(64), nullable=False),
    Column("created_at", DateTime, nullable=False),
)

case_blobs = Table(
    "case_blobs",
    metadata,
    Column(
        "case_id",
        String(CASE_ID_MAX),
        ForeignKey("cases.case_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column(
        "blob_key",
        String(64),
        ForeignKey("blobs.key", ondelete="RESTRICT"),
        primary_key=True,
    ),
    Index("ix_case_blobs_blob_key", "blob_key"),
)

store_meta = Table(
    "store_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("username", String(64), primary_key=True),
    Column("full_name", Text, nullable=False, server_default=""),
    Column("role", String(32), nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("active", Integer, nullable=False, server_default="1"),
    Column("failed_attempts", Integer, nullable=False, server_default="0"),
    Column("locked_until", DateTime, nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("created_by", String(64), nullable=False, server_default=""),
    Column("modified_at", DateTime, nullable=False),
    Column("cert_pem", Text, nullable=True),
    Column("key_pem", Text, nullable=True),
    Column("ca_key_pem", Text, nullable=True),
    Column("revoked_at", DateTime, nullable=True),
    Column("row_signature", Text, nullable=True),
    Column("password_signature", Text, nullable=True),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime, nullable=False),
    Column("username", String(64), nullable=False, server_default=""),
    Column("role", String(32), nullable=False, server_default=""),
    Column("case_id", String(CASE_ID_MAX), nullable=True, index=True),
    Column("action", String(64), nullable=False),
    Column("details", Text, nullable=False, server_default="{}"),
    Column("prev_hash", String(64), nullable=False),
    Column("entry_hash", String(64), nullable=False),
)

reports = Table(
    "reports",
    metadata,
    Column("report_id", String(64), primary_key=True),
    Column("case_id", String(CASE_ID_MAX), nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("status", String(32), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("created_by", String(64), nullable=False, server_default=""),
    Column("content_json", Text, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("inputs_hash", String(64), nullable=False),
    Column("pdf_blob_key", String(64), nullable=True),
    Column("supersedes", String(64), nullable=True),
    Column("amendment_reason", Text, nullable=True),
)

signatures = Table(
    "signatures",
    metadata,
    Column("signature_id", Integer, primary_key=True, autoincrement=True),
    Column("report_id", String(64), nullable=False, index=True),
    Column("username", String(64), nullable=False),
    Column("role", String(32), nullable=False),
    Column("signed_as", String(32), nullable=False),
    Column("at", DateTime, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("inputs_hash", String(64), nullable=False),
    Column("signature_hash", String(64), nullable=False),
    Column("cert_pem", Text, nullable=True),
    Column("content_signature", Text, nullable=True),
)

audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("entry_hash", String(64), nullable=False),
    Column("at", DateTime, nullable=False),
    Column("username", String(64), nullable=False),
    Column("cert_pem", Text, nullable=False),
    Column("signature", Text, nullable=False),
)

qa_records = Table(
    "qa_records",
    metadata,
    Column("record_id", String(64), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("device_key", Text, nullable=False, index=True),
    Column("nuclide", String(32), nullable=False, server_default=""),
    Column("measured_at", DateTime, nullable=False),
    Column("valid_until", DateTime, nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("created_by", String(64), nullable=False, server_default=""),
    Column("status", String(32), nullable=False, server_default="active"),
    Column("payload", Text, nullable=False),
    Column("record_hash", String(64), nullable=False),
)

TABLES = (
    "patients",
    "cases",
    "blobs",
    "case_blobs",
    "store_meta",
    "users",
    "audit_log",
    "reports",
    "signatures",
    "qa_records",
    "audit_checkpoints",
)
"""Tables of the current schema (plus Alembic's ``alembic_version``)."""

_PG_MIGRATION_LOCK = 0x6D7274646F7365
"""Key of the PostgreSQL advisory lock that serialises concurrent upgrades."""


# ------------------------------------------------------------------ migrations
HEAD_REVISION = "0004"
"""Newest revision in ``migrations/versions`` (a test checks it against Alembic's head).

Opening a store compares the database's revision with this constant, so Alembic
(~0.15 s to import) is loaded only when there is something to migrate."""


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic configuration pointing at the packaged migrations.

    Parameters
    ----------
    connection
        Connection the migrations run on (passed to ``env.py`` through
        ``config.attributes["connection"]``).

    Returns
    -------
    alembic.config.Config
    """
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """Newest schema revision known to this program (read from the migration scripts)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(connection: Connection) -> str | None:
    """Schema revision of the database behind ``connection`` (None when empty)."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def _check_known(revision: str | None) -> None:
    if revision is None:
        return
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    script = ScriptDirectory.from_config(alembic_config())
    try:
        known = script.get_revision(revision) is not None
    except CommandError:
        known = False
    if not known:
        raise StoreError(
            f"this store has schema revision {revision!r}, which this version of the program "
            "does not know: it was written by a newer version; update the program"
        )


def _at_head(engine: Engine) -> bool:
    """True when the database records exactly :data:`HEAD_REVISION` (one query, no Alembic).

    Anything else (no ``alembic_version`` table yet, an older or unknown revision, a
    database that cannot be read) is left to the Alembic path, which migrates or
    reports the problem.
    """
    from sqlalchemy.exc import DBAPIError

    try:
        with engine.connect() as conn, conn.begin():
            rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except DBAPIError:
        return False
    return list(rows) == [HEAD_REVISION]


def upgrade_to_head(engine: Engine) -> None:
    """Bring the database to the newest schema (``alembic upgrade head``).

    Idempotent and safe when several processes open the same store at once:
    the upgrade runs in one transaction holding the write lock (SQLite
    ``BEGIN IMMEDIATE``, a PostgreSQL advisory lock), and the revision is read
    again under that lock, so the second process finds nothing to do.  On
    SQLite, foreign keys are switched off during the upgrade (as batch
    migrations copy tables) and checked before committing.

    Parameters
    ----------
    engine
        Engine of the store (for SQLite, one set up by
        :class:`~dosimetry_core.store.CaseStore`, whose ``begin`` hook honours
        the ``mrt_begin`` execution option).

    Raises
    ------
    StoreError
        If the database was written by a newer program or violates a foreign key.
    """
    if _at_head(engine):
        return
    from alembic import command

    head = head_revision()
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        with conn.begin():
            current = current_revision(conn)
        if current == head:
            return
        _check_known(current)
        raw = conn.connection.driver_connection if sqlite else None
        if raw is not None:
            # Outside any transaction: SQLite ignores this pragma inside one.
            raw.execute("PRAGMA foreign_keys = OFF")
        try:
            conn.execution_options(mrt_begin="IMMEDIATE")
            with conn.begin():
                if engine.dialect.name == "postgresql":
                    conn.execute(
                        text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK}
                    )
                current = current_revision(conn)
                _check_known(current)
                if current != head:
                    command.upgrade(alembic_config(conn), "head")
                if sqlite:
                    bad = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if bad:
                        raise StoreError(
                            f"schema upgrade left {len(bad)} broken reference(s) "
                            f"(first: {tuple(bad[0])}); nothing was changed"
                        )
        finally:
            if raw is not None:
                raw.execute("PRAGMA foreign_keys = ON")
