"""Case store: round trips, optimistic concurrency, transactions, garbage, integrity."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from dosimetry_core.errors import CaseNotFoundError, ConcurrentModificationError, StoreError
from dosimetry_core.model import Case, Geometry, ImageUnits, Patient, Volume, VolumeRef
from dosimetry_core.store import CaseStore, default_store_path
from dosimetry_core.store.schema import blobs as t_blobs
from dosimetry_core.store.schema import case_blobs as t_case_blobs
from dosimetry_core.store.schema import cases as t_cases
from dosimetry_core.store.schema import patients as t_patients

from .conftest import SPECT_SHAPE, make_case, make_volume


def _rows(store: CaseStore, table) -> list[tuple]:
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(table).order_by(*table.primary_key.columns))]


def _db_state(store: CaseStore) -> dict[str, list[tuple]]:
    return {t.name: _rows(store, t) for t in (t_patients, t_cases, t_blobs, t_case_blobs)}


# ------------------------------------------------------------------ round trips
def test_case_round_trip_keeps_every_field(store: CaseStore) -> None:
    case = make_case(store)
    assert case.version == 0 and case.modified_at is None
    returned = store.save_case(case)
    assert returned is case
    assert case.version == 1 and isinstance(case.modified_at, datetime)
    back = store.load_case(case.case_id)
    assert back.to_dict() == case.to_dict()
    assert len(back.time_points) == 2 and len(back.volume_refs()) == 6
    assert back.patient.birth_date == case.patient.birth_date


def test_volumes_round_trip_bit_exact_through_the_case(store: CaseStore, saved_case: Case) -> None:
    back = store.load_case(saved_case.case_id)
    for ref in back.volume_refs():
        vol = store.load_volume(ref)
        assert vol.geometry == ref.geometry and vol.units == ref.units
        assert vol.array.dtype == np.dtype(ref.dtype) and vol.array.shape == ref.geometry.shape_zyx
    dtypes = sorted({r.dtype for r in back.volume_refs()})
    assert dtypes == ["bool", "float32", "int16", "uint8"]


@pytest.mark.parametrize("dtype", ["float32", "int16", "uint8", "bool"])
def test_put_and_load_volume_bit_exact(store: CaseStore, dtype: str) -> None:
    vol = make_volume((5, 6, 7), dtype, ImageUnits.MASK if dtype == "bool" else ImageUnits.BQML, 3)
    ref = store.put_volume(vol, meta={"source": "test"})
    assert (
        ref.dtype == dtype and ref.description == vol.description and ref.meta == {"source": "test"}
    )
    back = store.load_volume(VolumeRef.from_dict(json.loads(json.dumps(ref.to_dict()))))
    assert back.array.dtype == vol.array.dtype
    assert back.array.tobytes() == vol.array.tobytes()
    assert back.geometry == vol.geometry and back.units == vol.units


def test_identical_arrays_share_a_blob(store: CaseStore) -> None:
    vol = make_volume(SPECT_SHAPE, "float32", ImageUnits.BQML, 1)
    moved = Volume(vol.array.copy(), Geometry(SPECT_SHAPE, (2.0, 2.0, 2.0)), ImageUnits.BQML)
    r1, r2 = store.put_volume(vol), store.put_volume(moved)
    assert r1.key == r2.key and r1.geometry != r2.geometry
    assert len(_rows(store, t_blobs)) == 1 and len(list(store.blobs.keys())) == 1


def test_load_volume_checks_shape_and_dtype_against_the_reference(store: CaseStore) -> None:
    ref = store.put_volume(make_volume((2, 3, 4), "int16", ImageUnits.HU, 0))
    with pytest.raises(StoreError, match="expects float32"):
        store.load_volume(VolumeRef(ref.key, ref.geometry, ref.units, "float32"))
    with pytest.raises(StoreError, match=r"shape \(2, 3, 4\)"):
        store.load_volume(VolumeRef(ref.key, Geometry((4, 3, 2), (1, 1, 1)), ref.units, "int16"))


def test_missing_case_raises_case_not_found(store: CaseStore, saved_case: Case) -> None:
    with pytest.raises(CaseNotFoundError, match="no case 'case-nope' in this store") as err:
        store.load_case("case-nope")
    assert saved_case.case_id not in str(err.value) and "Doe" not in str(err.value)
    with pytest.raises(CaseNotFoundError):
        store.delete_case("case-nope")


# --------------------------------------------------------------------- listing
def test_list_and_find_cases_sorted_by_patient_then_creation(store: CaseStore) -> None:
    b2 = make_case(store, "P-B", seed=2)
    a1 = make_case(store, "P-A", seed=1)
    b1 = make_case(store, "P-B", seed=0)
    for c in (b2, a1, b1):
        store.save_case(c)
    listed = store.list_cases()
    assert [s.case_id for s in listed] == [a1.case_id, b1.case_id, b2.case_id]
    s = listed[0]
    assert (s.patient_id, s.patient_name, s.protocol, s.n_time_points, s.version) == (
        "P-A",
        "Doe^Jane",
        "Lu-177 DOTATATE 4 cycles",
        2,
        1,
    )
    assert s.created_at == a1.created_at and s.modified_at == a1.modified_at
    assert s.description == "cycle 1 (1)"
    assert [c.case_id for c in store.find_cases(patient_id="P-B")] == [b1.case_id, b2.case_id]
    assert store.find_cases(patient_id="P-none") == []
    assert store.find_cases() == listed


def test_patient_row_follows_the_case(store: CaseStore, saved_case: Case) -> None:
    saved_case.patient = Patient("P-001", "Doe^Janet", sex="F")
    store.save_case(saved_case)
    (row,) = _rows(store, t_patients)
    assert row[:4] == ("P-001", "Doe^Janet", None, "F")
    assert store.list_cases()[0].patient_name == "Doe^Janet"


def test_delete_case_removes_rows_and_the_orphan_patient(
    store: CaseStore, saved_case: Case
) -> None:
    store.delete_case(saved_case.case_id)
    assert store.list_cases() == []
    state = _db_state(store)
    assert state["cases"] == [] and state["case_blobs"] == [] and state["patients"] == []
    assert len(state["blobs"]) == 6  # until garbage collection
    with pytest.raises(CaseNotFoundError):
        store.load_case(saved_case.case_id)


# ------------------------------------------------------- optimistic concurrency
def test_stale_version_is_refused_and_the_store_is_unchanged(
    store: CaseStore, saved_case: Case
) -> None:
    stale = store.load_case(saved_case.case_id)
    saved_case.description = "edited first"
    store.save_case(saved_case)
    assert saved_case.version == 2
    before = _db_state(store)
    stale.description = "edited second"
    with pytest.raises(
        ConcurrentModificationError,
        match=rf"case {stale.case_id} was changed by someone else \(version 2 in the store, "
        r"you have 1\); reload it",
    ):
        store.save_case(stale)
    assert stale.version == 1  # untouched on failure
    assert _db_state(store) == before
    assert store.load_case(stale.case_id).description == "edited first"


def test_two_store_objects_on_one_folder_cannot_lose_an_update(store_path: Path) -> None:
    with CaseStore(store_path) as a, CaseStore(store_path) as b:
        case = a.save_case(make_case(a))
        mine, theirs = a.load_case(case.case_id), b.load_case(case.case_id)
        mine.protocol = "mine"
        a.save_case(mine)
        theirs.protocol = "theirs"
        with pytest.raises(ConcurrentModificationError):
            b.save_case(theirs)
        assert b.load_case(case.case_id).protocol == "mine"
        reloaded = b.load_case(case.case_id)
        reloaded.protocol = "theirs, after reloading"
        b.save_case(reloaded)
        assert a.load_case(case.case_id).version == 3


def test_new_case_must_have_version_zero(store: CaseStore) -> None:
    case = make_case(store)
    case.version = 4
    with pytest.raises(ConcurrentModificationError, match="no longer in the store"):
        store.save_case(case)
    assert store.list_cases() == []


def test_deleted_case_cannot_be_saved_back_silently(store: CaseStore, saved_case: Case) -> None:
    store.delete_case(saved_case.case_id)
    with pytest.raises(ConcurrentModificationError):
        store.save_case(saved_case)


def test_unknown_or_mismatched_volume_is_refused_atomically(
    store: CaseStore, saved_case: Case
) -> None:
    before = _db_state(store)
    good = saved_case.vois[0].mask
    saved_case.vois[0].mask = VolumeRef("ab" * 32, good.geometry, good.units, good.dtype)
    with pytest.raises(StoreError, match="1 volume\\(s\\) that are not in the store"):
        store.save_case(saved_case)
    saved_case.vois[0].mask = VolumeRef(good.key, good.geometry, good.units, "float32")
    with pytest.raises(StoreError, match="holds uint8"):
        store.save_case(saved_case)
    saved_case.vois[0].mask = VolumeRef("not-a-key", good.geometry, good.units, good.dtype)
    with pytest.raises(StoreError, match="not a blob key"):
        store.save_case(saved_case)
    assert saved_case.version == 1
    assert _db_state(store) == before


# ------------------------------------------------------------------ transactions
def test_transaction_commits_several_cases_together(store: CaseStore) -> None:
    c1, c2 = make_case(store, "P-1", 1), make_case(store, "P-2", 2)
    with store.transaction():
        store.save_case(c1)
        store.save_case(c2)
        assert c1.version == c2.version == 1
        assert len(store.list_cases()) == 2  # visible inside the transaction
    assert {s.case_id for s in store.list_cases()} == {c1.case_id, c2.case_id}


def test_transaction_rollback_leaves_no_case_rows(store: CaseStore) -> None:
    c1, c2 = make_case(store, "P-1", 1), make_case(store, "P-2", 2)
    before = _db_state(store)
    with pytest.raises(RuntimeError, match="import failed"), store.transaction():
        store.save_case(c1)
        store.save_case(c2)
        raise RuntimeError("import failed")
    assert store.list_cases() == []
    assert _db_state(store) == before
    assert (c1.version, c1.modified_at, c2.version) == (0, None, 0)  # restored
    store.save_case(c1)  # saving again works
    assert c1.version == 1


def test_nothing_is_visible_to_others_before_the_transaction_ends(store_path: Path) -> None:
    with CaseStore(store_path) as a, CaseStore(store_path) as b:
        case = make_case(a)
        with a.transaction():
            a.save_case(case)
            assert b.list_cases() == []  # WAL: readers see the last commit, without waiting
        assert [s.case_id for s in b.list_cases()] == [case.case_id]


def test_failed_save_inside_a_transaction_does_not_spoil_it(
    store: CaseStore, saved_case: Case
) -> None:
    new = make_case(store, "P-2", 2)
    stale = store.load_case(saved_case.case_id)
    store.save_case(saved_case)
    with store.transaction():
        store.save_case(new)
        stale.description = "lost?"
        with pytest.raises(ConcurrentModificationError):
            store.save_case(stale)  # savepoint rolled back, outer transaction goes on
    assert {s.case_id for s in store.list_cases()} == {saved_case.case_id, new.case_id}
    assert store.load_case(saved_case.case_id).description == saved_case.description


def test_put_volume_inside_a_rolled_back_transaction_leaves_only_garbage(store: CaseStore) -> None:
    with pytest.raises(KeyError), store.transaction():
        store.put_volume(make_volume((3, 3, 3), "float32", ImageUnits.BQML, 7))
        raise KeyError("stop")
    assert _rows(store, t_blobs) == []
    assert len(list(store.blobs.keys())) == 1
    assert store.collect_garbage(older_than_s=0) == 1
    assert list(store.blobs.keys()) == []


# -------------------------------------------------------------- garbage, checks
def test_garbage_collection_removes_orphans_only(store: CaseStore, saved_case: Case) -> None:
    orphan_ref = store.put_volume(make_volume((4, 4, 4), "float32", ImageUnits.BQML, 42))
    stray = store.blobs.put_array(np.arange(8, dtype=np.uint8).reshape(2, 2, 2))  # file, no row
    shared = saved_case.vois[0].mask.key
    assert store.collect_garbage() == 0  # default grace period keeps fresh blobs
    assert store.collect_garbage(older_than_s=0) == 2
    assert not store.blobs.exists(orphan_ref.key) and not store.blobs.exists(stray)
    assert orphan_ref.key not in {r[0] for r in _rows(store, t_blobs)}
    for ref in store.load_case(saved_case.case_id).volume_refs():
        store.load_volume(ref)
    assert store.check_integrity() == []
    assert store.collect_garbage(older_than_s=0) == 0
    store.delete_case(saved_case.case_id)
    assert store.collect_garbage(older_than_s=0) == 6
    assert not store.blobs.exists(shared) and _rows(store, t_blobs) == []


def test_garbage_collection_refuses_to_run_inside_a_transaction(store: CaseStore) -> None:
    with pytest.raises(StoreError, match="inside a transaction"), store.transaction():
        store.collect_garbage()


def test_integrity_check_is_clean_for_a_sound_store(store: CaseStore, saved_case: Case) -> None:
    assert store.check_integrity() == []


def test_tampered_blob_is_detected_on_load_and_by_the_integrity_check(
    store: CaseStore, saved_case: Case
) -> None:
    ref = saved_case.time_points[1].functional.volume
    assert ref is not None
    path = store.blobs.path_for(ref.key)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(StoreError, match=f"blob {ref.key} is corrupt or was modified"):
        store.load_volume(ref)
    problems = store.check_integrity()
    assert len(problems) == 1
    assert problems[0].startswith(f"blob {ref.key} is corrupt or was modified")
    assert saved_case.case_id in problems[0]
    assert store.check_integrity(verify_hashes=False) == []


def test_missing_blob_file_and_unknown_blob_are_reported(
    store: CaseStore, saved_case: Case
) -> None:
    ref = saved_case.time_points[0].anatomical.volume  # type: ignore[union-attr]
    store.blobs.path_for(ref.key).unlink()
    with pytest.raises(StoreError, match="is missing: file"):
        store.load_volume(ref)
    with store.engine.begin() as conn:  # simulate a document edited behind the store's back
        doc = json.loads(conn.execute(select(t_cases.c.document)).scalar_one())
        doc["vois"][0]["mask"]["key"] = "cd" * 32
        conn.execute(t_cases.update().values(document=json.dumps(doc)))
    problems = store.check_integrity()
    assert len(problems) == 2
    assert problems[0].startswith(
        f"blob {ref.key} is missing its file {store.blobs.path_for(ref.key)}"
    )
    assert problems[1] == f"case {saved_case.case_id} refers to unknown blob {'cd' * 32}"


# -------------------------------------------------------------------- lifecycle
def test_closed_store_refuses_work(store_path: Path) -> None:
    s = CaseStore(store_path)
    s.close()
    s.close()  # idempotent
    with pytest.raises(StoreError, match="is closed"):
        s.list_cases()


def test_bad_url_and_unserialisable_extra_are_store_errors(
    store: CaseStore, store_path: Path
) -> None:
    with pytest.raises(StoreError, match="cannot use the database URL"):
        CaseStore(store_path, url="nosuchdb://x")
    case = make_case(store)
    case.extra["bad"] = object()
    with pytest.raises(StoreError, match="cannot be saved"):
        store.save_case(case)
    assert store.list_cases() == [] and case.version == 0


def test_default_store_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MRTDOSE_STORE", str(tmp_path / "s"))
    assert default_store_path() == tmp_path / "s"
    monkeypatch.delenv("MRTDOSE_STORE")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_store_path() == tmp_path / "xdg" / "mrt-dosimetry" / "store"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert (
        default_store_path() == tmp_path / "home" / ".local" / "share" / "mrt-dosimetry" / "store"
    )


def test_store_at_the_default_path_is_created(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MRTDOSE_STORE", str(tmp_path / "deep" / "store"))
    with CaseStore() as s:
        assert s.path == tmp_path / "deep" / "store"
        assert (s.path / "cases.sqlite").is_file() and (s.path / "blobs").is_dir()


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+nosuchdriver://mrt:TopSecret@127.0.0.1:1/x",  # a driver that is not there
        "not a url mrt:TopSecret@db",  # nothing SQLAlchemy can parse
        "postgresql+psycopg://mrt:TopSecret@127.0.0.1:1/x",  # nobody listening
    ],
)
def test_a_bad_database_url_is_named_without_its_password(tmp_path: Path, url: str) -> None:
    """The message goes to the terminal and the logs: the password in the URL stays out."""
    with pytest.raises(StoreError) as err:
        CaseStore(tmp_path / "s", url=url)
    assert "TopSecret" not in str(err.value)
    assert "database URL" in str(err.value) or "cannot open the case store" in str(err.value)
