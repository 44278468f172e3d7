"""The import step's view-model, without Qt: input checks, run states, the summary tree."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from app.steps.importing.model import ImportModel
from dosimetry_core.errors import InvalidInputError
from dosimetry_core.pipeline.importing import import_directory
from dosimetry_core.store import CaseStore


def test_the_view_model_imports_no_qt():
    code = (
        "import sys, app.steps.importing.model; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'vtk')]; "
        "assert not bad, bad"
    )
    root = Path(__file__).resolve().parents[3]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)


def test_folder_is_checked_and_named_in_the_refusal(tmp_path):
    m = ImportModel()
    with pytest.raises(InvalidInputError) as empty:
        m.check("  ", "")
    assert empty.value.field == "folder"
    with pytest.raises(InvalidInputError, match="no such folder") as missing:
        m.check(str(tmp_path / "nowhere"), "")
    assert missing.value.field == "folder"
    f = tmp_path / "a.dcm"
    f.write_bytes(b"x")
    with pytest.raises(InvalidInputError, match="is a file") as a_file:
        m.check(str(f), "")
    assert a_file.value.field == "folder"
    assert m.folder == ""  # nothing kept from refused input
    folder, cf = m.check(str(tmp_path), "")
    assert folder == tmp_path and cf is None and m.job_kwargs() == {"calibration_cps_per_mbq": None}


@pytest.mark.parametrize("text", ["-3", "0", "abc", "nan", "inf"])
def test_a_calibration_factor_that_is_not_a_positive_number_is_refused(tmp_path, text):
    with pytest.raises(InvalidInputError) as err:
        ImportModel().check(str(tmp_path), text)
    assert err.value.field == "calibration_cps_per_mbq" and "cps/MBq" in str(err.value)


def test_a_calibration_factor_with_a_decimal_comma_is_read():
    m = ImportModel()
    assert m.parse_calibration("9,5") == pytest.approx(9.5)
    assert m.parse_calibration(" ") is None


def test_run_states_and_status_words(tmp_path):
    m = ImportModel()
    seen = []
    m.subscribe(lambda: seen.append((m.running, m.status)))
    m.check(str(tmp_path), "")
    m.started()
    assert m.running and str(tmp_path) in m.status
    m.progressed(1.7, "reading NM series 1/4")
    assert m.progress_fraction == 1.0 and m.status == "reading NM series 1/4"
    m.cancelled()
    assert not m.running and "cancelled" in m.status and m.summary() == []
    m.started()
    m.failed("disk full")
    assert not m.running and m.status == "Import failed: disk full"
    assert len(seen) == 5


def test_summary_of_a_real_import_in_words(small_demo_dirs, small_demo_truth, tmp_path):
    store = CaseStore(tmp_path / "store")
    m = ImportModel()
    m.check(str(small_demo_dirs["siemens-bqml"]), "")
    m.started()
    m.finished(import_directory(store, m.folder, **m.job_kwargs()))
    assert "4 time point(s) and 15 draft VOI(s) into 1 case(s)" in m.status
    (case_id,) = m.case_ids
    nodes = m.summary()
    case = nodes[0]
    assert case.kind == "case" and case.case_id == case_id
    assert "Demo^Lutetium (MRT-DEMO-001)" in case.text
    tps = [n.text for n in case.children if n.kind == "time-point"]
    assert len(tps) == 4
    for text, truth in zip(tps, small_demo_truth["time_points"], strict=True):
        assert f" · {truth['hours_after_administration']:.1f} h · NM '" in text
        assert "Bq/mL vendor" in text
    assert tps[1].startswith("TP2 · 24.0 h · NM 'Lu-177 SPECT 24 h p.i. (demo)' · 1 file")
    (vois,) = [n.text for n in case.children if n.kind == "vois"]
    assert "Liver" in vois and "Tumour_3" in vois
    (skipped,) = [n for n in nodes if n.kind == "skipped-group"]
    assert [c.text for c in skipped.children] == ["ground_truth.json: not a DICOM file"]

    again = ImportModel()
    again.check(str(small_demo_dirs["siemens-bqml"]), "")
    again.finished(import_directory(store, again.folder))
    texts = [n.text for n in again.summary()]
    assert texts[0] == "No case was created or changed." and again.case_ids == []
    assert any("already in the case" in t for t in texts)  # the structure set line
