"""protocols.planning: readiness of a case for a protocol and a run in the panel's units."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from dosimetry_core.model import (
    Administration,
    Case,
    Geometry,
    ImageUnits,
    Patient,
    SeriesInfo,
    TimePoint,
)
from dosimetry_core.model.case import (
    VOI,
    Registration,
    RegistrationStatus,
    VoiKind,
    VoiStatus,
)
from dosimetry_core.model.results import (
    LimitCheck,
    NextCycle,
    OrganResult,
    ProtocolRun,
    UncertaintyComponent,
    VoiRunResult,
)
from dosimetry_core.model.volume import VolumeRef
from dosimetry_core.protocols.planning import run_readiness, run_summary
from dosimetry_core.protocols.registry import load_protocol

T0 = datetime(2026, 3, 2, 10, 0)


def _case(n_tp: int, statuses: list[RegistrationStatus | None]) -> Case:
    tps = []
    for i in range(n_tp):
        tp = TimePoint(
            acquired_at=T0 + timedelta(hours=24 * (i + 1)),
            modality="NM",
            functional=SeriesInfo(f"nm-{i}"),
            label=f"TP{i + 1}",
        )
        tps.append(tp)
    for tp, st in zip(tps[1:], statuses, strict=True):
        if st is not None:
            tp.registration = Registration(tps[0].time_point_id, [[1.0]], status=st)
    ref = VolumeRef(
        "k", Geometry((1, 1, 1), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0)), ImageUnits.MASK, "uint8"
    )
    vois = [
        VOI("Kidney_L", VoiKind.ORGAN, ref, status=VoiStatus.APPROVED),
        VOI("Kidney_R", VoiKind.ORGAN, ref, status=VoiStatus.DRAFT),
    ]
    adm = Administration(nuclide="Lu-177", activity_mbq=7400.0, time=T0)
    return Case(patient=Patient("P1"), administrations=[adm], time_points=tps, vois=vois)


def _items(case: Case) -> dict[str, object]:
    return {i.item: i for i in run_readiness(case, load_protocol("lu177-dotatate"))}


def test_readiness_names_what_a_run_reads() -> None:
    items = _items(_case(4, [RegistrationStatus.ACCEPTED, RegistrationStatus.PROPOSED, None]))
    kid = items["VOI: Kidneys"]
    assert kid.state == "warning"  # type: ignore[attr-defined]
    assert "Kidney_L (approved)" in kid.detail and "Kidney_R (draft)" in kid.detail  # type: ignore[attr-defined]
    marrow = items["VOI: Red marrow"]
    assert marrow.state == "missing" and not marrow.present  # type: ignore[attr-defined]
    tp = items["time points"]
    assert tp.state == "ok" and "4 time point(s)" in tp.detail  # type: ignore[attr-defined]
    reg = items["registrations"]
    assert reg.state == "warning"  # type: ignore[attr-defined]
    assert reg.detail.startswith("1 accepted, 1 proposed, 1 missing (of 3)")  # type: ignore[attr-defined]
    assert items["TIA map"].state == "optional"  # type: ignore[attr-defined]


def test_readiness_too_few_time_points_and_all_accepted() -> None:
    items = _items(_case(2, [RegistrationStatus.ACCEPTED]))
    assert items["time points"].state == "missing"  # type: ignore[attr-defined]
    assert items["registrations"].state == "ok"  # type: ignore[attr-defined]
    one = _items(_case(1, []))
    assert one["time points"].state == "ok"  # single time point method
    assert "registrations" not in one


def _run() -> ProtocolRun:
    kid = VoiRunResult(
        voi_id="v1",
        voi_name="Kidney_L",
        role="oar",
        organ_id="kidneys",
        review_flag="",
        mass_g=150.0,
        tia_mbq_h=6000.0,
        dose_gy=4.0,
        dose_sd_gy=0.4,
        bed_gy=4.3,
        eqd2_gy=2.4,
        tissue="kidney",
        model="bi-exp",
        method="voxel vsv",
        uncertainty_budget=(
            UncertaintyComponent("calibration", 0.05, 0.25),
            UncertaintyComponent("volume", 0.08, 0.75),
        ),
    )
    organ = OrganResult("Kidneys", ("Kidney_L",), ("",), 150.0, 4.0, 0.4, 4.3, 2.4, 4.0 / 8.0)
    checks = (
        LimitCheck(
            "kidneys", "dose_gy", "cumulative", 23.0, 10.0, 4.0, 6.0, 10 / 23, True, "E", None
        ),
        LimitCheck(
            "kidneys", "bed_gy", "cumulative", 40.0, 41.0, 4.3, 36.7, 41 / 40, False, "B", None
        ),
    )
    nc = NextCycle(
        activity_mbq=0.0,
        binding="kidneys bed_gy",
        limits={"kidneys bed_gy": 0.0, "kidneys dose_gy": 26000.0},
    )
    return ProtocolRun(
        case_id="c",
        protocol_id="lu177-dotatate",
        method="multi-point",
        dose_method="vsv",
        nuclide="Lu-177",
        administered_activity_mbq=8000.0,
        vois=(kid,),
        organs={"kidneys": organ},
        limit_checks=checks,
        next_cycle=nc,
        previous_cycle_cases=("c0",),
    )


def test_summary_per_gbq_percent_and_binding_limit() -> None:
    s = run_summary(_run(), load_protocol("lu177-dotatate"))
    assert s.administered_activity_gbq == pytest.approx(8.0)
    v = s.vois[0]
    assert v.dose_per_activity_gy_per_gbq == pytest.approx(0.5)
    assert v.dose_rel_sd_percent == pytest.approx(10.0)
    assert [(b.name, b.rel_sd_percent, b.variance_percent) for b in v.budget] == [
        ("calibration", pytest.approx(5.0), pytest.approx(25.0)),
        ("volume", pytest.approx(8.0), pytest.approx(75.0)),
    ]
    assert s.organs[0].label == "Kidneys" and s.organs[0].dose_per_activity_gy_per_gbq == 0.5
    bed = s.limits[1]
    assert (bed.quantity_label, bed.this_cycle_gy, bed.previous_cycles_gy) == ("BED", 4.3, 36.7)
    assert bed.percent_of_limit == pytest.approx(102.5) and not bed.passed
    assert not s.all_limits_passed and s.previous_cycle_cases == ("c0",)
    nc = s.next_cycle
    assert nc.activity_gbq == 0.0
    assert nc.binding_label == "Kidneys BED (cumulative limit 40 Gy)"
    assert nc.limits_gbq["kidneys dose_gy"] == pytest.approx(26.0)


def test_summary_without_next_cycle() -> None:
    run = _run()
    from dataclasses import replace

    run = replace(run, next_cycle=NextCycle(None, None, {}, reason="no limit applies"))
    s = run_summary(run)
    assert s.next_cycle.activity_gbq is None and s.next_cycle.binding_label is None
    assert s.next_cycle.reason == "no limit applies"
    assert s.limits[0].organ_label == "Kidneys"  # from the run's organs without the protocol
