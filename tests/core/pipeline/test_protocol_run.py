"""``mrtdose run CASE --protocol lu177-dotatate`` on the small demo, end to end, headless.

Done-means line of issue 6: organ and lesion doses, BED, uncertainty and the
check against limits from one command.  Known answers checked here: the organ
doses equal the voxel dose statistics of the same map (mass-weighted over the
two kidneys); EQD2 = BED / (1 + 2/(alpha/beta)); BED >= dose; the next-cycle
activity for a dose limit is (limit - cumulative) / (dose per MBq); the
cumulative sums add the earlier cycles; impossible requests are refused.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from dosimetry_core.cli.main import main
from dosimetry_core.errors import InvalidInputError
from dosimetry_core.model.results import OrganResult
from dosimetry_core.pipeline.contour_io import import_rtstruct_into_case
from dosimetry_core.pipeline.importing import import_directory
from dosimetry_core.pipeline.protocol_run import _limit_checks, run_protocol
from dosimetry_core.protocols.registry import load_protocol
from dosimetry_core.radiobiology.tissues import tissue_parameters
from dosimetry_core.store import CaseStore

RESIDUAL_MBQ = 200.0
"""Residual left in the syringe, measured 1 h after the administration."""
LU177_HALF_LIFE_H = 159.528
"""Lu-177 physical half-life, 6.647 d (ICRP-107)."""


def _new_case(store, root, residual_mbq: float = RESIDUAL_MBQ):
    case_id = import_directory(store, root).cases[0].case_id
    case = store.load_case(case_id)
    rt = next(root.glob("tp1*/RTSTRUCT/*.dcm"))
    import_rtstruct_into_case(store, case, rt, time_point=case.sorted_time_points()[0].label)
    adm = case.first_administration
    adm.residual_activity_mbq = residual_mbq
    adm.residual_time = adm.time + timedelta(hours=1)
    store.save_case(case)
    return case_id


@pytest.fixture(scope="module")
def run(small_demo_dirs, shared_kernel_cache, tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("MRTDOSE_KERNEL_CACHE", str(shared_kernel_cache))
    store_dir = tmp_path_factory.mktemp("run-store")
    store = CaseStore(store_dir)
    case_id = _new_case(store, small_demo_dirs["siemens-bqml"])
    res = run_protocol(store, case_id, "lu177-dotatate", user="physicist", timings_s=_TIMINGS)
    yield store, store_dir, case_id, res
    mp.undo()


_TIMINGS: dict[str, float] = {}
"""Stage timings of the module's run (filled by the ``run`` fixture)."""


def test_stage_timings_cover_the_run(run):
    """``timings_s``: every stage of STAGES timed (s, >= 0) and the laps leave no gap
    (they sum to the total); the case was not registered, so the run registered it."""
    from dosimetry_core.pipeline.protocol_run import STAGES

    assert set(_TIMINGS) == {*STAGES, "total"}
    assert all(v >= 0.0 for v in _TIMINGS.values())
    stages = sum(_TIMINGS[k] for k in STAGES)
    assert stages == pytest.approx(_TIMINGS["total"], rel=1e-6, abs=1e-3)
    for k in ("registration", "tia_map", "dose", "kinetics", "save"):
        assert _TIMINGS[k] > 0.0


