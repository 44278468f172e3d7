"""The case store: cases in a database, voxel arrays in a content-addressed folder.

Layout of a store folder::

    <path>/cases.sqlite      SQLite database (WAL mode: also -wal and -shm files)
    <path>/blobs/ab/cdef...  voxel arrays (see :mod:`dosimetry_core.store.blobs`)

With ``url=`` the database is elsewhere (e.g. PostgreSQL) and only the blobs
are under ``path``.  The schema is created and upgraded by Alembic migrations
on open (:func:`dosimetry_core.store.schema.upgrade_to_head`).

Transactions and concurrency
----------------------------
Every write runs in one database transaction; on SQLite it starts with
``BEGIN IMMEDIATE`` so that writers queue on the write lock (waiting up to the
busy timeout) instead of failing half-way when a read transaction tries to
upgrade to a write.  Saving a case uses optimistic concurrency: the ``version``
of the row must equal ``case.version`` or :class:`ConcurrentModificationError`
is raised, so two programs editing the same case never silently overwrite each
other.  Blob files are written (and fsync'ed) before the rows that refer to
them, so a crash leaves at worst unreferenced blobs, which
:meth:`CaseStore.collect_garbage` removes.

SQLite pragmas
--------------
``journal_mode=WAL``
    Readers never block the writer and vice versa (the GUI can list cases while
    an import commits); a crash mid-transaction is rolled back on next open.
``synchronous=FULL``
    The WAL is fsync'ed at every commit, so a case reported as saved survives a
    power cut or OS crash, not only a program crash (``NORMAL`` would only
    guarantee the latter in WAL mode: the last commits could be lost, though the
    database would stay consistent).  Saves are human-paced (a few per minute)
    and the voxel data are written and fsync'ed separately, so the extra fsync
    per commit (about a millisecond on an SSD) costs nothing noticeable.
``foreign_keys=ON``
    SQLite does not enforce foreign keys unless asked, per connection.
``busy_timeout``
    Wait (30 s by default) for another process's write to finish rather than
    failing at once with "database is locked".

WAL needs shared memory between the processes using the file, so the SQLite
store must be on a local disk; a store shared over the network should use
PostgreSQL (``url=``).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import (
    Connection,
    Engine,
    and_,
    create_engine,
    delete,
    event,
    exists,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, OperationalError

from dosimetry_core.errors import CaseNotFoundError, ConcurrentModificationError, StoreError
from dosimetry_core.model.case import Case, Patient
from dosimetry_core.model.volume import Volume, VolumeRef
from dosimetry_core.store import audit as audit_trail
from dosimetry_core.store import schema
from dosimetry_core.store.blobs import BlobInfo, BlobStore
from dosimetry_core.store.case_inputs import (
    CaseInputs,
    StaleInputsError,
    changed_inputs,
    stale_message,
)
from dosimetry_core.store.permissions import Actor
from dosimetry_core.store.schema import audit_log as t_audit
from dosimetry_core.store.schema import blobs as t_blobs
from dosimetry_core.store.schema import case_blobs as t_case_blobs
from dosimetry_core.store.schema import cases as t_cases
from dosimetry_core.store.schema import patients as t_patients

if TYPE_CHECKING:
    from dosimetry_core.store.repository import CaseRepository

DB_FILENAME = "cases.sqlite"
BLOB_DIRNAME = "blobs"
APP_DIRNAME = "mrt-dosimetry"

DEFAULT_BUSY_TIMEOUT_S = 30.0
DEFAULT_GC_GRACE_S = 3600.0
"""Blobs younger than this are never garbage-collected (an import may be about to use them)."""

SQLITE_SYNCHRONOUS = "FULL"

AuditSpec = tuple[Actor | None, str, dict[str, Any] | None]
"""``(actor, action, details)`` of the audit entry that goes with a change."""


DATABASE_URL_ENV = "MRTDOSE_DATABASE_URL"
"""Environment variable naming the database of the command-line store (e.g.
``postgresql+psycopg://mrt:PASSWORD@db.hospital/mrt``): every ``mrtdose`` command then
keeps its tables there and its blobs in the ``--store`` folder.  An environment
variable, not an option, so that the password never appears in ``ps`` output or a
shell history."""


def database_url_from_env() -> str | None:
    """``$MRTDOSE_DATABASE_URL`` (stripped), or None when unset or empty."""
    text = os.environ.get(DATABASE_URL_ENV, "").strip()
    return text or None


def default_store_path() -> Path:
    """Folder of the user's default case store.

    ``$MRTDOSE_STORE`` if set; else ``$XDG_DATA_HOME/mrt-dosimetry/store`` when
    ``XDG_DATA_HOME`` is an absolute path; else ``%LOCALAPPDATA%`` on Windows;
    else ``~/.local/share/mrt-dosimetry/store``.

    Returns
    -------
    pathlib.Path
        The folder (not created).
    """
    env = os.environ.get("MRTDOSE_STORE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    if xdg and Path(xdg).expanduser().is_absolute():
        base = Path(xdg).expanduser()
    elif os.name == "nt" and os.environ.get("LOCALAPPDATA"):
        base = Path(os.environ["LOCALAPPDATA"])
    else:
        base = Path.home() / ".local" / "share"
    return base / APP_DIRNAME / "store"


def document_sha256(text: str) -> str:
    """SHA-256 (FIPS 180-4) hex digest of a stored case document's text (UTF-8)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def masked_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for messages and logs)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy can parse: where a password is, nobody knows
        return "(text not shown: it is not a database URL)"


def _db_reason(exc: BaseException) -> str:
    """The database driver's own message, on one line (without SQLAlchemy's help links)."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@dataclass(frozen=True)
class CaseSummary:
    """One line of the case list (no JSON parsing needed to build it).

    Attributes
    ----------
    case_id, patient_id, patient_name, protocol, description
        As in the case.
    n_time_points
        Number of time points.
    created_at, modified_at
        Naive local wall-clock times; ``modified_at`` is the last save.
    version
        Stored version (number of saves).
    """

    case_id: str
    patient_id: str
    patient_name: str
    protocol: str
    n_time_points: int
    created_at: datetime
    modified_at: datetime | None
    version: int
    description: str


@dataclass
class _Tx:
    """The open transaction of one thread: its connection and undo actions per nesting level."""

    conn: Connection
    undo: list[list[Callable[[], None]]] = field(default_factory=lambda: [[]])


def _sqlite_begin(conn: Connection) -> None:
    # pysqlite's own BEGIN handling is off (isolation_level=None); emit ours so that
    # SELECTs and DDL are transactional too, and writers take the lock up front.
    mode = conn.get_execution_options().get("mrt_begin", "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


def _run_undo(actions: list[Callable[[], None]]) -> None:
    for action in reversed(actions):
        action()


class CaseStore:
    """Cases, patients and voxel arrays of one store.

    Parameters
    ----------
    path
        Store folder holding ``cases.sqlite`` and ``blobs/``; created if missing.
        Default: :func:`default_store_path`.
    url
        SQLAlchemy database URL (e.g. ``postgresql+psycopg://user@host/db``)
        to use instead of ``<path>/cases.sqlite``; blobs stay under ``path``.
    busy_timeout_s
        SQLite: how long to wait for another process's write before failing.

    Raises
    ------
    StoreError
        If the database cannot be opened or upgraded (e.g. it was written by a
        newer version of the program, or is not a case store).

    Notes
    -----
    Usable from several threads (each thread gets its own connection; a
    :meth:`transaction` belongs to the thread that opened it) and from several
    processes at once.  Use as a context manager or call :meth:`close`.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        url: str | None = None,
        busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
    ) -> None:
        self.actor: Actor | None = None
        """Who works with this store (set after log-in); audit entries name them."""
        self.path = Path(path).expanduser() if path is not None else default_store_path()
        self._busy_timeout_ms = max(0, int(busy_timeout_s * 1000))
        self._local = threading.local()
        self._closed = False
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the store folder {self.path}: {exc}") from exc
        self.blobs = BlobStore(self.path / BLOB_DIRNAME)
        try:
            db_url: URL = (
                make_url(url)
                if url is not None
                else URL.create("sqlite", database=str(self.path / DB_FILENAME))
            )
            self._engine: Engine = create_engine(
                db_url, pool_pre_ping=db_url.get_backend_name() != "sqlite"
            )
        except (ArgumentError, ImportError) as exc:
            shown = masked_url(url) if url is not None else ""
            raise StoreError(f"cannot use the database URL {shown!r}: {_db_reason(exc)}") from exc
        self.url = db_url
        if self._engine.dialect.name == "sqlite":
            event.listen(self._engine, "connect", self._sqlite_connect)
            event.listen(self._engine, "begin", _sqlite_begin)
        try:
            schema.upgrade_to_head(self._engine)
        except StoreError:
            self._engine.dispose()
            raise
        except (DBAPIError, sqlite3.Error) as exc:
            self._engine.dispose()
            raise StoreError(
                f"cannot open the case store at {self._where()}: {_db_reason(exc)}"
            ) from exc

    # ------------------------------------------------------------ lifecycle
    def _sqlite_connect(self, dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (see _sqlite_begin)
        cur = dbapi_conn.cursor()
        try:
            cur.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
            self._set_wal(cur)
            cur.execute(f"PRAGMA synchronous = {SQLITE_SYNCHRONOUS}")
            cur.execute("PRAGMA foreign_keys = ON")
        finally:
            cur.close()

    def _set_wal(self, cur: Any) -> None:
        # Switching to WAL (only the first time, on a new file) needs an exclusive
        # lock, and SQLite reports "database is locked" at once, without calling
        # the busy handler, while another process is doing the same or is
        # recovering the WAL index: retry with a short back-off up to the busy timeout.
        deadline = time.monotonic() + self._busy_timeout_ms / 1000.0
        delay = 0.005
        while True:
            try:
                cur.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                text = str(exc)
                if ("locked" not in text and "busy" not in text) or time.monotonic() > deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)

    def _where(self) -> str:
        return str(self.path) if self.url.drivername.startswith("sqlite") else repr(self.url)

    def __repr__(self) -> str:
        return f"CaseStore({str(self.path)!r})"

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for inspection and tests)."""
        self._check_open()
        return self._engine

    def close(self) -> None:
        """Release all database connections; the store cannot be used afterwards."""
        if not self._closed:
            self._closed = True
            self._engine.dispose()

    def __enter__(self) -> CaseStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"the case store at {self._where()} is closed")

    # --------------------------------------------------------- transactions
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group several writes so they commit together or not at all.

        ``save_case``, ``put_volume`` and ``delete_case`` called inside the
        block join it; nothing is committed before the block ends without an
        exception.  On an exception everything is rolled back and cases saved in
        the block get their previous ``version``/``modified_at`` back.  Nested
        blocks are savepoints.  The transaction belongs to the calling thread.

        Examples
        --------
        >>> with store.transaction():  # doctest: +SKIP
        ...     store.save_case(case_a)
        ...     store.save_case(case_b)
        """
        with self._tx():
            yield

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A database connection inside a write transaction, for ``dosimetry_core.store`` modules.

        The SQL of the store's tables lives in the ``store`` package (cases here,
        users in :mod:`~dosimetry_core.store.users`, the audit trail in
        :mod:`~dosimetry_core.store.audit`, reports in
        :mod:`~dosimetry_core.store.report_rows`, QA records in
        :mod:`~dosimetry_core.store.qa_rows`); those modules get their connection
        here.  Code outside the ``store`` package uses :meth:`transaction` and the
        functions of those modules, never a connection (a test enforces it).

        Inside an open :meth:`transaction` of the same thread the block is a
        savepoint of it (rolled back alone on an exception, committed with the
        outer transaction); otherwise it is a transaction of its own that
        commits when the block ends (on SQLite started with ``BEGIN IMMEDIATE``,
        see the module docstring).  Locking or busy errors become
        :class:`~dosimetry_core.errors.StoreError`.

        Yields
        ------
        sqlalchemy.Connection
            Valid only inside the block.
        """
        state: _Tx | None = getattr(self._local, "tx", None)
        if state is not None:
            savepoint = state.conn.begin_nested()
            state.undo.append([])
            try:
                yield state.conn
            except BaseException:
                if savepoint.is_active:
                    savepoint.rollback()
                _run_undo(state.undo.pop())
                raise
            else:
                savepoint.commit()
                done = state.undo.pop()
                state.undo[-1].extend(done)
            return
        self._check_open()
        try:
            conn = self._engine.connect()
        except (DBAPIError, sqlite3.Error) as exc:
            raise self._db_error(exc) from exc
        state = _Tx(conn)
        self._local.tx = state
        try:
            conn.execution_options(mrt_begin="IMMEDIATE")
            with conn.begin():
                yield conn
        except BaseException as exc:
            _run_undo([a for level in state.undo for a in level])
            if isinstance(exc, OperationalError):
                raise self._db_error(exc) from exc
            raise
        finally:
            self._local.tx = None
            conn.close()

    @contextmanager
    def read_connection(self) -> Iterator[Connection]:
        """A connection for reading, for ``dosimetry_core.store`` modules (see :meth:`connection`).

        Inside an open transaction of the same thread it is that transaction's
        connection (so a reader sees the writes made so far in it); otherwise a
        fresh read transaction (one consistent snapshot for the block).

        Yields
        ------
        sqlalchemy.Connection
            Valid only inside the block; do not write through it.
        """
        state: _Tx | None = getattr(self._local, "tx", None)
        if state is not None:
            yield state.conn
            return
        self._check_open()
        try:
            with self._engine.connect() as conn, conn.begin():
                yield conn
        except OperationalError as exc:
            raise self._db_error(exc) from exc

    # The store's own methods use the short private names.
    _tx = connection
    _read = read_connection

    def _on_rollback(self, action: Callable[[], None]) -> None:
        state: _Tx | None = getattr(self._local, "tx", None)
        assert state is not None
        state.undo[-1].append(action)

    def _db_error(self, exc: BaseException) -> StoreError:
        text = str(getattr(exc, "orig", exc))
        if "locked" in text or "busy" in text:
            return StoreError(
                f"the case store at {self._where()} is busy (another program is writing to it); "
                "try again"
            )
        return StoreError(f"database error in the case store at {self._where()}: {text}")

    # --------------------------------------------------------------- upserts
    def _insert_ignore(self, conn: Connection, table: Any, values: dict[str, Any]) -> None:
        """INSERT unless a row with the same primary key exists (concurrency-safe)."""
        name = conn.dialect.name
        if name == "sqlite":
            from sqlalchemy.dialects import sqlite as sqlite_dialect

            conn.execute(sqlite_dialect.insert(table).values(**values).on_conflict_do_nothing())
        elif name == "postgresql":
            from sqlalchemy.dialects import postgresql as pg_dialect

            conn.execute(pg_dialect.insert(table).values(**values).on_conflict_do_nothing())
        else:
            pk = [c for c in table.primary_key.columns]
            cond = and_(*(c == values[c.name] for c in pk))
            if conn.execute(select(func.count()).select_from(table).where(cond)).scalar_one() == 0:
                conn.execute(insert(table).values(**values))

    def _upsert_patient(self, conn: Connection, patient: Patient, now: datetime) -> None:
        values = {
            "patient_id": patient.patient_id,
            "name": patient.name or "",
            "birth_date": patient.birth_date,
            "sex": patient.sex or "",
            "created_at": now,
        }
        changes = {k: values[k] for k in ("name", "birth_date", "sex")}
        name = conn.dialect.name
        if name in ("sqlite", "postgresql"):
            # the dialect's own INSERT ... ON CONFLICT, imported when used (the
            # PostgreSQL dialect costs ~30 ms to import, paid by no SQLite store)
            import importlib

            dialect = importlib.import_module(f"sqlalchemy.dialects.{name}")
            ins = dialect.insert(t_patients).values(**values)
            conn.execute(ins.on_conflict_do_update(index_elements=["patient_id"], set_=changes))
            return
        found = conn.execute(
            select(t_patients.c.patient_id).where(t_patients.c.patient_id == patient.patient_id)
        ).first()
        if found is None:
            conn.execute(insert(t_patients).values(**values))
        else:
            conn.execute(
                update(t_patients)
                .where(t_patients.c.patient_id == patient.patient_id)
                .values(**changes)
            )

    # --------------------------------------------------------------- volumes
    def put_volume(
        self, volume: Volume, description: str = "", meta: dict[str, Any] | None = None
    ) -> VolumeRef:
        """Store the voxel array of ``volume`` and return a reference to it.

        The array goes to the blob folder (content-addressed: an identical array
        is stored once) and a ``blobs`` row records it; the reference carries the
        geometry and units, which are not part of the blob.

        Parameters
        ----------
        volume
            The volume to store.
        description
            Text for the reference; default ``volume.description``.
        meta
            Free-form details kept in the reference (e.g. source series UID).

        Returns
        -------
        VolumeRef
            Reference to put in the case (``dtype`` is the NumPy dtype name).

        Raises
        ------
        StoreError
            If the dtype is not storable or the file cannot be written.
        """
        self._check_open()
        info = self.blobs.put(volume.array)
        with self._tx() as conn:
            self._record_blob(conn, info)
        if not self.blobs.exists(info.key):
            # Removed in between by a garbage collection in another process: write it again.
            self.blobs.put(volume.array)
        return VolumeRef(
            key=info.key,
            geometry=volume.geometry,
            units=volume.units,
            dtype=info.dtype,
            description=description or volume.description,
            meta=dict(meta or {}),
        )

    def _record_blob(self, conn: Connection, info: BlobInfo) -> None:
        self._insert_ignore(
            conn,
            t_blobs,
            {
                "key": info.key,
                "size_bytes": info.nbytes,
                "dtype": info.dtype,
                "shape": ",".join(str(s) for s in info.shape),
                "created_at": datetime.now(),
            },
        )

    def load_volume(self, ref: VolumeRef) -> Volume:
        """Read a stored volume back (bit-exact array, geometry and units from ``ref``).

        Parameters
        ----------
        ref
            Reference returned by :meth:`put_volume` (possibly via a saved case).

        Returns
        -------
        Volume
            With a writable array of dtype ``ref.dtype`` and shape
            ``ref.geometry.shape_zyx``.

        Raises
        ------
        StoreError
            If the blob is missing or corrupt, or its dtype/shape disagree with ``ref``.
        """
        self._check_open()
        array = self.blobs.get_array(ref.key)
        expected_shape = tuple(ref.geometry.shape_zyx)
        if array.shape != expected_shape:
            raise StoreError(
                f"blob {ref.key} holds an array of shape {array.shape}, but the volume "
                f"'{ref.description}' expects {expected_shape}"
            )
        try:
            expected_dtype = np.dtype(ref.dtype)
        except TypeError as exc:
            raise StoreError(
                f"volume '{ref.description}' has an unknown dtype {ref.dtype!r}"
            ) from exc
        if array.dtype != expected_dtype:
            raise StoreError(
                f"blob {ref.key} holds {array.dtype} values, but the volume "
                f"'{ref.description}' expects {expected_dtype}"
            )
        return Volume(array, ref.geometry, ref.units, ref.description)

    # ----------------------------------------------------------------- cases
    def save_case(
        self,
        case: Case,
        *,
        audit: AuditSpec | None = None,
        expected_inputs: CaseInputs | None = None,
    ) -> Case:
        """Insert or update a case (optimistic concurrency), in one transaction.

        The stored version must equal ``case.version`` (a new case: no row and
        version 0).  On success the stored version becomes ``case.version + 1``
        and ``case.version``/``case.modified_at`` are updated in place.  The
        patient row is created or updated from ``case.patient``; every volume
        the case refers to must already be in the store.

        Inside :meth:`transaction` nothing is committed until the block ends;
        the case's version is restored if the block rolls back.

        Parameters
        ----------
        case
            The case to save.
        audit
            ``(actor, action, details)``: append an entry to the audit trail
            (:mod:`dosimetry_core.store.audit`) in the same transaction as the
            change, with ``case_version`` (the new version) added to the details;
            a refused or failed save leaves no entry.  None: no entry.  The
            entry's details also hold ``document_sha256``, the SHA-256 of the
            stored document text (see :meth:`verify_documents`).
        expected_inputs
            The :func:`~dosimetry_core.store.case_inputs.fingerprint` of the
            inputs a computation read (:mod:`dosimetry_core.store.case_inputs`):
            the save is refused, in its transaction, when the stored case's
            inputs differ from it (someone edited a contour, an administration,
            a time point ... while it computed).  Other changes do not matter.

        Returns
        -------
        Case
            The same object, with its new ``version`` and ``modified_at``.

        Raises
        ------
        ConcurrentModificationError
            If the case was changed (or deleted) by someone else since it was loaded.
        StaleInputsError
            (a ConcurrentModificationError) If ``expected_inputs`` no longer
            match the stored case; the message names what changed and who saved
            the case meanwhile.  Nothing is saved.
        StoreError
            If a referenced volume is not in the store or disagrees with its blob,
            or an identifier is too long; the database is left unchanged.
        """
        if audit is not None:
            from dosimetry_core.store.permissions import require_for_save

            if audit[0] is None and self.has_users():
                from dosimetry_core.errors import PermissionDeniedError

                raise PermissionDeniedError(
                    f"this store has user accounts: log in to {audit[1]} "
                    "(MRTDOSE_USER and MRTDOSE_PASSWORD for the command line)"
                )
            require_for_save(audit[0], audit[1])  # refused before anything is written
        if len(case.case_id) > schema.CASE_ID_MAX or not case.case_id:
            raise StoreError(
                f"case id {case.case_id!r} must be 1 to {schema.CASE_ID_MAX} characters"
            )
        if len(case.patient.patient_id) > schema.PATIENT_ID_MAX:
            raise StoreError(f"patient id is longer than {schema.PATIENT_ID_MAX} characters")
        refs = case.volume_refs()
        old_version, old_modified = case.version, case.modified_at
        new_version = case.version + 1
        now = datetime.now()
        document = case.to_dict()
        document["version"] = new_version
        document["modified_at"] = now.isoformat()
        try:
            text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise StoreError(f"case {case.case_id} cannot be saved: {_db_reason(exc)}") from exc
        row = {
            "patient_id": case.patient.patient_id,
            "version": new_version,
            "protocol": case.protocol or "",
            "description": case.description or "",
            "n_time_points": len(case.time_points),
            "created_at": case.created_at,
            "modified_at": now,
            "document": text,
        }
        try:
            with self._tx() as conn:
                self._check_refs(conn, case.case_id, refs)
                self._upsert_patient(conn, case.patient, now)
                found = conn.execute(
                    select(t_cases.c.version, t_cases.c.document).where(
                        t_cases.c.case_id == case.case_id
                    )
                ).one_or_none()
                stored = None if found is None else int(found.version)
                if expected_inputs is not None:
                    self._check_inputs(conn, case, expected_inputs, found)
                if stored is None:
                    if case.version != 0:
                        raise ConcurrentModificationError(
                            f"case {case.case_id} is no longer in the store (deleted by someone "
                            f"else?); you have version {case.version}"
                        )
                    conn.execute(insert(t_cases).values(case_id=case.case_id, **row))
                else:
                    if stored != case.version:
                        raise self._conflict(case, stored)
                    result = conn.execute(
                        update(t_cases)
                        .where(t_cases.c.case_id == case.case_id, t_cases.c.version == case.version)
                        .values(**row)
                    )
                    if result.rowcount != 1:  # changed between our read and write (PostgreSQL)
                        raise self._conflict(case, None)
                self._link_blobs(conn, case.case_id, sorted({r.key for r in refs}))
                if audit is not None:
                    self._audit(
                        conn,
                        audit,
                        case.case_id,
                        now,
                        case_version=new_version,
                        document_sha256=document_sha256(text),
                    )
                case.version, case.modified_at = new_version, now

                def undo() -> None:
                    case.version, case.modified_at = old_version, old_modified

                self._on_rollback(undo)
        except IntegrityError as exc:
            # Another process inserted the same case (or removed a blob) at the same time.
            raise ConcurrentModificationError(
                f"case {case.case_id} could not be saved because the store was changed at the same "
                f"time by someone else; reload it ({exc.orig})"
            ) from exc
        return case

    def _check_inputs(self, conn: Connection, case: Case, inputs: CaseInputs, found: Any) -> None:
        """Refuse the save if the stored case's inputs differ from ``inputs`` (same transaction)."""
        if inputs.case_id != case.case_id:
            raise StoreError(
                f"the inputs of case {inputs.case_id} were given to save case {case.case_id}"
            )
        if found is None:
            raise StaleInputsError(
                f"case {case.case_id} was deleted while the {inputs.step} was computing; "
                "nothing was saved"
            )
        try:
            stored_case = Case.from_dict(json.loads(found.document))
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(
                f"case {case.case_id}: the stored document cannot be read ({exc!r})"
            ) from exc
        changes = changed_inputs(inputs, stored_case)
        if not changes:
            return
        rows = conn.execute(
            select(t_audit.c.action, t_audit.c.username, t_audit.c.at, t_audit.c.details)
            .where(t_audit.c.case_id == case.case_id)
            .order_by(t_audit.c.seq)
        ).all()
        since = []
        for r in rows:
            try:
                version = json.loads(r.details).get("case_version")
            except (ValueError, AttributeError):
                continue
            if isinstance(version, int) and version > inputs.version:
                since.append((r.action, r.username, r.at, version))
        raise StaleInputsError(stale_message(inputs, changes, since))

    @staticmethod
    def _conflict(case: Case, stored: int | None) -> ConcurrentModificationError:
        there = f"version {stored}" if stored is not None else "a newer version"
        return ConcurrentModificationError(
            f"case {case.case_id} was changed by someone else ({there} in the store, "
            f"you have {case.version}); reload it"
        )

    def _check_refs(self, conn: Connection, case_id: str, refs: list[VolumeRef]) -> None:
        if not refs:
            return
        keys = sorted({BlobStore.check_key(r.key) for r in refs})
        rows = conn.execute(
            select(t_blobs.c.key, t_blobs.c.dtype, t_blobs.c.shape).where(t_blobs.c.key.in_(keys))
        ).all()
        known = {r.key: r for r in rows}
        missing = [k for k in keys if k not in known]
        if missing:
            shown = ", ".join(k[:12] for k in missing[:3]) + (" ..." if len(missing) > 3 else "")
            raise StoreError(
                f"case {case_id} refers to {len(missing)} volume(s) that are not in the store "
                f"({shown}); store them with put_volume first"
            )
        for ref in refs:
            r = known[ref.key]
            shape = ",".join(str(s) for s in ref.geometry.shape_zyx)
            try:
                dtype_ok = np.dtype(ref.dtype) == np.dtype(r.dtype)
            except TypeError:
                dtype_ok = False
            if not dtype_ok or r.shape != shape:
                raise StoreError(
                    f"case {case_id}: volume '{ref.description}' says {ref.dtype} ({shape}) "
                    f"but blob {ref.key[:12]} holds {r.dtype} ({r.shape})"
                )
            if not self.blobs.exists(ref.key):
                raise StoreError(
                    f"case {case_id}: the file of volume '{ref.description}' (blob {ref.key[:12]}) "
                    f"is missing from {self.blobs.root}"
                )

    def _link_blobs(self, conn: Connection, case_id: str, keys: list[str]) -> None:
        conn.execute(delete(t_case_blobs).where(t_case_blobs.c.case_id == case_id))
        if keys:
            conn.execute(insert(t_case_blobs), [{"case_id": case_id, "blob_key": k} for k in keys])

    def load_case(self, case_id: str) -> Case:
        """Read a case.

        Parameters
        ----------
        case_id
            Identifier of the case.

        Returns
        -------
        Case
            With ``version`` as stored (pass it back to :meth:`save_case`).

        Raises
        ------
        CaseNotFoundError
            If there is no such case.
        StoreError
            If the stored document cannot be read.
        """
        with self._read() as conn:
            row = conn.execute(
                select(t_cases.c.document, t_cases.c.version).where(t_cases.c.case_id == case_id)
            ).one_or_none()
        if row is None:
            raise CaseNotFoundError(f"no case {case_id!r} in this store")
        try:
            case = Case.from_dict(json.loads(row.document))
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(
                f"case {case_id}: the stored document cannot be read ({exc!r})"
            ) from exc
        case.version = int(row.version)
        return case

    def find_cases(self, patient_id: str | None = None) -> list[CaseSummary]:
        """Summaries of the cases of one patient (all cases when None).

        Returns
        -------
        list of CaseSummary
            Sorted by patient id, then creation time, then case id.
        """
        q = (
            select(
                t_cases.c.case_id,
                t_cases.c.patient_id,
                t_patients.c.name,
                t_cases.c.protocol,
                t_cases.c.n_time_points,
                t_cases.c.created_at,
                t_cases.c.modified_at,
                t_cases.c.version,
                t_cases.c.description,
            )
            .select_from(t_cases.join(t_patients))
            .order_by(t_cases.c.patient_id, t_cases.c.created_at, t_cases.c.case_id)
        )
        if patient_id is not None:
            q = q.where(t_cases.c.patient_id == patient_id)
        with self._read() as conn:
            rows = conn.execute(q).all()
        return [
            CaseSummary(
                case_id=r.case_id,
                patient_id=r.patient_id,
                patient_name=r.name or "",
                protocol=r.protocol or "",
                n_time_points=int(r.n_time_points),
                created_at=r.created_at,
                modified_at=r.modified_at,
                version=int(r.version),
                description=r.description or "",
            )
            for r in rows
        ]

    def list_cases(self) -> list[CaseSummary]:
        """Summaries of all cases, sorted by patient id then creation time."""
        return self.find_cases(None)

    def delete_case(self, case_id: str, *, audit: AuditSpec | None = None) -> None:
        """Remove a case (its blobs stay until :meth:`collect_garbage`).

        The patient row goes too when no other case refers to it.  With
        ``audit=(actor, action, details)`` an audit entry is appended in the
        same transaction (see :meth:`save_case`).

        Raises
        ------
        CaseNotFoundError
            If there is no such case.
        """
        with self._tx() as conn:
            patient_id = conn.execute(
                select(t_cases.c.patient_id).where(t_cases.c.case_id == case_id)
            ).scalar_one_or_none()
            if patient_id is None:
                raise CaseNotFoundError(f"no case {case_id!r} in this store")
            conn.execute(delete(t_case_blobs).where(t_case_blobs.c.case_id == case_id))
            conn.execute(delete(t_cases).where(t_cases.c.case_id == case_id))
            conn.execute(
                delete(t_patients).where(
                    t_patients.c.patient_id == patient_id,
                    ~exists().where(t_cases.c.patient_id == patient_id),
                )
            )
            if audit is not None:
                self._audit(conn, audit, case_id, datetime.now())

    def has_users(self) -> bool:
        """True once the store has a user account: changes then need a logged-in actor."""
        from sqlalchemy import func, select

        from dosimetry_core.store.schema import users

        with self._read() as conn:
            return bool(conn.execute(select(func.count()).select_from(users)).scalar())

    def audit_spec(self, action: str, **details: Any) -> AuditSpec:
        """``(self.actor, action, details)`` for ``save_case(..., audit=...)``."""
        return (self.actor, action, details)

    def _audit(
        self, conn: Connection, spec: AuditSpec, case_id: str, at: datetime, **extra: Any
    ) -> None:
        """Append the audit entry of a change; the actor's key (if unlocked) signs the head.

        The signed checkpoint anchors the entry, and with it the ``document_sha256`` it
        records, against a database writer (:mod:`dosimetry_core.store.keys`).
        """
        actor, action, details = spec
        audit_trail.append_for(conn, actor, action, case_id, {**(details or {}), **extra}, at=at)
        if actor is not None:
            audit_trail.sign_head_in(conn, self, actor.username, at=at)

    # ----------------------------------------------------------- maintenance
    def collect_garbage(self, *, older_than_s: float = DEFAULT_GC_GRACE_S) -> int:
        """Remove blobs that no case refers to; return how many were removed.

        Orphans come from interrupted imports, rolled-back transactions and
        deleted cases.  Rows are deleted in one transaction, files after it
        commits (a crash in between only leaves files that the next run removes).
        Stale temporary files of interrupted writes are removed as well (not
        counted).

        Parameters
        ----------
        older_than_s
            Keep blobs written or re-stored less than this many seconds ago: an
            import in another process stores its volumes before saving its cases.
            Use 0 only when no other program is using the store.

        Returns
        -------
        int
            Number of blobs (keys) whose row and/or file was removed.

        Raises
        ------
        StoreError
            If called inside :meth:`transaction`, or a case was saved concurrently.
        """
        if getattr(self._local, "tx", None) is not None:
            # Files are deleted at once; a later rollback would bring back rows without files.
            raise StoreError("collect_garbage cannot run inside a transaction")
        ref_exists = exists().where(t_case_blobs.c.blob_key == t_blobs.c.key)
        try:
            with self._tx() as conn:
                candidates = list(conn.execute(select(t_blobs.c.key).where(~ref_exists)).scalars())
                doomed = [k for k in candidates if self._old_enough(k, older_than_s)]
                for i in range(0, len(doomed), 500):
                    chunk = doomed[i : i + 500]
                    conn.execute(delete(t_blobs).where(t_blobs.c.key.in_(chunk), ~ref_exists))
        except IntegrityError as exc:
            raise StoreError(
                "the store changed during garbage collection (a case was saved); run it again"
            ) from exc
        removed = set(doomed)
        for key in doomed:
            self.blobs.delete(key)
        with self._read() as conn:
            known = set(conn.execute(select(t_blobs.c.key)).scalars())
        for key in list(self.blobs.keys()):
            if key in known or key in removed:
                continue
            if self._old_enough(key, older_than_s) and self.blobs.delete(key):
                removed.add(key)
        self.blobs.remove_stale_temp_files(max(older_than_s, 0.0))
        return len(removed)

    def verify_documents(self, *, include_unrecorded: bool = True) -> list[str]:
        """Cases whose stored document does not hash to the value in their newest audit entry.

        Every audited :meth:`save_case` records ``document_sha256`` (SHA-256 of
        the stored document text) in its audit entry.  A document edited in the
        database afterwards (e.g. a protocol-run dose changed by SQL) no longer
        hashes to it.  The audit trail itself is a hash chain
        (:func:`dosimetry_core.store.audit.verify`); once it is anchored by
        signed checkpoints, a database writer cannot recompute both.

        Parameters
        ----------
        include_unrecorded
            Also name the cases no audit entry records a hash for (False: only the
            documents that differ from their recorded hash, as ``audit --verify`` does:
            a store made before the hashes were recorded is not damaged).

        Returns
        -------
        list of str
            One line per problem naming the case, sorted: a document that does
            not match its newest recorded hash, or a case with no recorded hash
            at all (saved without an audit entry, or before the hashes were
            recorded: its content is not anchored).
        """
        with self._read() as conn:
            docs = conn.execute(
                select(t_cases.c.case_id, t_cases.c.version, t_cases.c.document)
            ).all()
            rows = conn.execute(
                select(
                    t_audit.c.seq,
                    t_audit.c.case_id,
                    t_audit.c.action,
                    t_audit.c.username,
                    t_audit.c.at,
                    t_audit.c.details,
                )
                .where(t_audit.c.case_id.is_not(None))
                .order_by(t_audit.c.seq)
            ).all()
        recorded = _newest_document_hashes(rows)
        problems = []
        for d in docs:
            actual = document_sha256(d.document)
            if d.case_id not in recorded:
                if not include_unrecorded:
                    continue
                problems.append(
                    f"case {d.case_id}: no audit entry records the hash of its document "
                    "(saved without an audit entry or before document hashes were recorded); "
                    "its content is not anchored"
                )
                continue
            digest, version, entry = recorded[d.case_id]
            if digest != actual:
                at = entry.at.strftime("%Y-%m-%d %H:%M:%S") if entry.at else "?"
                problems.append(
                    f"case {d.case_id}: the stored document (version {d.version}, SHA-256 "
                    f"{actual[:16]}...) does not match the hash recorded by its newest audit "
                    f"entry (#{entry.seq}, {entry.action} by {entry.username or 'the system'} "
                    f"at {at}, version {version}, SHA-256 {digest[:16]}...): it was changed "
                    "without an audited save (an edit of the database, or a save that wrote "
                    "no audit entry)"
                )
        return sorted(problems)

    def _old_enough(self, key: str, older_than_s: float) -> bool:
        age = self.blobs.age_s(key)
        return age is None or age >= older_than_s

    def check_integrity(self, *, verify_hashes: bool = True) -> list[str]:
        """Look for damage; return one line per problem (empty when all is well).

        Checks the database itself (SQLite ``quick_check``), that every stored
        blob has its file and (with ``verify_hashes``) that the file still hashes
        to its key, and that every volume a case refers to is a known blob.

        Parameters
        ----------
        verify_hashes
            Read and hash every blob file (reads the whole store).

        Returns
        -------
        list of str
            Problems, sorted.
        """
        problems: list[str] = []
        with self._read() as conn:
            if conn.dialect.name == "sqlite":
                result = [str(r[0]) for r in conn.exec_driver_sql("PRAGMA quick_check").fetchall()]
                if result != ["ok"]:
                    problems.extend(f"database: {r}" for r in result)
            blob_rows = conn.execute(select(t_blobs.c.key, t_blobs.c.dtype, t_blobs.c.shape)).all()
            links = conn.execute(select(t_case_blobs.c.case_id, t_case_blobs.c.blob_key)).all()
            docs = conn.execute(
                select(t_cases.c.case_id, t_cases.c.version, t_cases.c.document)
            ).all()
        known = {r.key: r for r in blob_rows}
        linked: dict[str, set[str]] = {}
        for link in links:
            linked.setdefault(link.case_id, set()).add(link.blob_key)
        users: dict[str, list[str]] = {}
        for d in docs:
            try:
                case = Case.from_dict(json.loads(d.document))
            except (ValueError, KeyError, TypeError) as exc:
                problems.append(f"case {d.case_id}: the stored document cannot be read ({exc!r})")
                continue
            if case.version != d.version:
                problems.append(
                    f"case {d.case_id}: document version {case.version} differs from "
                    f"row version {d.version}"
                )
            for ref in case.volume_refs():
                users.setdefault(ref.key, []).append(d.case_id)
                if ref.key not in known:
                    problems.append(f"case {d.case_id} refers to unknown blob {ref.key}")
                elif ref.key not in linked.get(d.case_id, set()):
                    problems.append(
                        f"case {d.case_id}: blob {ref.key} is not recorded in case_blobs"
                    )
        for key, r in known.items():
            used = sorted(set(users.get(key, [])))
            by = f" (used by case {', '.join(used)})" if used else ""
            try:
                path = self.blobs.path_for(key)
            except StoreError as exc:
                problems.append(str(exc))
                continue
            if not path.is_file():
                problems.append(f"blob {key} is missing its file {path}{by}")
            elif verify_hashes:
                try:
                    array = self.blobs.get_array(key)
                except StoreError as exc:
                    problems.append(f"{exc}{by}")
                    continue
                shape = ",".join(str(s) for s in array.shape)
                if array.dtype.name != r.dtype or shape != r.shape:
                    problems.append(
                        f"blob {key}: file holds {array.dtype.name} ({shape}), "
                        f"the database says {r.dtype} ({r.shape})"
                    )
        return sorted(problems)


