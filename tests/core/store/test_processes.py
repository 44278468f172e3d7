"""Several processes on one store: crash safety, lost-update protection, concurrent opening."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from dosimetry_core.store import CaseStore
from dosimetry_core.store import schema as store_schema

from .conftest import make_case

ROOT = Path(__file__).resolve().parents[3]
TIMEOUT_S = 30.0

PRELUDE = """
import json, os, sys, time
from pathlib import Path
from dosimetry_core.errors import ConcurrentModificationError
from dosimetry_core.model import ImageUnits
from dosimetry_core.store import CaseStore
from dosimetry_core.store import case_store as cs
from tests.core.store.conftest import make_case, make_volume

def wait_for(path):
    deadline = time.monotonic() + 30
    while not Path(path).exists():
        if time.monotonic() > deadline:
            sys.exit("timed out waiting for " + path)
        time.sleep(0.01)
"""


def _spawn(body: str, *args: object) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    code = PRELUDE + textwrap.dedent(body)
    return subprocess.Popen(
        [sys.executable, "-c", code, *map(str, args)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_file(path: Path, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not path.exists():
        if proc.poll() is not None:
            pytest.fail(f"helper process ended early: {proc.stderr.read() if proc.stderr else ''}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"timed out waiting for {path.name}")
        time.sleep(0.01)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_case_is_intact_after_a_crash_in_the_middle_of_a_save(
    store_path: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "inside-transaction"
    proc = _spawn(
        """
        store = CaseStore(sys.argv[1])
        case = store.save_case(make_case(store))
        print(json.dumps(case.to_dict()), flush=True)

        original = cs.CaseStore._link_blobs
        def link_then_hang(self, conn, case_id, keys):
            original(self, conn, case_id, keys)       # every row of the 2nd save is written ...
            Path(sys.argv[2]).write_text("now")
            time.sleep(60)                            # ... but not committed: killed here
        cs.CaseStore._link_blobs = link_then_hang

        case.description = "second version, never committed"
        case.patient.name = "Changed^Name"
        case.vois[0].mask = store.put_volume(make_volume((6, 8, 10), "uint8", ImageUnits.MASK, 77))
        case.time_points.pop()
        store.save_case(case)
        """,
        store_path,
        marker,
    )
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline() or "null")
        assert first is not None, proc.stderr.read() if proc.stderr else ""
        _wait_file(marker, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL

    with CaseStore(store_path) as store:
        back = store.load_case(first["case_id"])
        assert back.to_dict() == first
        assert back.version == 1 and back.patient.name == "Doe^Jane"
        assert store.list_cases()[0].patient_name == "Doe^Jane"
        for ref in back.volume_refs():
            store.load_volume(ref)
        assert store.check_integrity() == []
        assert store.collect_garbage(older_than_s=0) == 1  # the mask stored just before the crash
        assert store.check_integrity() == []


def test_second_process_saving_a_stale_case_gets_a_conflict(
    store_path: Path, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    with CaseStore(store_path) as store:
        case = store.save_case(make_case(store))
        proc = _spawn(
            """
            store = CaseStore(sys.argv[1])
            case = store.load_case(sys.argv[2])
            print("loaded", case.version, flush=True)
            wait_for(sys.argv[3])
            case.description = "theirs"
            try:
                store.save_case(case)
                print("saved", case.version, flush=True)
            except ConcurrentModificationError as exc:
                print("conflict", exc, flush=True)
            """,
            store_path,
            case.case_id,
            go,
        )
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().split() == ["loaded", "1"]
            mine = store.load_case(case.case_id)
            mine.description = "mine"
            store.save_case(mine)
            go.write_text("go")
            out, err = proc.communicate(timeout=TIMEOUT_S)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 0, err
        assert out.startswith(
            f"conflict case {case.case_id} was changed by someone else (version 2 in the store, "
            "you have 1); reload it"
        )
        back = store.load_case(case.case_id)
        assert (back.description, back.version) == ("mine", 2)
        assert store.check_integrity() == []


def test_processes_opening_a_new_store_at_once_all_succeed(
    store_path: Path, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    procs = [
        _spawn(
            """
            Path(sys.argv[2]).write_text("ready")
            wait_for(sys.argv[3])
            store = CaseStore(sys.argv[1])          # runs the migrations concurrently
            case = store.save_case(make_case(store, "P-" + sys.argv[4], int(sys.argv[4])))
            print(case.case_id, flush=True)
            """,
            store_path,
            tmp_path / f"ready-{n}",
            go,
            n,
        )
        for n in range(3)
    ]
    try:
        for n, proc in enumerate(procs):
            _wait_file(tmp_path / f"ready-{n}", proc)
        go.write_text("go")
        results = [p.communicate(timeout=TIMEOUT_S) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (_out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err
    ids = {out.strip() for out, _ in results}
    with CaseStore(store_path) as store:
        assert {s.case_id for s in store.list_cases()} == ids and len(ids) == 3
        with store.engine.connect() as conn:
            assert store_schema.current_revision(conn) == store_schema.head_revision()
        assert store.check_integrity() == []


def test_two_threads_saving_different_cases(store: CaseStore) -> None:
    """Each thread has its own connection and transaction."""
    from concurrent.futures import ThreadPoolExecutor

    cases = [make_case(store, f"P-{n}", n) for n in range(4)]
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(store.save_case, cases))
    assert len(store.list_cases()) == 4 and all(c.version == 1 for c in cases)
