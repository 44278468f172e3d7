"""Typed result records: JSON round trips, versioning in the case, hostile documents.

Known answers: ``from_dict(json(to_dict(x))) == x`` for every record and for a
case holding them; non-finite numbers are stored as null; adding a record of a
kind supersedes the current one of that kind (dose: of that method) and keeps it.
"""

from __future__ import annotations

import json
import math
from datetime import datetime

import pytest

from dosimetry_core.model import Case, Patient
from dosimetry_core.model.results import (
    NET_ACTIVITY_DEFINITION,
    CandidateModel,
    DoseStatistics,
    DoseSummary,
    DvhCurve,
    KineticsRecord,
    LimitCheck,
    NextCycle,
    OrganResult,
    ParameterValue,
    ProtocolRun,
    TacPoints,
    UncertaintyComponent,
    VoiDose,
    VoiKinetics,
    VoiRunResult,
    result_from_dict,
)


def _json(d):
    return json.loads(json.dumps(d, allow_nan=False))


def _kinetics(voi_id: str = "voi-1", tia: float = 1000.0) -> VoiKinetics:
    a_net = 7350.5
    return VoiKinetics(
        voi_id=voi_id,
        voi_name="Kidney_L",
        tac=TacPoints(
            time_h=(4.0, 24.0, 96.0),
            activity_mbq=(50.0, 40.0, 10.0),
            activity_sd_mbq=(2.5, 2.0, 0.5),
            voi_id=voi_id,
            time_point_ids=("tp-1", "tp-2", "tp-3"),
            volume_ml=150.0,
            recovery_coefficient=0.8,
        ),
        model="mono",
        tia_mbq_h=tia,
        tia_sd_mbq_h=50.0,
        tiac_h=tia / a_net,
        tiac_sd_h=50.0 / a_net,
        administered_activity_mbq=a_net,
        parameters=(
            ParameterValue("A0", 55.0, "MBq", 1.5),
            ParameterValue("lambda", 0.015, "1/h", 0.001),
        ),
        candidates=(CandidateModel("mono", 10.5, tia), CandidateModel("biexp", None, None)),
        half_lives_h=(("effective", 46.2),),
        review_flag="contour not approved (draft)",
        warnings=("a warning",),
        nuclide="Lu-177",
        computed_at="2026-03-09T10:00:00",
        fit={"model": "mono", "covariance": [[1.0, 0.0], [0.0, 1e-6]]},
    )


def _dose() -> DoseSummary:
    stats = DoseStatistics(
        n_voxels=100, volume_ml=150.0, mean_gy=3.2, median_gy=3.1, min_gy=0.5, max_gy=6.0,
        sd_gy=0.8, d2_gy=5.5, d50_gy=3.1, d98_gy=1.0, mass_g=156.0,
        v_fraction={"V2Gy": 0.9}, v_ml={"V2Gy": 135.0}, note=None,
    )  # fmt: skip
    dvh = DvhCurve((0.0, 3.0, 6.5), (100.0, 50.0), (0.667, 0.333), (1.0, 0.333, 0.0), 150.0)
    return DoseSummary(
        dose_map_id="map-1",
        method="vsv-density",
        vois=(
            VoiDose("voi-1", "Kidney_L", "", stats, mc_mean_voxel_uncertainty=0.01, dvh=dvh),
            VoiDose("voi-2", "Tiny", "", None, error="the VOI does not overlap the dose grid"),
        ),
        nuclide="Lu-177",
        tia_map_id="map-0",
        warnings=("progeny not counted",),
        provenance={"method": "vsv-density", "voxel_mm": [4.8, 4.8, 4.8]},
        created_by="phys",
    )


def _run(kinetics_id: str | None = None) -> ProtocolRun:
    organ = OrganResult("Kidneys", ("Kidney_L",), ("",), 156.0, 3.2, 0.3, 3.6, 3.0, 0.435)
    return ProtocolRun(
        case_id="case-1",
        protocol_id="lu177-dotatate",
        method="multi-point",
        dose_method="vsv-density",
        nuclide="Lu-177",
        administered_activity_mbq=7350.5,
        vois=(
            VoiRunResult(
                "voi-1",
                "Kidney_L",
                "oar",
                "kidneys",
                "",
                156.0,
                1000.0,
                3.2,
                0.3,
                3.6,
                3.0,
                "kidney",
                "mono",
                "voxel vsv-density",
                uncertainty_budget=(UncertaintyComponent("calibration", 0.05, 0.4),),
                notes=("note",),
            ),
        ),  # fmt: skip
        organs={"kidneys": organ},
        limit_checks=(
            LimitCheck(
                "kidneys",
                "dose_gy",
                "cumulative",
                23.0,
                3.2,
                3.2,
                0.0,
                3.2 / 23,
                True,
                "Emami 1991",
                None,
            ),
        ),  # fmt: skip
        next_cycle=NextCycle(9000.0, "kidneys dose_gy", {"kidneys dose_gy": 9000.0}, "same"),
        warnings=("w",),
        computed_at="2026-03-09T10:30:00",
        user="phys",
        dose_map_id="map-1",
        checklist=({"item": "administration", "present": True},),
        kinetics_id=kinetics_id,
        dose_summary_id="dose-1",
    )


