"""PACS query/retrieve and send on loopback: dcmtk dcmqrscp and storescp, pynetdicom SCPs.

Known answers: C-FIND of the demo patient returns the study loaded into dcmqrscp;
C-GET and C-MOVE bring its every instance and the import makes the case with that
time point (same content as ``import_directory`` of the same files); ``send_case``
delivers RT Dose + SEG + Encapsulated PDF that dciodvfy finds without errors, and
the RT Dose's SOP Instance UID is the one the export wrote; each failure (nobody
listening, a refused association, a failed C-STORE, a SOP class the peer does not
take) is a message naming the peer or the instance and the status.
"""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.pipeline.importing import import_directory
from dosimetry_core.pipeline.pacs import (
    PacsError,
    PacsPeer,
    SendFailedError,
    find_studies,
    load_peer,
    retrieve_study,
    save_peer,
    send_case,
)
from dosimetry_core.store import CaseStore
from tests.conftest import copy_store
from tests.core.net_peers import (
    PATIENT_ID,
    dciodvfy_errors,
    free_port,
    start_dcmqrscp,
    start_storescp,
)

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n"


@pytest.fixture(scope="module")
def tp1_dir(small_demo_dirs) -> Path:
    return next(small_demo_dirs["siemens-bqml"].glob("tp1*"))


@pytest.fixture(scope="module")
def qr(tmp_path_factory, tp1_dir):
    yield from start_dcmqrscp(tmp_path_factory.mktemp("dcmqrscp"), tp1_dir)


def _peer(port: int, called: str = "PACS") -> PacsPeer:
    return PacsPeer("127.0.0.1", port, called, "MRTDOSE", timeout_s=20)


def test_find_returns_the_study_of_the_patient(qr):
    [study] = find_studies(_peer(qr.port), PATIENT_ID)
    assert study.study_instance_uid == qr.study_uid
    assert study.patient_id == PATIENT_ID
    assert study.patient_name == "Demo^Lutetium"
    assert find_studies(_peer(qr.port), "NOBODY-42") == []


@pytest.mark.parametrize("bad", ["*", "MRT*", "A\\B", "", "x" * 65])
def test_find_refuses_wildcards_and_empty_ids(qr, bad):
    with pytest.raises(InvalidInputError) as e:
        find_studies(_peer(qr.port), bad)
    assert e.value.field == "patient_id"


def test_unreachable_and_refusing_peers_named(qr):
    with pytest.raises(PacsError, match=r"PACS PACS@127\.0\.0\.1:\d+ unreachable"):
        find_studies(_peer(free_port()), PATIENT_ID)
    with pytest.raises(PacsError, match="refused the association from AE 'MRTDOSE'"):
        find_studies(_peer(qr.port, called="NOTPACS"), PATIENT_ID)


@pytest.mark.parametrize("method", ["get", "move"])
def test_retrieve_imports_the_study(qr, tp1_dir, tmp_path, method):
    with CaseStore(tmp_path / "store") as store:
        res = retrieve_study(
            store, _peer(qr.port), qr.study_uid, method=method, move_port=qr.move_port
        )
        assert (res.received, res.stored, res.rejected) == (qr.n_instances, qr.n_instances, [])
        assert res.status.startswith("0x0000")
        [c] = res.import_report.cases
        assert (c.time_points, c.new_time_points, c.patient_id) == (1, 1, PATIENT_ID)
        case = store.load_case(c.case_id)
        with CaseStore(tmp_path / "ref") as ref:
            want = ref.load_case(import_directory(ref, tp1_dir).cases[0].case_id)
        [got_tp], [want_tp] = case.sorted_time_points(), want.sorted_time_points()
        assert got_tp.acquired_at == want_tp.acquired_at
        assert got_tp.functional.series_instance_uid == want_tp.functional.series_instance_uid
        assert got_tp.total_activity_mbq == pytest.approx(want_tp.total_activity_mbq, rel=1e-12)
        assert sorted(v.name for v in case.vois) == sorted(v.name for v in want.vois)
        # a second retrieve adds nothing: the store already holds the series
        again = retrieve_study(store, _peer(qr.port), qr.study_uid, method="get")
        assert again.import_report.cases == [] and again.import_report.n_already_present == 1


