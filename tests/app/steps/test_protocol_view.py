"""The protocol run and planning step in a window (pytest-qt) on the analysis demo case.

One protocol run per module, clicked in the GUI (``run``): a copy of the
analysis store to which an earlier cycle of the same patient was added (a case
with a stored lu177-dotatate run eight weeks before), so the limits are
cumulative over two cycles.  A second copy of the same store is left for
``mrtdose run --json`` (the known answers).  The tests read what the user sees:
table cells, labels, the bar chart's items, button states.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QTableWidget

from app.session import CaseSession
from app.steps.protocol.model import LIMIT_COLUMNS, ORGAN_COLUMNS, VOI_COLUMNS
from app.steps.protocol.view import ProtocolStepView
from dosimetry_core.model import Administration, Case
from dosimetry_core.model.results import (
    LimitCheck,
    NextCycle,
    OrganResult,
    ProtocolRun,
)
from dosimetry_core.store import CaseStore
from tests.app.steps.conftest import ENTRY_PASSWORDS, add_entry_accounts

PROTOCOL = "lu177-dotatate"
RUN_TIMEOUT_S = 240.0
EARLIER_KIDNEY_DOSE_GY = 5.0
EARLIER_KIDNEY_BED_GY = 6.0
EARLIER_MARROW_DOSE_GY = 0.4


def _cell(table: QTableWidget, row_text: str, column: str, columns: tuple[str, ...]) -> str:
    j = columns.index(column)
    for i in range(table.rowCount()):
        item = table.item(i, 0)
        if item is not None and item.text() == row_text:
            cell = table.item(i, j)
            return "" if cell is None else cell.text()
    raise AssertionError(f"no row {row_text!r} in {table.objectName()}")


def _rows(table: QTableWidget) -> list[list[str]]:
    out = []
    for i in range(table.rowCount()):
        row = []
        for j in range(table.columnCount()):
            item = table.item(i, j)
            row.append("" if item is None else item.text())
        out.append(row)
    return out


def _wait(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        QApplication.processEvents()
        time.sleep(0.01)


def _add_earlier_cycle(store: CaseStore, case_id: str) -> str:
    """A case of the same patient, eight weeks earlier, with a stored lu177-dotatate run."""
    case = store.load_case(case_id)
    adm = case.first_administration
    assert adm is not None
    earlier = Case(
        patient=case.patient,
        administrations=[
            Administration(
                nuclide=adm.nuclide,
                activity_mbq=7400.0,
                time=adm.time - timedelta(weeks=8),
                radiopharmaceutical="DOTATATE",
            )
        ],
        description="cycle 1 (test)",
    )
    organs = {
        "kidneys": OrganResult(
            "Kidneys", ("Kidney_L", "Kidney_R"), ("", ""), 290.0,
            EARLIER_KIDNEY_DOSE_GY, 0.5, EARLIER_KIDNEY_BED_GY, 4.0, 0.68,
        ),
        "red-marrow": OrganResult(
            "Red marrow", ("RedMarrow",), ("",), 1200.0,
            EARLIER_MARROW_DOSE_GY, 0.04, 0.41, 0.33, 0.05,
        ),
    }  # fmt: skip
    earlier.add_result(
        ProtocolRun(
            case_id=earlier.case_id,
            protocol_id=PROTOCOL,
            method="multi-point",
            dose_method="vsv-density",
            nuclide=adm.nuclide,
            administered_activity_mbq=7400.0,
            vois=(),
            organs=organs,
            limit_checks=(
                LimitCheck(
                    "kidneys",
                    "dose_gy",
                    "cumulative",
                    23.0,
                    5.0,
                    5.0,
                    0.0,
                    5 / 23,
                    True,
                    "test",
                    None,
                ),
            ),  # fmt: skip
            next_cycle=NextCycle(None, None, {}, reason="test"),
        )
    )
    store.save_case(earlier)
    return earlier.case_id


@dataclass
class Ran:
    """The module's protocol run: the view after Run, its store, and the CLI's copy."""

    view: ProtocolStepView
    session: CaseSession
    store: CaseStore
    case_id: str
    earlier_case_id: str
    cli_store_dir: Path
    version_before: int


@pytest.fixture(scope="module")
def ran(qapp: Any, analysis_store_dir: Path, tmp_path_factory: Any) -> Any:
    from app.common import error_display

    base = tmp_path_factory.mktemp("protocol-view")
    gui_dir, cli_dir = base / "gui-store", base / "cli-store"
    shutil.copytree(analysis_store_dir, gui_dir)
    case_id = (gui_dir / "CASE_ID").read_text()
    store = CaseStore(gui_dir)
    earlier_id = _add_earlier_cycle(store, case_id)
    shutil.copytree(gui_dir, cli_dir)  # same inputs, same earlier cycle, before any run

    session = CaseSession(store, store.path)
    session.open_case(case_id)
    version_before = session.case.version  # type: ignore[union-attr]
    view = ProtocolStepView(session)
    view.resize(1200, 900)
    view.show()
    panel = view.run_panel
    errors: list[tuple[str, str]] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(error_display, "show_error", lambda p, t, m, d="": errors.append((t, m)))
        idx = panel.protocol_box.findData(PROTOCOL)
        panel.protocol_box.setCurrentIndex(idx)
        QTest.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
        assert panel.is_running()
        assert panel.cancel_button.isEnabled() and not panel.run_button.isEnabled()
        _wait(lambda: not panel.is_running(), RUN_TIMEOUT_S, "the protocol run")
    assert not errors, errors
    yield Ran(view, session, store, case_id, earlier_id, cli_dir, version_before)
    view.close()
    session.cancel_jobs()
    store.close()


@pytest.fixture(scope="module")
def cli_json(ran: Ran) -> dict[str, Any]:
    """``mrtdose run CASE --protocol lu177-dotatate --json`` on the CLI's copy of the store."""
    import contextlib
    import io

    from dosimetry_core.cli.main import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["--store", str(ran.cli_store_dir), "--json", "run", ran.case_id,
                     "--protocol", PROTOCOL])  # fmt: skip
    assert code == 0
    data: dict[str, Any] = json.loads(out.getvalue())
    return data


