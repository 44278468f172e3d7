"""The kinetics step in a window (pytest-qt) on the analysis case, driven like a user.

Known answers: after "Fit all VOIs" the Kidney_L row and the model table show the
TIA ± SD and model of ``mrtdose kinetics CASE --json`` on the same store; the
plotted points are the core's TAC; an override is stored and still shown after
the case is opened again; a physician sees the fits with every compute button
disabled; the TIA map button makes a new map (and Cancel saves nothing).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from app.session import CaseSession
from app.steps.kinetics.model import TABLE_COLUMNS, VOI_COLUMNS
from app.steps.kinetics.view import KineticsStepView
from dosimetry_core.cli.main import main
from dosimetry_core.model import DerivedKind
from dosimetry_core.pipeline.kinetics_review import fit_case_kinetics
from tests.app.steps.conftest import ENTRY_PASSWORDS, add_entry_accounts

V_MODEL = VOI_COLUMNS.index("Model")
V_TIA = VOI_COLUMNS.index("TIA ± SD (MBq·h)")
T_TIA = TABLE_COLUMNS.index("TIA ± SD (MBq·h)")


@pytest.fixture()
def errors(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    from app.common import error_display

    shown: list[tuple[str, str]] = []
    monkeypatch.setattr(
        error_display,
        "show_error",
        lambda parent, title, msg, details="": shown.append((title, msg)),
    )
    return shown


def _view(qtbot: Any, session: CaseSession) -> KineticsStepView:
    view = KineticsStepView(session)
    qtbot.addWidget(view)
    view.resize(1280, 900)
    view.show()
    return view


def _row(view: KineticsStepView, name: str) -> int:
    for i in range(view.voi_table.rowCount()):
        if view.voi_table.item(i, 0).text() == name:
            return i
    raise AssertionError(f"no VOI {name}")


def _select(view: KineticsStepView, name: str) -> None:
    item = view.voi_table.item(_row(view, name), 0)
    view.voi_table.scrollToItem(item)
    rect = view.voi_table.visualItemRect(item)
    QTest.mouseClick(view.voi_table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def _click_and_wait(qtbot: Any, view: KineticsStepView, button: Any) -> None:
    assert button.isEnabled()
    QTest.mouseClick(button, Qt.MouseButton.LeftButton)
    assert view.is_running() and view.progress_bar.isVisible()
    assert view.cancel_button.isEnabled() and not view.fit_button.isEnabled()
    qtbot.waitUntil(lambda: not view.is_running(), timeout=120_000)


def _selected_model_row(view: KineticsStepView) -> list[str]:
    t = view.model_table
    for i in range(t.rowCount()):
        if t.item(i, 0).text().startswith("✔"):
            return [t.item(i, j).text() for j in range(t.columnCount())]
    raise AssertionError("no model marked as selected")


def test_fit_all_shows_the_cli_numbers_and_the_tac(qtbot, analysis_session, errors, capsys):
    view = _view(qtbot, analysis_session)
    assert view.voi_table.item(_row(view, "Kidney_L"), V_MODEL).text() == "not fitted"
    _click_and_wait(qtbot, view, view.fit_button)
    assert errors == []
    assert view.status_label.text().startswith("Fitted 15 VOI(s)")
    _select(view, "Kidney_L")

    store = analysis_session.store
    capsys.readouterr()
    argv = ["--store", str(store.path), "kinetics", store.case_id, "--voi", "Kidney_L", "--json"]
    assert main(argv) == 0
    cli = json.loads(capsys.readouterr().out)["vois"][0]
    tia_text = f"{cli['tia_mbq_h']:.1f} ± {cli['tia_sd_mbq_h']:.1f}"
    row = _row(view, "Kidney_L")
    assert view.voi_table.item(row, V_MODEL).text() == cli["model"]
    assert view.voi_table.item(row, V_TIA).text() == tia_text
    sel = _selected_model_row(view)
    assert sel[0] == "✔ " + cli["model"] and sel[T_TIA] == tia_text
    assert f"TIA {tia_text} MBq·h" in view.summary_label.text()
    assert view.voi_table.item(row, VOI_COLUMNS.index("Review")).text().startswith("contour")

    # the plot: the core's TAC points with error bars, every candidate's curve, residuals
    tac = analysis_session.case.kinetics.voi(cli["voi_id"]).tac
    x, y = view.points_item.getData()
    np.testing.assert_allclose(x, tac.time_h)
    np.testing.assert_allclose(y, tac.activity_mbq)
    np.testing.assert_allclose(view.error_item.opts["top"], 0.1 * np.asarray(tac.activity_mbq))
    legend = [label.text for _item, label in view.legend.items]
    assert f"{cli['model']} (selected)" in legend and "trapezoid" in legend
    assert view.curve_items[cli["model"]].opts["pen"].width() == 3
    rx, ry = view.residual_item.getData()
    np.testing.assert_allclose(rx, tac.time_h)
    np.testing.assert_allclose(ry, cli["fit"]["residuals_mbq"])
    # single-time-point comparison beside the fit
    assert view.stp_table.rowCount() == 4 and "Hänscheid" in view.stp_note.text()
    assert "Population T_eff" in view.population_label.text()


def test_override_and_recovery_are_stored_and_shown_after_reopening(
    qtbot, analysis_session, errors
):
    store = analysis_session.store
    fit_case_kinetics(store, store.case_id, vois=["Kidney_L", "Liver"])
    analysis_session.reload()
    view = _view(qtbot, analysis_session)
    _select(view, "Kidney_L")
    before = view.voi_table.item(_row(view, "Kidney_L"), V_TIA).text()
    view.override_box.setCurrentIndex(view.override_box.findData("biexp-uptake"))
    view.recovery_box.setCurrentIndex(view.recovery_box.findData("fwhm"))
    assert view.fwhm_spin.isVisible()
    view.fwhm_spin.setValue(11.0)
    _click_and_wait(qtbot, view, view.override_button)
    assert errors == []
    row = _row(view, "Kidney_L")
    assert view.voi_table.item(row, V_MODEL).text() == "biexp-uptake (override)"
    assert "Gaussian PSF FWHM 11 mm" in view.summary_label.text()
    after = view.voi_table.item(row, V_TIA).text()
    assert float(after.split(" ")[0]) > float(before.split(" ")[0])  # spill-out corrected

    analysis_session.open_case(store.case_id)  # reopened from the store
    view2 = _view(qtbot, analysis_session)
    _select(view2, "Kidney_L")
    assert view2.voi_table.item(_row(view2, "Kidney_L"), V_MODEL).text().endswith("(override)")
    assert view2.override_box.currentData() == "biexp-uptake"
    assert _selected_model_row(view2)[0] == "✔ biexp-uptake"


def test_physician_may_look_but_not_fit(qtbot, analysis_store):
    fit_case_kinetics(analysis_store, analysis_store.case_id, vois=["Kidney_L"])
    add_entry_accounts(analysis_store)
    session = CaseSession(analysis_store, analysis_store.path)
    session.login("dora", ENTRY_PASSWORDS["dora"])
    session.open_case(analysis_store.case_id)
    view = _view(qtbot, session)
    _select(view, "Kidney_L")
    assert view.voi_table.item(_row(view, "Kidney_L"), V_MODEL).text() == "mono"
    assert _selected_model_row(view)[0] == "✔ mono"
    for w in (view.fit_button, view.override_button, view.tia_map_button, view.recovery_box):
        assert not w.isEnabled()
    assert "may look" in view.fit_button.toolTip()
    session.cancel_jobs()


def test_tia_map_is_made_and_cancel_saves_nothing(qtbot, analysis_session, errors):
    view = _view(qtbot, analysis_session)
    old = analysis_session.case.derived_maps(DerivedKind.TIA_MAP)[0].derived_id
    QTest.mouseClick(view.tia_map_button, Qt.MouseButton.LeftButton)
    assert view.is_running()
    QTest.mouseClick(view.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not view.is_running(), timeout=120_000)
    assert view.status_label.text().startswith("Cancelled")
    assert analysis_session.case.derived_maps(DerivedKind.TIA_MAP)[0].derived_id == old

    _click_and_wait(qtbot, view, view.tia_map_button)
    assert errors == []
    new = analysis_session.case.derived_maps(DerivedKind.TIA_MAP)[0].derived_id
    assert new != old
    assert "Voxel-wise TIA map made" in view.status_label.text()
    assert "MBq·h" in view.status_label.text()
    assert "Voxel-wise TIA map: TIA map" in view.tia_map_label.text()


def test_a_stored_qa_recovery_record_feeds_the_fit(qtbot, analysis_session, errors):
    from datetime import datetime, timedelta

    from dosimetry_core.qa.records import store_record

    store = analysis_session.store
    curve = {"model": "gaussian-psf", "parameters": {"fwhm_mm": 11.0}, "covariance": [[0.04]]}
    rec = store_record(
        store,
        "recovery",
        "CAM-1",
        "Lu-177",
        datetime.now() - timedelta(days=1),
        {"fwhm_mm": 11.0, "curve": curve},
    )
    fit_case_kinetics(store, store.case_id, vois=["Kidney_L"])
    analysis_session.reload()
    view = _view(qtbot, analysis_session)
    _select(view, "Kidney_L")
    before = float(view.voi_table.item(_row(view, "Kidney_L"), V_TIA).text().split(" ")[0])
    view.recovery_box.setCurrentIndex(view.recovery_box.findData("record"))
    assert view.record_box.isVisible() and not view.fwhm_spin.isVisible()
    idx = view.record_box.findData(rec.record_id)
    assert idx >= 0 and "CAM-1" in view.record_box.itemText(idx)
    assert "valid" in view.record_box.itemText(idx)
    view.record_box.setCurrentIndex(idx)
    _click_and_wait(qtbot, view, view.override_button)
    assert errors == []
    assert "RC(volume)" in view.summary_label.text()
    after = float(view.voi_table.item(_row(view, "Kidney_L"), V_TIA).text().split(" ")[0])
    assert after > before  # the phantom's RC < 1 at the kidney's volume
