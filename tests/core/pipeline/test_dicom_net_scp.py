"""The storage SCP (``mrtdose listen`` core) on loopback, fed by dcmtk's storescu and pynetdicom.

Known answers: the demo patient sent by storescu becomes the same case as
``import_directory`` of the same folder (time points, times, series, activities,
VOIs); an unknown calling AE title is refused and logged; a corrupt instance among
good ones is refused with status 0xC210 and logged while the good ones import; file
names never come from the peer's data.
"""

from __future__ import annotations

import re
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from dosimetry_core.cli.main import case_summary
from dosimetry_core.errors import InvalidInputError
from dosimetry_core.pipeline.dicom_scp import (
    STATUS_CANNOT_UNDERSTAND,
    STATUS_DOES_NOT_MATCH,
    STATUS_OUT_OF_RESOURCES,
    ScpSettings,
    StorageServer,
)
from dosimetry_core.store import CaseStore
from tests.core.net_peers import storescu


def _content(store: CaseStore, case_id: str) -> dict:
    """What a case holds, without its store-made ids and versions."""
    case = store.load_case(case_id)
    data = case_summary(case)
    for tp in data["time_points"]:
        tp.pop("time_point_id")
    for a in data["administrations"]:
        a.pop("administration_id")
    for key in ("case_id", "version", "description"):
        data.pop(key)
    data["vois"] = sorted((v.name, case.time_point(v.time_point_id).label) for v in case.vois)
    return data


@pytest.fixture()
def server(tmp_path):
    """A started SCP on a free loopback port with its log lines; stopped at the end."""
    lines: list[str] = []
    store = CaseStore(tmp_path / "store")

    def make(**kw) -> StorageServer:
        settings = ScpSettings(ae_title="MRTDOSE", port=0, host="127.0.0.1", idle_s=0.2, **kw)
        srv = StorageServer(store, settings, log=lines.append)
        srv.start()
        made.append(srv)
        return srv

    made: list[StorageServer] = []
    yield make, store, lines
    for srv in made:
        srv.stop()
    store.close()


def test_storescu_sends_the_demo_patient_same_case_as_import(
    server, small_demo_dirs, small_demo_imported_store
):
    make, store, lines = server
    srv = make(allowed_calling_aes=("STORESCU",))
    demo = small_demo_dirs["siemens-bqml"]
    done = storescu(srv.port, "MRTDOSE", "STORESCU", demo)
    assert done.returncode == 0, done.stderr
    assert srv.wait_until_idle(timeout_s=300)
    n_files = len(list(demo.rglob("*.dcm")))
    # one association, every instance stored, one line naming AE and address
    [rec] = srv.records
    assert (rec.calling_ae, rec.address, rec.outcome) == ("STORESCU", "127.0.0.1", "released")
    assert (rec.received, rec.stored, rec.rejected) == (n_files, n_files, [])
    assert any(
        f"association #1 from AE 'STORESCU' at 127.0.0.1:{rec.port} released: "
        f"{n_files} instance(s) received, {n_files} stored, 0 rejected" in line
        for line in lines
    )
    # one case with every time point, equal to mrtdose import of the same folder
    [summary] = store.list_cases()
    template, ref_id = small_demo_imported_store
    with CaseStore(template) as ref:
        want = _content(ref, ref_id)
    got = _content(store, summary.case_id)
    assert len(got["time_points"]) == len(want["time_points"]) == 4
    assert got == want
    # each study's import line names the case
    imports = [line for line in lines if line.startswith("study ")]
    assert len(imports) == len(srv.imports) == 4
    assert all(f"imported into case {summary.case_id}" in line for line in imports)
    # file names are digests, not the peer's UIDs or names
    names = [p.name for p in (store.path / "incoming").rglob("*") if p.is_file()]
    assert len(names) == n_files
    assert all(re.fullmatch(r"[0-9a-f]{24}\.dcm", n) for n in names)


