"""Cohort batch on Dask (``pipeline.batch``): each case equals its run alone, failures isolated,
resumable (current runs skipped, ``force`` redoes them), summary files with units."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.pipeline.batch import (
    SUMMARY_COLUMNS,
    BatchOptions,
    StoreLocation,
    _limit_threads,
    _ordered_chains,
    _thread_budget,
    parse_scheduler,
    read_case_list,
    resume_state,
    run_batch,
    write_summary,
)
from dosimetry_core.store import CaseStore
from tests.conftest import copy_store
from tests.core.pipeline.batch_support import PROTOCOL, baseline, cohort_template

ORGANS = {"kidneys", "liver", "spleen", "red-marrow"}


@pytest.fixture(scope="module")
def cohort(tmp_path_factory, shared_kernel_cache):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MRTDOSE_KERNEL_CACHE", str(shared_kernel_cache))
        for name in ("MRTDOSE_USER", "MRTDOSE_PASSWORD"):
            mp.delenv(name, raising=False)
        tpl = cohort_template(tmp_path_factory)
        yield tpl, baseline(tmp_path_factory)


def _corrupt_spect(store_path: Path, case_id: str) -> str:
    """Overwrite the voxel file of the case's second SPECT: a corrupt series in the store."""
    with CaseStore(store_path) as s:
        tp = s.load_case(case_id).sorted_time_points()[1]
        key = tp.functional.volume.key
        s.blobs.path_for(key).write_bytes(b"not the voxels any more")
    return key


@pytest.fixture(scope="module")
def first_batch(cohort, tmp_path_factory, shared_kernel_cache):
    """The 4 cases on local:2, the case of patient 3 with a corrupt SPECT series."""
    tpl, _ = cohort
    store = copy_store(Path(tpl["store"]), tmp_path_factory.mktemp("batch") / "store")
    _corrupt_spect(store, tpl["ids"]["p003_c1"])
    ids = [tpl["ids"][k] for k in sorted(tpl["ids"])]
    events = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MRTDOSE_KERNEL_CACHE", str(shared_kernel_cache))
        result = run_batch(
            StoreLocation(str(store)),
            ids,
            BatchOptions(PROTOCOL),
            scheduler="local:2",
            on_event=events.append,
        )
    return store, ids, result, events


def _by_case(result):
    return {o.case_id: o for o in result.outcomes}


@pytest.mark.slow
def test_each_case_equals_its_run_alone(cohort, first_batch):
    tpl, alone = cohort
    _, _, result, _ = first_batch
    outcomes = _by_case(result)
    good = [tpl["ids"][k] for k in ("p001_c1", "p001_c2", "p002_c1")]
    for cid in good:
        o = outcomes[cid]
        assert o.status == "done", o.reason
        rows = {r.organ_id: r for r in o.organs}
        assert set(rows) == ORGANS == set(alone[cid])
        for organ, want in alone[cid].items():
            for attr, value in want.items():
                # float32 dose maps: the summation order follows the thread count (a worker
                # has 1 thread), so equal to float32 rounding, not bit for bit
                assert getattr(rows[organ], attr) == pytest.approx(value, rel=1e-5, abs=0), (
                    cid,
                    organ,
                    attr,
                )
    # the kinetics and activities differ between patients: not one case copied thrice
    kid = [outcomes[c].organs[0].dose_per_activity_gy_per_gbq for c in good]
    assert len({round(k, 6) for k in kid}) == 3
    # cycles: patient 1's two administrations in order
    assert outcomes[good[0]].cycle == 1 and outcomes[good[1]].cycle == 2
    assert outcomes[good[0]].patient_id == outcomes[good[1]].patient_id == "MRT-COHORT-001"


@pytest.mark.slow
def test_corrupt_case_is_reported_and_the_rest_complete(cohort, first_batch):
    tpl, _ = cohort
    store, ids, result, events = first_batch
    bad = _by_case(result)[tpl["ids"]["p003_c1"]]
    assert bad.status == "failed"
    assert "\n" not in bad.reason and bad.reason
    assert "blob" in bad.reason.lower() or "voxel" in bad.reason.lower(), bad.reason
    assert result.count("done") == 3 and result.count("failed") == 1 and result.any_failed
    # the saved runs are in the store; the failed case has none
    with CaseStore(store) as s:
        for cid in ids:
            run = s.load_case(cid).protocol_run
            assert (run is None) == (cid == bad.case_id)
    # every case started once and ended once; the counts of the last event add up
    started = [e.case_id for e in events if e.event == "started"]
    ended = [e.case_id for e in events if e.event in ("finished", "failed", "skipped")]
    assert sorted(started) == sorted(ids) == sorted(ended)
    last = events[-1]
    assert (last.done, last.failed, last.running, last.total) == (3, 1, 0, 4)
    assert next(e for e in events if e.event == "failed").reason == bad.reason


