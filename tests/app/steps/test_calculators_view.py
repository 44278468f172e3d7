"""The calculators panel as the user sees it: typed inputs, Compute clicked, result labels read.

Each form's result labels show the numbers of ``mrtdose ... --json`` on the same
inputs; a bad value turns its box red with the core's message and keeps what was
typed; the open case fills in what it knows; Compute needs the right to compute.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QComboBox, QLabel, QLineEdit, QPushButton

from app.steps.protocol.calculators_view import CalculatorsPanel
from dosimetry_core.cli.main import main
from tests.app.steps.conftest import ENTRY_CASE_ID, ENTRY_PASSWORDS, add_entry_accounts


@pytest.fixture()
def panel(qtbot: Any, entry_session: Any) -> CalculatorsPanel:
    p = CalculatorsPanel(entry_session)
    qtbot.addWidget(p)
    p.resize(1200, 800)
    p.show()
    return p


def _cli(capsys: Any, *argv: str) -> dict[str, Any]:
    assert main([*argv, "--json"]) == 0
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    return out


def _tab(panel: CalculatorsPanel, title: str) -> None:
    bar = panel.tabs.tabBar()
    i = next(i for i in range(bar.count()) if bar.tabText(i) == title)
    QTest.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(i).center())
    assert panel.tabs.currentIndex() == i


def _edit(panel: CalculatorsPanel, form: str, name: str) -> QLineEdit:
    edit = panel.findChild(QLineEdit, f"{form}_{name}Edit")
    assert edit is not None, name
    return edit


def _type(panel: CalculatorsPanel, form: str, name: str, text: str) -> None:
    edit = _edit(panel, form, name)
    QTest.keyClick(edit, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    QTest.keyClick(edit, Qt.Key.Key_Delete)
    QTest.keyClicks(edit, text)


def _choose(panel: CalculatorsPanel, form: str, name: str, value: str) -> None:
    box = panel.findChild(QComboBox, f"{form}_{name}Box")
    assert box is not None, name
    target = box.findData(value)
    assert target >= 0, value
    box.setFocus()
    while box.currentIndex() != target:  # the arrow keys, as a user picks from the menu
        key = Qt.Key.Key_Down if box.currentIndex() < target else Qt.Key.Key_Up
        QTest.keyClick(box, key)


def _compute(qtbot: Any, panel: CalculatorsPanel, form: str) -> None:
    button = panel.findChild(QPushButton, f"{form}Compute")
    assert button is not None and button.isEnabled()
    QTest.mouseClick(button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.page(form).is_running(), timeout=60_000)


def _result(panel: CalculatorsPanel, form: str, key: str) -> str:
    label = panel.findChild(QLabel, f"{form}_{key}Result")
    assert label is not None and label.isVisible(), key
    return label.text()


# ------------------------------------------------------------------ known answers
def test_bed_form_shows_the_cli_numbers(qtbot: Any, panel: CalculatorsPanel, capsys: Any) -> None:
    cli = _cli(capsys, "bed", "--dose-gy", "20", "--t-eff-h", "50", "--tissue", "kidney")
    _tab(panel, "BED / EQD2")
    _type(panel, "bed", "dose_gy", "20")
    _type(panel, "bed", "t_eff_h", "50")
    _choose(panel, "bed", "tissue", "kidney")
    _compute(qtbot, panel, "bed")
    assert _result(panel, "bed", "bed_gy") == f"{cli['bed_gy']:.4g} Gy"
    assert _result(panel, "bed", "eqd2_gy") == f"{cli['eqd2_gy']:.4g} Gy"
    assert _result(panel, "bed", "alpha_beta_gy") == f"{cli['alpha_beta_gy']:.4g} Gy"
    assert "Dale" in panel.findChild(QLabel, "bedSource").text()


def test_thyroid_form_shows_the_cli_activity(
    qtbot: Any, panel: CalculatorsPanel, capsys: Any
) -> None:
    cli = _cli(capsys, "thyroid", "--target-gy", "150", "--mass-g", "25",
               "--uptake-time-h", "4", "24", "96", "168",
               "--uptake-percent", "20", "40", "32", "22")  # fmt: skip
    _tab(panel, "I-131 thyroid")
    _type(panel, "thyroid", "target_gy", "150")
    _type(panel, "thyroid", "mass_g", "25")
    _type(panel, "thyroid", "uptake_time_h", "4 24 96 168")
    _type(panel, "thyroid", "uptake_percent", "20 40 32 22")
    _compute(qtbot, panel, "thyroid")
    assert _result(panel, "thyroid", "activity_mbq") == f"{cli['activity_mbq']:.4g} MBq"
    assert _result(panel, "thyroid", "t_eff_d") == f"{cli['t_eff_d']:.4g} d"
    assert "Marinelli" in panel.findChild(QLabel, "thyroidSource").text()


def test_sirt_inverse_form_shows_the_cli_activity_and_binding_limit(
    qtbot: Any, panel: CalculatorsPanel, capsys: Any
) -> None:
    cli = _cli(capsys, "sirt", "--target-tumour-gy", "400", "--lsf", "0.15", "--tnr", "3",
               "--liver-mass-kg", "1.4", "--tumour-mass-kg", "0.3",
               "--previous-lung-dose-gy", "25")  # fmt: skip
    _tab(panel, "Y-90 SIRT")
    assert not _edit(panel, "sirt", "target_dose_gy").isVisible()
    _choose(panel, "sirt", "method", "partition-inverse")
    assert _edit(panel, "sirt", "target_dose_gy").isVisible()
    assert not _edit(panel, "sirt", "activity_gbq").isVisible()
    _type(panel, "sirt", "target_dose_gy", "400")
    _type(panel, "sirt", "lsf", "0.15")
    _type(panel, "sirt", "tnr", "3")
    _type(panel, "sirt", "liver_mass_kg", "1.4")
    _type(panel, "sirt", "tumour_mass_kg", "0.3")
    _type(panel, "sirt", "previous_lung_dose_gy", "25")
    _compute(qtbot, panel, "sirt")
    assert _result(panel, "sirt", "activity_gbq") == f"{cli['activity_gbq']:.4g} GBq"
    assert _result(panel, "sirt", "binding_constraint") == "lung-cumulative"
    assert _result(panel, "sirt", "lung_dose_gy") == f"{cli['lung_dose_gy']:.4g} Gy"
    assert "limited by lung-cumulative" in panel.findChild(QLabel, "sirtWarnings").text()


def test_sirt_lung_shunt_from_planar_counts(qtbot: Any, panel: CalculatorsPanel) -> None:
    from dosimetry_core.protocols.sirt import lung_shunt_fraction_planar

    _tab(panel, "Y-90 SIRT")
    _choose(panel, "sirt", "lsf_source", "planar")
    assert not _edit(panel, "sirt", "lsf").isVisible()
    for name, text in (("activity_gbq", "2"), ("tnr", "3"), ("liver_mass_kg", "1.4"),
                       ("tumour_mass_kg", "0.3"), ("lung_ant", "100"), ("lung_post", "120"),
                       ("liver_ant", "1000"), ("liver_post", "1300")):  # fmt: skip
        _type(panel, "sirt", name, text)
    _compute(qtbot, panel, "sirt")
    lsf = lung_shunt_fraction_planar(100, 120, 1000, 1300)
    assert _result(panel, "sirt", "lsf") == f"{lsf * 100:.4g} %"


def test_mibg_form_prefilled_from_the_case_shows_the_cli_dose(
    qtbot: Any, panel: CalculatorsPanel, capsys: Any
) -> None:
    _tab(panel, "mIBG")
    assert _edit(panel, "mibg", "body_mass_kg").text() == "70"  # the patient's weight
    cli = _cli(capsys, "mibg", "--time-h", "1", "24", "48", "96",
               "--dose-rate", "100", "60", "35", "12", "--administered-activity-mbq", "3700",
               "--body-mass-kg", "70", "--target-total-gy", "2")  # fmt: skip
    _type(panel, "mibg", "time_h", "1 24 48 96")
    _type(panel, "mibg", "dose_rate", "100 60 35 12")
    _type(panel, "mibg", "administered_activity_mbq", "3700")
    _type(panel, "mibg", "target_total_gy", "2")
    _compute(qtbot, panel, "mibg")
    assert _result(panel, "mibg", "whole_body_dose_gy") == f"{cli['whole_body_dose_gy']:.4g} Gy"
    second = cli["second_administration"]["second_activity_mbq"]
    assert _result(panel, "mibg", "second_activity_mbq") == f"{second:.0f} MBq"


def test_marrow_form_prefilled_from_the_case_shows_the_cli_dose(
    qtbot: Any, panel: CalculatorsPanel, capsys: Any
) -> None:
    _tab(panel, "Blood-based marrow")
    assert _edit(panel, "marrow", "nuclide").text() == "Lu-177"  # the case's administration
    assert _edit(panel, "marrow", "patient_mass_kg").text() == "70"
    cli = _cli(capsys, "marrow", "--blood-tia-mbq-h-per-ml", "0.5", "--rmblr", "sgouros",
               "--hematocrit", "0.4", "--patient-mass-kg", "70",
               "--remainder-tia-mbq-h", "50000", "--nuclide", "Lu-177")  # fmt: skip
    _type(panel, "marrow", "blood_tia_mbq_h_per_ml", "0.5")
    _type(panel, "marrow", "hematocrit", "0.4")
    _type(panel, "marrow", "remainder_tia_mbq_h", "50000")
    _compute(qtbot, panel, "marrow")
    assert _result(panel, "marrow", "dose_gy") == f"{cli['dose_gy']:.4g} Gy"
    assert _result(panel, "marrow", "red_marrow_mass_g") == f"{cli['red_marrow_mass_g']:.0f} g"


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    ("tab", "form", "texts", "bad"),
    [
        ("I-131 thyroid", "thyroid", {"target_gy": "150", "uptake_time_h": "4 24 96",
                                      "uptake_percent": "20 40 32"}, ("mass_g", "-25")),
        ("Y-90 SIRT", "sirt", {"activity_gbq": "2", "tnr": "3", "liver_mass_kg": "1.4",
                               "tumour_mass_kg": "0.3"}, ("lsf", "nan")),
        ("mIBG", "mibg", {"time_h": "1 24 48", "dose_rate": "100 60 35"},
         ("administered_activity_mbq", "-3700")),
        ("Blood-based marrow", "marrow", {"blood_tia_mbq_h_per_ml": "0.5",
                                          "remainder_tia_mbq_h": "5e4"}, ("hematocrit", "1.4")),
        ("BED / EQD2", "bed", {"dose_gy": "20"}, ("t_eff_h", "1e6")),
    ],
)  # fmt: skip
def test_bad_input_shows_the_core_message_on_its_box_and_keeps_the_inputs(
    qtbot: Any,
    panel: CalculatorsPanel,
    shown_errors: list[Any],
    tab: str,
    form: str,
    texts: dict[str, str],
    bad: tuple[str, str],
) -> None:
    _tab(panel, tab)
    for name, text in texts.items():
        _type(panel, form, name, text)
    _type(panel, form, *bad)
    _compute(qtbot, panel, form)
    message = panel.findChild(QLabel, f"{form}_{bad[0]}Message")
    assert message.isVisible() and message.text()
    assert _edit(panel, form, bad[0]).property("state") == "error"
    error = panel.findChild(QLabel, f"{form}Error")
    assert error.isVisible() and error.text() == message.text()
    assert _edit(panel, form, bad[0]).text() == bad[1]  # nothing typed is lost
    assert panel.page(form).result_labels == {}
    assert shown_errors == []  # a refusal, not a crash
    _type(panel, form, bad[0], "")  # the user corrects it: the red goes at the next Compute


def test_a_refusal_removes_old_results_and_a_correction_brings_new_ones(
    qtbot: Any, panel: CalculatorsPanel
) -> None:
    _tab(panel, "BED / EQD2")
    _type(panel, "bed", "dose_gy", "5")
    _type(panel, "bed", "t_eff_h", "50")
    _compute(qtbot, panel, "bed")
    assert _result(panel, "bed", "dose_gy") == "5 Gy"
    _type(panel, "bed", "dose_gy", "-5")
    assert "before your last change" in panel.page("bed").results_box.title()
    _compute(qtbot, panel, "bed")
    assert panel.findChild(QLabel, "bed_dose_gyMessage").isVisible()
    assert panel.findChild(QLabel, "bed_dose_gyResult") is None  # no stale numbers
    assert panel.findChild(QLabel, "bedNoResult").isVisible()
    _type(panel, "bed", "dose_gy", "7")
    _compute(qtbot, panel, "bed")
    assert not panel.findChild(QLabel, "bed_dose_gyMessage").isVisible()
    assert not panel.findChild(QLabel, "bedError").isVisible()
    assert _result(panel, "bed", "dose_gy") == "7 Gy"
    assert panel.page("bed").results_box.title() == "Results"


# ------------------------------------------------------------------ case and roles
def test_a_reload_keeps_what_is_typed(
    qtbot: Any, panel: CalculatorsPanel, entry_session: Any
) -> None:
    _tab(panel, "mIBG")
    _type(panel, "mibg", "body_mass_kg", "55")
    entry_session.reload()
    assert _edit(panel, "mibg", "body_mass_kg").text() == "55"
    QTest.mouseClick(panel.findChild(QPushButton, "mibgReset"), Qt.MouseButton.LeftButton)
    assert _edit(panel, "mibg", "body_mass_kg").text() == "70"


def test_compute_needs_the_right_to_compute(qtbot: Any, entry_store: Any) -> None:
    from app.session import CaseSession

    add_entry_accounts(entry_store)
    session = CaseSession(entry_store, entry_store.path)
    panel = CalculatorsPanel(session)
    qtbot.addWidget(panel)
    compute = panel.findChild(QPushButton, "bedCompute")
    assert not compute.isEnabled()  # nobody logged in
    for user in ("tom", "dora"):  # a technologist and a physician may not compute
        session.login(user, ENTRY_PASSWORDS[user])
        session.open_case(ENTRY_CASE_ID)
        assert not compute.isEnabled()
        assert "permission" in compute.toolTip()
        assert _edit(panel, "mibg", "body_mass_kg").text() == "70"  # they may still look
        session.logout()


def test_cancel_stops_waiting_and_the_window_stays_live(
    qtbot: Any, panel: CalculatorsPanel
) -> None:
    import dataclasses
    import threading
    import time

    from PySide6.QtCore import QTimer

    page = panel.show_form("bed")
    release = threading.Event()
    real = page.form

    def slow(values: Any) -> Any:  # a core call that takes long (a table computed first)
        deadline = time.monotonic() + 10.0
        while not release.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)
        return real._compute(values)

    page.form = dataclasses.replace(real, _compute=slow)
    _type(panel, "bed", "dose_gy", "20")
    _type(panel, "bed", "t_eff_h", "50")
    ticks: list[float] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start(20)
    QTest.mouseClick(panel.findChild(QPushButton, "bedCompute"), Qt.MouseButton.LeftButton)
    cancel = panel.findChild(QPushButton, "bedCancel")
    qtbot.waitUntil(cancel.isVisible, timeout=5000)
    assert not panel.findChild(QPushButton, "bedCompute").isEnabled()  # one run at a time
    qtbot.wait(300)
    QTest.mouseClick(cancel, Qt.MouseButton.LeftButton)
    release.set()
    qtbot.waitUntil(lambda: not page.is_running(), timeout=10_000)
    timer.stop()
    # the event loop kept running while the call worked (a blocked loop would show one
    # gap as long as the call, which only ends 10 s later when Cancel cannot be clicked)
    assert len(ticks) >= 5
    assert max(b - a for a, b in zip(ticks, ticks[1:], strict=False)) < 3.0
    assert "Cancelled" in panel.findChild(QLabel, "bedStatus").text()
    assert panel.findChild(QLabel, "bed_bed_gyResult") is None  # a cancelled result is dropped
    assert not cancel.isVisible() and panel.findChild(QPushButton, "bedCompute").isEnabled()
    assert _edit(panel, "bed", "dose_gy").text() == "20"


def test_an_activity_typed_in_mci(qtbot: Any, panel: CalculatorsPanel) -> None:
    from dosimetry_core.protocols.thyroid import fit_uptake, thyroid_dose_from_fit

    _tab(panel, "I-131 thyroid")
    _choose(panel, "thyroid", "mode", "verify")
    _type(panel, "thyroid", "activity_mbq", "10")
    unit = panel.findChild(QComboBox, "thyroid_activity_mbqUnit")
    unit.setFocus()
    while unit.currentText() != "mCi":
        QTest.keyClick(unit, Qt.Key.Key_Down)
    _type(panel, "thyroid", "mass_g", "25")
    _type(panel, "thyroid", "uptake_time_h", "4 24 96 168")
    _type(panel, "thyroid", "uptake_percent", "20 40 32 22")
    _compute(qtbot, panel, "thyroid")
    fit = fit_uptake([4, 24, 96, 168], [20, 40, 32, 22])
    expected = thyroid_dose_from_fit(370.0, 25.0, fit)  # 10 mCi = 370 MBq
    assert _result(panel, "thyroid", "dose_gy") == f"{expected:.4g} Gy"
