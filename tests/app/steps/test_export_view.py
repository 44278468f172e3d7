"""The exports step in a window (pytest-qt), driven like a user.

One module copy of the shared analysis case with a dose computed by the core
(local energy deposition: small and fast), a hand-written protocol run and a draft
report; each test exports from its own copy.  Known answers: the RT Dose read back
holds the core's dose maximum within one quantisation step; RT Dose, SEG and the
Encapsulated PDF pass dciodvfy; the PDF in the DICOM file is the stored report's;
after an anonymised export the patient's name and ID are gone and the secret is in
no file, no store byte, no log line and no widget; the histogram has the bars and
the patient line of the core's record; a technologist cannot export.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QLineEdit

from app.session import CaseSession
from app.steps.export.view import ExportStepView
from dosimetry_core.io.encapsulated_pdf import read_encapsulated_pdf
from dosimetry_core.io.rtdose import read_rtdose
from dosimetry_core.model import DerivedKind
from dosimetry_core.reporting.population import population_ranges
from dosimetry_core.store import CaseStore
from dosimetry_core.store.permissions import Actor
from tests.app.steps.conftest import ENTRY_CASE_ID, ENTRY_PASSWORDS, add_entry_accounts
from tests.core.reporting._synthetic import synthetic_case

SECRET = "Zebra-Secret-7731"
HAVE_DCIODVFY = shutil.which("dciodvfy") is not None
TIMEOUT_MS = 120_000


def _protocol_run(case_id: str) -> Any:
    from dosimetry_core.model.results import ProtocolRun

    run = {
        "format": "mrt-protocol-run/1",
        "case_id": case_id,
        "protocol": "lu177-dotatate",
        "method": "multi-point",
        "dose_method": "led",
        "nuclide": "Lu-177",
        "administered_activity_mbq": 7400.0,
        "dose_map_id": None,
        "organs": {
            "kidneys": {
                "label": "Kidneys", "vois": ["Kidney_L"], "review_flags": [""],
                "mass_g": 150.0, "dose_gy": 4.44, "dose_sd_gy": 0.4, "bed_gy": 5.0,
                "eqd2_gy": 4.0, "dose_per_activity_gy_per_gbq": 0.6,
            }
        },
        "vois": [],
        "limit_checks": [],
        "all_limits_passed": True,
        "next_cycle": {},
        "previous_cycle_cases": [],
        "warnings": [],
        "checklist": [],
        "computed_at": "2026-01-12T10:00:00",
        "user": "physicist",
    }  # fmt: skip
    return ProtocolRun.from_dict(run)


@pytest.fixture(scope="module")
def export_dir(analysis_store_dir: Path, shared_kernel_cache: Path, tmp_path_factory: Any) -> Path:
    """The analysis case with an LED dose map, a protocol run and a draft report."""
    from dosimetry_core.pipeline.dose import compute_dose
    from dosimetry_core.reporting.records import create_report

    folder = tmp_path_factory.mktemp("export-view") / "store"
    shutil.copytree(analysis_store_dir, folder)
    case_id = (folder / "CASE_ID").read_text()
    with CaseStore(folder) as store:
        compute_dose(store, case_id, method="led")
        case = store.load_case(case_id)
        case.add_result(_protocol_run(case_id))
        store.save_case(case)
        create_report(store, Actor("alice", "physicist"), case_id)
    return folder


@pytest.fixture()
def export_store(export_dir: Path, tmp_path: Path) -> Any:
    shutil.copytree(export_dir, tmp_path / "store")
    store = CaseStore(tmp_path / "store")
    store.case_id = (tmp_path / "store" / "CASE_ID").read_text()  # type: ignore[attr-defined]
    yield store
    store.close()


def _open(qtbot: Any, store: CaseStore, case_id: str, user: str | None = None) -> ExportStepView:
    session = CaseSession(store, store.path)
    if user is not None:
        session.login(user, ENTRY_PASSWORDS[user])
    view = ExportStepView(session)
    qtbot.addWidget(view)
    view.resize(1100, 900)
    view.show()
    session.open_case(case_id)
    return view


def _type(widget: QLineEdit, text: str) -> None:
    widget.setFocus()
    widget.selectAll()
    QTest.keyClicks(widget, text)


def _click(widget: Any) -> None:
    QTest.mouseClick(widget, Qt.MouseButton.LeftButton)


def _tick(box: Any, on: bool = True) -> None:
    if box.isChecked() != on:
        box.click()


def _export(qtbot: Any, view: ExportStepView) -> None:
    _click(view.export_button)
    assert view.is_running(), view.error_label.text()
    qtbot.waitUntil(lambda: not view.is_running(), timeout=TIMEOUT_MS)
    view.session.cancel_jobs()


def _dciodvfy_errors(path: Path) -> list[str]:
    out = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in (out.stdout + out.stderr).splitlines() if "Error" in line]


def test_export_rtdose_seg_and_report_read_back_and_validate(qtbot, export_store, tmp_path):
    from dosimetry_core.reporting.records import list_reports, report_pdf

    view = _open(qtbot, export_store, export_store.case_id)
    assert "UNSIGNED draft" in view.report_label.text()
    assert "led" in view.doses_label.text()
    out = tmp_path / "out"
    _tick(view.seg_check)
    _tick(view.images_check)
    _tick(view.report_check)
    assert not view.ct_dir_edit.isEnabled()  # the re-written CT is referenced
    _type(view.out_dir_edit, str(out))
    progress: list[int] = []
    view.progress_bar.valueChanged.connect(progress.append)
    _export(qtbot, view)

    assert progress and max(progress) == 1000 and view.progress_bar.isHidden()
    shown = view.files_as_shown()
    kinds = {r["Type"] for r in shown}
    assert {"RT Dose", "Segmentation (SEG)", "Encapsulated PDF"} <= kinds
    by_type = {r["Type"]: r for r in shown}
    assert by_type["RT Dose"]["SOP Class"] == "RT Dose Storage"
    assert by_type["Segmentation (SEG)"]["SOP Class"] == "Segmentation Storage"
    assert by_type["Encapsulated PDF"]["SOP Class"] == "Encapsulated PDF Storage"
    assert view.summary_label.text().startswith(f"Exported {len(shown)} file(s) to {out}")

    [rd] = sorted((out / "RTDOSE").glob("*.dcm"))
    [seg] = sorted((out / "SEG").glob("*.dcm"))
    [doc] = sorted((out / "DOC").glob("*.dcm"))
    assert by_type["RT Dose"]["File"] == f"RTDOSE/{rd.name}"
    assert [r["Type"] for r in shown[:3]] == ["RT Dose", "Segmentation (SEG)", "Encapsulated PDF"]
    assert pydicom.dcmread(rd, stop_before_pixels=True).Modality == "RTDOSE"
    assert pydicom.dcmread(seg, stop_before_pixels=True).Modality == "SEG"
    case = export_store.load_case(export_store.case_id)
    [dose_map] = case.derived_maps(DerivedKind.DOSE)
    core_max = float(np.max(export_store.load_volume(dose_map.volume).array))
    back = read_rtdose(rd)
    assert float(np.max(back.volume.array)) == pytest.approx(core_max, abs=back.dose_grid_scaling)
    [rep] = list_reports(export_store, export_store.case_id)
    assert read_encapsulated_pdf(doc).pdf == report_pdf(export_store, rep.report_id)
    if HAVE_DCIODVFY:
        assert _dciodvfy_errors(seg) == []
        assert _dciodvfy_errors(doc) == []
        # dciodvfy asserts on 32-bit pixels: the header is checked on a 16-bit copy; the
        # Referenced Treatment Record (Type 1C for RECORD) has no object to reference
        ds = pydicom.dcmread(rd)
        stored = ds.pixel_array
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
        ds.PixelData = (stored >> 16).astype("<u2").tobytes()
        copy = tmp_path / "rd16.dcm"
        ds.save_as(copy, enforce_file_format=True)
        errors = [e for e in _dciodvfy_errors(copy) if "ReferencedTreatmentRecord" not in e]
        assert errors == []


def _all_bytes(folder: Path) -> list[tuple[Path, bytes]]:
    return [(p, p.read_bytes()) for p in folder.rglob("*") if p.is_file()]


def test_anonymised_export_the_secret_is_nowhere(qtbot, export_store, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    view = _open(qtbot, export_store, export_store.case_id)
    out = tmp_path / "anon"
    _tick(view.anon_check)
    assert not view.report_check.isEnabled()  # a report cannot be de-identified
    assert view.secret_edit.echoMode() == QLineEdit.EchoMode.Password
    _type(view.secret_edit, SECRET)
    assert SECRET not in view.secret_edit.displayText()
    _type(view.out_dir_edit, str(out))
    _export(qtbot, view)

    assert view.secret_edit.text() == ""
    summary = view.summary_label.text()
    assert "Anonymised: patient pseudonym ANON-" in summary
    case = export_store.load_case(export_store.case_id)
    [rd] = sorted((out / "RTDOSE").glob("*.dcm"))
    ds = pydicom.dcmread(rd, stop_before_pixels=True)
    assert str(ds.PatientID).startswith("ANON-") and ds.PatientID != case.patient.patient_id
    assert str(ds.PatientName) != case.patient.name
    assert ds.PatientID in summary
    from dosimetry_core.io.anonymize import Pseudonymiser

    assert ds.PatientID == Pseudonymiser(SECRET).patient_pseudonym(case.patient.patient_id)
    from dosimetry_core.store import audit

    [entry] = [e for e in audit.entries(export_store, case.case_id) if e.action == "export"]
    assert entry.details["anonymized"] is True and entry.details["out_dir"] == str(out)
    assert SECRET not in repr(entry)
    needle = SECRET.encode()
    wide = SECRET.encode("utf-16-le")
    export_store.close()  # the database flushed to its file
    for path, data in _all_bytes(out) + _all_bytes(Path(export_store.path)):
        assert needle not in data and wide not in data, path
    assert case.patient.patient_id.encode() not in b"".join(d for _, d in _all_bytes(out))
    assert SECRET not in caplog.text
    texts = [w.text() for w in view.findChildren(QLineEdit)]
    texts += [view.summary_label.text(), view.status_label.text(), view.error_label.text()]
    assert not any(SECRET in t for t in texts)


def test_secret_file_gives_the_same_pseudonym_and_refusals_are_inline(
    qtbot, export_store, tmp_path
):
    view = _open(qtbot, export_store, export_store.case_id)
    _tick(view.anon_check)
    _type(view.out_dir_edit, str(tmp_path / "a"))
    _tick(view.dose_check, False)  # nothing chosen
    _click(view.export_button)
    assert not view.is_running() and "choose what to export" in view.error_label.text()
    _tick(view.dose_check)
    _click(view.export_button)
    assert "project secret" in view.error_label.text() and not (tmp_path / "a").exists()
    _type(view.secret_edit, SECRET)
    _tick(view.anon_check, False)  # not anonymised any more: the secret is forgotten
    assert view.secret_edit.text() == "" and not view.secret_edit.isEnabled()
    _tick(view.anon_check)
    _type(view.secret_edit, SECRET)
    view.hide()  # leaving the step forgets it too
    view.show()
    assert view.secret_edit.text() == ""
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(SECRET + "\n")
    _type(view.secret_file_edit, str(secret_file))
    _export(qtbot, view)
    assert view.error_label.isHidden()
    _type(view.out_dir_edit, str(tmp_path / "a"))  # the same folder again
    QTest.keyClick(view.out_dir_edit, Qt.Key.Key_Return)
    assert view.dest_note.isVisible() and "overwritten" in view.dest_note.text()
    from dosimetry_core.io.anonymize import Pseudonymiser

    case = export_store.load_case(export_store.case_id)
    expected = Pseudonymiser(SECRET).patient_pseudonym(case.patient.patient_id)
    [rd] = sorted((tmp_path / "a" / "RTDOSE").glob("*.dcm"))
    assert pydicom.dcmread(rd, stop_before_pixels=True).PatientID == expected


def test_cancel_writes_nothing(qtbot, export_store, tmp_path):
    view = _open(qtbot, export_store, export_store.case_id)
    out = tmp_path / "never"
    _tick(view.images_check)
    _type(view.out_dir_edit, str(out))
    _click(view.export_button)
    assert view.cancel_button.isEnabled()
    _click(view.cancel_button)
    qtbot.waitUntil(lambda: not view.is_running(), timeout=TIMEOUT_MS)
    assert "cancelled" in view.status_label.text() and not out.exists()
    assert view.files_table.rowCount() == 0 and view.export_button.isEnabled()


def test_technologist_sees_everything_disabled_physician_may_export(qtbot, entry_store):
    add_entry_accounts(entry_store)
    view = _open(qtbot, entry_store, ENTRY_CASE_ID, user="tom")
    for w in view._export_widgets():
        assert not w.isEnabled(), w.objectName()
        assert "physicist or physician" in w.toolTip(), w.objectName()
    assert view.denied_label.isVisible() and "may not export" in view.denied_label.text()
    _click(view.export_button)
    assert not view.is_running()
    view.session.logout()
    view.session.login("dora", ENTRY_PASSWORDS["dora"])
    view.session.open_case(ENTRY_CASE_ID)
    assert view.export_button.isEnabled() and view.export_button.toolTip() == ""
    assert view.denied_label.isHidden()


def test_send_results_to_pacs_tab_follows_the_export_permission(qtbot, entry_store):
    add_entry_accounts(entry_store)
    view = _open(qtbot, entry_store, ENTRY_CASE_ID, user="tom")
    tabs = view.tabs
    names = [tabs.tabText(i) for i in range(tabs.count())]
    assert names == ["DICOM export", "Population ranges", "Send results to PACS"]
    tabs.setCurrentIndex(2)
    send = view.send_panel.send
    assert not send.isEnabled() and send.toolTip() == "your role may not export"
    assert ENTRY_CASE_ID in view.send_panel.case_label.text()
    view.session.logout()
    view.session.login("dora", ENTRY_PASSWORDS["dora"])
    view.session.open_case(ENTRY_CASE_ID)
    assert send.isEnabled() and send.toolTip() == ""


def _population_store(tmp_path: Path, others: tuple[float, ...]) -> tuple[CaseStore, str]:
    store = CaseStore(tmp_path / "pop")
    for n, v in enumerate(others):
        synthetic_case(store, f"P{n}", v)
    return store, synthetic_case(store, "ME", 0.65)


def test_histogram_bars_and_patient_line_are_the_core_record(qtbot, tmp_path):
    store, cid = _population_store(tmp_path, (0.4, 0.5, 0.6, 0.7, 0.8, 0.9))
    try:
        view = _open(qtbot, store, cid)
        view.tabs.setCurrentIndex(1)
        qtbot.waitUntil(lambda: view.organ_box.count() == 1, timeout=TIMEOUT_MS)
        k = population_ranges(store, cid)["organs"]["kidneys"]
        assert view.organ_box.currentText() == "Kidneys"
        assert view.bar_count() == 4  # 6 values, numpy "auto" bins (core test by hand)
        assert view.bars is not None and list(view.bars.opts["height"]) == [2, 1, 1, 2]
        assert view.marker_value() == pytest.approx(k["value_gy_per_gbq"])
        assert view.marker.label.toPlainText() == "this patient: 0.65 Gy/GBq"
        assert "percentile rank 50 % of 6 patient(s)" in view.percentile_label.text()
        bottom = view.plot.getAxis("bottom")
        assert "Gy/GBq" in bottom.labelText and bottom.autoSIPrefixScale == 1.0
        assert "6 other patient(s)" in view.pop_status.text()
    finally:
        view.session.cancel_jobs()
        store.close()


def test_too_small_a_population_is_said_not_drawn(qtbot, tmp_path):
    store, cid = _population_store(tmp_path, (0.4, 0.8))
    try:
        view = _open(qtbot, store, cid)
        view.tabs.setCurrentIndex(1)
        qtbot.waitUntil(lambda: view.organ_box.count() == 1, timeout=TIMEOUT_MS)
        assert view.plot.isHidden() and view.bar_count() == 0 and view.marker_value() is None
        assert "too small for a histogram: 2 other patient(s)" in view.pop_status.text()
        assert "percentile rank 50 % of 2 patient(s)" in view.percentile_label.text()
    finally:
        view.session.cancel_jobs()
        store.close()


def test_tour_driver_exports_rtdose_and_seg(qtbot, export_store, tmp_path):
    from types import SimpleNamespace

    from app.steps.export.tour import drive

    def wait_until(predicate: Any, timeout_s: float, what: str) -> None:
        qtbot.waitUntil(predicate, timeout=int(timeout_s * 1000))

    ctx = SimpleNamespace(out_dir=tmp_path, wait_until=wait_until, settle=lambda s=0.3: None)
    view = _open(qtbot, export_store, export_store.case_id)
    shown = drive(view, ctx)  # type: ignore[arg-type]
    assert shown["files_by_type"]["RT Dose"] == 1
    assert shown["files_by_type"]["Segmentation (SEG)"] == 1
    assert shown["files_by_type"]["Encapsulated PDF"] == 1
    assert len(list((tmp_path / "export" / "SEG").glob("*.dcm"))) == 1
    assert "UNSIGNED draft" in shown["report_offered"]
    assert "too small for a histogram: 0 other patient(s)" in shown["population"]
    assert (
        shown["percentile"] == "Kidneys: this patient 0.6 Gy/GBq, no other patients to compare with"
    )