def test_retrieve_refuses_a_bad_uid_before_asking(tmp_path):
    with CaseStore(tmp_path / "s") as store, pytest.raises(InvalidInputError) as e:
        retrieve_study(store, _peer(1), "1.2.3.*")
    assert e.value.field == "study_uid"


def test_peer_file_round_trip_and_bad_file(tmp_path):
    peer = PacsPeer("pacs.example.org", 104, "ARCHIVE", "DOSIMETRY", 12.5)
    assert load_peer(save_peer(peer, tmp_path / "pacs.json")) == peer
    (tmp_path / "bad.json").write_text('{"host": "h", "port": 104}')
    with pytest.raises(InvalidInputError, match="has no 'called_ae'"):
        load_peer(tmp_path / "bad.json")
    with pytest.raises(InvalidInputError, match="--called-ae"):
        PacsPeer("h", 104, "WAY_TOO_LONG_AE_TITLE").checked()


# ---------------------------------------------------------------------- send
@pytest.fixture(scope="module")
def results_case(small_demo_registered_store, shared_kernel_cache, tmp_path_factory):
    """The demo case with a dose map (LED) and its VOIs (the demo RTSTRUCT the import attached)."""
    from dosimetry_core.pipeline.dose import compute_dose
    from dosimetry_core.pipeline.tia_map import compute_tia_map

    mp = pytest.MonkeyPatch()
    mp.setenv("MRTDOSE_KERNEL_CACHE", str(shared_kernel_cache))
    template, case_id = small_demo_registered_store
    path = copy_store(template, tmp_path_factory.mktemp("send-store") / "store")
    with CaseStore(path) as store:
        case = store.load_case(case_id)
        if not case.vois:
            raise AssertionError("the registered demo case has its RTSTRUCT VOIs")
        compute_tia_map(store, case_id)
        compute_dose(store, case_id, method="led")
    yield path, case_id
    mp.undo()


@pytest.fixture()
def storescp(tmp_path):
    yield from start_storescp(tmp_path / "received")


def test_send_delivers_valid_rtdose_seg_and_pdf(results_case, storescp, small_demo_dirs):
    path, case_id = results_case
    ct_dir = next(small_demo_dirs["siemens-bqml"].glob("tp1*")) / "CT"
    with CaseStore(path) as store:
        res = send_case(
            store,
            PacsPeer("127.0.0.1", storescp.port, storescp.ae_title, "MRTDOSE"),
            case_id,
            report_pdf=PDF,
            ct_dir=ct_dir,
        )
    kinds = sorted(i.kind for i in res.instances)
    assert kinds == ["DOC", "RTDOSE", "SEG"]
    assert all(i.ok and i.status == 0 for i in res.instances)
    received = sorted(storescp.folder.glob("*.dcm"))
    assert len(received) == 3
    by_uid = {str(pydicom.dcmread(p).SOPInstanceUID): p for p in received}
    assert set(by_uid) == {i.sop_instance_uid for i in res.instances}
    modalities = sorted(str(pydicom.dcmread(p).Modality) for p in received)
    assert modalities == ["DOC", "RTDOSE", "SEG"]
    for p in received:
        assert dciodvfy_errors(p) == [], p
    doc = next(p for p in received if pydicom.dcmread(p).Modality == "DOC")
    assert bytes(pydicom.dcmread(doc).EncapsulatedDocument).rstrip(b"\0") == PDF.rstrip(b"\0")
    # no signed report in this case: said, not silently skipped
    with CaseStore(path) as store:
        res2 = send_case(
            store,
            PacsPeer("127.0.0.1", storescp.port, storescp.ae_title, "MRTDOSE"),
            case_id,
            seg=False,
        )
    assert [i.kind for i in res2.instances] == ["RTDOSE"]
    assert any("no signed report" in w for w in res2.warnings)


