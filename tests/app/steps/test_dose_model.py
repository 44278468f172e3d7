"""The dose step's view-model, without Qt: settings, table cells, DVH, limits (known answers).

One voxel S-value run per module on a copy of the shared analysis case (small
noise-free demo, registered, with a TIA map); the table cells of Kidney_L must
equal what ``mrtdose dose CASE --method vsv --json`` prints on the same store.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.steps.dose.model import COLUMNS, DVH_BINS, DoseModel, RunSettings, fmt_gy
from dosimetry_core.model.results import DoseSummary
from dosimetry_core.store import CaseStore

C = {name: i for i, name in enumerate(COLUMNS)}


@pytest.fixture(scope="module")
def vsv_store(analysis_store_dir: Path, tmp_path_factory: Any) -> Any:
    """A module copy of the analysis store with one vsv dose run (the step's own settings)."""
    from dosimetry_core.pipeline.dose import compute_dose

    folder = tmp_path_factory.mktemp("dose-model") / "store"
    shutil.copytree(analysis_store_dir, folder)
    case_id = (folder / "CASE_ID").read_text()
    with CaseStore(folder) as store:
        compute_dose(store, case_id, **RunSettings(method="vsv").compute_dose_kwargs())
    store = CaseStore(folder)
    yield store, case_id
    store.close()


def test_settings_give_the_core_arguments() -> None:
    assert RunSettings("vsv").compute_dose_kwargs() == {"method": "vsv", "dvh_bins": DVH_BINS}
    mc = RunSettings("mc", 5000, 2.0, "Kidney_L", "total").compute_dose_kwargs()
    assert mc == {
        "method": "mc",
        "dvh_bins": DVH_BINS,
        "mc_histories": 5000,
        "mc_target_component": "total",
        "mc_target_uncertainty": 0.02,
        "mc_target_voi": "Kidney_L",
    }
    assert "mc_target_voi" not in RunSettings("mc", 5000).compute_dose_kwargs()
    assert "2 % (total) in Kidney_L" in RunSettings("mc", 5000, 2.0, "Kidney_L", "total").describe()


def test_kidney_cells_equal_the_cli_json(vsv_store: Any, tmp_path: Path, capsys: Any) -> None:
    from dosimetry_core.cli.main import main

    shutil.copytree(vsv_store[0].path, tmp_path / "store")  # the CLI run saves: a private copy
    store, case_id = CaseStore(tmp_path / "store"), vsv_store[1]
    model = DoseModel(store.load_case(case_id), may_compute=True)
    assert model.selected is not None and model.selected.method == "vsv"
    row = model.row("Kidney_L")
    capsys.readouterr()
    assert main(["--store", str(store.path), "dose", case_id, "--method", "vsv", "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    k = next(v for v in cli["vois"] if v["voi_name"] == "Kidney_L")
    assert k["mean_gy"] > 0.1  # a real dose, not an empty VOI
    for col, key in (
        ("Mean (Gy)", "mean_gy"),
        ("D2 (Gy)", "d2_gy"),
        ("D50 (Gy)", "d50_gy"),
        ("D98 (Gy)", "d98_gy"),
        ("Max (Gy)", "max_gy"),
    ):
        assert row.cells[C[col]] == f"{k[key]:.3f}", col
    assert row.cells[C["Volume (mL)"]] == f"{k['volume_ml']:.1f}"
    assert row.cells[C["Mass (g)"]] == f"{k['mass_g']:.1f}"
    assert row.cells[C["Review"]] == k["review_flag"] and row.draft  # draft RTSTRUCT contour
    assert row.cells[C["SD of mean (Gy)"]] == "-"  # deterministic engine
    assert model.hidden_columns() == [C["SD of mean (Gy)"], C["MC voxel unc. (%)"]]
    # the CLI run superseded the step's summary: the model now shows the CLI's one
    again = DoseModel(store.load_case(case_id), may_compute=True)
    assert [s.result_id for s in again.summaries] == [cli["result_id"]]
    assert again.row("Kidney_L").cells == row.cells
    kid_id = row.voi_id
    assert again.needs_dvh and again.dvh(kid_id) is None  # the CLI stored no DVH
    curve = model.selected.voi(kid_id).dvh  # type: ignore[union-attr]
    assert curve is not None
    again.set_computed_dvhs(again.selected.dose_map_id, {kid_id: curve})  # type: ignore[union-attr]
    assert not again.needs_dvh
    np.testing.assert_array_equal(again.dvh(kid_id).dose_gy, curve.bin_edges_gy)  # type: ignore[union-attr]
    store.close()


def test_dvh_is_the_core_curve_in_percent(vsv_store: Any) -> None:
    store, case_id = vsv_store
    case = store.load_case(case_id)
    model = DoseModel(case, may_compute=True)
    summary = case.dose_summary()
    assert isinstance(summary, DoseSummary)
    kid = next(v for v in summary.vois if v.voi_name == "Kidney_L")
    assert kid.dvh is not None
    plot = model.dvh(kid.voi_id)
    assert plot is not None and plot.voi_name == "Kidney_L"
    np.testing.assert_array_equal(plot.dose_gy, kid.dvh.bin_edges_gy[: plot.dose_gy.size])
    np.testing.assert_allclose(
        plot.volume_percent, 100 * np.asarray(kid.dvh.cumulative_fraction[: plot.dose_gy.size])
    )
    assert plot.volume_percent[0] == pytest.approx(100.0)
    assert plot.dose_gy.size >= DVH_BINS


def test_limits_of_a_protocol_mark_pass_or_fail(vsv_store: Any) -> None:
    store, case_id = vsv_store
    case = store.load_case(case_id)
    model = DoseModel(case, may_compute=True, limits_protocol="")
    assert model.row("Kidney_L").cells[C["Limit check"]] == "-"
    assert "no protocol" in model.caption()
    model.set_limits_protocol("lu177-dotatate")
    kid = model.row("Kidney_L")
    mean = float(kid.cells[C["Mean (Gy)"]])
    assert kid.cells[C["Limit (Gy)"]] == "23 (cumulative)"
    assert kid.cells[C["Limit check"]] == ("PASS" if mean <= 23.0 else "FAIL")
    assert "Emami" in kid.tooltips[C["Limit check"]]
    assert model.row("Liver").cells[C["Limit check"]] == "-"
    model.set_limits_protocol("no-such-protocol")
    assert "unknown protocol" in model.caption()


def test_no_case_and_no_permission() -> None:
    empty = DoseModel(None, may_compute=True)
    assert not empty.can_run and empty.rows == [] and empty.caption() == "No case open."


def test_physician_model_cannot_run(vsv_store: Any) -> None:
    store, case_id = vsv_store
    model = DoseModel(store.load_case(case_id), may_compute=False)
    assert not model.can_run and model.rows
    assert "may look" in model.run_hint()
    assert fmt_gy(None) == "-" and fmt_gy(1.23456) == "1.235"


def test_the_view_model_imports_no_qt() -> None:
    src = (Path(__file__).parents[3] / "app/steps/dose/model.py").read_text()
    assert "PySide6" not in src and "pyqtgraph" not in src