def _newest_document_hashes(rows: Any) -> dict[str, tuple[str, int | None, Any]]:
    """``case_id -> (document_sha256, case_version, entry)`` of the newest entry recording one."""
    out: dict[str, tuple[str, int | None, Any]] = {}
    for r in rows:  # oldest first: later entries overwrite
        try:
            details = json.loads(r.details)
        except ValueError:
            continue
        digest = details.get("document_sha256") if isinstance(details, dict) else None
        if isinstance(digest, str):
            version = details.get("case_version")
            out[r.case_id] = (digest, version if isinstance(version, int) else None, r)
    return out


def case_store_of(store: CaseRepository, what: str = "this operation") -> CaseStore:
    """The database-backed :class:`CaseStore` behind a :class:`CaseRepository`.

    The tables other than cases (reports, signatures, QA records, users, the
    audit trail) exist only in a database store; the ``store`` modules that read
    and write them call this first, so that another repository (a test double,
    a future remote store) gets a clear error instead of an ``AttributeError``.

    Parameters
    ----------
    store
        The repository.
    what
        What needs the database (named in the error), e.g. ``"reports"``.

    Raises
    ------
    StoreError
        If ``store`` is not a :class:`CaseStore`.
    """
    if not isinstance(store, CaseStore):
        raise StoreError(f"{what} need a case store database; {type(store).__name__} has none")
    return store


def verify_volume_blob(store: CaseRepository, key: str) -> str | None:
    """Check that the voxel blob ``key`` is in the store and still hashes to its key.

    Parameters
    ----------
    store
        A database-backed store (its blob folder is checked).
    key
        The blob key (64 lowercase hex digits) of a stored volume.

    Returns
    -------
    str or None
        The problem (not a blob key, missing file, changed content), or None when sound.
    """
    try:
        return case_store_of(store, "blob checks").blobs.verify(BlobStore.check_key(key))
    except StoreError as exc:
        return str(exc)