# ------------------------------------------------------------------ known answers
def test_kidney_dose_bed_and_next_cycle_equal_the_cli(ran: Ran, cli_json: dict[str, Any]) -> None:
    panel = ran.view.run_panel
    assert "run and saved" in panel.status_label.text()
    kid = cli_json["organs"]["kidneys"]
    organs = panel.organ_table
    assert _cell(organs, "Kidneys", "Dose (Gy)", ORGAN_COLUMNS) == f"{kid['dose_gy']:.3f}"
    assert _cell(organs, "Kidneys", "BED (Gy)", ORGAN_COLUMNS) == f"{kid['bed_gy']:.2f}"
    assert _cell(organs, "Kidneys", "EQD2 (Gy)", ORGAN_COLUMNS) == f"{kid['eqd2_gy']:.2f}"
    per = kid["dose_per_activity_gy_per_gbq"]
    assert _cell(organs, "Kidneys", "Per activity (Gy/GBq)", ORGAN_COLUMNS) == f"{per:.3f}"
    marrow = cli_json["organs"]["red-marrow"]
    assert _cell(organs, "Red marrow", "Dose (Gy)", ORGAN_COLUMNS) == f"{marrow['dose_gy']:.3f}"

    vois = {v["voi_name"]: v for v in cli_json["vois"]}
    left = vois["Kidney_L"]
    assert _cell(panel.voi_table, "Kidney_L", "Dose (Gy)", VOI_COLUMNS) == f"{left['dose_gy']:.3f}"
    assert _cell(panel.voi_table, "Kidney_L", "BED (Gy)", VOI_COLUMNS) == f"{left['bed_gy']:.2f}"
    gbq = cli_json["administered_activity_mbq"] / 1000.0
    assert _cell(panel.voi_table, "Kidney_L", "Per activity (Gy/GBq)", VOI_COLUMNS) == (
        f"{left['dose_gy'] / gbq:.3f}"
    )

    nc = cli_json["next_cycle"]
    assert nc["activity_mbq"] is not None
    assert panel.next_cycle_label.text() == (
        f"Next cycle: at most {nc['activity_mbq'] / 1000.0:.2f} GBq (net administered)"
    )
    organ_id, quantity = nc["binding"].split(" ")
    words = {"dose_gy": "absorbed dose", "bed_gy": "BED"}[quantity]
    label = {"kidneys": "Kidneys", "red-marrow": "Red marrow"}[organ_id]
    assert panel.binding_label.text().startswith(f"Binding constraint: {label} {words}")