def test_organs_lesions_bed_uncertainty_and_limits(run):
    store, _, case_id, res = run
    assert res.method == "multi-point" and res.dose_method == "vsv-density"
    assert set(res.organs) == {"kidneys", "red-marrow", "liver", "spleen"}
    lesions = [v for v in res.vois if v.role == "lesion"]
    assert {v.voi_name for v in lesions} == {"Tumour_1", "Tumour_2", "Tumour_3"}
    for v in res.vois:
        assert v.review_flag and v.dose_gy is not None and v.dose_gy > 0
        assert v.tia_mbq_h is not None and v.tia_mbq_h > 0
        assert v.bed_gy is not None and v.bed_gy >= v.dose_gy
        ab = tissue_parameters(v.tissue).alpha_beta_gy
        assert v.eqd2_gy == pytest.approx(v.bed_gy / (1 + 2 / ab), rel=1e-9)
        assert v.dose_sd_gy is not None and 0 < v.dose_sd_gy < v.dose_gy
        assert {c.name for c in v.uncertainty_budget} >= {"calibration"}
    for v in lesions:
        assert v.sphere_model_dose_gy is not None and v.sphere_model_dose_gy > 0
    kid = [v for v in res.vois if v.organ_id == "kidneys"]
    assert {v.voi_name for v in kid} == {"Kidney_L", "Kidney_R"}
    expected = sum(v.dose_gy * v.mass_g for v in kid) / sum(v.mass_g for v in kid)
    assert res.organs["kidneys"].dose_gy == pytest.approx(expected, rel=1e-12)
    # the organ doses are the voxel statistics of the stored dose map
    from dosimetry_core.pipeline.dose import compute_dose

    again = compute_dose(store, case_id, method="vsv-density", vois=["Kidney_L"])
    assert again.vois[0].statistics.mean_gy == pytest.approx(
        next(v.dose_gy for v in kid if v.voi_name == "Kidney_L"), rel=1e-6
    )
    # limits: kidney BED 40 Gy and dose 23 Gy, marrow 2 Gy, all cumulative (no earlier cycle)
    got = {(c.organ_id, c.quantity, c.limit) for c in res.limit_checks}
    assert got == {
        ("kidneys", "bed_gy", 40.0),
        ("kidneys", "dose_gy", 23.0),
        ("red-marrow", "dose_gy", 2.0),
    }
    for c in res.limit_checks:
        assert c.previous_cycles == 0.0 and c.value == pytest.approx(c.this_cycle)
        assert c.passed == (c.value <= c.limit)
    # stored in the case, protocol set
    case = store.load_case(case_id)
    assert case.protocol == "lu177-dotatate"
    stored = case.protocol_run
    assert stored == res and stored.protocol_id == "lu177-dotatate"
    assert json.dumps(case.to_dict(), allow_nan=False)


def test_per_activity_figures_use_the_net_administered_activity(run):
    """Known answer: A_net = A - R * 2^(1 h / T1/2), the residual R decay-corrected back 1 h."""
    store, _, case_id, res = run
    case = store.load_case(case_id)
    syringe = case.first_administration.activity_mbq
    net = syringe - RESIDUAL_MBQ * 2.0 ** (1.0 / LU177_HALF_LIFE_H)  # 200.871 MBq residual
    assert res.administered_activity_mbq == pytest.approx(net, rel=1e-6)
    assert res.administered_activity_mbq < syringe - RESIDUAL_MBQ
    assert "net" in res.administered_activity_definition
    kid = res.organs["kidneys"]
    assert kid.dose_per_activity_gy_per_gbq == pytest.approx(kid.dose_gy / net * 1e3, rel=1e-6)
    # the kinetics the run fitted are stored with TIAC = TIA / A_net
    kin = case.find_result(res.kinetics_id)
    assert kin.source == "protocol run" and kin == case.kinetics
    assert {k.voi_id for k in kin.vois} == {v.voi_id for v in res.vois}
    for k in kin.vois:
        assert k.administered_activity_mbq == pytest.approx(net, rel=1e-6)
        assert k.tiac_h == pytest.approx(k.tia_mbq_h / net, rel=1e-9)
        assert k.tia_mbq_h == next(v.tia_mbq_h for v in res.vois if v.voi_id == k.voi_id)
    # and the dose summary the run used, with a DVH for every VOI
    dose = case.find_result(res.dose_summary_id)
    assert dose.dose_map_id == res.dose_map_id
    assert all(v.dvh is not None for v in dose.vois)


def test_a_second_run_supersedes_the_first(run):
    store, _, case_id, res = run
    again = run_protocol(store, case_id, "lu177-dotatate", method="single-time-point")
    case = store.load_case(case_id)
    assert case.protocol_run == again and case.find_result(res.result_id).superseded
    assert [r.result_id for r in case.result_records("protocol_run")] == [again.result_id]
    assert len(case.result_records("protocol_run", current_only=False)) == 2
    # single time point: the STP TIA is stored as the VOI's kinetics (nothing to re-fit)
    k = case.kinetics.voi(again.vois[0].voi_id)
    assert k.model.startswith("stp-") and k.tia_mbq_h == again.vois[0].tia_mbq_h


