"""Audit trail: hash chain, tamper detection with raw SQL, atomic with the change, two processes."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from dosimetry_core.errors import ConcurrentModificationError
from dosimetry_core.store import CaseStore, audit
from dosimetry_core.store.permissions import Actor

from .conftest import make_case
from .test_processes import TIMEOUT_S, _spawn

PHYS = Actor("pat", "physicist")
DOC = Actor("dora", "physician")


def _three(store: CaseStore) -> None:
    audit.record(store, PHYS, "import", "C1", {"files": 12})
    audit.record(store, PHYS, "fit", "C1", {"model": "mono-exp"})
    audit.record(store, DOC, "approve-contour", "C2", {"voi": "Kidney L"})


def _sql(store: CaseStore, statement: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(text(statement))


def test_entry_hash_is_sha256_of_the_canonical_json() -> None:
    # Canonical JSON written out by hand: keys sorted, no spaces, time with microseconds.
    literal = (
        '{"action":"fit","at":"2026-03-02T10:00:00.000000","case_id":"C1",'
        '"details":{"model":"mono-exp","n":4},"prev_hash":"' + "0" * 64 + '",'
        '"role":"physicist","seq":1,"username":"alice"}'
    )
    expected = hashlib.sha256(literal.encode("utf-8")).hexdigest()
    got = audit.compute_hash(
        seq=1,
        at=datetime(2026, 3, 2, 10, 0),
        username="alice",
        role="physicist",
        case_id="C1",
        action="fit",
        details={"n": 4, "model": "mono-exp"},
        prev_hash=audit.GENESIS_HASH,
    )
    assert got == expected


def test_chain_links_each_entry_to_the_previous(store: CaseStore) -> None:
    assert audit.verify(store) == [] and audit.entries(store) == []
    _three(store)
    rows = audit.entries(store)
    assert [e.seq for e in rows] == [1, 2, 3]
    assert rows[0].prev_hash == "0" * 64
    assert rows[1].prev_hash == rows[0].entry_hash and rows[2].prev_hash == rows[1].entry_hash
    for e in rows:  # each stored hash recomputes from the stored fields
        fields = e.to_dict()
        fields.pop("entry_hash")
        fields["at"] = e.at
        assert audit.compute_hash(**fields) == e.entry_hash
    assert [e.action for e in audit.entries(store, "C1")] == ["import", "fit"]
    assert audit.verify(store) == []


def test_edited_details_are_detected(store: CaseStore) -> None:
    _three(store)
    _sql(store, """UPDATE audit_log SET details = '{"model":"bi-exp"}' WHERE seq = 2""")
    problems = audit.verify(store)
    assert len(problems) == 1 and problems[0].startswith("entry 2 (fit, ")
    assert "was changed: its content does not match its hash" in problems[0]


def test_edit_with_recomputed_hash_breaks_the_next_link(store: CaseStore) -> None:
    _three(store)
    e = audit.entries(store)[1]
    forged = audit.compute_hash(
        seq=2, at=e.at, username="someone", role=e.role, case_id=e.case_id,
        action=e.action, details=e.details, prev_hash=e.prev_hash,
    )  # fmt: skip
    _sql(store, f"UPDATE audit_log SET username = 'someone', entry_hash = '{forged}' WHERE seq = 2")
    assert audit.verify(store) == [
        "entry 3 is not chained to the entry before it (entries deleted, inserted or reordered)"
    ]


def test_deleted_entry_is_detected(store: CaseStore) -> None:
    _three(store)
    _sql(store, "DELETE FROM audit_log WHERE seq = 2")
    problems = audit.verify(store)
    assert "entry 2 is missing (deleted) before entry 3" in problems
    assert any(p.startswith("entry 3 is not chained") for p in problems)


def test_deleted_newest_entry_is_detected(store: CaseStore) -> None:
    _three(store)
    _sql(store, "DELETE FROM audit_log WHERE seq = 3")
    assert audit.verify(store) == [
        "entry 3 is missing (deleted): the trail ends at entry 2 but entry 3 was recorded "
        "as the newest"
    ]


def test_swapped_entries_are_detected(store: CaseStore) -> None:
    _three(store)
    _sql(store, "UPDATE audit_log SET seq = 99 WHERE seq = 1")
    _sql(store, "UPDATE audit_log SET seq = 1 WHERE seq = 2")
    _sql(store, "UPDATE audit_log SET seq = 2 WHERE seq = 99")
    problems = audit.verify(store)
    assert any(p.startswith("entry 1 (fit,") and "was changed" in p for p in problems)
    assert any(p.startswith("entry 2 (import,") and "was changed" in p for p in problems)
    assert any(p.startswith("entry 1 is not chained") for p in problems)


def test_save_case_with_audit_is_atomic_with_the_change(store: CaseStore) -> None:
    case = store.save_case(make_case(store), audit=(PHYS, "import", {"files": 3}))
    (entry,) = audit.entries(store, case.case_id)
    assert (entry.username, entry.role, entry.action) == ("pat", "physicist", "import")
    # (other keys, e.g. a document hash, may be added by the store)
    assert {k: entry.details.get(k) for k in ("files", "case_version")} == {
        "files": 3,
        "case_version": 1,
    }

    stale = store.load_case(case.case_id)
    case.description = "mine"
    store.save_case(case, audit=(PHYS, "contour", {"voi": "Kidney L"}))
    stale.description = "theirs"
    with pytest.raises(ConcurrentModificationError):
        store.save_case(stale, audit=(DOC, "approve-contour", {}))
    with pytest.raises(RuntimeError), store.transaction():
        case.description = "rolled back"
        store.save_case(case, audit=(PHYS, "fit", {}))
        raise RuntimeError
    assert [e.action for e in audit.entries(store)] == ["import", "contour"]
    assert store.load_case(case.case_id).version == 2

    store.save_case(make_case(store, "P-2", 2))  # without audit: no entry, as before
    assert len(audit.entries(store)) == 2
    store.delete_case(case.case_id, audit=(PHYS, "delete-case", {"reason": "duplicate"}))
    assert audit.entries(store)[-1].details == {"reason": "duplicate"}
    assert audit.verify(store) == []


def _url_arg(url: str | None) -> str:
    return url or "-"


def test_second_process_is_told_the_case_changed_and_leaves_no_entry(
    store: CaseStore, store_path: Path, store_url: str | None, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    case = store.save_case(make_case(store), audit=(PHYS, "import", {}))
    proc = _spawn(
        """
        from dosimetry_core.store.permissions import Actor
        url = None if sys.argv[4] == "-" else sys.argv[4]
        store = CaseStore(sys.argv[1], url=url)
        case = store.load_case(sys.argv[2])
        print("loaded", case.version, flush=True)
        wait_for(sys.argv[3])
        case.description = "theirs"
        try:
            store.save_case(case, audit=(Actor("dora", "physician"), "approve-contour", {}))
            print("saved", flush=True)
        except ConcurrentModificationError as exc:
            print("conflict", exc, flush=True)
        """,
        store_path,
        case.case_id,
        go,
        _url_arg(store_url),
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().split() == ["loaded", "1"]
        mine = store.load_case(case.case_id)
        mine.description = "mine"
        store.save_case(mine, audit=(PHYS, "contour", {}))
        go.write_text("go")
        out, err = proc.communicate(timeout=TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert out.startswith(f"conflict case {case.case_id} was changed by someone else")
    assert store.load_case(case.case_id).description == "mine"
    assert [e.action for e in audit.entries(store)] == ["import", "contour"]
    assert audit.verify(store) == []


def test_concurrent_appends_from_two_processes_keep_one_chain(
    store: CaseStore, store_path: Path, store_url: str | None, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    n = 25
    procs = [
        _spawn(
            """
            from dosimetry_core.store import audit
            from dosimetry_core.store.permissions import Actor
            url = None if sys.argv[4] == "-" else sys.argv[4]
            store = CaseStore(sys.argv[1], url=url)
            Path(sys.argv[2]).write_text("ready")
            wait_for(sys.argv[3])
            for i in range(int(sys.argv[5])):
                audit.record(store, Actor("p" + sys.argv[6], "physicist"), "fit", None, {"i": i})
            """,
            store_path,
            tmp_path / f"ready-{k}",
            go,
            _url_arg(store_url),
            n,
            k,
        )
        for k in range(2)
    ]
    try:
        for k, p in enumerate(procs):
            deadline = time.monotonic() + TIMEOUT_S
            while not (tmp_path / f"ready-{k}").exists() and p.poll() is None:
                assert time.monotonic() < deadline, f"helper {k} did not start"
                time.sleep(0.01)
        go.write_text("go")
        results = [p.communicate(timeout=TIMEOUT_S) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (_out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err
    rows = audit.entries(store)
    assert [e.seq for e in rows] == list(range(1, 2 * n + 1))
    assert sorted(json.dumps([e.username, e.details["i"]]) for e in rows) == sorted(
        json.dumps([f"p{k}", i]) for k in range(2) for i in range(n)
    )
    assert audit.verify(store) == []