@pytest.mark.parametrize(
    "record",
    [KineticsRecord((_kinetics(), _kinetics("voi-2", 20.0))), _dose(), _run("kin-1")],
    ids=["kinetics", "dose", "protocol_run"],
)
def test_records_round_trip_through_json(record) -> None:
    back = result_from_dict(_json(record.to_dict()))
    assert type(back) is type(record)
    assert back == record


def test_case_round_trip_keeps_results_and_their_order() -> None:
    case = Case(patient=Patient("P1"))
    kin = case.add_result(KineticsRecord((_kinetics(),)))
    case.add_result(_dose())
    run = case.add_result(_run(kin.result_id))
    back = Case.from_dict(_json(case.to_dict()))
    assert back.results == case.results
    assert back.protocol_run == run and back.kinetics == kin
    assert back.find_result(run.kinetics_id) == kin


def test_cli_shapes_keep_their_keys() -> None:
    """The JSON rows of mrtdose kinetics / dose / run keep the old keys (public contract)."""
    k = _kinetics().to_dict()
    assert {"format", "voi_id", "tac", "model", "parameters", "tia_mbq_h", "tiac_h", "fit",
            "error", "warnings", "administered_activity_mbq", "review_flag"} <= set(k)  # fmt: skip
    assert k["parameters"]["A0"] == {"value": 55.0, "unit": "MBq", "sd": 1.5}
    assert k["tac"]["time_h"] == [4.0, 24.0, 96.0]
    row = _dose().vois[0].to_dict()
    assert row["mean_gy"] == 3.2 and row["v_fraction"] == {"V2Gy": 0.9} and "dvh" in row
    assert _dose().vois[1].to_dict()["error"].startswith("the VOI does not overlap")
    r = _run().to_dict()
    assert r["protocol"] == "lu177-dotatate" and r["all_limits_passed"] is True
    assert r["organs"]["kidneys"]["dose_per_activity_gy_per_gbq"] == 0.435
    assert r["next_cycle"]["activity_mbq"] == 9000.0


def test_non_finite_numbers_are_stored_as_null() -> None:
    k = _kinetics(tia=math.nan)
    d = k.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["tia_mbq_h"] is None and VoiKinetics.from_dict(d).tia_mbq_h is None


def test_recomputing_supersedes_the_current_record_of_the_kind() -> None:
    case = Case(patient=Patient("P1"))
    first = case.add_result(KineticsRecord((_kinetics(),), created_at=datetime(2026, 3, 9)))
    run = case.add_result(_run())
    second = case.add_result(KineticsRecord((_kinetics(tia=1100.0),)))
    assert case.kinetics == second
    assert case.find_result(first.result_id).superseded  # kept, marked
    assert not case.find_result(run.result_id).superseded  # another kind is untouched
    assert len(case.result_records("kinetics", current_only=False)) == 2
    assert case.result_records("kinetics") == [second]


def test_every_per_activity_record_names_its_activity_definition() -> None:
    assert _kinetics().administered_activity_definition == NET_ACTIVITY_DEFINITION
    assert _run().administered_activity_definition == NET_ACTIVITY_DEFINITION
    assert "residual" in NET_ACTIVITY_DEFINITION and "decay-corrected" in NET_ACTIVITY_DEFINITION


def test_a_hostile_result_kind_is_refused() -> None:
    doc = Case(patient=Patient("P1")).to_dict()
    doc["results"] = [{"kind": "__import__('os')", "result_id": "x"}]
    with pytest.raises(ValueError, match="unknown result kind"):
        Case.from_dict(doc)
    with pytest.raises(KeyError):
        Case(patient=Patient("P1")).find_result("kin-none")