@pytest.mark.slow
def test_summary_csv_json_and_plot(first_batch, tmp_path):
    _, ids, result, _ = first_batch
    files = write_summary(result, tmp_path / "out")
    with open(files["csv"], newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == SUMMARY_COLUMNS
    for col in ("dose_Gy", "dose_per_activity_Gy_per_GBq", "BED_Gy", "dose_SD_Gy"):
        assert col in rows[0]
    done = [r for r in rows if r["status"] == "done"]
    assert len(done) == 3 * len(ORGANS)
    assert {(r["case_id"], r["organ_id"]) for r in done} == {
        (o.case_id, organ) for o in result.outcomes if o.status == "done" for organ in ORGANS
    }
    failed = [r for r in rows if r["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["dose_Gy"] == ""
    # CSV numbers are the run's numbers
    o = next(o for o in result.outcomes if o.status == "done")
    kid = next(r for r in o.organs if r.organ_id == "kidneys")
    row = next(r for r in done if r["case_id"] == o.case_id and r["organ_id"] == "kidneys")
    assert float(row["dose_Gy"]) == kid.dose_gy
    assert float(row["dose_per_activity_Gy_per_GBq"]) == kid.dose_per_activity_gy_per_gbq
    assert row["review_flags"] == "contour not approved (draft)"
    doc = json.loads(Path(files["json"]).read_text())
    assert doc["format"] == "mrt-batch-summary/1" and len(doc["rows"]) == len(rows)
    assert (doc["done"], doc["failed"], doc["total"]) == (3, 1, 4)
    assert Path(files["plot"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_second_run_skips_finished_cases_and_force_redoes(cohort, first_batch, shared_kernel_cache):
    tpl, alone = cohort
    store, ids, first, _ = first_batch
    loc = StoreLocation(str(store))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MRTDOSE_KERNEL_CACHE", str(shared_kernel_cache))
        again = run_batch(loc, ids, BatchOptions(PROTOCOL), scheduler="local:2")
        before = _by_case(first)
        for o in again.outcomes:
            if before[o.case_id].status == "done":
                assert o.status == "skipped", o.reason
                assert "is current" in o.reason
                assert o.run_id == before[o.case_id].run_id  # the saved run, not a new one
            else:
                assert o.status == "failed"  # still corrupt: tried again, not skipped
        cid = tpl["ids"]["p002_c1"]
        forced = run_batch(loc, [cid], BatchOptions(PROTOCOL, force=True), scheduler="local:1")
    (o,) = forced.outcomes
    assert o.status == "done" and o.run_id != before[cid].run_id
    for r in o.organs:
        assert r.dose_gy == pytest.approx(alone[cid][r.organ_id]["dose_gy"], rel=1e-5)


@pytest.mark.slow
def test_resume_state_follows_the_inputs(cohort, tmp_path_factory):
    """Current after a save that does not touch the inputs; stale after a contour edit."""
    base = tmp_path_factory.getbasetemp() / "batch-cohort" / "baseline-store"
    tpl, _ = cohort
    store = copy_store(base, tmp_path_factory.mktemp("resume") / "store")
    cid = tpl["ids"]["p002_c1"]
    with CaseStore(store) as s:
        assert "is current" in resume_state(s, cid, PROTOCOL)
        assert resume_state(s, cid, "generic") is None  # another protocol: run it
        case = s.load_case(cid)
        case.description = "exported for the registry"
        s.save_case(case, audit=s.audit_spec("export", what="test"))
        assert "is current" in resume_state(s, cid, PROTOCOL)
        case = s.load_case(cid)
        case.vois[0].name = case.vois[0].name + "_edited"
        s.save_case(case, audit=s.audit_spec("contour", what="rename"))
        assert resume_state(s, cid, PROTOCOL) is None
        other = tpl["ids"]["p001_c1"]
        case = s.load_case(other)
        case.description = "a save without an audit entry"
        s.save_case(case)
        assert resume_state(s, other, PROTOCOL) is None  # unknown change: run again


def test_read_case_list(tmp_path):
    p = tmp_path / "cases.txt"
    p.write_text("# cohort A\ncase-1\n\n  case-2   # cycle 2\ncase-1\n")
    assert read_case_list(p) == ["case-1", "case-2"]
    p.write_text("# nothing\n\n")
    with pytest.raises(InvalidInputError, match="lists no case"):
        read_case_list(p)
    p.write_text("case-1 case-2\n")
    with pytest.raises(InvalidInputError, match="line 1"):
        read_case_list(p)
    p.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InvalidInputError, match="text file"):
        read_case_list(p)


def test_parse_scheduler():
    assert parse_scheduler("local") == ("local", 2)
    assert parse_scheduler("local:3") == ("local", 3)
    assert parse_scheduler("tcp://10.0.0.5:8786") == ("tcp://10.0.0.5:8786", None)
    for bad in ("local:0", "local:x", "tcp://host", "http://h:1", "remote"):
        with pytest.raises(InvalidInputError) as err:
            parse_scheduler(bad)
        assert err.value.field == "scheduler"


def test_longest_patients_are_submitted_first_cycles_in_order(cohort):
    """Graham's LPT order: the patient with the most voxels to process comes first, and a
    patient's cycles stay in administration order (cycle 2 depends on cycle 1)."""
    tpl, _ = cohort
    ids = tpl["ids"]
    with CaseStore(tpl["store"]) as s:
        chains = _ordered_chains(s, [ids[k] for k in sorted(ids)] + ["case-missing"])
        voxels = {
            cid: sum(
                ser.volume.geometry.n_voxels
                for tp in s.load_case(cid).time_points
                for ser in (tp.functional, tp.anatomical)
                if ser is not None and ser.volume is not None
            )
            for cid in ids.values()
        }
    assert chains[-1] == ["case-missing"]  # reported by its task, never dropped
    assert [ids["p001_c1"], ids["p001_c2"]] in chains
    totals = [sum(voxels[c] for c in chain) for chain in chains[:-1]]
    assert totals == sorted(totals, reverse=True) and len(set(totals)) > 1
    assert sorted(c for chain in chains for c in chain) == sorted([*ids.values(), "case-missing"])


class _FakeClient:
    def __init__(self, workers, cores, fail=False):
        self.workers, self.cores, self.fail = workers, cores, fail

    def scheduler_info(self):
        return {"workers": self.workers}

    def run(self, fn):
        if self.fail:
            raise OSError("scheduler gone")
        return self.cores


def test_thread_budget_divides_each_machines_cores_among_its_task_threads():
    one = {"tcp://a:1": {"host": "a", "nthreads": 1}}
    two = {**one, "tcp://a:2": {"host": "a", "nthreads": 1}}
    assert _thread_budget(_FakeClient(one, {"tcp://a:1": 2}), 1) == 2  # one worker keeps both
    assert _thread_budget(_FakeClient(two, {"tcp://a:1": 2, "tcp://a:2": 2}), 2) == 1
    mixed = {
        "tcp://a:1": {"host": "a", "nthreads": 2},
        "tcp://a:2": {"host": "a", "nthreads": 2},
        "tcp://b:1": {"host": "b", "nthreads": 1},
    }
    cores = {"tcp://a:1": 16, "tcp://a:2": 16, "tcp://b:1": 8}
    assert _thread_budget(_FakeClient(mixed, cores), 3) == 4  # min(16 // 4, 8 // 1)
    small = {"tcp://a:1": {"host": "a", "nthreads": 4}}
    assert _thread_budget(_FakeClient(small, {"tcp://a:1": 2}), 1) == 1  # never 0
    failing = _FakeClient(two, {}, fail=True)
    assert _thread_budget(failing, 2) == max(1, (os.cpu_count() or 1) // 2)


def test_limit_threads_sets_numba_and_simpleitk_pools():
    import SimpleITK as sitk
    from numba import get_num_threads, set_num_threads

    before = (sitk.ProcessObject.GetGlobalDefaultNumberOfThreads(), get_num_threads())
    try:
        _limit_threads(1)
        assert sitk.ProcessObject.GetGlobalDefaultNumberOfThreads() == 1
        assert get_num_threads() == 1
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(before[0])
        set_num_threads(before[1])


@pytest.mark.slow
def test_worker_acts_only_for_an_active_account_of_that_role(cohort, tmp_path_factory):
    """The actor a client sends is checked against the store by the task: a disabled account,
    or a role it does not have, is refused and nothing is saved; the real account works."""
    from argon2 import PasswordHasher

    from dosimetry_core.pipeline.batch import run_case
    from dosimetry_core.store.permissions import Actor
    from dosimetry_core.store.users import bootstrap_admin, create_user, disable_user

    fast = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    base = tmp_path_factory.getbasetemp() / "batch-cohort" / "baseline-store"
    tpl, _ = cohort
    store = copy_store(base, tmp_path_factory.mktemp("accounts") / "store")
    with CaseStore(store) as s:
        admin = bootstrap_admin(s, "root", "otter-maple-fig-42", hasher=fast)
        create_user(s, admin, "alice", "alice-maple-fig-42", "physicist", hasher=fast)
        create_user(s, admin, "tom", "tom-otter-maple-42", "technologist", hasher=fast)
        create_user(s, admin, "gone", "gone-otter-fig-4242", "physicist", hasher=fast)
        disable_user(s, admin, "gone")
    loc = StoreLocation(str(store))
    cid = tpl["ids"]["p002_c1"]
    opts = BatchOptions(PROTOCOL, force=True)
    for actor, words in (
        (Actor("gone", "physicist"), "not an active account"),
        (Actor("tom", "physicist"), "not an active account"),  # claims a role it has not
        (Actor("nobody", "physicist"), "not an active account"),
        (Actor("tom", "technologist"), "may not"),  # its own role may not compute
        (None, "log in"),
    ):
        o = run_case(loc, cid, opts, actor)
        assert o.status == "failed" and words in o.reason, (actor, o.reason)
    with CaseStore(store) as s:
        from dosimetry_core.store import audit

        assert [e for e in audit.entries(s, cid) if e.action == "protocol-run"][-1].username == ""
    o = run_case(loc, cid, BatchOptions(PROTOCOL), Actor("alice", "physicist"))
    assert o.status == "skipped", o.reason  # checked, then found current