def test_next_cycle_activity_keeps_every_cumulative_limit(run):
    _, _, _, res = run
    nc = res.next_cycle
    a = res.administered_activity_mbq
    marrow = res.organs["red-marrow"]
    per_mbq = marrow.dose_gy / a
    by_marrow = (2.0 - marrow.dose_gy) / per_mbq
    assert nc.limits["red-marrow dose_gy"] == pytest.approx(by_marrow, rel=1e-9)
    assert nc.activity_mbq == pytest.approx(min(nc.limits.values()), rel=1e-12)
    assert nc.binding in nc.limits
    # at the proposed activity the kidney BED reaches at most its limit
    assert nc.limits["kidneys bed_gy"] > 0


def test_cumulative_checks_add_earlier_cycles():
    protocol = load_protocol("lu177-dotatate")

    def organ(dose_gy, bed_gy=None):
        return OrganResult.from_dict({"dose_gy": dose_gy, "bed_gy": bed_gy})

    organs = {"kidneys": organ(5.0, 6.0), "red-marrow": organ(0.3)}
    earlier = [
        {"kidneys": organ(4.0, 5.0)},
        {"kidneys": organ(4.5, 5.5), "red-marrow": organ(0.4)},
    ]
    checks = {(c.organ_id, c.quantity): c for c in _limit_checks(protocol, organs, earlier, False)}
    assert checks["kidneys", "dose_gy"].value == pytest.approx(13.5)
    assert checks["kidneys", "bed_gy"].value == pytest.approx(16.5)
    assert checks["kidneys", "bed_gy"].limit == 40.0
    assert checks["red-marrow", "dose_gy"].value == pytest.approx(0.7)
    risky = {(c.organ_id, c.quantity): c for c in _limit_checks(protocol, organs, earlier, True)}
    assert risky["kidneys", "bed_gy"].limit == 28.0


def test_refusals(run, small_demo_dirs, tmp_path):
    store, _, case_id, _ = run
    with pytest.raises(InvalidInputError, match="mrtdose thyroid"):
        run_protocol(store, case_id, "i131-thyroid-benign")
    with pytest.raises(InvalidInputError, match="unknown protocol"):
        run_protocol(store, case_id, "lu177-nonexistent")
    # one time point: multi-point refused, single time point runs (organ level)
    other = CaseStore(tmp_path / "one")
    cid = _new_case(other, small_demo_dirs["siemens-bqml"])
    case = other.load_case(cid)
    case.time_points = case.sorted_time_points()[:1]  # the VOIs are on its CT
    other.save_case(case)
    with pytest.raises(InvalidInputError, match="needs at least 3 time points"):
        run_protocol(other, cid, "lu177-dotatate", method="multi-point")
    res = run_protocol(other, cid, "lu177-dotatate")
    assert res.method == "single-time-point" and res.organs["kidneys"].dose_gy > 0
    assert all(v.model == "stp-haenscheid" for v in res.vois)


def test_run_command_json(run, capsys):
    _, store_dir, case_id, _ = run
    code = main(["run", case_id, "--store", str(store_dir), "--json"])  # the case's protocol
    out, err = capsys.readouterr()
    assert code == 0, err
    d = json.loads(out)
    assert d["protocol"] == "lu177-dotatate"
    assert {"organs", "vois", "limit_checks", "all_limits_passed", "next_cycle"} <= set(d)
    assert d["organs"]["kidneys"]["bed_gy"] > d["organs"]["kidneys"]["dose_gy"] > 0
    code = main(["protocols", "--json"])
    ids = {p["id"] for p in json.loads(capsys.readouterr().out)}
    assert {"lu177-dotatate", "lu177-psma617", "i131-thyroid-benign", "i131-mibg"} <= ids
    assert {"y90-sirt-glass", "y90-sirt-resin", "generic"} <= ids
