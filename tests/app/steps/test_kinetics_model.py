"""The kinetics view-model (no Qt) on the analysis case: known answers from the core and CLI.

The case is fitted once per module through the core call the view makes
(``fit_case_kinetics``); the CLI (``mrtdose kinetics CASE --json``) then fits
the same store again: the TIA ± SD and the model the view-model shows for
Kidney_L are the CLI's, the plotted points are the core TAC values.
"""

from __future__ import annotations

import json
import shutil
from typing import Any

import numpy as np
import pytest

from app.steps.kinetics.model import TABLE_COLUMNS, FitRequest, KineticsModel
from dosimetry_core.cli.main import main
from dosimetry_core.pipeline.kinetics_review import fit_case_kinetics
from dosimetry_core.store import CaseStore


@pytest.fixture(scope="module")
def fitted(analysis_store_dir: Any, tmp_path_factory: Any) -> Any:
    """A private copy of the analysis store, every VOI fitted by the core (auto)."""
    folder = tmp_path_factory.mktemp("kin-model") / "store"
    shutil.copytree(analysis_store_dir, folder)
    case_id = (folder / "CASE_ID").read_text()
    store = CaseStore(folder)
    fit_case_kinetics(store, case_id)
    yield store, case_id
    store.close()


def _cli_kidney(store: CaseStore, case_id: str, capsys: Any) -> dict[str, Any]:
    capsys.readouterr()
    assert (
        main(["--store", str(store.path), "kinetics", case_id, "--voi", "Kidney_L", "--json"]) == 0
    )
    rows = json.loads(capsys.readouterr().out)["vois"]
    return next(r for r in rows if r["voi_name"] == "Kidney_L")


def test_kidney_tia_and_model_equal_the_cli(fitted, capsys):
    store, case_id = fitted
    model = KineticsModel(store.load_case(case_id), True)
    kid = model.find("Kidney_L")
    assert kid is not None and kid.kinetics is not None
    cli = _cli_kidney(store, case_id, capsys)
    assert kid.kinetics.model == cli["model"]
    assert kid.kinetics.tia_mbq_h == pytest.approx(cli["tia_mbq_h"], rel=1e-9)
    assert kid.kinetics.tia_sd_mbq_h == pytest.approx(cli["tia_sd_mbq_h"], rel=1e-9)
    # what the VOI list and the model table show
    assert kid.cells()[3] == cli["model"]
    assert kid.cells()[4] == f"{cli['tia_mbq_h']:.1f} ± {cli['tia_sd_mbq_h']:.1f}"
    table = model.table(kid.voi_id)
    selected = [r for r in table if r[0].startswith("✔")]
    assert len(selected) == 1 and selected[0][0] == "✔ " + cli["model"]
    tia_col = TABLE_COLUMNS.index("TIA ± SD (MBq·h)")
    assert selected[0][tia_col] == f"{cli['tia_mbq_h']:.1f} ± {cli['tia_sd_mbq_h']:.1f}"
    # parameters with units, AICc and weight
    params = selected[0][TABLE_COLUMNS.index("Parameters ± SD")]
    assert "MBq" in params and "1/h" in params
    assert selected[0][TABLE_COLUMNS.index("Weight")] != "-"
    assert "MBq·h" in model.summary(kid.voi_id) and "TIAC" in model.summary(kid.voi_id)


def test_plot_points_are_the_core_tac(fitted):
    store, case_id = fitted
    case = store.load_case(case_id)
    model = KineticsModel(case, True)
    kid = model.find("Kidney_L")
    assert kid is not None
    data = model.plot(kid.voi_id)
    tac = case.kinetics.voi(kid.voi_id).tac
    assert data is not None
    assert data.time_h == tac.time_h and data.activity_mbq == tac.activity_mbq
    np.testing.assert_allclose(data.sd_mbq, 0.1 * np.asarray(tac.activity_mbq))
    names = {c.model for c in data.curves}
    assert data.selected_model in names and "trapezoid" in names
    assert len(data.residuals_mbq) == len(tac.time_h)


def test_stp_and_population_texts(fitted):
    store, case_id = fitted
    model = KineticsModel(store.load_case(case_id), True)
    kid = model.find("Kidney_L")
    assert kid is not None
    cells, note = model.stp(kid.voi_id, "haenscheid")
    assert len(cells) == 4 and "Hänscheid" in note and "MBq·h" in note
    diffs = [float(c[2]) for c in cells]  # per cent, signed
    assert all(abs(d) < 100 for d in diffs) and cells[0][1] != "-"
    _cells, note = model.stp(kid.voi_id, "madsen")
    assert "effective half-life" in note
    t_eff, text = model.population(kid.voi_id)
    # the demo's radiopharmaceutical (Lu-177 DOTATATE) has no entry in the shipped table
    assert t_eff is None and "no population effective half-life" in text


def test_override_is_kept_when_all_vois_are_refitted(fitted):
    store, case_id = fitted
    req = FitRequest(("Kidney_L",), "biexp-uptake")
    fit_case_kinetics(store, case_id, **req.kwargs())
    fit_case_kinetics(store, case_id, vois=["Kidney_L", "Liver"], model=None)
    model = KineticsModel(store.load_case(case_id), True)
    kid, liver = model.find("Kidney_L"), model.find("Liver")
    assert kid is not None and liver is not None
    assert kid.kinetics.model == "biexp-uptake" and kid.cells()[3] == "biexp-uptake (override)"
    assert liver.kinetics.model_requested == "auto"
    assert "model forced: biexp-uptake" in model.summary(kid.voi_id)
    # back to auto
    fit_case_kinetics(store, case_id, vois=["Kidney_L"], model="auto")
    assert KineticsModel(store.load_case(case_id), True).find("Kidney_L").cells()[3] == "mono"


def test_permissions_and_empty_case(fitted):
    store, case_id = fitted
    looker = KineticsModel(store.load_case(case_id), False)
    assert not looker.can_fit and not looker.can_tia_map
    assert not looker.can_override(looker.rows[0].voi_id)
    assert looker.has_tia_map and "MBq·h/mL" in looker.tia_map_text()
    empty = KineticsModel(None, True)
    assert (
        empty.rows == [] and not empty.can_fit and empty.summary(None) == "This case has no VOIs."
    )
