"""The QA step in a window (pytest-qt), with no case open: what a physicist types and sees.

Phantoms are the core's synthetic QA scans on small grids (written once per
module); each test has its own store with a physicist and a technologist.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from app.session import CaseSession
from app.steps.qa.model import RECORD_COLUMNS
from app.steps.qa.view import QaStepView
from dosimetry_core.cli.main import main
from dosimetry_core.phantoms.qa_phantoms import (
    QaScanConfig,
    write_cylinder_phantom,
    write_iec_phantom,
)
from dosimetry_core.qa.recovery import fit_recovery_curve
from dosimetry_core.store import CaseStore

PASSWORDS = {"phys": "phys-pass-123", "tech": "tech-pass-123"}


@pytest.fixture(scope="module")
def cylinder(tmp_path_factory: Any) -> Any:
    return write_cylinder_phantom(
        tmp_path_factory.mktemp("cyl"),
        diameter_mm=160.0,
        length_mm=100.0,
        config=QaScanConfig(shape_zyx=(36, 48, 48), spacing_mm=(6.0, 6.0, 6.0)),
    )


@pytest.fixture(scope="module")
def iec(tmp_path_factory: Any) -> Any:
    return write_iec_phantom(
        tmp_path_factory.mktemp("iec"),
        config=QaScanConfig(shape_zyx=(36, 60, 60), spacing_mm=(6.0, 6.0, 6.0)),
    )


@pytest.fixture()
def qa_store(tmp_path: Any) -> Any:
    from dosimetry_core.store.users import bootstrap_admin, create_user

    store = CaseStore(tmp_path / "store")
    admin = bootstrap_admin(store, "admin", "admin-pass-123")
    create_user(store, admin, "phys", PASSWORDS["phys"], "physicist")
    create_user(store, admin, "tech", PASSWORDS["tech"], "technologist")
    yield store
    store.close()


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


def _open(qtbot: Any, store: CaseStore, user: str) -> QaStepView:
    session = CaseSession(store, store.path)
    session.login(user, PASSWORDS[user])
    view = QaStepView(session)
    qtbot.addWidget(view)
    view.resize(760, 980)
    view.show()
    assert session.case is None  # QA is not tied to a case
    return view


def _type(edit: Any, text: str) -> None:
    edit.clear()
    QTest.keyClicks(edit, text)


def _click(widget: Any) -> None:
    QTest.mouseClick(widget, Qt.MouseButton.LeftButton)


def _fill_calibration(view: QaStepView, files: Any, activity: str = "100") -> None:
    _type(view.cal_folder, str(files.out_dir))
    _type(view.cal_activity, activity)
    _type(view.cal_time, files.truth["activity_time"].replace("T", " ")[:16])
    _type(view.cal_margin, "30")


def _run(qtbot: Any, view: QaStepView, button: Any) -> None:
    assert button.isEnabled()
    _click(button)
    assert view.is_running()
    qtbot.waitUntil(lambda: not view.is_running(), timeout=120_000)


def test_calibration_shows_the_cli_factor_and_the_constancy_chart(
    qtbot, qa_store, cylinder, errors, tmp_path, capsys
):
    capsys.readouterr()
    main(
        [
            "--store",
            str(tmp_path / "cli"),
            "qa",
            "calibrate",
            str(cylinder.out_dir),
            "--activity-mbq",
            "100",
            "--activity-time",
            cylinder.truth["activity_time"],
            "--margin-mm",
            "30",
            "--json",
        ]
    )
    cli = json.loads(capsys.readouterr().out)
    view = _open(qtbot, qa_store, "phys")
    assert view.cal_factor_label.text() == "-"
    assert view.trend_points.data.size == 0
    _fill_calibration(view, cylinder)
    _click(view.cal_run_button)
    assert view.cal_progress.isVisible() and view.cal_cancel_button.isEnabled()
    assert not view.cal_run_button.isEnabled()
    qtbot.waitUntil(lambda: not view.is_running(), timeout=120_000)
    assert errors == []
    shown = view.cal_factor_label.text()
    assert shown == f"{cli['cps_per_mbq']:.4g} ± {cli['cps_per_mbq_sd']:.2g} cps/MBq"
    assert float(shown.split()[0]) == pytest.approx(cylinder.truth["cps_per_mbq"], rel=0.02)
    assert "DEMO-0001" in view.cal_device_label.text()
    assert view.cal_date_label.text() == "2026-02-23 10:00 (Lu-177)"
    assert view.cal_valid_label.text() == "2027-02-23 10:00"
    assert view.cal_verdict_label.text() == "PASS"
    assert "by phys" in view.cal_status.text()
    assert not view.cal_progress.isVisible() and view.cal_run_button.isEnabled()
    # the chart: one point at the factor, band ± 5 % around it
    assert list(view.trend_points.data["y"]) == pytest.approx([cli["cps_per_mbq"]])
    assert view.band_item.isVisible()
    assert view.band_item.getRegion() == pytest.approx(
        (cli["cps_per_mbq"] * 0.95, cli["cps_per_mbq"] * 1.05)
    )
    # the same scan entered with 10 % less activity: FAIL, a second (red) point
    _type(view.cal_activity, "90")
    _run(qtbot, view, view.cal_run_button)
    assert view.cal_verdict_label.text() == "FAIL"
    assert "vs previous" in view.cal_constancy_label.text()
    ys = list(view.trend_points.data["y"])
    assert len(ys) == 2 and ys[1] == pytest.approx(ys[0] / 0.9, rel=1e-6)
    # the record list shows both with their maker and a verified signature
    view.tabs.setCurrentIndex(2)
    table = view.records_table
    assert table.rowCount() == 2
    col = {name: i for i, name in enumerate(RECORD_COLUMNS)}
    assert table.item(0, col["Made by"]).text() == "phys"
    assert table.item(0, col["Constancy"]).text() == "warning"
    assert table.item(1, col["Kind"]).text() == "camera-calibration"
    assert table.item(1, col["Value"]).text() == f"CF {cli['cps_per_mbq']:.4g} cps/MBq"
    assert table.item(1, col["Signature"]).text() == "verified"
    view.kind_box.setCurrentIndex(view.kind_box.findData("recovery"))
    assert table.rowCount() == 0
    assert "No QA records of kind recovery" in view.records_summary.text()


def test_a_refused_entry_marks_its_box_and_runs_nothing(qtbot, qa_store, cylinder, errors):
    view = _open(qtbot, qa_store, "phys")
    _fill_calibration(view, cylinder, activity="a lot")
    _click(view.cal_run_button)
    assert not view.is_running()
    assert view.cal_activity.property("invalid") is True
    assert "MBq" in view.cal_form.message.text() and view.cal_form.message.isVisible()
    QTest.keyClicks(view.cal_activity, "x")  # editing clears the mark
    assert view.cal_activity.property("invalid") is False
    # a time after the scan is the core's refusal: shown, nothing stored
    _fill_calibration(view, cylinder)
    _type(view.cal_time, "2026-02-24 08:00")
    _run(qtbot, view, view.cal_run_button)
    assert errors and "after the scan start" in errors[-1][1]
    assert "nothing was stored" in view.cal_status.text()
    assert view.records_table.rowCount() == 0


def test_a_technologist_sees_the_records_but_cannot_run(qtbot, qa_store):
    view = _open(qtbot, qa_store, "tech")
    assert not view.cal_run_button.isEnabled()
    assert not view.rec_run_button.isEnabled()
    assert "may not record QA" in view.cal_run_button.toolTip()
    assert view.records_summary.text() == "No QA records in the store."
    view.session.logout()
    view.session.login("phys", PASSWORDS["phys"])
    assert view.cal_run_button.isEnabled() and view.rec_run_button.isEnabled()


def test_recovery_plots_the_measured_rc_and_the_core_fit(qtbot, qa_store, iec, errors):
    view = _open(qtbot, qa_store, "phys")
    view.tabs.setCurrentIndex(1)
    _type(view.rec_folder, str(iec.out_dir))
    _type(view.rec_sphere, "800")
    _type(view.rec_background, "100")
    _run(qtbot, view, view.rec_run_button)
    assert errors == []
    xs, ys = view.rc_points.getOriginalDataset()
    truth = iec.truth["spheres"]
    assert list(xs) == pytest.approx([t["volume_ml"] for t in truth])
    for y, t in zip(ys, truth, strict=True):
        if t["diameter_mm"] >= 17:
            assert y == pytest.approx(t["rc_grid"], rel=0.05)
    # the plotted curve is the core's weighted fit of the plotted points
    sds = [float(view.sphere_table.item(i, 3).text()) for i in range(6)]
    assert all(sd > 0 for sd in sds)
    cx, cy = view.rc_curve.getOriginalDataset()
    shown_fwhm = float(view.rec_params_label.text().split("FWHM = ")[1].split()[0])
    fit = fit_recovery_curve(list(xs), list(ys), view.recovery.rc_sd, "gaussian-psf")
    assert shown_fwhm == pytest.approx(fit.parameters["fwhm_mm"], rel=2e-3)
    assert list(cy) == pytest.approx([fit(v) for v in cx], rel=1e-6)
    assert " mm" in view.rec_params_label.text()
    assert view.rec_plot.getPlotItem().ctrl.logXCheck.isChecked()  # log volume axis
    assert cx[0] < min(xs) and cx[-1] > max(xs)
    assert np.all(np.diff(cy) > 0)
    assert view.sphere_table.rowCount() == 6
    assert view.sphere_table.item(5, 0).text() == "37"
    assert view.sphere_table.item(5, 1).text() == f"{math.pi / 6 * 37**3 * 1e-3:.2f}"
    assert "Stored as" in view.rec_status.text()
    view.tabs.setCurrentIndex(2)
    col = RECORD_COLUMNS.index("Value")
    assert view.records_table.item(0, col).text() == f"FWHM {fit.parameters['fwhm_mm']:.4g} mm"


def test_cancel_stops_the_run_and_stores_nothing(qtbot, qa_store, cylinder, monkeypatch):
    """The Cancel button reaches the core call's cancel check (a slow stand-in for the core)."""
    import time

    import app.steps.qa.view as qa_view
    from dosimetry_core.progress import check_cancel, report

    def slow(store: Any, *args: Any, progress: Any = None, cancel: Any = None, **kw: Any) -> Any:
        for i in range(200):
            report(progress, i / 200, "working")
            check_cancel(cancel)
            time.sleep(0.02)
        raise AssertionError("not cancelled")

    monkeypatch.setattr(qa_view, "run_camera_calibration", slow)
    view = _open(qtbot, qa_store, "phys")
    _fill_calibration(view, cylinder)
    _click(view.cal_run_button)
    qtbot.waitUntil(lambda: view.cal_progress.value() > 0, timeout=10_000)
    _click(view.cal_cancel_button)
    qtbot.waitUntil(lambda: not view.is_running(), timeout=10_000)
    assert view.cal_status.text() == "Calibration cancelled: nothing stored."
    assert view.cal_run_button.isEnabled() and not view.cal_cancel_button.isEnabled()
    assert view.records_table.rowCount() == 0
