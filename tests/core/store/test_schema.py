"""Schema: migrations create the expected tables, re-opening is harmless, pragmas are set."""

from __future__ import annotations

import fnmatch
import os
import subprocess
import sys
import tomllib
import uuid
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from dosimetry_core.errors import ConcurrentModificationError, StoreError
from dosimetry_core.store import CaseStore
from dosimetry_core.store import schema as store_schema

from .conftest import make_case

ROOT = Path(__file__).resolve().parents[3]

EXPECTED_COLUMNS = {
    "patients": ["patient_id", "name", "birth_date", "sex", "created_at"],
    "cases": [
        "case_id",
        "patient_id",
        "version",
        "protocol",
        "description",
        "n_time_points",
        "created_at",
        "modified_at",
        "document",
    ],
    "blobs": ["key", "size_bytes", "dtype", "shape", "created_at"],
    "case_blobs": ["case_id", "blob_key"],
    "store_meta": ["key", "value"],
    "users": [
        "username",
        "full_name",
        "role",
        "password_hash",
        "active",
        "failed_attempts",
        "locked_until",
        "created_at",
        "created_by",
        "modified_at",
        "cert_pem",
        "key_pem",
        "ca_key_pem",
        "revoked_at",
        "row_signature",
        "password_signature",
    ],
    "audit_log": [
        "seq",
        "at",
        "username",
        "role",
        "case_id",
        "action",
        "details",
        "prev_hash",
        "entry_hash",
    ],
    "reports": [
        "report_id",
        "case_id",
        "version",
        "status",
        "created_at",
        "created_by",
        "content_json",
        "content_hash",
        "inputs_hash",
        "pdf_blob_key",
        "supersedes",
        "amendment_reason",
    ],
    "signatures": [
        "signature_id",
        "report_id",
        "username",
        "role",
        "signed_as",
        "at",
        "content_hash",
        "inputs_hash",
        "signature_hash",
        "cert_pem",
        "content_signature",
    ],
    "audit_checkpoints": ["seq", "entry_hash", "at", "username", "cert_pem", "signature"],
    "qa_records": [
        "record_id",
        "kind",
        "device_key",
        "nuclide",
        "measured_at",
        "valid_until",
        "created_at",
        "created_by",
        "status",
        "payload",
        "record_hash",
    ],
}


def test_migrations_create_the_expected_tables(store: CaseStore) -> None:
    insp = inspect(store.engine)
    assert sorted(insp.get_table_names()) == sorted([*EXPECTED_COLUMNS, "alembic_version"])
    for table, columns in EXPECTED_COLUMNS.items():
        assert [c["name"] for c in insp.get_columns(table)] == columns, table
    assert insp.get_pk_constraint("case_blobs")["constrained_columns"] == ["case_id", "blob_key"]
    fks = {
        (fk["constrained_columns"][0], fk["referred_table"])
        for t in EXPECTED_COLUMNS
        for fk in insp.get_foreign_keys(t)
    }
    assert fks == {("patient_id", "patients"), ("case_id", "cases"), ("blob_key", "blobs")}
    assert {i["name"] for i in insp.get_indexes("case_blobs")} == {"ix_case_blobs_blob_key"}
    with store.engine.connect() as conn:
        assert store_schema.current_revision(conn) == store_schema.head_revision() == "0004"
        meta = dict(conn.execute(text("SELECT key, value FROM store_meta")).all())
    assert meta["blob_format"].startswith("mrtblob/1")


def test_table_definitions_match_the_migrations(store: CaseStore) -> None:
    with store.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), store_schema.metadata)
    assert diffs == []


def test_reopening_an_existing_store_keeps_its_cases(store_path: Path) -> None:
    with CaseStore(store_path) as s:
        case = s.save_case(make_case(s))
    for _ in range(2):
        with CaseStore(store_path) as s:
            assert s.load_case(case.case_id).to_dict() == case.to_dict()
            assert s.check_integrity() == []


def test_head_revision_constant_is_the_newest_migration() -> None:
    """Opening compares the database with HEAD_REVISION, so it must name the newest script."""
    assert store_schema.HEAD_REVISION == store_schema.head_revision()


