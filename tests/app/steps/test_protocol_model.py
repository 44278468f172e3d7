"""View-model of the protocol step, without Qt: choice, checklist, the stored run as tables.

Known answers: the checklist of the analysis demo case as the core's
``run_readiness`` gives it, and a stored run's numbers as the core's
``run_summary`` expresses them, printed with the precision of ``mrtdose run``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest

from app.steps.protocol.model import (
    LIMIT_COLUMNS,
    ORGAN_COLUMNS,
    VOI_COLUMNS,
    ProtocolModel,
)
from dosimetry_core.model import Administration, Case, Patient
from dosimetry_core.model.results import (
    LimitCheck,
    NextCycle,
    OrganResult,
    ProtocolRun,
    UncertaintyComponent,
    VoiRunResult,
)
from dosimetry_core.protocols.planning import run_readiness
from dosimetry_core.protocols.registry import load_protocol

T0 = datetime(2026, 3, 2, 10, 0)


def _run(kidney_dose_gy: float, next_mbq: float | None) -> ProtocolRun:
    kid = VoiRunResult(
        voi_id="v1",
        voi_name="Kidney_L",
        role="oar",
        organ_id="kidneys",
        review_flag="contour not approved (draft)",
        mass_g=150.0,
        tia_mbq_h=6270.4,
        dose_gy=kidney_dose_gy,
        dose_sd_gy=0.1 * kidney_dose_gy,
        bed_gy=4.2061,
        eqd2_gy=2.3774,
        tissue="kidney",
        model="bi-exp",
        method="voxel vsv-density",
        uncertainty_budget=(
            UncertaintyComponent("calibration", 0.05, 0.25),
            UncertaintyComponent("S-value", 0.02, 0.04),
        ),
    )
    tumour = replace(
        kid, voi_id="v2", voi_name="Tumour_1", role="lesion", organ_id=None, bed_gy=None,
        eqd2_gy=None, uncertainty_budget=(), review_flag="",
    )  # fmt: skip
    organ = OrganResult(
        "Kidneys", ("Kidney_L",), ("contour not approved (draft)",), 150.0,
        kidney_dose_gy, 0.1 * kidney_dose_gy, 4.2061, 2.3774, kidney_dose_gy / 7.4,
    )  # fmt: skip
    checks = (
        LimitCheck("kidneys", "bed_gy", "cumulative", 40.0, 10.2061, 4.2061, 6.0, 0.2552, True,
                   "Bodei 2008 (no risk factors)", None),
        LimitCheck("kidneys", "dose_gy", "cumulative", 23.0, 24.0, 4.0, 20.0, 24 / 23, False,
                   "Emami 1991 (external beam)", None),
    )  # fmt: skip
    nc = (
        NextCycle(next_mbq, "kidneys dose_gy", {"kidneys dose_gy": next_mbq, "kidneys bed_gy": 4e4})
        if next_mbq is not None
        else NextCycle(None, None, {}, reason="no limit applies")
    )
    return ProtocolRun(
        case_id="c1",
        protocol_id="lu177-dotatate",
        method="multi-point",
        dose_method="vsv-density",
        nuclide="Lu-177",
        administered_activity_mbq=7400.0,
        vois=(kid, tumour),
        organs={"kidneys": organ},
        limit_checks=checks,
        next_cycle=nc,
        previous_cycle_cases=("case-cycle-1",),
        computed_at="2026-03-09T10:00:00",
        user="phys",
    )


def _case(*runs: ProtocolRun) -> Case:
    case = Case(
        patient=Patient("P1"),
        administrations=[Administration(nuclide="Lu-177", activity_mbq=7400.0, time=T0)],
        case_id="c1",
    )
    for r in runs:
        case.add_result(r)
    return case


def test_the_newest_run_is_shown_never_a_superseded_one() -> None:
    old, new = _run(3.0, 30000.0), _run(3.90728, 37780.515)
    case = _case(old, new)
    assert [r.superseded for r in case.results] == [True, False]
    m = ProtocolModel(case, may_compute=True)
    assert m.summary is not None and m.summary.result_id == new.result_id
    organ = dict(zip(ORGAN_COLUMNS, m.organ_rows()[0], strict=True))
    assert organ["Dose (Gy)"] == "3.907"  # mrtdose run prints 3 decimals
    assert organ["BED (Gy)"] == "4.21" and organ["EQD2 (Gy)"] == "2.38"
    assert organ["Per activity (Gy/GBq)"] == f"{3.90728 / 7.4:.3f}"
    assert organ["Contours"] == "contour not approved (draft)"
    voi = dict(zip(VOI_COLUMNS, m.voi_rows()[0], strict=True))
    assert voi["TIA (MBq·h)"] == "6270" and voi["Per activity (Gy/GBq)"] == "0.528"
    tumour = dict(zip(VOI_COLUMNS, m.voi_rows()[1], strict=True))
    assert tumour["BED (Gy)"] == "-" and tumour["Contour"] == "approved"
    assert m.next_cycle_text() == "Next cycle: at most 37.78 GBq (net administered)"
    assert m.binding_text().startswith(
        "Binding constraint: Kidneys absorbed dose (cumulative limit 23 Gy)"
    )
    assert "case-cycle-1" in m.header() and "7.400 GBq net administered" in m.header()


def test_limit_rows_show_earlier_cycles_and_fail() -> None:
    m = ProtocolModel(_case(_run(4.0, 0.0)), may_compute=True)
    rows = [dict(zip(LIMIT_COLUMNS, r, strict=True)) for r in m.limit_rows()]
    dose = rows[1]
    assert (dose["Quantity"], dose["This cycle (Gy)"], dose["Earlier cycles (Gy)"]) == (
        "absorbed dose",
        "4.00",
        "20.00",
    )
    assert (dose["Cumulative (Gy)"], dose["Limit (Gy)"], dose["Of limit (%)"]) == (
        "24.00",
        "23",
        "104",
    )
    assert dose["Result"] == "FAIL" and rows[0]["Result"] == "PASS"
    assert m.limits_text() == "A limit is EXCEEDED (FAIL)."
    assert m.next_cycle_text() == "Next cycle: at most 0.00 GBq (net administered)"


def test_budget_in_percent_and_default_voi() -> None:
    m = ProtocolModel(_case(_run(4.0, None)), may_compute=True)
    assert m.default_budget_voi() == "Kidney_L"
    b = m.budget("Kidney_L")
    assert b is not None
    assert b.names == ("calibration", "S-value")
    assert b.rel_sd_percent == pytest.approx((5.0, 2.0))
    assert b.total_percent == pytest.approx(10.0)
    assert b.caption() == "Kidney_L: combined relative SD of the dose 10.0 % (1 SD)"
    assert m.budget("Tumour_1") is None  # no budget: no bars
    assert m.next_cycle_text() == "Next cycle: no activity proposed (no limit applies)"
    assert m.binding_text() == ""


def test_no_case_and_no_right_refuse_the_run() -> None:
    m = ProtocolModel(None, may_compute=True)
    assert not m.can_run and m.run_refusal() == "Open a case first."
    assert m.header().startswith("No protocol run stored")
    m = ProtocolModel(_case(), may_compute=False)
    assert not m.can_run
    assert m.run_refusal() == "Your role may look at protocol runs but not compute them."
    m = ProtocolModel(_case(), may_compute=True, selected="y90-sirt-resin")
    assert m.run_refusal() == "y90-sirt-resin is planned with the Calculators tab."


def test_choices_list_the_registry_with_nuclide() -> None:
    m = ProtocolModel(_case(), may_compute=True)
    ids = [c.protocol_id for c in m.choices]
    assert "lu177-dotatate" in ids and "i131-thyroid-benign" in ids
    lu = m.choices[m.index_of("lu177-dotatate")]
    assert lu.runnable and lu.text.startswith("lu177-dotatate — Lu-177 — ")
    assert not m.choices[m.index_of("i131-mibg")].runnable
    assert m.selected_id is not None and m.choices[m.index_of(m.selected_id)].nuclide == "Lu-177"
    # the case has no time point and no VOI: the checklist says so and Run is refused
    m.select("lu177-dotatate")
    assert "time points" in m.run_refusal() and "VOI: Kidneys" in m.run_refusal()


def test_checklist_of_the_analysis_case_is_the_cores(analysis_store: Any) -> None:
    case = analysis_store.load_case(analysis_store.case_id)
    m = ProtocolModel(case, may_compute=True, selected="lu177-dotatate")
    core = run_readiness(case, load_protocol("lu177-dotatate"))
    assert m.checklist_rows() == [
        [{"ok": "✓", "missing": "✗", "warning": "!", "optional": "–"}[i.state], i.item, i.detail]
        for i in core
    ]
    rows = {r[1]: r for r in m.checklist_rows()}
    assert rows["registrations"][2].startswith("3 proposed (of 3)")
    assert rows["VOI: Red marrow"][2] == "RedMarrow (draft)"
    assert m.can_run  # draft contours and proposed registrations warn, they do not stop it
    assert m.summary is None
