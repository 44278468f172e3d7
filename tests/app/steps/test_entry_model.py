"""The data-entry view-model without Qt: the core's checks as you type, units, the net
activity at once, and the calls it hands the session."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from app.steps.entry.model import EntryModel
from dosimetry_core.pipeline import entry as core
from tests.app.steps.conftest import ENTRY_T0, make_entry_case

LU177_HALF_LIFE_H = 6.647 * 24.0


def _model() -> tuple[EntryModel, list[str]]:
    model = EntryModel()
    topics: list[str] = []
    model.subscribe(topics.append)
    model.set_case(make_entry_case())
    return model, topics


def test_model_module_imports_no_qt():
    qt = "('PySide6', 'shiboken6', 'pyqtgraph', 'vtk')"
    code = (
        "import sys, app.steps.entry.model; "
        f"bad = [m for m in sys.modules if m.startswith({qt})]; "
        "assert not bad, bad"
    )
    root = Path(__file__).resolve().parents[3]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)


def test_open_case_loads_its_administration_for_editing():
    model, topics = _model()
    assert model.editing_id == "adm-entry-1"
    assert model.admin.text["activity_mbq"] == "7400"
    assert model.net_activity_text() == "Net administered activity: 7,400.0 MBq"
    assert {"case", "administration", "measurement", "scan"} <= set(topics)
    assert [r.record_id for r in model.administration_rows()] == ["adm-entry-1"]
    assert model.administration_rows()[0].cells[4] == "7,400.0"


def test_negative_activity_is_refused_with_the_core_message():
    model, topics = _model()
    topics.clear()
    model.set_administration("activity_mbq", "-5")
    assert topics == ["administration"]
    check = model.administration_check()
    core_check = core.check_administration(
        core.AdministrationEntry(activity_mbq=-5.0, time=ENTRY_T0, nuclide="Lu-177")
    )
    assert check.error_for("activity_mbq") == core_check.error_for("activity_mbq")
    assert check.error_for("activity_mbq").startswith("activity_mbq:")
    assert model.net_activity_mbq() is None
    assert model.net_activity_text().startswith("Net administered activity: –")
    model.set_administration("activity_mbq", "lots")
    assert "must be a number (got 'lots')" in model.administration_check().error_for("activity_mbq")


def test_residual_updates_the_net_activity_at_once():
    model, _ = _model()
    model.set_administration("residual_activity_mbq", "150")
    model.set_administration("residual_time", (ENTRY_T0 + timedelta(minutes=10)).isoformat(" "))
    expected = 7400.0 - 150.0 * 2.0 ** ((10.0 / 60.0) / LU177_HALF_LIFE_H)
    assert model.net_activity_mbq() == pytest.approx(expected, rel=1e-6)
    assert model.net_activity_text() == f"Net administered activity: {expected:,.1f} MBq"
    assert model.net_activity_text() == "Net administered activity: 7,249.9 MBq"
    # residual before the administration: refused on its field
    model.set_administration("residual_time", (ENTRY_T0 - timedelta(minutes=1)).isoformat(" "))
    assert model.administration_check().error_for("residual_time").startswith("residual_time:")


def test_units_convert_to_mbq_in_the_model():
    model, _ = _model()
    model.set_administration("activity_mbq", "200", unit="mCi")
    assert model.administration_entry().activity_mbq == pytest.approx(7400.0)
    model.set_administration("activity_mbq", "7.4", unit="GBq")
    assert model.administration_entry().activity_mbq == pytest.approx(7400.0)
    model.set_administration("activity_mbq", "16", unit="GBq")
    check = model.administration_check()
    assert check.ok and check.warning_for("activity_mbq")  # warned, not refused
    with pytest.raises(KeyError):
        model.set_administration("activity_mbq", "1", unit="furlong")


def test_save_calls_add_or_edit():
    model, _ = _model()
    fn, args, kwargs = model.administration_save_call()
    assert fn is core.edit_administration and args == ("adm-entry-1",)
    assert kwargs["activity_mbq"] == 7400.0 and kwargs["time"] == ENTRY_T0
    model.new_administration()
    assert model.editing_id is None and model.admin.text["cycle"] == "2"
    model.set_administration("activity_mbq", "7400")
    fn, args, kwargs = model.administration_save_call()
    assert fn is core.add_administration and args[0].cycle == 2 and kwargs == {}


def test_measurement_forms_follow_their_kind():
    model, _ = _model()
    model.set_measurement_kind("blood")
    model.set_measurement("time", (ENTRY_T0 + timedelta(hours=2)).isoformat(" "))
    model.set_measurement("hematocrit", "42")
    assert model.measurement_check().error_for("hematocrit").startswith("hematocrit:")
    model.set_measurement("hematocrit", "0.65")
    model.set_measurement("concentration_bq_ml", "900")
    check = model.measurement_check()
    assert check.ok and check.warning_for("hematocrit")
    fn, args, _ = model.measurement_save_call()
    assert fn is core.add_measurement and args[0].concentration_bq_ml == 900.0
    model.set_measurement_kind("dose-rate")
    assert model.measure.text["distance_m"] == "1"
    model.set_measurement("dose_rate_usv_h", "0.03", unit="mSv/h")
    assert model.measurement_entry().dose_rate_usv_h == pytest.approx(30.0)
    model.set_measurement("time", (ENTRY_T0 - timedelta(hours=1)).isoformat(" "))
    assert model.measurement_check().error_for("time").startswith("time:")
    model.set_measurement_kind("weight")
    model.set_measurement("weight_kg", "600")
    assert model.measurement_check().error_for("weight_kg")


def test_scan_time_form():
    model, _ = _model()
    tp_id, label = model.time_point_choices()[0]
    assert label.startswith("TP1")
    assert model.scan_time_point == tp_id
    assert model.scan_check().error_for("reason")  # a correction needs a reason
    model.set_scan_time(text=(ENTRY_T0 - timedelta(hours=1)).isoformat(" "), reason="clock")
    assert model.scan_check().error_for("acquired_at").startswith("acquired_at:")
    model.set_scan_time(text=(ENTRY_T0 + timedelta(hours=23)).isoformat(" "))
    assert model.scan_check().ok
    fn, args, _ = model.scan_save_call()
    assert fn is core.correct_scan_time and args == (tp_id, ENTRY_T0 + timedelta(hours=23), "clock")


def test_future_time_refused_with_a_fixed_clock():
    model = EntryModel(now=lambda: datetime(2020, 1, 1, 12, 0))
    model.set_case(make_entry_case())
    assert model.administration_check().error_for("time").startswith("time:")


def test_missing_values_are_marked_once_the_user_typed_there():
    model, _ = _model()
    model.set_measurement_kind("dose-rate")
    assert model.measurement_check().error_for("dose_rate_usv_h")  # the core refuses it...
    assert model.measurement_problems()["dose_rate_usv_h"] == (None, None)  # ...not shown yet
    model.set_measurement("dose_rate_usv_h", "")
    error, _warning = model.measurement_problems()["dose_rate_usv_h"]
    assert error == "dose_rate_usv_h: dose rate (uSv/h) is missing"
    assert model.scan_problems()["reason"] == (None, None)
    model.set_scan_time(reason="")
    assert model.scan_problems()["reason"][0] == "reason: say why the acquisition time is corrected"


def test_administration_after_the_scans_is_refused_as_you_type():
    model, _ = _model()
    model.set_administration("time", (ENTRY_T0 + timedelta(hours=25)).isoformat(" "))
    error = model.administration_check().error_for("time")
    assert error.startswith("time:") and "time point TP1" in error
    model.new_administration()  # a second cycle now: after everything, and not the first
    model.set_administration("activity_mbq", "7400")
    assert model.administration_check().ok