def _pynetdicom_scp(statuses: dict[str, int], classes: list[str]):
    """A pynetdicom storage SCP answering ``statuses[SOP class]`` (default success)."""
    from pynetdicom import AE, evt

    ae = AE(ae_title="PICKY")
    for c in classes:
        ae.add_supported_context(c)

    def on_store(event):
        return statuses.get(str(event.request.AffectedSOPClassUID), 0x0000)

    return ae.start_server(
        ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)]
    )


def test_failed_store_and_refused_class_named_with_instance_and_status(results_case):
    from pynetdicom.sop_class import EncapsulatedPDFStorage, RTDoseStorage

    path, case_id = results_case
    server = _pynetdicom_scp({str(RTDoseStorage): 0xA700}, [RTDoseStorage, EncapsulatedPDFStorage])
    try:
        peer = PacsPeer("127.0.0.1", server.server_address[1], "PICKY", "MRTDOSE")
        with CaseStore(path) as store, pytest.raises(SendFailedError) as e:
            send_case(store, peer, case_id, report_pdf=PDF, seg=True)
    finally:
        server.shutdown()
    res = e.value.result
    dose = next(i for i in res.instances if i.kind == "RTDOSE")
    seg = next(i for i in res.instances if i.kind == "SEG")
    doc = next(i for i in res.instances if i.kind == "DOC")
    assert dose.status == 0xA700 and not dose.ok
    assert seg.status is None and "does not accept SOP class" in seg.problem
    assert doc.ok
    msg = str(e.value)
    assert f"RTDOSE {dose.sop_instance_uid}: status 0xA700" in msg
    assert f"SEG {seg.sop_instance_uid}: the PACS does not accept SOP class" in msg
    assert "2 of 3 instance(s)" in msg


def test_get_refuses_instances_of_another_study(tp1_dir, small_demo_dirs, tmp_path):
    """A hostile Q/R peer answers a C-GET with an instance of another patient's study too."""
    from pynetdicom import AE, evt
    from pynetdicom.sop_class import (
        CTImageStorage,
        NuclearMedicineImageStorage,
        StudyRootQueryRetrieveInformationModelGet,
    )

    ours = sorted(p for p in tp1_dir.rglob("*.dcm") if "RTSTRUCT" not in p.parts)
    foreign = pydicom.dcmread(next(small_demo_dirs["siemens-bqml"].glob("tp2*/CT/*.dcm")))
    foreign.PatientID = "SOMEONE-ELSE"
    study = str(pydicom.dcmread(ours[0], stop_before_pixels=True).StudyInstanceUID)

    def on_get(event):
        yield len(ours) + 1
        for i, p in enumerate(ours):
            if i == 2:
                yield 0xFF00, foreign
            yield 0xFF00, pydicom.dcmread(p)

    ae = AE(ae_title="HOSTILE")
    ae.add_supported_context(StudyRootQueryRetrieveInformationModelGet)
    for c in (CTImageStorage, NuclearMedicineImageStorage):
        ae.add_supported_context(c, scu_role=True, scp_role=True)
    server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_GET, on_get)])
    try:
        peer = PacsPeer("127.0.0.1", server.server_address[1], "HOSTILE", "MRTDOSE")
        with CaseStore(tmp_path / "store") as store:
            res = retrieve_study(store, peer, study, method="get")
            [c] = store.list_cases()
            assert c.patient_id == PATIENT_ID
            assert all(x.patient_id != "SOMEONE-ELSE" for x in store.list_cases())
    finally:
        server.shutdown()
    assert (res.received, res.stored) == (len(ours) + 1, len(ours))
    [bad] = res.rejected
    assert bad.sop_instance_uid == str(foreign.SOPInstanceUID)
    assert bad.status == 0xA900 and "not of the study requested" in bad.reason
    assert res.failed == 1  # the peer counted our refusal as a failed sub-operation


