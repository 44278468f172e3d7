"""The dose step in a window (pytest-qt) on the shared analysis case, driven like a user.

One voxel S-value run per module (the step's own settings, by the core) on a
module copy of the analysis case; each test works on its own copy of that.
What is asserted is what the user sees: table cells, plot data items, buttons,
the status line.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from app.session import CaseSession
from app.steps.dose.model import COLUMNS, RunSettings
from app.steps.dose.view import DoseStepView
from dosimetry_core.model.results import DoseSummary
from dosimetry_core.store import CaseStore
from tests.app.steps.conftest import ENTRY_CASE_ID, ENTRY_PASSWORDS, add_entry_accounts

C = {name: i for i, name in enumerate(COLUMNS)}


@pytest.fixture(scope="module")
def dose_dir(analysis_store_dir: Path, tmp_path_factory: Any) -> Path:
    from dosimetry_core.pipeline.dose import compute_dose

    folder = tmp_path_factory.mktemp("dose-view") / "store"
    shutil.copytree(analysis_store_dir, folder)
    case_id = (folder / "CASE_ID").read_text()
    with CaseStore(folder) as store:
        compute_dose(store, case_id, **RunSettings(method="vsv").compute_dose_kwargs())
    return folder


@pytest.fixture()
def dose_store(dose_dir: Path, tmp_path: Path) -> Any:
    shutil.copytree(dose_dir, tmp_path / "store")
    store = CaseStore(tmp_path / "store")
    store.case_id = (tmp_path / "store" / "CASE_ID").read_text()  # type: ignore[attr-defined]
    yield store
    store.close()


@pytest.fixture()
def errors(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    monkeypatch.setattr(
        "app.common.error_display.show_error",
        lambda _parent, title, message, details="": seen.append((title, message)),
    )
    return seen


def _open(qtbot: Any, store: CaseStore, case_id: str, user: str | None = None) -> DoseStepView:
    session = CaseSession(store, store.path)
    if user is not None:
        session.login(user, ENTRY_PASSWORDS[user])
    view = DoseStepView(session)
    qtbot.addWidget(view)
    view.resize(1200, 850)
    view.show()
    session.open_case(case_id)
    return view


def _row(view: DoseStepView, name: str) -> int:
    for i in range(view.table.rowCount()):
        if view.table.item(i, 0).text() == name:
            return i
    raise AssertionError(f"no row {name}")


def _cell(view: DoseStepView, name: str, col: str) -> str:
    return view.table.item(_row(view, name), C[col]).text()


def _choose(combo: Any, data: str) -> None:
    """Pick an entry of a combo box with the keyboard, as a user would."""
    target = combo.findData(data)
    assert target >= 0, data
    combo.setFocus()
    while combo.currentIndex() != target:
        key = Qt.Key.Key_Down if combo.currentIndex() < target else Qt.Key.Key_Up
        QTest.keyClick(combo, key)


def _tick(view: DoseStepView, name: str) -> None:
    """Click a VOI of the DVH list and press Space (toggles its tick)."""
    lst = view.voi_list
    item = next(lst.item(i) for i in range(lst.count()) if lst.item(i).text() == name)
    rect = lst.visualItemRect(item)
    QTest.mouseClick(lst.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    QTest.keyClick(lst.viewport(), Qt.Key.Key_Space)


def _run(qtbot: Any, view: DoseStepView, timeout_ms: int = 120_000) -> None:
    assert view.run_button.isEnabled()
    QTest.mouseClick(view.run_button, Qt.MouseButton.LeftButton)
    assert view.is_running() and view.progress_bar.isVisible()
    assert not view.run_button.isEnabled() and view.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: not view.is_running(), timeout=timeout_ms)


def test_kidney_row_equals_the_cli_json(qtbot: Any, dose_store: Any, capsys: Any) -> None:
    from dosimetry_core.cli.main import main

    view = _open(qtbot, dose_store, dose_store.case_id)
    assert "Voxel S-values (vsv)" in view.summary_box.currentText()
    shown = {col: _cell(view, "Kidney_L", col) for col in COLUMNS}
    capsys.readouterr()
    argv = ["--store", str(dose_store.path), "dose", dose_store.case_id, "--method", "vsv"]
    assert main([*argv, "--json"]) == 0
    cli = next(
        v for v in json.loads(capsys.readouterr().out)["vois"] if v["voi_name"] == "Kidney_L"
    )
    for col, key in (
        ("Mean (Gy)", "mean_gy"),
        ("D2 (Gy)", "d2_gy"),
        ("D50 (Gy)", "d50_gy"),
        ("D98 (Gy)", "d98_gy"),
        ("Max (Gy)", "max_gy"),
    ):
        assert shown[col] == f"{cli[key]:.3f}", col
    assert shown["Volume (mL)"] == f"{cli['volume_ml']:.1f}"
    assert shown["Mass (g)"] == f"{cli['mass_g']:.1f}"
    assert shown["Review"] == cli["review_flag"] == "contour not approved (draft)"
    assert float(shown["Mean (Gy)"]) > 0.1
    assert view.table.isColumnHidden(C["SD of mean (Gy)"])  # nothing to show for vsv

    # the CLI's summary (no DVHs stored) is shown after a reload; ticking a VOI makes
    # the core compute its DVH from the dose map: the same curve as the step's own run
    step_summary = dose_store.load_case(dose_store.case_id).dose_summary()
    view.session.reload()
    assert view.summary_box.count() == 1
    _tick(view, "Kidney_L")
    qtbot.waitUntil(lambda: not view.is_computing_dvh(), timeout=60_000)
    x, y = view.shown_dvh()["Kidney_L"]
    case = dose_store.load_case(dose_store.case_id)
    old = next(r for r in case.results if r.superseded and isinstance(r, DoseSummary))
    stored = next(v for v in old.vois if v.voi_name == "Kidney_L").dvh
    assert stored is not None and step_summary is not None
    assert step_summary.voi(next(v.voi_id for v in old.vois if v.voi_name == "Kidney_L"))
    np.testing.assert_allclose(x, stored.bin_edges_gy[: len(x)], rtol=1e-6)
    np.testing.assert_allclose(y, 100 * np.asarray(stored.cumulative_fraction[: len(x)]))


def test_dvh_of_ticked_vois_is_the_core_curve(qtbot: Any, dose_store: Any) -> None:
    view = _open(qtbot, dose_store, dose_store.case_id)
    assert view.shown_dvh() == {}
    _tick(view, "Kidney_L")
    _tick(view, "Kidney_R")
    shown = view.shown_dvh()
    assert set(shown) == {"Kidney_L", "Kidney_R"}
    summary = dose_store.load_case(dose_store.case_id).dose_summary()
    assert isinstance(summary, DoseSummary)
    for name in shown:
        core = next(v for v in summary.vois if v.voi_name == name).dvh
        assert core is not None
        x, y = shown[name]
        n = len(x)
        np.testing.assert_allclose(x, core.bin_edges_gy[:n])
        np.testing.assert_allclose(y, 100 * np.asarray(core.cumulative_fraction[:n]))
        assert y[0] == pytest.approx(100.0) and x[-1] > 0
    assert view.plot.getAxis("bottom").labelText == "Dose"
    assert view.plot.getAxis("bottom").labelUnits == "Gy"
    assert view.plot.getAxis("left").labelUnits == "%"
    _tick(view, "Kidney_R")
    assert set(view.shown_dvh()) == {"Kidney_L"}
    _tick(view, "Liver")  # reuses the hidden item of Kidney_R: Liver's curve and name
    liver = next(v for v in summary.vois if v.voi_name == "Liver").dvh
    assert liver is not None
    np.testing.assert_allclose(view.shown_dvh()["Liver"][0], liver.bin_edges_gy)
    assert sorted(label.text for _, label in view.legend.items) == ["Kidney_L", "Liver"]


def test_run_local_deposition_adds_a_summary_and_limits(
    qtbot: Any, dose_store: Any, errors: list[Any]
) -> None:
    view = _open(qtbot, dose_store, dose_store.case_id)
    _tick(view, "Kidney_L")
    vsv_mean = _cell(view, "Kidney_L", "Mean (Gy)")
    _choose(view.engine_box, "led")
    assert not view.mc_box.isVisible()
    _run(qtbot, view)
    assert errors == [] and "Done" in view.status_label.text()
    assert view.summary_box.count() == 2  # led and vsv are both current
    assert "Local deposition (led)" in view.summary_box.currentText()
    stored = dose_store.load_case(dose_store.case_id).dose_summary()
    assert isinstance(stored, DoseSummary) and stored.method == "led"
    kid = next(v for v in stored.vois if v.voi_name == "Kidney_L")
    assert kid.statistics is not None and kid.statistics.mean_gy is not None
    assert _cell(view, "Kidney_L", "Mean (Gy)") == f"{kid.statistics.mean_gy:.3f}"
    assert set(view.shown_dvh()) == {"Kidney_L"}  # the tick is kept, the curve is led's
    np.testing.assert_allclose(view.shown_dvh()["Kidney_L"][0], kid.dvh.bin_edges_gy)  # type: ignore[union-attr]
    # back to the voxel S-value summary
    view.summary_box.setFocus()
    QTest.keyClick(view.summary_box, Qt.Key.Key_Down)
    assert "(vsv)" in view.summary_box.currentText()
    assert _cell(view, "Kidney_L", "Mean (Gy)") == vsv_mean
    # limits of the Lu-177 DOTATATE protocol: kidneys 23 Gy (absorbed dose)
    assert _cell(view, "Kidney_L", "Limit check") == "-"
    _choose(view.protocol_box, "lu177-dotatate")
    assert _cell(view, "Kidney_L", "Limit (Gy)") == "23 (cumulative)"
    assert _cell(view, "Kidney_L", "Limit check") == ("PASS" if float(vsv_mean) <= 23.0 else "FAIL")
    assert _cell(view, "Liver", "Limit check") == "-"
    check = view.table.item(_row(view, "Kidney_L"), C["Limit check"])
    colour = check.background().color().name()
    assert colour == ("#c8e6c9" if check.text() == "PASS" else "#ffcdd2")  # green / red
    assert "lu177-dotatate" in view.caption_label.text()


def test_cancel_leaves_the_case_unchanged(qtbot: Any, dose_store: Any, errors: list[Any]) -> None:
    view = _open(qtbot, dose_store, dose_store.case_id)
    before = dose_store.load_case(dose_store.case_id)
    _choose(view.engine_box, "vsv-density")
    QTest.mouseClick(view.run_button, Qt.MouseButton.LeftButton)
    assert view.is_running()
    QTest.mouseClick(view.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not view.is_running(), timeout=60_000)
    assert "cancelled" in view.status_label.text() and errors == []
    after = dose_store.load_case(dose_store.case_id)
    assert after.version == before.version
    assert [r.result_id for r in after.results] == [r.result_id for r in before.results]
    assert view.summary_box.count() == 1 and view.run_button.isEnabled()


def test_refused_run_shows_the_core_message(
    qtbot: Any, entry_store: Any, errors: list[Any]
) -> None:
    view = _open(qtbot, entry_store, ENTRY_CASE_ID)
    version = entry_store.load_case(ENTRY_CASE_ID).version
    assert view.table.rowCount() == 0 and "No dose computed" in view.caption_label.text()
    assert "no TIA map" in view.run_button.toolTip()
    _run(qtbot, view)
    assert len(errors) == 1 and "no TIA map" in errors[0][1]
    assert "refused" in view.status_label.text()
    assert entry_store.load_case(ENTRY_CASE_ID).version == version
    assert view.run_button.isEnabled()  # nothing lost: the user can fix it and run again


def test_physician_sees_the_table_but_cannot_run(qtbot: Any, dose_store: Any) -> None:
    add_entry_accounts(dose_store)
    view = _open(qtbot, dose_store, dose_store.case_id, user="dora")
    assert view.table.rowCount() > 0
    assert float(_cell(view, "Kidney_L", "Mean (Gy)")) > 0.1
    assert not view.run_button.isEnabled() and not view.engine_box.isEnabled()
    assert "may look" in view.run_button.toolTip()
    _tick(view, "Kidney_L")  # looking is allowed
    assert set(view.shown_dvh()) == {"Kidney_L"}


@pytest.mark.slow  # the photon transport kernel compiles on a first run (~30 s on 2 cores)
def test_monte_carlo_options_and_a_short_run(
    qtbot: Any, dose_store: Any, errors: list[Any]
) -> None:
    view = _open(qtbot, dose_store, dose_store.case_id)
    _choose(view.engine_box, "mc")
    assert view.mc_box.isVisible() and not view.target_spin.isEnabled()
    QTest.mouseClick(view.target_check, Qt.MouseButton.LeftButton)
    assert view.target_spin.isEnabled() and view.target_spin.suffix() == " %"
    view.target_voi_box.setCurrentText("Kidney_L")
    _choose(view.component_box, "total")
    view.histories_spin.selectAll()
    QTest.keyClicks(view.histories_spin, "20000")
    s = view.settings()
    assert (s.mc_histories, s.mc_target_voi, s.mc_target_component) == (20000, "Kidney_L", "total")
    QTest.mouseClick(view.target_check, Qt.MouseButton.LeftButton)  # run all 20000
    _run(qtbot, view, 240_000)
    assert errors == []
    assert "Monte Carlo (mc)" in view.summary_box.currentText()
    sd = _cell(view, "Kidney_L", "SD of mean (Gy)")
    assert sd.endswith("%)") and float(sd.split()[0]) > 0
    assert float(_cell(view, "Kidney_L", "MC voxel unc. (%)")) > 0
    assert "20,000 histories" in view.caption_label.text()
