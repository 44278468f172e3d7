"""kinetics_review: candidate rows and curves, Akaike weights, point SDs, STP, population.

Known answers: a noise-free mono-exponential TAC (A0 = 100 MBq, T_eff = 40 h)
fitted by the core; its mono curve passes through the analytic values and the
Hänscheid estimate from the scan at t = T_eff equals the exact TIA A0 T_eff / ln 2
(Hänscheid et al. 2018: exact at lambda*tau = ln 2).
"""

from __future__ import annotations

import math
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.kinetics.fitting import fit_tac
from dosimetry_core.kinetics.tac import Tac
from dosimetry_core.model import Administration, Case, Patient
from dosimetry_core.pipeline.kinetics import voi_kinetics
from dosimetry_core.pipeline.kinetics_review import (
    akaike_weights,
    candidate_curves,
    candidate_rows,
    point_sd_mbq,
    population_half_life,
    stp_comparison,
)

A0, T_EFF = 100.0, 40.0
TIMES = (4.0, 24.0, 40.0, 96.0, 168.0)


def _voi(name: str = "Kidney_L") -> Any:
    """voi_kinetics reads only the id and name of the VOI."""
    return SimpleNamespace(voi_id="voi-1", name=name)


@pytest.fixture(scope="module")
def kin():
    lam = math.log(2) / T_EFF
    act = [A0 * math.exp(-lam * t) for t in TIMES]
    tac = Tac(
        "voi-1", "Kidney_L", "tp1", ["a"] * 5, list("abcde"), list(TIMES), act, act, [1.0] * 5, 10.0
    )
    fit = fit_tac(TIMES, act, nuclide="Lu-177", administered_activity_mbq=7400.0, mc_samples=0)
    return voi_kinetics(_voi(), tac, fit.to_dict(), administered_activity_mbq=7400.0)


def test_akaike_weights_known_values():
    w = akaike_weights({"a": 10.0, "b": 12.0, "c": None})
    assert set(w) == {"a", "b"}
    assert w["a"] == pytest.approx(1 / (1 + math.exp(-1)))
    assert sum(w.values()) == pytest.approx(1.0)
    assert akaike_weights({"x": None}) == {}


def test_rows_mark_the_selected_model_with_units(kin):
    rows = candidate_rows(kin)
    names = [r.model for r in rows]
    assert "mono" in names and "trapezoid" in names
    sel = [r for r in rows if r.selected]
    assert [r.model for r in sel] == [kin.model] == ["mono"]
    mono = sel[0]
    assert mono.tia_mbq_h == pytest.approx(kin.tia_mbq_h)
    assert mono.tia_mbq_h == pytest.approx(A0 * T_EFF / math.log(2), rel=1e-6)
    units = {p.name: p.unit for p in mono.parameters}
    assert units == {"A0": "MBq", "lambda": "1/h"}
    assert mono.akaike_weight is not None and 0 < mono.akaike_weight <= 1
    assert dict(mono.half_lives_h)["T_half_eff"] == pytest.approx(T_EFF, rel=1e-6)


def test_curves_follow_the_model(kin):
    curves = {c.model: c for c in candidate_curves(kin, n_samples=50, t_end_h=200.0)}
    mono = curves["mono"]
    assert mono.selected and len(mono.time_h) == 50
    t = np.asarray(mono.time_h)
    assert t[0] == 0.0 and t[-1] == 200.0
    expect = A0 * np.exp(-math.log(2) / T_EFF * t)
    np.testing.assert_allclose(mono.activity_mbq, expect, rtol=1e-6)
    trap = curves["trapezoid"]
    # the polyline goes through the points, from 0 MBq at administration (linear start)
    assert trap.activity_mbq[0] == 0.0
    at = np.interp(TIMES, trap.time_h, trap.activity_mbq)
    assert at[2] == pytest.approx(kin.tac.activity_mbq[2], rel=2e-2)


def test_point_sd_is_the_relative_error_model(kin):
    sd, source = point_sd_mbq(kin)
    assert source == "relative error model 10 %"
    np.testing.assert_allclose(sd, 0.1 * np.asarray(kin.tac.activity_mbq))


def test_stp_haenscheid_exact_at_one_effective_half_life(kin):
    rows = stp_comparison(kin, "haenscheid")
    assert [r.time_h for r in rows] == list(TIMES)
    at_teff = rows[2]
    assert at_teff.relative_difference == pytest.approx(0.0, abs=1e-6)
    madsen = stp_comparison(kin, "madsen", t_eff_h=T_EFF)
    assert all(abs(r.relative_difference) < 1e-6 for r in madsen)
    with pytest.raises(InvalidInputError):
        stp_comparison(kin, "madsen")


def _case(pharm: str) -> Case:
    adm = Administration(
        nuclide="Lu-177", activity_mbq=7400.0, time=datetime(2026, 1, 1), radiopharmaceutical=pharm
    )
    return Case(patient=Patient("P"), administrations=[adm])


def test_population_half_life_from_the_table():
    p = population_half_life(_case("PSMA-617"), "Left Kidney")
    assert p.organ == "kidneys" and p.t_eff_h == pytest.approx(35.5) and p.source
    none = population_half_life(_case("Lu-177 DOTATATE"), "Kidney_L")
    assert none.t_eff_h is None and "no population effective half-life" in none.note
    tumour = population_half_life(_case("PSMA-617"), "Tumour_1")
    assert tumour.t_eff_h is None and tumour.note