def test_unknown_calling_ae_is_refused_and_logged(server, small_demo_dirs):
    make, store, lines = server
    srv = make(allowed_calling_aes=("GOODSCU",))
    one = next(small_demo_dirs["siemens-bqml"].rglob("NM*/*.dcm"))
    done = storescu(srv.port, "MRTDOSE", "EVIL", one)
    assert done.returncode != 0
    assert "Calling AE Title Not Recognized" in done.stderr
    assert srv.wait_until_idle(timeout_s=30)
    [rec] = srv.records
    assert (rec.outcome, rec.calling_ae, rec.address) == ("refused", "EVIL", "127.0.0.1")
    assert any("from AE 'EVIL' at 127.0.0.1" in x and "refused" in x for x in lines)
    assert not list((store.path / "incoming").rglob("*.dcm"))
    assert store.list_cases() == []


def _corrupt_file(path: Path, template: Path) -> str:
    """A CT instance whose body cannot be decoded: a sequence of garbage after the UIDs."""
    src = pydicom.dcmread(template, stop_before_pixels=True)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = src.SOPClassUID
    uid = generate_uid()
    meta.MediaStorageSOPInstanceUID = uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.preamble = b"\0" * 128
    ds.SOPClassUID = src.SOPClassUID
    ds.SOPInstanceUID = uid
    ds.save_as(path, enforce_file_format=True)
    # (0008,1115) SQ of undefined length whose "item" is not an item tag
    with path.open("ab") as f:
        f.write(
            b"\x08\x00\x15\x11SQ\x00\x00\xff\xff\xff\xff\x01\x02\x03\x04\x05\x06\x07\x08garbage"
        )
    return uid


def _send(port: int, paths: list, calling: str = "PYSCU") -> list[int]:
    from pynetdicom import AE

    ae = AE(ae_title=calling)
    classes = {
        str(pydicom.filereader.read_file_meta_info(p).MediaStorageSOPClassUID) for p in paths
    }
    for c in sorted(classes):  # the files are sent as they are: Explicit VR Little Endian
        ae.add_requested_context(c, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", port, ae_title="MRTDOSE")
    assert assoc.is_established
    try:
        return [int(assoc.send_c_store(p).Status) for p in paths]
    finally:
        assoc.release()


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")
def test_corrupt_and_hostile_instances_rejected_good_ones_import(
    server, small_demo_dirs, tmp_path, monkeypatch
):
    from pynetdicom import _config

    # send files as they are on disk (the corrupt body is not decoded by our SCU)
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)
    make, store, lines = server
    srv = make()
    tp1 = next(small_demo_dirs["siemens-bqml"].glob("tp1*"))
    good = sorted(p for p in tp1.rglob("*.dcm") if "RTSTRUCT" not in p.parts)
    bad = tmp_path / "corrupt.dcm"
    bad_uid = _corrupt_file(bad, good[0])
    # a dataset whose UIDs try to climb out of the incoming folder
    evil_ds = pydicom.dcmread(good[0])
    evil_ds.SOPInstanceUID = "../../../../tmp/evil"
    evil_ds.file_meta.MediaStorageSOPInstanceUID = "../../../../tmp/evil"
    evil_ds.StudyInstanceUID = "../../outside"
    evil = tmp_path / "evil.dcm"
    evil_ds.save_as(evil)
    statuses = _send(srv.port, [*good[:3], bad, evil, *good[3:]])
    assert statuses[3] == STATUS_CANNOT_UNDERSTAND
    assert statuses[4] == STATUS_DOES_NOT_MATCH
    assert set(statuses[:3] + statuses[5:]) == {0}
    assert srv.wait_until_idle(timeout_s=120)
    [rec] = srv.records
    assert (rec.received, rec.stored) == (len(good) + 2, len(good))
    assert [r.sop_instance_uid for r in rec.rejected] == [bad_uid, "../../../../tmp/evil"]
    assert any(f"rejected {bad_uid}: status 0xC210" in x for x in lines)
    assert any("no valid SOP Instance UID" in x for x in lines)
    # the good instances made the case with its time point; nothing written outside
    [c] = store.list_cases()
    assert c.n_time_points == 1
    files = [p for p in (store.path / "incoming").rglob("*") if p.is_file()]
    assert len(files) == len(good)
    assert not (store.path / "outside").exists() and not Path("/tmp/evil").exists()
    # the SCP is still serving
    assert _send(srv.port, good[:1]) == [0]