def test_limits_are_cumulative_over_the_earlier_cycle(ran: Ran, cli_json: dict[str, Any]) -> None:
    panel = ran.view.run_panel
    assert "1 earlier cycle(s)" in panel.header_label.text()
    assert ran.earlier_case_id in panel.header_label.text()
    rows = _rows(panel.limit_table)
    cols = {c: LIMIT_COLUMNS.index(c) for c in LIMIT_COLUMNS}
    dose = next(r for r in rows if r[0] == "Kidneys" and r[1] == "absorbed dose")
    check = next(
        c for c in cli_json["limit_checks"]
        if c["organ_id"] == "kidneys" and c["quantity"] == "dose_gy"
    )  # fmt: skip
    assert dose[cols["Earlier cycles (Gy)"]] == f"{EARLIER_KIDNEY_DOSE_GY:.2f}"
    assert dose[cols["This cycle (Gy)"]] == f"{check['this_cycle']:.2f}"
    assert dose[cols["Cumulative (Gy)"]] == f"{check['value']:.2f}"
    assert dose[cols["Limit (Gy)"]] == "23"
    assert dose[cols["Result"]] == ("PASS" if check["passed"] else "FAIL")
    bed = next(r for r in rows if r[0] == "Kidneys" and r[1] == "BED")
    assert bed[cols["Earlier cycles (Gy)"]] == f"{EARLIER_KIDNEY_BED_GY:.2f}"
    assert all(r[cols["Result"]] in ("PASS", "FAIL") for r in rows)
    assert "All limits PASS." in panel.limits_label.text()


def test_budget_chart_shows_the_selected_vois_components(ran: Ran) -> None:
    panel = ran.view.run_panel
    run = ran.session.case.protocol_run  # type: ignore[union-attr]
    assert run is not None
    by_name = {v.voi_name: v for v in run.vois}
    # opens on the first organ-at-risk VOI with a limit
    first = panel.budget_caption.text().split(":")[0]
    expected = [100 * c.rel_sd for c in by_name[first].uncertainty_budget]  # type: ignore[operator]
    assert list(panel.budget_bars.opts["width"]) == pytest.approx(expected)
    total = 100 * by_name[first].dose_sd_gy / by_name[first].dose_gy  # type: ignore[operator]
    assert list(panel.total_bar.opts["width"]) == pytest.approx([total])
    ticks = [t for _, t in panel.budget_plot.getAxis("left")._tickLevels[0]]
    assert ticks == [c.name for c in by_name[first].uncertainty_budget] + ["combined"]

    # the user opens the VOI tab and clicks the row of a lesion: its budget replaces the kidney's
    bar = panel.result_tabs.tabBar()
    QTest.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(1).center())
    assert panel.result_tabs.currentWidget().isAncestorOf(table := panel.voi_table)
    row = next(i for i in range(table.rowCount()) if table.item(i, 0).text() == "Tumour_1")
    table.scrollToItem(table.item(row, 0))
    rect = table.visualItemRect(table.item(row, 0))
    QTest.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    tumour = by_name["Tumour_1"]
    expected = [100 * c.rel_sd for c in tumour.uncertainty_budget]  # type: ignore[operator]
    assert list(panel.budget_bars.opts["width"]) == pytest.approx(expected)
    assert panel.budget_caption.text().startswith("Tumour_1: combined relative SD of the dose")
    assert panel.budget_caption.text().endswith("% (1 SD)")


