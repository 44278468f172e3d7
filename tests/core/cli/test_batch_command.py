"""``mrtdose batch``: the contract line, JSON event lines, summary files, refusals, and a batch
killed mid-way (SIGKILL of the client and its workers) that resumes without redoing saved cases."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dosimetry_core.cli.main import main
from dosimetry_core.store import CaseStore
from tests.conftest import copy_store
from tests.core.pipeline.batch_support import PROTOCOL, baseline, cohort_template

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory, shared_kernel_cache):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MRTDOSE_KERNEL_CACHE", str(shared_kernel_cache))
        for name in ("MRTDOSE_USER", "MRTDOSE_PASSWORD"):
            mp.delenv(name, raising=False)
        yield cohort_template(tmp_path_factory)


@pytest.fixture()
def env(monkeypatch, shared_kernel_cache):
    monkeypatch.setenv("MRTDOSE_KERNEL_CACHE", str(shared_kernel_cache))
    for name in ("MRTDOSE_USER", "MRTDOSE_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


def _run(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    return code, out.getvalue()


def _lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# ------------------------------------------------------------- refusals
@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--protocol", PROTOCOL, "--scheduler", "local:0"], "--scheduler"),
        (["--protocol", PROTOCOL, "--scheduler", "tcp://nohostport"], "--scheduler"),
        (["--protocol", "no-such-protocol"], "no-such-protocol"),
        (["--protocol", "i131-thyroid-benign"], "not run by 'mrtdose run'"),
    ],
)
def test_refused_before_anything_runs(tmp_path, env, capsys, args, words):
    cases = tmp_path / "cases.txt"
    cases.write_text("case-1\n")
    code = main(["--store", str(tmp_path / "s"), "batch", str(cases), *args])
    assert code == 1
    assert words in capsys.readouterr().err


def test_missing_cohort_and_empty_list_are_named(tmp_path, env, capsys):
    code = main(
        ["--store", str(tmp_path / "s"), "batch", str(tmp_path / "nope"), "--protocol", PROTOCOL]
    )
    assert code == 1
    assert "COHORT_DIR_OR_CASE_LIST" in capsys.readouterr().err
    empty = tmp_path / "cases.txt"
    empty.write_text("# only a comment\n")
    assert main(["--store", str(tmp_path / "s"), "batch", str(empty), "--protocol", PROTOCOL]) == 1
    assert "lists no case" in capsys.readouterr().err


def test_protocol_is_required(tmp_path, env, capsys):
    with pytest.raises(SystemExit) as err:
        main(["--store", str(tmp_path / "s"), "batch", str(tmp_path)])
    assert err.value.code == 2
    assert "--protocol" in capsys.readouterr().err


def test_help_defines_the_cohort_argument(capsys):
    with pytest.raises(SystemExit):
        main(["batch", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for words in (
        "folder of patient study folders",
        "text file of case ids",
        "POSIX locks",
        "PostgreSQL",
        "--force",
    ):
        assert words in text


# ------------------------------------------------------------- cohort folder
@pytest.mark.slow
def test_cohort_folder_json_lines_and_summary(cohort, tmp_path_factory, env):
    tmp = tmp_path_factory.mktemp("cli-batch")
    src = Path(cohort["dirs"])
    folder = tmp / "cohort"
    for name in ("p001_c1", "p002_c1"):
        shutil.copytree(src / name, folder / name)
    # a broken file in a study folder: refused with its reason, the import goes on
    (folder / "p002_c1" / "broken.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00garbage")
    store, out = tmp / "store", tmp / "out"
    code, text = _run(
        [
            "--store",
            str(store),
            "--json",
            "batch",
            str(folder),
            "--protocol",
            PROTOCOL,
            "--scheduler",
            "local:2",
            "--out",
            str(out),
        ]
    )
    assert code == 0, text
    events = _lines(text)  # every line is one JSON object
    kinds = [e["event"] for e in events]
    assert kinds.count("import") == 2 and kinds[-1] == "summary"
    refused = [
        e for e in events if e["event"] == "import-skipped" and e["path"].endswith("broken.dcm")
    ]
    assert refused and refused[0]["reason"]
    assert kinds.count("started") == 2 and kinds.count("finished") == 2
    summary = events[-1]
    assert (summary["done"], summary["failed"], summary["skipped"], summary["total"]) == (
        2,
        0,
        0,
        2,
    )
    with open(summary["files"]["csv"], newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 * 4 and {
        "dose_Gy",
        "dose_per_activity_Gy_per_GBq",
        "BED_Gy",
        "dose_SD_Gy",
    } <= set(rows[0])
    assert Path(summary["files"]["plot"]).stat().st_size > 1000
    # the same numbers as the run saved for each case, and as the case run alone
    alone = baseline(tmp_path_factory)
    by_patient = {cohort["ids"][k]: k for k in cohort["ids"]}
    with CaseStore(store) as s:
        for r in rows:
            run = s.load_case(r["case_id"]).protocol_run
            assert float(r["dose_Gy"]) == run.organs[r["organ_id"]].dose_gy
            assert float(r["BED_Gy"]) == run.organs[r["organ_id"]].bed_gy
    for cid, name in by_patient.items():
        if name not in ("p001_c1", "p002_c1"):
            continue
        patient = f"MRT-COHORT-{name[1:4]}"
        row = next(r for r in rows if r["patient_id"] == patient and r["organ_id"] == "kidneys")
        assert float(row["dose_Gy"]) == pytest.approx(alone[cid]["kidneys"]["dose_gy"], rel=1e-5)
    # the same folder again: nothing new to import, the cases it holds are found and skipped
    code, text = _run(
        [
            "--store",
            str(store),
            "--json",
            "batch",
            str(folder),
            "--protocol",
            PROTOCOL,
            "--scheduler",
            "local:2",
            "--out",
            str(out),
        ]
    )
    assert code == 0, text
    again = _lines(text)
    imports = [e for e in again if e["event"] == "import"]
    assert sorted(c for e in imports for c in e["cases"]) == sorted({r["case_id"] for r in rows})
    assert all(e["new_time_points"] == 0 and e["already_present"] == 4 for e in imports)
    assert (again[-1]["skipped"], again[-1]["done"], again[-1]["failed"]) == (2, 0, 0)


# ------------------------------------------------------------- kill and resume
@pytest.mark.slow
def test_killed_batch_resumes_without_redoing_saved_cases(
    cohort, tmp_path_factory, shared_kernel_cache
):
    tmp = tmp_path_factory.mktemp("cli-kill")
    store = copy_store(Path(cohort["store"]), tmp / "store")
    ids = [cohort["ids"][k] for k in sorted(cohort["ids"])]
    cases = tmp / "cases.txt"
    cases.write_text("# the cohort\n" + "\n".join(ids) + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("MRTDOSE_USER", "MRTDOSE_PASSWORD")}
    env["MRTDOSE_KERNEL_CACHE"] = str(shared_kernel_cache)
    argv = [
        "--store",
        str(store),
        "--json",
        "batch",
        str(cases),
        "--protocol",
        PROTOCOL,
        "--out",
        str(tmp / "out"),
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "dosimetry_core.cli.main", *argv, "--scheduler", "local:1"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # its own process group: the client and its workers
    )
    finished = None
    deadline = time.monotonic() + 600
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            event = json.loads(line)
            if event["event"] == "finished":
                finished = event
                break
            assert time.monotonic() < deadline
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the client and its workers, mid-batch
        proc.wait(timeout=60)
    assert finished is not None and proc.returncode == -signal.SIGKILL
    with CaseStore(store) as s:
        saved = {cid: s.load_case(cid).protocol_run for cid in ids}
    assert saved[finished["case_id"]].result_id == finished["run_id"]  # nothing saved was lost
    assert sum(r is not None for r in saved.values()) < len(ids)  # killed before the end

    code, text = _run([*argv, "--scheduler", "local:2"])
    assert code == 0, text
    events = {
        e["case_id"]: e for e in _lines(text) if e["event"] in ("finished", "skipped", "failed")
    }
    assert set(events) == set(ids)
    for cid, run in saved.items():
        if run is not None:  # saved before the kill: skipped, the same run kept
            assert events[cid]["event"] == "skipped" and events[cid]["run_id"] == run.result_id
        else:
            assert events[cid]["event"] == "finished"
    with CaseStore(store) as s:
        from dosimetry_core.store import audit

        runs = [e for e in audit.entries(s, finished["case_id"]) if e.action == "protocol-run"]
        assert len(runs) == 1  # computed once, not redone
        assert all(s.load_case(cid).protocol_run is not None for cid in ids)


# ------------------------------------------------------------- PostgreSQL
class _PgStore:
    """What :meth:`StoreLocation.of` reads of a store: its folder and database URL."""

    def __init__(self, path: Path, url: str) -> None:
        from sqlalchemy.engine import make_url

        self.path, self.url = path, make_url(url)


def test_database_password_never_travels_with_the_tasks(tmp_path, monkeypatch):
    """Task arguments are readable by anybody who reaches the scheduler: the location sent
    to the workers has no password; a worker takes it from its own $MRTDOSE_DATABASE_URL
    when that names the same server, database and user, else leaves it to libpq."""
    import pickle

    from dosimetry_core.pipeline.batch import StoreLocation

    url = "postgresql+psycopg://mrt:s3cret-pw@db.example:5432/mrt"
    loc = StoreLocation.of(_PgStore(tmp_path, url))
    assert loc.url == "postgresql+psycopg://mrt@db.example:5432/mrt"
    assert b"s3cret-pw" not in pickle.dumps(loc)
    monkeypatch.delenv("MRTDOSE_DATABASE_URL", raising=False)
    assert loc.resolved_url() == loc.url  # libpq: $PGPASSWORD or ~/.pgpass
    monkeypatch.setenv("MRTDOSE_DATABASE_URL", url)
    assert loc.resolved_url() == url
    for other in (
        "postgresql+psycopg://mrt:pw@attacker.example:5432/mrt",  # another server
        "postgresql+psycopg://admin:pw@db.example:5432/mrt",  # another user
        "postgresql+psycopg://mrt:pw@db.example:5432/other",  # another database
        "not a url at all",
    ):
        monkeypatch.setenv("MRTDOSE_DATABASE_URL", other)
        assert loc.resolved_url() == loc.url, other
    sqlite = StoreLocation.of(CaseStore(tmp_path / "s"))
    assert sqlite.url is None and sqlite.resolved_url() is None


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("MRTDOSE_TEST_PG_URL"), reason="needs a PostgreSQL server (.ci/run)"
)
def test_batch_on_a_postgresql_store_from_the_command_line(cohort, tmp_path, env, monkeypatch):
    """``$MRTDOSE_DATABASE_URL`` puts the store's tables in PostgreSQL for every command; the
    batch's workers reach the same database and save there (no SQLite file is made)."""
    import uuid

    from sqlalchemy import create_engine, text

    from dosimetry_core.store.case_store import DB_FILENAME
    from tests.core.store.conftest import _database_url

    base = os.environ["MRTDOSE_TEST_PG_URL"]
    dbname = f"mrt_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {dbname}"))
    try:
        url = _database_url(base, dbname)
        monkeypatch.setenv("MRTDOSE_DATABASE_URL", url)
        one = tmp_path / "cohort"
        one.mkdir()
        shutil.copytree(Path(cohort["dirs"]) / "p002_c1", one / "p002_c1")
        store = tmp_path / "store"
        code, out = _run(
            ["--store", str(store), "batch", str(one), "--protocol", PROTOCOL]
            + ["--scheduler", "local:1", "--json", "--out", str(tmp_path / "out")]
        )
        events = _lines(out)
        assert code == 0, events
        assert [e["event"] for e in events if e["event"] in ("finished", "failed")] == ["finished"]
        assert not (store / DB_FILENAME).exists()
        with CaseStore(store, url=url) as s:
            (case,) = s.list_cases()
            assert s.load_case(case.case_id).protocol_run is not None
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)"))
        admin.dispose()