def test_opening_a_store_at_head_does_not_load_alembic(store_path: Path) -> None:
    """The fast path: one query of alembic_version; Alembic is imported only to migrate."""
    with CaseStore(store_path) as s:
        case = s.save_case(make_case(s))
    code = (
        "import sys\n"
        "from dosimetry_core.store import CaseStore\n"
        f"s = CaseStore({str(store_path)!r})\n"
        f"print(s.load_case({case.case_id!r}).case_id)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[0] == case.case_id
    assert out[1] == "[]"


def test_sqlite_pragmas(store: CaseStore) -> None:
    if store.engine.dialect.name != "sqlite":
        pytest.skip("SQLite pragmas")
    with store.engine.connect() as conn:

        def pragma(name: str) -> object:
            return conn.exec_driver_sql(f"PRAGMA {name}").scalar()

        assert pragma("journal_mode") == "wal"
        assert pragma("foreign_keys") == 1
        assert pragma("synchronous") == 2  # FULL
        assert pragma("busy_timeout") == 30000


def test_foreign_keys_are_enforced(store: CaseStore) -> None:
    with pytest.raises(IntegrityError), store.engine.begin() as conn:
        conn.execute(text("INSERT INTO case_blobs (case_id, blob_key) VALUES ('x', 'y')"))


def test_store_from_a_newer_program_is_refused(store_path: Path) -> None:
    with CaseStore(store_path) as s, s.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(StoreError, match="newer version; update the program"):
        CaseStore(store_path)


def test_a_file_that_is_no_database_is_refused(store_path: Path) -> None:
    store_path.mkdir()
    (store_path / "cases.sqlite").write_bytes(b"this is not SQLite" * 100)
    with pytest.raises(StoreError, match="cannot open the case store"):
        CaseStore(store_path)


def test_packaged_files_cover_the_migrations() -> None:
    """pyproject's package-data patterns include every migration file needed at run time."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["dosimetry_core"]
    package = ROOT / "dosimetry_core"
    files = [
        p.relative_to(package).as_posix()
        for p in store_schema.MIGRATIONS_DIR.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    ]
    assert (
        "store/migrations/env.py" in files and "store/migrations/versions/0001_initial.py" in files
    )
    uncovered = [f for f in files if not any(fnmatch.fnmatch(f, pat) for pat in patterns)]
    assert uncovered in ([], ["store/migrations/script.py.mako"])  # the template is for developers


@pytest.mark.skipif(not os.environ.get("MRTDOSE_TEST_PG_URL"), reason="set MRTDOSE_TEST_PG_URL")
def test_postgresql_round_trip(tmp_path: Path) -> None:
    """Same migrations and operations on PostgreSQL (run by hand against a test server)."""
    from sqlalchemy import create_engine

    base = os.environ["MRTDOSE_TEST_PG_URL"]
    dbname = f"mrt_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {dbname}"))
    url = base.rsplit("/", 1)[0] + "/" + dbname
    try:
        with CaseStore(tmp_path, url=url) as a, CaseStore(tmp_path, url=url) as b:
            assert sorted(inspect(a.engine).get_table_names()) == sorted(
                [*EXPECTED_COLUMNS, "alembic_version"]
            )
            with a.engine.connect() as conn:
                assert (
                    compare_metadata(MigrationContext.configure(conn), store_schema.metadata) == []
                )
            case = a.save_case(make_case(a))
            assert b.load_case(case.case_id).to_dict() == case.to_dict()
            stale = b.load_case(case.case_id)
            a.save_case(case)
            with pytest.raises(ConcurrentModificationError):
                b.save_case(stale)
            with pytest.raises(RuntimeError), a.transaction():
                a.save_case(make_case(a, "P-2", 2))
                raise RuntimeError
            assert len(a.list_cases()) == 1
            assert a.check_integrity() == []
            a.delete_case(case.case_id)
            # 6 blobs of the deleted case + 6 files whose rows were rolled back
            assert a.collect_garbage(older_than_s=0) == 12
            assert list(a.blobs.keys()) == []
    finally:
        admin.dispose()
        with create_engine(base, isolation_level="AUTOCOMMIT").connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)"))
