"""The typed store interface: CaseStore is a CaseRepository, and only the store package
touches the store's connections (issue 12, "a typed store interface")."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest

from dosimetry_core.errors import StoreError
from dosimetry_core.qa.records import list_records, store_record
from dosimetry_core.reporting.records import list_reports, load_report
from dosimetry_core.store import CaseStore, qa_rows, report_rows
from dosimetry_core.store.case_store import case_store_of, verify_volume_blob
from dosimetry_core.store.report_rows import ReportRow, SignatureRow
from dosimetry_core.store.repository import CaseRepository

ROOT = Path(__file__).resolve().parents[3]
PRIVATE_STORE_ACCESS = re.compile(
    r"\bstore\._[a-z]\w*|\._tx\(|\._read\(|\bstore\.engine\b|\._on_rollback\("
)


def test_case_store_satisfies_the_protocol(store):
    assert isinstance(store, CaseRepository)
    assert case_store_of(store) is store


class _Memory:
    """A repository without a database (what a test double of CaseRepository looks like)."""

    actor = None
    path = Path(".")


def test_tables_beyond_cases_refuse_a_repository_without_database():
    fake = _Memory()
    assert not isinstance(fake, CaseRepository)  # no methods: not a repository at all
    with pytest.raises(StoreError, match="reports need a case store database"):
        report_rows.load_report(fake, "rep-1")  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="QA records need a case store database"):
        qa_rows.select_qa_rows(fake)  # type: ignore[arg-type]


def _python_sources(*folders: str) -> list[Path]:
    return [p for folder in folders for p in sorted((ROOT / folder).rglob("*.py"))]


def test_nothing_outside_the_store_package_calls_a_private_store_method():
    offenders = []
    store_pkg = ROOT / "dosimetry_core" / "store"
    for path in _python_sources("dosimetry_core", "app"):
        if store_pkg in path.parents:
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            code = line.split("#", 1)[0]
            if PRIVATE_STORE_ACCESS.search(code) and "self._store" not in code:
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert offenders == [], "use the store package's functions:\n" + "\n".join(offenders)


def test_the_private_access_pattern_finds_what_it_must():
    hits = [
        "    with store._tx() as conn:",
        "    with store._read() as conn:",
        "    with self.store._read() as c:",
        "    with store.engine.connect() as conn:",
    ]
    misses = ["    with store.transaction():", "    self._store = store", "store.load_case(x)"]
    assert all(PRIVATE_STORE_ACCESS.search(h) for h in hits)
    assert not any(PRIVATE_STORE_ACCESS.search(m) for m in misses)


# Modules still being converted by their owners (issue 12); remove each once it is typed.
UNTYPED_STORE_PENDING = {
    "dosimetry_core/pipeline/importing.py",
    "dosimetry_core/pipeline/registration.py",
}


def test_no_untyped_store_parameters_left_in_the_core():
    left = []
    for path in _python_sources("dosimetry_core"):
        if path.relative_to(ROOT).as_posix() in UNTYPED_STORE_PENDING:
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if re.search(r"\bstore: Any\b", line):
                left.append(f"{path.relative_to(ROOT)}:{n}")
    assert left == [], "type store parameters as CaseRepository:\n" + "\n".join(left)


def _report_row(report_id: str, version: int, status: str, **kw: object) -> ReportRow:
    values: dict[str, object] = {
        "report_id": report_id,
        "case_id": "case-1",
        "version": version,
        "status": status,
        "created_at": datetime(2026, 1, 2, 3, 4, 5),
        "created_by": "phys",
        "content_json": '{"a":1}',
        "content_hash": "c" * 64,
        "inputs_hash": "i" * 64,
        "pdf_blob_key": None,
        "supersedes": None,
        "amendment_reason": None,
    }
    values.update(kw)
    return ReportRow(**values)  # type: ignore[arg-type]


def test_report_rows_round_trip_and_conditional_updates(store):
    first = _report_row("rep-1", 1, "draft")
    report_rows.insert_report(store, first)
    stored = report_rows.load_report(store, "rep-1")
    assert stored is not None and stored.row == first
    assert stored.signatures == () and stored.superseded_by is None
    assert report_rows.load_report(store, "rep-none") is None
    # a draft is overwritten only while it is still a draft
    changed = _report_row("rep-1", 1, "draft", content_json='{"a":2}')
    assert report_rows.update_report(store, changed, expected_status="draft")
    assert not report_rows.update_report(store, changed, expected_status="signed")
    sig = SignatureRow(
        "rep-1", "phys", "physicist", "mpe", datetime(2026, 1, 3), "c" * 64, "i" * 64, "s" * 64
    )
    report_rows.insert_signature(store, sig)
    assert report_rows.set_report_status(store, "rep-1", "mpe-signed", pdf_blob_key="p" * 64)
    assert not report_rows.set_report_status(store, "rep-1", "superseded", expected_status="draft")
    second = _report_row("rep-2", 2, "draft", supersedes="rep-1", amendment_reason="typo")
    with store.transaction():
        assert report_rows.set_report_status(
            store, "rep-1", "superseded", expected_status="mpe-signed"
        )
        report_rows.insert_report(store, second)
    old = report_rows.load_report(store, "rep-1")
    assert old is not None
    assert old.row.status == "superseded" and old.row.pdf_blob_key == "p" * 64
    assert old.row.content_json == '{"a":2}' and old.signatures == (sig,)
    assert old.superseded_by == "rep-2"
    assert [r.row.report_id for r in report_rows.case_reports(store, "case-1")] == [
        "rep-1",
        "rep-2",
    ]
    newest = report_rows.newest_report(store, "case-1")
    assert newest is not None and newest.report_id == "rep-2"
    assert report_rows.newest_report(store, "case-2") is None
    assert report_rows.newest_reports_with_status(store, ["case-1", "case-2"], "draft") == {
        "case-1": second
    }
    assert report_rows.newest_reports_with_status(store, [], "draft") == {}
    # the reporting module reads the same rows as typed records
    assert [r.version for r in list_reports(store, "case-1")] == [1, 2]
    assert load_report(store, "rep-1").signatures[0]["signature_hash"] == "s" * 64


def test_a_failed_transaction_leaves_no_report_row(store):
    with pytest.raises(RuntimeError), store.transaction():
        report_rows.insert_report(store, _report_row("rep-9", 1, "draft"))
        raise RuntimeError("boom after the insert")
    assert report_rows.load_report(store, "rep-9") is None


def test_qa_rows_through_the_qa_module(store):
    at = datetime(2026, 3, 1, 9, 0)
    rec = store_record(store, "well-counter", "WC-1", "Lu-177", at, {"cps_per_bq": 2.0})
    rows = qa_rows.select_qa_rows(store, kind="well-counter")
    assert [r.record_id for r in rows] == [rec.record_id]
    assert rows[0].payload_json.startswith("{") and rows[0].record_hash == rec.record_hash
    assert qa_rows.select_qa_rows(store, kind="probe") == []
    assert [r.record_id for r in list_records(store, device_key="WC-1")] == [rec.record_id]


def test_verify_volume_blob_names_the_problem(store, tmp_path):
    assert "is not a blob key" in (verify_volume_blob(store, "../etc/passwd") or "")
    missing = verify_volume_blob(store, "0" * 64)
    assert missing is not None


def test_connection_is_public_and_joins_the_open_transaction(store):
    assert isinstance(store, CaseStore)
    with store.transaction(), store.connection() as a, store.read_connection() as b:
        assert a is b  # one thread, one transaction: readers see the writes made so far