def test_the_run_was_saved_and_reopening_shows_it_without_recomputing(ran: Ran) -> None:
    case = ran.store.load_case(ran.case_id)
    assert case.version > ran.version_before
    assert case.protocol_run is not None and case.protocol == PROTOCOL
    shown = ran.view.run_panel.next_cycle_label.text()

    session = CaseSession(ran.store, ran.store.path)
    session.open_case(ran.case_id)
    view = ProtocolStepView(session)
    try:
        panel = view.run_panel
        assert not session.busy and not panel.is_running()  # nothing recomputed
        assert panel.next_cycle_label.text() == shown
        assert _rows(panel.organ_table) == _rows(ran.view.run_panel.organ_table)
        assert session.case.version == case.version  # type: ignore[union-attr]
        assert case.protocol_run.result_id in panel.model.summary.result_id  # type: ignore[union-attr]
    finally:
        view.close()


# ------------------------------------------------------------- without a run
def test_opening_a_case_without_a_run_shows_the_checklist(analysis_session: Any) -> None:
    view = ProtocolStepView(analysis_session)
    panel = view.run_panel
    assert panel.protocol_box.currentData() == PROTOCOL  # the administration is Lu-177
    assert panel.header_label.text().startswith("No protocol run stored")
    assert panel.organ_table.rowCount() == 0 and panel.next_cycle_label.text() == ""
    rows = {r[1]: r for r in _rows(panel.checklist_table)}
    assert rows["administration"][0] == "✓"
    assert rows["time points"][2] == "4 time point(s); the multi-point method needs 3"
    assert rows["registrations"][0] == "!" and "3 proposed (of 3)" in rows["registrations"][2]
    assert rows["VOI: Kidneys"][2] == "Kidney_L (draft), Kidney_R (draft)"
    assert rows["TIA map"][0] == "✓"
    assert panel.run_button.isEnabled()
    # a protocol mrtdose run does not run: Run disabled, the reason on screen
    panel.protocol_box.setCurrentIndex(panel.protocol_box.findData("i131-thyroid-benign"))
    assert not panel.run_button.isEnabled()
    assert "Calculators" in panel.status_label.text()
    assert view.tabs.tabText(1) == "Calculators"
    view.close()


@pytest.mark.parametrize("user", ["dora", "tom"])
def test_physician_and_technologist_cannot_run(qapp: Any, analysis_store: Any, user: str) -> None:
    add_entry_accounts(analysis_store)
    session = CaseSession(analysis_store, analysis_store.path)
    session.login(user, ENTRY_PASSWORDS[user])
    session.open_case(analysis_store.case_id)
    view = ProtocolStepView(session)
    panel = view.run_panel
    assert panel.checklist_table.rowCount() > 0  # they see the checklist
    assert not panel.run_button.isEnabled()
    assert "may look at protocol runs but not compute them" in panel.run_button.toolTip()
    QTest.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    assert not panel.is_running() and not session.busy
    view.close()


def test_cancel_leaves_the_case_unchanged(qtbot: Any, analysis_session: Any) -> None:
    store = analysis_session.store
    before = store.load_case(analysis_session.case.case_id)
    view = ProtocolStepView(analysis_session)
    qtbot.addWidget(view)
    panel = view.run_panel
    QTest.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    assert panel.is_running()
    QTest.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=int(RUN_TIMEOUT_S * 1000))
    assert panel.status_label.text() == "Protocol run cancelled: nothing was saved."
    assert panel.run_button.isEnabled() and not panel.cancel_button.isEnabled()
    after = store.load_case(before.case_id)
    assert after.version == before.version
    assert after.protocol_run is None and after.protocol == before.protocol
    assert panel.header_label.text().startswith("No protocol run stored")


def test_calculators_tab_says_so_when_the_panel_is_missing(
    qapp: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "app.steps.protocol.calculators_view", None)  # ImportError
    view = ProtocolStepView(CaseSession())
    assert view.tabs.tabText(1) == "Calculators"
    assert view.calculators.objectName() == "protocolNoCalculators"
    assert view.calculators.text() == "calculators not available"  # type: ignore[attr-defined]
    panel = view.run_panel
    assert not panel.run_button.isEnabled() and panel.status_label.text() == "Open a case first."
    view.close()