def test_send_sends_the_newest_signed_report(results_case, storescp, tmp_path):
    """The report sent is the stored signed PDF, byte for byte (not a re-rendering)."""
    from dosimetry_core.model.results import ProtocolRun
    from dosimetry_core.reporting.records import create_report, report_pdf, sign
    from dosimetry_core.store.permissions import Actor
    from tests.core.reporting._synthetic import synthetic_case

    template, case_id = results_case
    path = copy_store(template, tmp_path / "store")
    phys, doc = Actor("alice", "physicist"), Actor("bob", "physician")
    with CaseStore(path) as store:
        # a hand-written protocol run (tests/core/reporting/_synthetic.py) on the demo case
        other = store.load_case(synthetic_case(store, "P-SYN", 0.5))
        run = next(r for r in other.results if isinstance(r, ProtocolRun))
        case = store.load_case(case_id)
        case.add_result(ProtocolRun.from_dict({**run.to_dict(), "case_id": case_id}))
        store.save_case(case)
        rid = create_report(store, phys, case_id).report_id
        peer = PacsPeer("127.0.0.1", storescp.port, storescp.ae_title, "MRTDOSE")
        with pytest.raises(InvalidInputError, match="nothing to send .*no signed report"):
            send_case(store, peer, case_id, rtdose=False, seg=False)  # a draft is not sent
        sign(store, phys, rid, "mpe")
        sign(store, doc, rid, "practitioner")
        res = send_case(store, peer, case_id, rtdose=False, seg=False)
        want = report_pdf(store, rid)
    assert res.report_id == rid
    [sent] = res.instances
    assert sent.kind == "DOC" and sent.ok
    [got] = list(storescp.folder.glob("*.dcm"))
    ds = pydicom.dcmread(got)
    assert str(ds.SOPInstanceUID) == sent.sop_instance_uid
    assert bytes(ds.EncapsulatedDocument)[: len(want)] == want
    assert dciodvfy_errors(got) == []


def test_send_references_the_ct_as_received_from_the_pacs(
    results_case, storescp, small_demo_dirs, tmp_path
):
    """A case whose CT came from the PACS (kept in the store's incoming folder): the SEG sent
    back references the very CT instances the PACS holds, without --ct-dir and without the
    're-written' warning; with nothing received the fallback is said."""
    from pydicom.uid import generate_uid

    from dosimetry_core.pipeline.dicom_scp import InstanceFiler, default_incoming_dir

    path, case_id = results_case
    peer = PacsPeer("127.0.0.1", storescp.port, storescp.ae_title, "MRTDOSE")
    copy = copy_store(path, tmp_path / "store")
    with CaseStore(copy) as store:
        res = send_case(store, peer, case_id, rtdose=False, report=False)
        assert any("re-written from the store" in w for w in res.warnings)
        case = store.load_case(case_id)
        contoured = {v.time_point_id for v in case.vois}
        filer = InstanceFiler(default_incoming_dir(store))
        originals: set[str] = set()
        for tp in case.sorted_time_points():
            if tp.time_point_id not in contoured:
                continue
            ct = next(small_demo_dirs["siemens-bqml"].glob(f"{tp.label.lower()}*")) / "CT"
            folder = filer.study_folder(tp.anatomical.study_instance_uid)
            folder.mkdir(parents=True, exist_ok=True)
            for i, f in enumerate(sorted(ct.glob("*.dcm"))):
                ds = pydicom.dcmread(f)
                assert str(ds.SeriesInstanceUID) == tp.anatomical.series_instance_uid
                # the scanner's own instance UIDs (the demo's files were written by our
                # writer, whose re-written CT would carry the same ones)
                uid = generate_uid(entropy_srcs=["scanner", str(ds.SOPInstanceUID)])
                ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid
                originals.add(str(uid))
                ds.save_as(folder / f"{i:04d}.dcm")
        before = set(storescp.folder.glob("*.dcm"))
        res = send_case(store, peer, case_id, rtdose=False, report=False)
    assert not any("re-written" in w for w in res.warnings), res.warnings
    [seg] = [p for p in set(storescp.folder.glob("*.dcm")) - before]
    ds = pydicom.dcmread(seg)
    assert ds.Modality == "SEG"
    refs = {
        str(item.ReferencedSOPInstanceUID)
        for series in ds.ReferencedSeriesSequence
        for item in series.ReferencedInstanceSequence
    }
    assert refs and refs <= originals
    assert dciodvfy_errors(seg) == []