def test_free_space_reserve_refuses_instances_and_keeps_serving(server, small_demo_dirs):
    """A sender cannot fill the disk that holds the store: an instance that would leave less
    than the reserve free is refused with 0xA700 and its reason logged; nothing is filed."""
    import shutil as _shutil

    make, store, lines = server
    tp1 = next(small_demo_dirs["siemens-bqml"].glob("tp1*"))
    good = sorted(p for p in tp1.rglob("*.dcm") if "RTSTRUCT" not in p.parts)[:2]
    free_mb = _shutil.disk_usage(store.path).free / 2**20
    srv = make(min_free_mb=free_mb + 10_000)  # more than the disk has: every instance refused
    assert _send(srv.port, good) == [STATUS_OUT_OF_RESOURCES] * 2
    assert srv.wait_until_idle(timeout_s=60)
    assert any("0xA700" in x and "--min-free-mb" in x for x in lines), lines
    incoming = store.path / "incoming"
    assert not incoming.exists() or not [p for p in incoming.rglob("*") if p.is_file()]
    assert store.list_cases() == []
    ok = make(min_free_mb=0)  # no reserve: the same files are filed
    assert _send(ok.port, good) == [0, 0]


def test_settings_refused_with_the_option_named(tmp_path):
    with CaseStore(tmp_path / "s") as store:
        with pytest.raises(InvalidInputError, match="--ae-title") as e:
            StorageServer(store, ScpSettings(ae_title="A" * 17, port=0))
        assert e.value.field == "ae_title"
        with pytest.raises(InvalidInputError, match="--allow-ae") as e:
            StorageServer(store, ScpSettings(ae_title="OK", port=0, allowed_calling_aes=("a\\b",)))
        with pytest.raises(InvalidInputError, match="--port"):
            StorageServer(store, ScpSettings(ae_title="OK", port=70000))
        with pytest.raises(InvalidInputError, match="--min-free-mb") as e:
            StorageServer(store, ScpSettings(ae_title="OK", port=0, min_free_mb=-1))
        assert e.value.field == "min_free_mb"


def test_a_study_is_imported_once_when_all_its_associations_ended(server, small_demo_dirs):
    """The rule: import after every association that brought the study ended, then idle_s."""
    import time

    from pynetdicom import AE

    make, store, lines = server
    srv = make()
    tp1 = next(small_demo_dirs["siemens-bqml"].glob("tp1*"))
    ct = sorted(tp1.glob("CT/*.dcm"))
    nm = sorted(tp1.glob("NM*/*.dcm"))

    def open_assoc():
        ae = AE(ae_title="PYSCU")
        for f in (*ct[:1], *nm[:1]):
            ae.add_requested_context(
                str(pydicom.filereader.read_file_meta_info(f).MediaStorageSOPClassUID),
                ExplicitVRLittleEndian,
            )
        assoc = ae.associate("127.0.0.1", srv.port, ae_title="MRTDOSE")
        assert assoc.is_established
        return assoc

    a, b = open_assoc(), open_assoc()
    assert all(int(a.send_c_store(pydicom.dcmread(f)).Status) == 0 for f in ct)
    assert all(int(b.send_c_store(pydicom.dcmread(f)).Status) == 0 for f in nm)
    a.release()
    time.sleep(1.0)  # five times idle_s: still waiting, b is open
    assert srv.imports == [] and store.list_cases() == []
    b.release()
    assert srv.wait_until_idle(timeout_s=120)
    [done] = srv.imports
    assert done.associations == [1, 2]
    [c] = store.list_cases()
    case = store.load_case(c.case_id)
    [tp] = case.sorted_time_points()
    assert tp.anatomical is not None  # the CT of association 1 with the NM of association 2
